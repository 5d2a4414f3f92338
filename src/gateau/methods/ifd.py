"""Cherry's Instruction-Following Difficulty (IFD) baseline, on the long model B.

IFD = NLL(y | c, x) / NLL(y alone): the mean response NLL given the (left-truncated) context and instruction,
divided by the mean response NLL with no context and no instruction. NLL(y | c, x) is B's full-context row
(`FULL`, shared with HMG, PPL and CAM, so it is run once); NLL(y alone) is one extra row ``[BOS] + response``
(`ALONE`). With no BOS (the tokenizer has none, or the chat template is used) the first response token has no
prefix and is not scored, as in Cherry's code; a one-token response then leaves IFD undefined (NaN, with a note).

Stored raw: ``nll_long``, ``nll_alone``, ``ifd``. Score: IFD, highest first. Cherry discards samples with
IFD > 1 (the context and instruction make the response *harder*: they do not fit); by default they get a NaN
score, stay unranked, and the selection summary says how many (``gateau select --ifd-keep-above-one``
ranks them too).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dataclasses import dataclass
from typing import Any

from ..measure.rows import RowRequest, RowResult
from .base import LONG, BenchVariant, Measured, MeasureSettings, Method, RowKey, SampleEncoding, option, require
from .hmg import FULL, full_request

ALONE = RowKey(LONG, "alone")


@dataclass(frozen=True)
class IFDOptions:
    ifd_keep_above_one: bool = option(False, "ifd: also rank samples with IFD > 1 (by default they are dropped, as "
                                      "Cherry does: unranked, never selected)")


def alone_request(enc: SampleEncoding) -> RowRequest | None:
    """The response-alone row, or None when nothing of the response can be scored without a prefix."""
    ids, start = enc.alone
    start = max(start, 1)
    return RowRequest(tuple(ids), start) if start < len(ids) else None


def ifd_value(nll_long: float, nll_alone: float) -> float | None:
    return nll_long / nll_alone if nll_alone > 0 else None


class IFD(Method):
    name = "ifd"
    columns = {"nll_long": pa.float64(), "nll_alone": pa.float64(), "ifd": pa.float64()}
    help = "Cherry IFD: NLL(response | context, instruction) / NLL(response alone); IFD > 1 dropped by default"
    component_columns = ("ifd", "nll_alone")
    Options = IFDOptions

    def requests(self, enc: SampleEncoding, settings: MeasureSettings) -> dict[RowKey, RowRequest]:
        reqs = {FULL: full_request(enc)}
        alone = alone_request(enc)
        if alone is not None:
            reqs[ALONE] = alone
        return reqs

    def measure(self, enc: SampleEncoding, results: dict[RowKey, RowResult], settings: MeasureSettings) -> Measured:
        nll_long = require(results, FULL).nll
        if ALONE not in results:
            return Measured({"nll_long": nll_long, "nll_alone": None, "ifd": None},
                            note="ifd undefined: a one-token response with no BOS has no token to score alone")
        nll_alone = require(results, ALONE).nll
        ifd = ifd_value(nll_long, nll_alone)
        note = "" if ifd is not None else "ifd undefined: the response alone has zero NLL"
        return Measured({"nll_long": nll_long, "nll_alone": nll_alone, "ifd": ifd}, note=note)

    def score(self, table: dict[str, Any], options: IFDOptions, k: int | None = None) -> np.ndarray:
        ifd = np.asarray(table["ifd"], dtype=np.float64)
        return ifd if options.ifd_keep_above_one else np.where(ifd > 1, np.nan, ifd)

    def notes(self, table: dict[str, Any], options: IFDOptions, score: np.ndarray, chosen: np.ndarray,
              k: int | None = None) -> list[str]:
        above = int(np.sum(np.asarray(table["ifd"], dtype=np.float64) > 1))
        if options.ifd_keep_above_one:
            return [f"ifd: {above} samples with IFD > 1 kept and ranked (--ifd-keep-above-one)"]
        return [f"ifd: {above} samples with IFD > 1 dropped (unranked, never selected; "
                "--ifd-keep-above-one ranks them)"]

    @classmethod
    def bench_variants(cls) -> list[BenchVariant]:
        return [BenchVariant(main=True), BenchVariant({"ifd_keep_above_one": True})]
