"""Perplexity Guidance baseline: the long model's response PPL given the full context; highest first."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from typing import Any

from ..measure.rows import RowRequest, RowResult
from .base import Measured, MeasureSettings, Method, RowKey, SampleEncoding, require
from .hmg import FULL, full_request


class PPL(Method):
    name = "ppl"
    columns = {"nll_long": pa.float64()}
    help = "Perplexity Guidance: PPL of the response under the long model"

    def requests(self, enc: SampleEncoding, settings: MeasureSettings) -> dict[RowKey, RowRequest]:
        return {FULL: full_request(enc)}

    def measure(self, enc: SampleEncoding, results: dict[RowKey, RowResult], settings: MeasureSettings) -> Measured:
        return Measured({"nll_long": require(results, FULL).nll})

    def score(self, table: dict[str, Any], options: Any, k: int | None = None) -> np.ndarray:
        return np.exp(np.asarray(table["nll_long"], dtype=np.float64))

    def components(self, table: dict[str, Any], options: Any) -> dict[str, np.ndarray]:
        return {"ppl_long": self.score(table, options)}
