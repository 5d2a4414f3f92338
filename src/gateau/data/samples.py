"""The scoring view of records: `Sample`s (context, instruction, response), loaded from files or HF datasets.

Record shapes and roles are `gateau.data.turns`'s. Alpaca and explicit records give their three fields as they
are (an absent or null alpaca ``input`` is an empty context). For chat shapes the last user turn is split into
context and instruction: the instruction is its last paragraph (text after the last ``splitter``, default
``"\\n\\n"``), the context is everything before it, as the official GATEAU scripts do. The response is the last
assistant turn. Earlier turns are prepended to the context.

A record that is recognised but unusable (empty response, missing field, no context) becomes a `Sample` with a
``status`` code and ``error`` text; it is never dropped. A file that cannot be read, or a record whose shape
cannot be recognised at all, raises `DataError` naming the file and line.

`judge_view` is the same view for an LLM judge: what is judged is what was scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import FieldMap
from ..status import Status
from .content import content_hash
from .read import EXPECTED_SHAPES_HELP, DataError, iter_records
from .turns import ABSENT, CHAT_KEYS, SHAPES, NotTurns, Turn, detect_shape, record_turns


@dataclass
class Sample:
    """One SFT sample. ``index`` is the 0-based position in the input; ``id`` is the record's id or str(index)."""

    index: int
    id: str
    context: str
    instruction: str
    response: str
    status: Status = Status.OK
    error: str = ""
    shape: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""  # fingerprint of the raw record (`gateau.data.content.content_hash`)

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


# ---------------------------------------------------------------------------------------------------------------
# Records -> samples


def record_id(record: dict[str, Any], index: int, fields: FieldMap = FieldMap()) -> str:
    """A record's sample id: its id field (``fields.id_field``) as text, else its 0-based position ``index``."""
    rid = record.get(fields.id_field)
    return str(index if rid is None else rid)


def record_to_sample(record: dict[str, Any], index: int, location: str, fields: FieldMap = FieldMap()) -> Sample:
    """Convert one record to a Sample; unusable records get a status code, unrecognisable ones raise DataError."""
    shape = detect_shape(record, fields)
    if shape not in SHAPES:
        keys = ", ".join(sorted(map(str, record))[:8])
        raise DataError(f"{location}: unrecognised record shape (keys: {keys}); {EXPECTED_SHAPES_HELP}")
    sample = Sample(index=index, id=record_id(record, index, fields), context="", instruction="", response="",
                    shape=shape)
    try:
        turns = record_turns(record, shape, fields)
        if shape in CHAT_KEYS:
            _fill_from_turns(sample, turns, shape, fields.splitter)
        else:
            user, assistant = turns
            if shape == "alpaca":  # an absent, null or empty input is an empty context
                context = "" if user.context.value is ABSENT else user.context.value or ""
                sample.context, sample.instruction, sample.response = (
                    _text(context, user.context.name), _field_text(user.text.name, user.text.value),
                    _field_text(assistant.text.name, assistant.text.value))
            else:  # explicit: read one by one (the fields before a bad one stay filled)
                sample.context = _field_text(user.context.name, user.context.value)
                sample.instruction = _field_text(user.text.name, user.text.value)
                sample.response = _field_text(assistant.text.name, assistant.text.value)
    except KeyError as exc:
        return _mark(sample, Status.MISSING_FIELD, f"missing field {exc.args[0]!r} for shape {shape!r}")
    except (_FieldError, NotTurns) as exc:
        return _mark(sample, Status.MISSING_FIELD, str(exc))
    if not sample.response.strip():
        return _mark(sample, Status.EMPTY_RESPONSE, "the response is empty")
    if not sample.instruction.strip():
        return _mark(sample, Status.EMPTY_INSTRUCTION, "the instruction is empty")
    if not sample.context.strip():
        return _mark(sample, Status.EMPTY_CONTEXT, "the context is empty (nothing long to measure)")
    return sample


