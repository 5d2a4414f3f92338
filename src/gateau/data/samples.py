"""Load SFT records from files or HF datasets and turn them into `Sample`s (context, instruction, response).

Recognised record shapes (auto-detected per record, or forced with `FieldMap`):
- ``messages``: LongAlign / OpenAI chat ``[{"role": "user", ...}, {"role": "assistant", ...}]``;
- ``conversations``: ShareGPT ``[{"from": "human", "value": ...}, {"from": "gpt", "value": ...}]``;
- ``alpaca``: ``instruction`` / ``input`` / ``output``;
- ``explicit``: ``context`` / ``instruction`` / ``response``.

For chat shapes the last user turn is split into context and instruction: the instruction is its last
paragraph (text after the last ``splitter``, default ``"\\n\\n"``), the context is everything before it, as the
official GATEAU scripts do. The response is the last assistant turn. Earlier turns are prepended to the context.

A record that is recognised but unusable (empty response, missing field, no context) becomes a `Sample` with a
``status`` code and ``error`` text; it is never dropped. A file that cannot be read, or a record whose shape
cannot be recognised at all, raises `DataError` naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import FieldMap
from ..status import Status
from .content import content_hash
from .read import EXPECTED_SHAPES_HELP, DataError, iter_records

SHAPES = ("messages", "conversations", "alpaca", "explicit")

_USER_ROLES = {"user", "human"}
_ASSISTANT_ROLES = {"assistant", "gpt", "model", "bot"}


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


def detect_shape(record: dict[str, Any], fields: FieldMap = FieldMap()) -> str | None:
    """Return the shape name of ``record`` or None if it matches none."""
    if fields.shape:
        return fields.shape
    if isinstance(record.get("messages"), list):
        return "messages"
    if isinstance(record.get("conversations"), list):
        return "conversations"
    # Parquet/HF rows carry null for absent fields: match on non-null fields first, then on keys (a null then
    # becomes a missing_field status of the matched shape).
    for keys in ({k for k, v in record.items() if v is not None}, set(record)):
        if fields.response in keys or fields.context in keys and fields.instruction in keys:
            return "explicit"
        if "output" in keys and "instruction" in keys:
            return "alpaca"
    return None


def record_to_sample(record: dict[str, Any], index: int, location: str, fields: FieldMap = FieldMap()) -> Sample:
    """Convert one record to a Sample; unusable records get a status code, unrecognisable ones raise DataError."""
    shape = detect_shape(record, fields)
    if shape not in SHAPES:
        keys = ", ".join(sorted(map(str, record))[:8])
        raise DataError(f"{location}: unrecognised record shape (keys: {keys}); {EXPECTED_SHAPES_HELP}")
    sample_id = record.get(fields.id_field)
    sample = Sample(index=index, id=str(index if sample_id is None else sample_id), context="", instruction="",
                    response="", shape=shape)
    try:
        if shape in ("messages", "conversations"):
            _fill_from_turns(sample, record[shape], shape, fields.splitter)
        elif shape == "alpaca":
            sample.context, sample.instruction, sample.response = (
                _text(record.get("input") or "", "input"), _text(record["instruction"], "instruction"),
                _text(record["output"], "output"))
        else:
            sample.context = _text(record[fields.context], fields.context)
            sample.instruction = _text(record[fields.instruction], fields.instruction)
            sample.response = _text(record[fields.response], fields.response)
    except KeyError as exc:
        return _mark(sample, Status.MISSING_FIELD, f"missing field {exc.args[0]!r} for shape {shape!r}")
    except _FieldError as exc:
        return _mark(sample, Status.MISSING_FIELD, str(exc))
    if not sample.response.strip():
        return _mark(sample, Status.EMPTY_RESPONSE, "the response is empty")
    if not sample.instruction.strip():
        return _mark(sample, Status.EMPTY_INSTRUCTION, "the instruction is empty")
    if not sample.context.strip():
        return _mark(sample, Status.EMPTY_CONTEXT, "the context is empty (nothing long to measure)")
    return sample


class _FieldError(ValueError):
    pass


def _text(value: Any, name: str) -> str:
    if value is None:
        raise _FieldError(f"field {name!r} is null")
    if not isinstance(value, str):
        raise _FieldError(f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def _mark(sample: Sample, status: Status, error: str) -> Sample:
    sample.status, sample.error = status, error
    return sample


def _fill_from_turns(sample: Sample, turns: list[Any], shape: str, splitter: str) -> None:
    role_key, text_key = ("role", "content") if shape == "messages" else ("from", "value")
    parsed: list[tuple[str, str]] = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or role_key not in turn or text_key not in turn:
            raise _FieldError(f"turn {i} must have {role_key!r} and {text_key!r}")
        parsed.append((str(turn[role_key]).lower(), _text(turn[text_key], f"{shape}[{i}].{text_key}")))
    last_assistant = max((i for i, (r, _) in enumerate(parsed) if r in _ASSISTANT_ROLES), default=None)
    if last_assistant is None:
        raise _FieldError("no assistant turn (the response)")
    last_user = max((i for i, (r, _) in enumerate(parsed[:last_assistant]) if r in _USER_ROLES), default=None)
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
    """Read every record of ``source`` (up to ``limit``) as a Sample, in input order. Duplicate ids raise DataError."""
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    for index, (location, record) in enumerate(iter_records(source)):
        if limit is not None and index >= limit:
            break
        sample = record_to_sample(record, index, location, fields)
        sample.content_hash = content_hash(record)
        if sample.id in seen:
            raise DataError(f"{location}: duplicate id {sample.id!r} (first at {seen[sample.id]}); ids must be unique")
        seen[sample.id] = location
        samples.append(sample)
    if not samples:
        raise DataError(f"{source}: no records found")
    return samples


def load_records_by_id(source: str | Path, fields: FieldMap = FieldMap()) -> dict[str, tuple[int, dict[str, Any]]]:
    """The raw input records keyed by sample id (the record's id field or its 0-based position), each with its
    0-based position in ``source``."""
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, (_, record) in enumerate(iter_records(source)):
        rid = record.get(fields.id_field)
        out[str(index if rid is None else rid)] = (index, record)
    return out
