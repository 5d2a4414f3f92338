"""What a record is: its shape and its turns, with one role map and the field map (`FieldMap`).

Every view of a record (the scoring `Sample`, the training messages, the judge view) starts from
`record_turns`, which only says *where* each part of a record is and what the roles mean; each view then applies
its own rules (which turns it uses, what an unusable value becomes) to the values as written.

Shapes (auto-detected per record by `detect_shape`, or forced with ``FieldMap.shape``):

- ``messages``: LongAlign / OpenAI chat, turns ``{"role", "content"}``;
- ``conversations``: ShareGPT, turns ``{"from", "value"}``;
- ``alpaca``: ``instruction`` / ``input`` / ``output``: one user turn (``input`` is its context) and one
  assistant turn;
- ``explicit``: ``context`` / ``instruction`` / ``response`` (key names from the `FieldMap`): the same two turns.

Roles: `ROLES` maps the names found in the wild (lower-cased) onto ``system``, ``user`` and ``assistant``;
``chatgpt`` (ShareGPT dumps) is an assistant. A role not in the map is kept as written (``Turn.role`` None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import FieldMap

SHAPES = ("messages", "conversations", "alpaca", "explicit")
CHAT_KEYS = {"messages": ("role", "content"), "conversations": ("from", "value")}
"""Per chat shape: (role key, text key) of a turn."""

ROLES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
         "model": "assistant", "bot": "assistant", "chatgpt": "assistant"}


class _Absent:
    """The value of a key the record does not have (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Value:
    """One value of a record as written: ``name`` is where it is ("messages[2].content", "output"), ``value``
    is what it holds (any JSON value, or `ABSENT`)."""

    name: str
    value: Any


@dataclass(frozen=True)
class Turn:
    """One turn as written. ``raw_role`` is the role as written (`ABSENT` when the turn has none, or is not an
    object); ``role`` is its `ROLES` name or None; ``text`` the turn's text. A flat shape's user turn keeps its
    ``context`` apart from its ``text`` (the instruction); chat turns have no ``context``."""

    raw_role: Any
    text: Value
    context: Value | None = None

    @property
    def role(self) -> str | None:
        return None if self.raw_role is ABSENT else ROLES.get(str(self.raw_role).lower())


class NotTurns(ValueError):
    """A chat shape's turn list is not a list."""


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


def record_turns(record: dict[str, Any], shape: str, fields: FieldMap = FieldMap()) -> list[Turn]:
    """The turns of ``record`` read as ``shape`` (one of `SHAPES`), values as written.

    Raises KeyError (the key) when a chat shape's turn list is absent and `NotTurns` when it is not a list.
    """
    if shape in CHAT_KEYS:
        role_key, text_key = CHAT_KEYS[shape]
        turns = record[shape]
        if not isinstance(turns, list):
            raise NotTurns(f"{shape!r} must be a list of turns")
        out = []
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict):
                turn = {}
            out.append(Turn(raw_role=turn.get(role_key, ABSENT),
                            text=Value(f"{shape}[{i}].{text_key}", turn.get(text_key, ABSENT))))
        return out
    names = ("input", "instruction", "output") if shape == "alpaca" else (
        fields.context, fields.instruction, fields.response)
    context, instruction, response = (Value(name, record.get(name, ABSENT)) for name in names)
    return [Turn(raw_role="user", text=instruction, context=context), Turn(raw_role="assistant", text=response)]