def judge_view(record: dict[str, Any], location: str, fields: FieldMap = FieldMap()) -> tuple[str, str, str]:
    """(context, instruction, response) of ``record`` for an LLM judge (``gateau judge-samples``): the scoring
    `Sample`'s fields, so a judge rates the text that was scored and ranked (chat shapes: the last user turn
    before the last assistant turn, earlier turns in the context). A record with empty parts is still judged;
    one whose fields cannot be read raises `DataError` naming ``location``."""
    sample = record_to_sample(record, 0, location, fields)
    if sample.status == Status.MISSING_FIELD:
        raise DataError(f"{location}: {sample.error}")
    return sample.context, sample.instruction, sample.response


class _FieldError(ValueError):
    pass


def _field_text(name: str, value: Any) -> str:
    """``value`` as text; KeyError (missing field) when the record has no such key."""
    if value is ABSENT:
        raise KeyError(name)
    return _text(value, name)


def _text(value: Any, name: str) -> str:
    if value is None:
        raise _FieldError(f"field {name!r} is null")
    if not isinstance(value, str):
        raise _FieldError(f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def _mark(sample: Sample, status: Status, error: str) -> Sample:
    sample.status, sample.error = status, error
    return sample


def _fill_from_turns(sample: Sample, turns: list[Turn], shape: str, splitter: str) -> None:
    """The scoring view of a chat record: the response is the last assistant turn, the instruction the last
    paragraph of the last user turn before it; every earlier turn (any role) is prepended to the context."""
    role_key, text_key = CHAT_KEYS[shape]
    parsed: list[tuple[str | None, str]] = []
    for i, turn in enumerate(turns):
        if turn.raw_role is ABSENT or turn.text.value is ABSENT:
            raise _FieldError(f"turn {i} must have {role_key!r} and {text_key!r}")
        parsed.append((turn.role, _text(turn.text.value, turn.text.name)))
    last_assistant = max((i for i, (r, _) in enumerate(parsed) if r == "assistant"), default=None)
    if last_assistant is None:
        raise _FieldError("no assistant turn (the response)")
    last_user = max((i for i, (r, _) in enumerate(parsed[:last_assistant]) if r == "user"), default=None)
    if last_user is None:
        raise _FieldError("no user turn before the last assistant turn")
    user_text = parsed[last_user][1]
    head, sep, tail = user_text.rpartition(splitter)
    context, instruction = (head, tail) if sep else ("", user_text)
    earlier = [text for _, text in parsed[:last_user] if text.strip()]
    sample.context = splitter.join(earlier + ([context] if context else []))
    sample.instruction = instruction.strip()
    sample.response = parsed[last_assistant][1]


def load_samples(source: str | Path, fields: FieldMap = FieldMap(), limit: int | None = None) -> list[Sample]:
    """Read every record of ``source`` (up to ``limit``) as a Sample, in input order. Duplicate ids raise DataError,
    and so does an id field other than the default ``id`` that no record has (ids would silently become
    positions)."""
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    keys: set[str] = set()  # the top-level fields of the records, for the message of an absent id field
    any_has_id = False
    for index, (location, record) in enumerate(iter_records(source)):
        if limit is not None and index >= limit:
            break
        any_has_id = any_has_id or record.get(fields.id_field) is not None
        if not any_has_id:
            keys.update(map(str, record))
        sample = record_to_sample(record, index, location, fields)
        sample.content_hash = content_hash(record)
        if sample.id in seen:
            raise DataError(f"{location}: duplicate id {sample.id!r} (first at {seen[sample.id]}); ids must be unique")
        seen[sample.id] = location
        samples.append(sample)
    if not samples:
        raise DataError(f"{source}: no records found")
    if fields.id_field != FieldMap.id_field and not any_has_id:
        raise DataError(f"{source}: the id field {fields.id_field!r} (--id-field) is in none of the "
                        f"{len(samples)} records; they have the fields {', '.join(sorted(keys))}: give one of "
                        "them, or leave --id-field out to number the records by position")
    return samples


def load_records_by_id(source: str | Path, fields: FieldMap = FieldMap()) -> dict[str, tuple[int, dict[str, Any]]]:
    """The raw input records keyed by sample id (the record's id field or its 0-based position), each with its
    0-based position in ``source``."""
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, (_, record) in enumerate(iter_records(source)):
        out[record_id(record, index, fields)] = (index, record)
    return out
