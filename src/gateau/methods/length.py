"""Length baseline: the context length in tokens of the long model's tokenizer, longest first.

Uses the ``n_context`` column every scored run stores (before left truncation), so any run can be ranked by it
and it needs no model pass: ``gateau score --methods length`` loads only the long model's *tokenizer* (for the
token counts), never its weights.
"""

from __future__ import annotations

import numpy as np

from typing import Any

from .base import Method


class Length(Method):
    name = "length"
    uses_model = False
    help = "context length in tokens (n_context), longest first; no model pass"

    def score(self, table: dict[str, Any], options: Any, k: int | None = None) -> np.ndarray:
        return np.asarray(table["n_context"], dtype=np.float64)
