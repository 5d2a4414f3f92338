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

`load_samples` reads every Sample with its texts; `index_samples` reads the input once with the same checks and
keeps only a `SampleRef` per sample (id, status, content hash, length and where the record is), so memory does not
grow with the texts; a `SampleReader` reads the Samples of a list of refs back just before they are scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..config import FieldMap
from ..status import Status
from .content import content_hash
from .read import EXPECTED_SHAPES_HELP, DataError, Pointer, RecordReader, RecordSource
from .turns import ABSENT, CHAT_KEYS, SHAPES, NotTurns, Turn, detect_shape, record_turns

if TYPE_CHECKING:
    from ..config import DataConfig


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

    @property
    def sort_length(self) -> int:
        """Characters of context + instruction + response: what chunks are length-sorted by (no tokenizer)."""
        return len(self.context) + len(self.instruction) + len(self.response)


@dataclass(frozen=True, slots=True)
class SampleRef:
    """A `Sample` without its texts: what a run keeps of every sample while it plans and resumes. ``pointer``:
    where its record is (`gateau.data.read.Pointer`); ``sort_length``: the Sample's ``sort_length``, or 0 for a
    source read forward only (a streamed dataset), whose chunks then keep input order."""

    index: int
    id: str
    status: Status
    error: str
    content_hash: str
    sort_length: int
    pointer: Pointer

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


def source_of(data: DataConfig) -> RecordSource:
    """The `RecordSource` of a run's data settings."""
    return RecordSource(data.path, data.split, data.subset, data.streaming)


def recorded_source(data: dict[str, Any], path: str | None = None) -> RecordSource:
    """The `RecordSource` of a run's recorded ``data`` settings (``RUN/config.json``), read from ``path`` instead
    of the recorded path when given (``--data``: the same split, subset and streaming, unless it is a file)."""
    path = path or data["path"]
    if Path(path).is_file():
        return RecordSource(path)
    return RecordSource(path, data.get("split"), data.get("subset"), bool(data.get("streaming", False)))


def _as_source(source: str | Path | RecordSource) -> RecordSource:
    return source if isinstance(source, RecordSource) else RecordSource(str(source))


def _scan_samples(source: RecordSource, fields: FieldMap, limit: int | None) -> Iterator[tuple[Sample, Pointer]]:
    """(Sample, pointer) of every record of the resolved ``source`` (up to ``limit``), in input order, with the
    checks of `load_samples` (raised when the scan reaches them)."""
    seen: dict[str, str] = {}
    keys: set[str] = set()  # the top-level fields of the records, for the message of an absent id field
    any_has_id = False
    count = 0
    for index, (pointer, record) in enumerate(source.scan()):
        if limit is not None and index >= limit:
            break
        location = source.location(pointer)
        any_has_id = any_has_id or record.get(fields.id_field) is not None
        if not any_has_id:
            keys.update(map(str, record))
        sample = record_to_sample(record, index, location, fields)
        sample.content_hash = content_hash(record)
        if sample.id in seen:
            raise DataError(f"{location}: duplicate id {sample.id!r} (first at {seen[sample.id]}); ids must be unique")
        seen[sample.id] = location
        count += 1
        yield sample, pointer
    if not count:
        raise DataError(f"{source.path}: no records found")
    if fields.id_field != FieldMap.id_field and not any_has_id:
        raise DataError(f"{source.path}: the id field {fields.id_field!r} (--id-field) is in none of the "
                        f"{count} records; they have the fields {', '.join(sorted(keys))}: give one of "
                        "them, or leave --id-field out to number the records by position")


def load_samples(source: str | Path | RecordSource, fields: FieldMap = FieldMap(),
                 limit: int | None = None) -> list[Sample]:
    """Read every record of ``source`` (up to ``limit``) as a Sample, in input order. Duplicate ids raise DataError,
    and so does an id field other than the default ``id`` that no record has (ids would silently become
    positions)."""
    return [sample for sample, _ in _scan_samples(_as_source(source).resolved(), fields, limit)]


@dataclass
class SampleIndex:
    """Every sample of an input as a `SampleRef`, in input order. ``source``: the input with its split chosen;
    ``note``: what was chosen for the user (the only split of a dataset), or empty."""

    source: RecordSource
    fields: FieldMap
    refs: list[SampleRef]
    note: str = ""

    def reader(self) -> SampleReader:
        return SampleReader(self.source, self.fields)


def index_samples(source: str | Path | RecordSource, fields: FieldMap = FieldMap(),
                  limit: int | None = None) -> SampleIndex:
    """`load_samples` keeping a `SampleRef` per sample instead of its texts (same checks, same errors)."""
    given = _as_source(source)
    resolved = given.resolved()
    note = (f"split {resolved.split!r} (the only split of {resolved.path})"
            if given.split is None and resolved.split is not None else "")
    forward_only = resolved.forward_only
    refs = [SampleRef(index=s.index, id=s.id, status=s.status, error=s.error, content_hash=s.content_hash,
                      sort_length=0 if forward_only else s.sort_length, pointer=pointer)
            for s, pointer in _scan_samples(resolved, fields, limit)]
    return SampleIndex(source=resolved, fields=fields, refs=refs, note=note)


class SampleReader:
    """Reads the `Sample`s of refs back from their source (picklable: a worker process opens its own files)."""

    def __init__(self, source: RecordSource, fields: FieldMap):
        self.source, self.fields = source, fields
        self._records: RecordReader | None = None

    def absolute(self) -> SampleReader:
        """A reader of the same source by its absolute path (what a worker in another directory opens)."""
        return SampleReader(self.source.absolute(), self.fields)

    def __getstate__(self) -> dict[str, Any]:
        return {"source": self.source, "fields": self.fields, "_records": None}

    def read(self, refs: list[SampleRef]) -> list[Sample]:
        """The Samples of ``refs``, in the order given; DataError when a record cannot be read at its pointer or no
        longer has the content hash it had when the input was indexed (the input changed during the run)."""
        if self._records is None:
            self._records = self.source.reader()
        try:
            records = self._records.fetch([r.pointer for r in refs])
        except DataError as exc:  # it was read whole when indexed: the input changed since
            raise DataError(f"{self.source.path} changed while this command ran ({exc}); run the command "
                            "again") from None
        out = []
        for ref, record in zip(refs, records):
            location = self.source.location(ref.pointer)
            sample = record_to_sample(record, ref.index, location, self.fields)
            sample.content_hash = content_hash(record)
            if sample.content_hash != ref.content_hash or sample.id != ref.id:
                raise DataError(f"{location}: the record changed while this command ran (it was read with content "
                                f"hash {ref.content_hash}, now {sample.content_hash}); run the command again")
            out.append(sample)
        return out

    def close(self) -> None:
        if self._records is not None:
            self._records.close()
            self._records = None


def load_records_by_id(source: str | Path | RecordSource, fields: FieldMap = FieldMap()
                        ) -> dict[str, tuple[int, dict[str, Any]]]:
    """The raw input records keyed by sample id (the record's id field or its 0-based position), each with its
    0-based position in ``source``."""
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    src = _as_source(source).resolved()
    for index, (_, record) in enumerate(src.scan()):
        out[record_id(record, index, fields)] = (index, record)
    return out
