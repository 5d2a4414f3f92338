"""What a scoring method is: the rows it needs measured, the raw columns it stores, its own options, and how the
stored columns become one score per sample.

A method never loads a model and never selects. ``requests`` names the rows (token sequences) it needs scored,
keyed by `RowKey`; rows with equal keys are shared between methods, so HMG, PPL and CAM all reuse the long
model's single full-context pass (and CAM's attention profile rides on that same pass). ``measure`` turns the
row results into raw per-sample columns. ``score`` maps the stored table to one number per sample (higher =
select first), cheaply, without a model, under the method's ``Options`` (a frozen dataclass declared beside it;
`options` builds one from a preset and overrides). ``components`` names the columns a selection reports and
exports with each record; ``notes`` adds method-specific lines to the selection summary.

Baselines that need models other than the causal LMs (CaR: a reward model and a sentence embedder) name them in
``aux_models`` and override ``measure_samples``, which the scorer calls once per chunk of samples with an
`AuxModels` that loads each extra model on first use, once per run.

This module, and every method module, imports no torch: `gateau select` loads them in a light process.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np
import pyarrow as pa

from ..errors import UsageError
from ..measure.rows import LONG, SHORT, RowKey, RowRequest, RowResult
from ..prompt import EncodedSample
from ..status import Status

CASCADE_ROWS = "attention-in-phase-1"  # the layout of a cascade's phase rows, in its fingerprint (`fingerprinted`)

if TYPE_CHECKING:
    from ..config import ScoreConfig
    from ..data import Sample
    from ..measure.aux_models import AuxModels

__all__ = ["LONG", "SHORT", "BenchVariant", "Measured", "MeasureSettings", "Method", "NoOptions", "RowFailure",
           "RowKey", "SampleEncoding", "merge_requests", "option", "require"]


@dataclass(frozen=True)
class MeasureSettings:
    """The per-sample measurement settings methods read, resolved from a `ScoreConfig` (no defaults here: each
    lives once in `gateau.config`). ``short_window``: window mode's W in tokens, None in pair mode.
    ``neutral_response``: CAM's content-free response for the calibration profile (None: not measured).
    ``cam_top``: the CAM cascade's fraction (1: no cascade); ``cascade_phase``: the cascade phase being measured
    (``hmg``: CAM's segment rows are left out; ``cam``: the top samples' complete rows; None: no cascade)."""

    short_window: int | None
    segment_len: int
    last_segment: str
    max_segments: int | None
    seed: int
    neutral_response: str | None = None
    cam_top: float = 1.0
    cascade_phase: str | None = None

    @classmethod
    def from_config(cls, config: ScoreConfig) -> MeasureSettings:
        m = config.measure
        return cls(short_window=config.models.window, segment_len=m.segment_len, last_segment=m.last_segment,
                   max_segments=m.max_segments, seed=m.seed, neutral_response=m.neutral_response, cam_top=m.cam_top,
                   cascade_phase=config.cascade_phase)

    def fingerprinted(self) -> dict[str, Any]:
        """These settings for the run's fingerprint. ``neutral_response`` and ``cam_top`` enter only when set
        (not None, below 1), so runs without them keep the fingerprint they had before the settings existed; the
        cascade phase never does (both phases' rows belong to one run). A cascade also records the layout of its
        phases' rows (``cascade_rows``: attention profile in phase 1), so a run stored by the earlier layout (whose
        phase-1 rows lack it) is not resumed by this one."""
        out = dict(vars(self))
        del out["cascade_phase"]
        if out["neutral_response"] is None:
            del out["neutral_response"]
        if out["cam_top"] == 1.0:
            del out["cam_top"]
        else:
            out["cascade_rows"] = CASCADE_ROWS
        return out

    def segments(self, enc: EncodedSample) -> list[tuple[int, int]]:
        """The CAM segments of ``enc``'s context under these settings."""
        return enc.segments(self.segment_len, self.max_segments, self.seed, keep_last=self.last_segment == "keep")


@dataclass
class SampleEncoding:
    """A sample tokenised for the long model (``long``) and the short model (``short``; the same object in
    window mode or when both models share a tokenizer), plus the response alone (``alone``: ids, start) and, when
    `MeasureSettings.neutral_response` is set, the long model's tokens of that content-free response in the
    response's place (``neutral``; None otherwise)."""

    long: EncodedSample
    short: EncodedSample
    alone: tuple[list[int], int]
    neutral: list[int] | None = None


@dataclass
class Measured:
    """Raw columns measured for one sample, plus an optional note (e.g. why a component is undefined)."""

    columns: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    error: str = ""  # set by measure_samples when the sample could not be measured (stored as status oom, retried)


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A field of a method's Options dataclass; ``help`` and ``choices`` become its `gateau select` flag."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class NoOptions:
    """The options of a method that has none."""


