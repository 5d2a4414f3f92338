"""Per-sample status: one enum for every stage, stored in ``scores.parquet`` as its string value.

Each row carries a `Status` and an ``error`` text (the reason, for a person). ``ok`` rows are ranked; every other
status leaves the sample unranked and is counted, by status, in the score and select summaries. Retryable statuses
(out of memory) are measured again when the run is resumed; the others are final for the same content and settings.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """Why a sample has, or has no, measurements. ``str`` subclass: compares equal to its stored value."""

    OK = "ok"
    MISSING_FIELD = "missing_field"  # the record's shape is recognised but a needed field is absent or not text
    EMPTY_RESPONSE = "empty_response"  # no response text, or no response token after tokenisation
    EMPTY_INSTRUCTION = "empty_instruction"
    EMPTY_CONTEXT = "empty_context"  # nothing long to measure
    TOO_LONG = "too_long"  # template + instruction + response leave no room for context under --max-length
    BAD_TEXT = "bad_text"  # text that cannot be encoded (e.g. a lone surrogate)
    NONFINITE = "nonfinite"  # a measured NLL was inf or NaN (fp16/bf16 overflow)
    OOM = "oom"  # one row alone did not fit in memory
    WINDOW_FAILED = "window_failed"  # bench: ok in the base run, not ok in the run at another short window

    @property
    def retryable(self) -> bool:
        """True if a resumed run should measure the sample again."""
        return self is Status.OOM

    def __str__(self) -> str:
        return self.value


RETRYABLE = frozenset(s.value for s in Status if s.retryable)

EXAMPLES_SHOWN = 3  # not-ok samples named per status in a summary


def status_examples(ids: list[str], statuses: list[str], errors: list[str | None],
                    shown: int = EXAMPLES_SHOWN) -> list[str]:
    """Summary lines naming, for each status other than ``ok`` (sorted by name), its first ``shown`` samples in
    input order with their reasons: ``  missing_field: r1 (missing field 'response' ...), r4 (...) and 2 more``."""
    by_status: dict[str, list[str]] = {}
    for sid, status, error in zip(ids, statuses, errors):
        if status != Status.OK:
            by_status.setdefault(str(status), []).append(f"{sid} ({error})" if error else str(sid))
    lines = []
    for status, named in sorted(by_status.items()):
        more = f" and {len(named) - shown} more" if len(named) > shown else ""
        lines.append(f"  {status}: {', '.join(named[:shown])}{more}")
    return lines