@dataclass(frozen=True)
class BenchVariant:
    """One setting of a method that the long-dependency benchmark evaluates: option overrides, whether the row
    belongs in the main table, the preset it reproduces (if any), and stored columns it needs values in beyond
    the method's own (``requires``: e.g. an optional measurement; the variant is skipped when no row has them)."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    main: bool = False
    preset: str | None = None
    requires: tuple[str, ...] = ()


class RowFailure(RuntimeError):
    """A row this method needs could not be run: ``status`` (a `Status` value) and the reason."""

    def __init__(self, message: str, status: str):
        super().__init__(message)
        self.status = status


def require(results: dict[RowKey, RowResult], key: RowKey) -> RowResult:
    """The result for ``key``, or RowFailure (with the row's status) if that row failed."""
    res = results[key]
    if res.nll is None:
        raise RowFailure(res.error or f"row {key} failed", res.status or Status.OOM.value)
    return res


class Method:
    """Base class; subclasses set the class attributes and override what they need."""

    name: ClassVar[str]
    help: ClassVar[str] = ""
    columns: ClassVar[dict[str, pa.DataType]] = {}  # raw columns stored by `gateau score`
    component_columns: ClassVar[tuple[str, ...]] = ()  # stored columns reported and exported with a selection
    window_columns: ClassVar[tuple[str, ...]] = ()  # stored columns that change with the short window W
    uses_model: ClassVar[bool] = True  # needs the causal LM's rows (False: no causal LM weights are loaded for it)
    aux_models: ClassVar[tuple[str, ...]] = ()  # extra models for measure_samples: "reward", "embed"
    Options: ClassVar[type] = NoOptions
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # name -> option values (fields it lacks are ignored)

    # -- measuring (gateau score) --------------------------------------------------------------------------
    def requests(self, enc: SampleEncoding, settings: MeasureSettings) -> dict[RowKey, RowRequest]:
        return {}

    def measure(self, enc: SampleEncoding, results: dict[RowKey, RowResult], settings: MeasureSettings) -> Measured:
        return Measured()

    def measure_samples(self, samples: list[Sample], encodings: list[SampleEncoding], settings: MeasureSettings,
                        models: AuxModels) -> list[Measured] | None:
        """Optional measurement of a chunk of samples with the extra models in ``aux_models`` (one `Measured` per
        sample, in order); None (the default) adds nothing. Called after ``measure``, for samples still ok."""
        return None

    # -- scoring (gateau select; no model) -----------------------------------------------------------------
    @classmethod
    def options(cls, preset: str | None = None, strict: bool = True, **overrides: Any) -> Any:
        """This method's Options from ``preset`` (None: the defaults) and explicit overrides (None = keep).
        ValueError for an unknown preset, or (``strict``) an override this method does not take; not ``strict``:
        such overrides are ignored (for callers that set one value across several methods)."""
        names = {f.name for f in fields(cls.Options)}
        values: dict[str, Any] = {}
        if preset is not None:
            if preset not in cls.presets:
                have = ", ".join(sorted(cls.presets)) or "none"
                raise UsageError(f"method {cls.name!r} has no preset {preset!r} (its presets: {have})")
            values.update({k: v for k, v in cls.presets[preset].items() if k in names})
        given = {k: v for k, v in overrides.items() if v is not None}
        foreign = sorted(set(given) - names)
        given = {k: v for k, v in given.items() if k in names}
        if foreign and strict:
            flags = ", ".join("--" + k.replace("_", "-") for k in foreign)
            own = ", ".join("--" + k.replace("_", "-") for k in sorted(names)) or "none"
            raise UsageError(f"{flags} does not apply to method {cls.name!r} (its options: {own})")
        values.update(given)
        return cls.Options(**values)

    def score(self, table: dict[str, Any], options: Any, k: int | None = None) -> np.ndarray:
        """One float per row of ``table`` (NaN where undefined); higher = more worth selecting. ``table``: column
        name -> numpy array (scalars, NaN for null) or list (list columns), with non-ok rows blanked; ``k``: how
        many samples the selection keeps (None: unknown), for methods whose choice is a set."""
        raise NotImplementedError

    def extra_columns(self, settings: MeasureSettings) -> dict[str, pa.DataType]:
        """Columns stored beside ``columns`` only under some measurement settings (default none)."""
        return {}

    def required_columns(self, options: Any) -> tuple[str, ...]:
        """The stored columns ``score`` reads under ``options``: a run lacking one cannot be ranked by this method.
        Default: every column the method stores."""
        return tuple(self.columns)

    def components(self, table: dict[str, Any], options: Any) -> dict[str, np.ndarray]:
        """Per-sample values reported with a selection (Spearman agreement, export); default: the stored
        ``component_columns``."""
        return {c: np.asarray(table[c], dtype=np.float64) for c in self.component_columns if c in table}

    def notes(self, table: dict[str, Any], options: Any, score: np.ndarray, chosen: np.ndarray,
              k: int | None = None) -> list[str]:
        """Lines for the selection summary; ``chosen``: selected row positions, best first."""
        return []

    @classmethod
    def bench_variants(cls) -> list[BenchVariant]:
        """The settings the long-dependency benchmark evaluates (default: the method's defaults, in the main table)."""
        return [BenchVariant(main=True)]



def merge_requests(a: dict[RowKey, RowRequest], b: dict[RowKey, RowRequest]) -> dict[RowKey, RowRequest]:
    """Union of two request maps; a row asked for with and without attention is run once, with attention."""
    out = dict(a)
    for key, req in b.items():
        if key in out and out[key].ids != req.ids:
            raise ValueError(f"two methods ask for different rows under the same key {key}")
        if key not in out or req.attention:
            out[key] = req
    return out
