"""Typed settings: one frozen dataclass per concern, each default written once.

``ScoreConfig`` groups `DataConfig` (what to read), `ModelConfig` (which models, how loaded), `MeasureConfig`
(what is measured) and `ExecutionConfig` (how the work is scheduled). The CLI maps flags onto these, the Python
API takes them (or flat keyword arguments through `ScoreConfig.from_flat`), and ``RUN/config.json`` is their
serialisation (`ScoreConfig.to_dict` / `from_dict`). Selection settings are `SelectConfig`; each method's own
options are a dataclass declared in its module (`gateau.methods`).

Field names are unique across the sections, so a flat ``name=value`` always names one field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from dataclasses import fields as dataclass_fields
from typing import Any

from .templates import TEMPLATES

LAST_SEGMENT = ("drop", "keep")
EXECUTORS = ("local", "ray")
PACKING = ("auto", "on", "off")
MAX_LENGTH_CAP = 65536  # the paper's maximum length; also the cap of a model's window used as the default
# CAM's content-free response (`MeasureConfig.neutral_response`): its attention profile on the same context
# calibrates the real response's profile (position bias: sinks, recency).
NEUTRAL_RESPONSE = "I have read the text above."


def _positive(owner: str, **values: int | float | None) -> None:
    """ValueError naming the first value that is set but not > 0."""
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ValueError(f"{owner}: --{name.replace('_', '-')} must be positive, got {value}")


@dataclass(frozen=True)
class FieldMap:
    """How records map onto (context, instruction, response). ``shape`` forces a record shape (auto-detected per
    record when None); the other fields rename keys; ``splitter``: in chat shapes the instruction is the text of
    the last user turn after the last splitter."""

    shape: str | None = None
    id_field: str = "id"
    context: str = "context"
    instruction: str = "instruction"
    response: str = "response"
    splitter: str = "\n\n"


@dataclass(frozen=True)
class DataConfig:
    """The input: a JSON/JSONL/Parquet file or a HuggingFace dataset; ``limit``: only the first N records."""

    path: str
    fields: FieldMap = field(default_factory=FieldMap)
    limit: int | None = None

    def __post_init__(self) -> None:
        _positive("data", limit=self.limit)


@dataclass(frozen=True)
class ModelConfig:
    """Model B (``long_model``) and model A: a separate ``short_model`` (pair mode), or model B restricted to the
    last ``short_window`` context tokens (window mode, when ``short_model`` is None). ``short_rope_theta``
    overrides model A's RoPE base (the paper widens it x200). ``reward_model``/``embed_model``: CaR's extra models.
    ``dtype`` auto = bf16 on CUDA, fp32 on CPU; ``device`` auto = cuda if available."""

    long_model: str = "default"
    short_model: str | None = None
    short_window: int = 128
    short_rope_theta: float | None = None
    reward_model: str | None = None
    embed_model: str = "default"
    dtype: str = "auto"
    device: str = "auto"
    attn_impl: str = "sdpa"

    def __post_init__(self) -> None:
        _positive("models", short_window=self.short_window, short_rope_theta=self.short_rope_theta)

    @property
    def window(self) -> int | None:
        """The short window in tokens in window mode, None in pair mode."""
        return None if self.short_model else self.short_window


@dataclass(frozen=True)
class MeasureConfig:
    """What is measured per sample. ``max_length`` in tokens (None: the long model's window, at most
    `MAX_LENGTH_CAP`); longer samples lose context tokens from the left. ``segment_len``: CAM's L in tokens;
    ``last_segment``: ``drop`` a shorter last segment (the paper, the official script) or ``keep`` it;
    ``max_segments``: an order-preserving seeded subsample of segments (None: all). ``neutral_response``: a
    content-free response (e.g. `NEUTRAL_RESPONSE`) whose attention profile on the same context is measured in one
    extra attention pass per sample, so CAM can calibrate the real profile at select time (None: not measured).
    ``cam_top``: the CAM cascade's fraction F: HMG on every sample, CAM's segment rows only on the top F by HMG
    (1: every sample, no cascade; see `gateau.pipeline.cascade`)."""

    methods: tuple[str, ...] = ("gateau",)
    max_length: int | None = None
    template: str = "plain"
    segment_len: int = 128
    last_segment: str = "drop"
    max_segments: int | None = None
    seed: int = 0
    neutral_response: str | None = None
    cam_top: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.cam_top <= 1:
            raise ValueError(f"--cam-top must be in (0, 1], got {self.cam_top}")
        if self.neutral_response is not None and not self.neutral_response.strip():
            raise ValueError("--neutral-response is empty")
        if not self.methods:
            raise ValueError("--methods is empty")
        if self.last_segment not in LAST_SEGMENT:
            raise ValueError(f"unknown --last-segment {self.last_segment!r}; choose one of {LAST_SEGMENT}")
        if self.template not in TEMPLATES:
            raise ValueError(f"unknown --template {self.template!r}; choose one of {TEMPLATES}")
        _positive("measure", segment_len=self.segment_len, max_segments=self.max_segments)
        if self.max_length is not None and self.max_length < 16:
            raise ValueError("--max-length must be at least 16 tokens")


@dataclass(frozen=True)
class ExecutionConfig:
    """How the work is scheduled; never changes a measured number. ``token_budget``: padded tokens per forward
    pass; ``chunk_size``: samples per stored chunk (the unit of resume and of work handed to a worker); ``pack``:
    pack rows without attention into unpadded sequences (``auto``: with a flash-attention implementation);
    ``workers``/``gpus_per_worker``/``ray_address``: the Ray executor (no address: a local Ray instance)."""

    executor: str = "local"
    workers: int = 1
    gpus_per_worker: float = 0.0
    ray_address: str | None = None
    token_budget: int = 16384
    chunk_size: int = 16
    pack: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.pack not in PACKING:
            raise ValueError(f"unknown --pack {self.pack!r}; choose one of {PACKING}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown --executor {self.executor!r}; choose one of {EXECUTORS}")
        _positive("execution", workers=self.workers, token_budget=self.token_budget, chunk_size=self.chunk_size)
        if self.gpus_per_worker < 0:
            raise ValueError("--gpus-per-worker must be >= 0")


_SECTIONS = {"data": DataConfig, "models": ModelConfig, "measure": MeasureConfig, "execution": ExecutionConfig}


@dataclass(frozen=True)
class ScoreConfig:
    """Everything `gateau score` needs; ``out`` is the run directory."""

    data: DataConfig
    out: str
    models: ModelConfig = field(default_factory=ModelConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    overwrite: bool = False
    repair: bool = False  # set damaged chunks aside and score their samples again
    # internal: which phase of a CAM cascade (`MeasureConfig.cam_top` < 1) the executors run: "hmg" (every row
    # but CAM's segments) or "cam" (the top samples' complete rows); None outside a cascade
    cascade_phase: str | None = None

    @classmethod
    def from_flat(cls, data: str, out: str, overwrite: bool = False, fields: FieldMap | None = None,
                  repair: bool = False, **values: Any) -> ScoreConfig:
        """Build from flat ``name=value`` pairs (each name is a field of exactly one section; None = default).
        ``methods`` may be a comma-separated string. TypeError names an unknown field."""
        given = {k: v for k, v in values.items() if v is not None}
        if isinstance(given.get("methods"), str):
            given["methods"] = parse_names(given["methods"])
        parts: dict[str, Any] = {}
        for name, section in _SECTIONS.items():
            names = {f.name for f in dataclass_fields(section)} - {"path"}
            mine = {k: given.pop(k) for k in list(given) if k in names}
            if name == "data":
                mine.update(path=str(data), **({"fields": fields} if fields is not None else {}))
            parts[name] = section(**mine)
        if given:
            raise TypeError(f"unknown settings: {sorted(given)}")
        return cls(out=str(out), overwrite=overwrite, repair=repair, **parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> ScoreConfig:
        data = dict(payload["data"])
        data["fields"] = FieldMap(**data.get("fields", {}))
        measure = dict(payload.get("measure", {}))
        measure["methods"] = tuple(measure.get("methods", MeasureConfig.methods))
        return cls(data=DataConfig(**data), out=payload["out"], models=ModelConfig(**payload.get("models", {})),
                   measure=MeasureConfig(**measure), execution=ExecutionConfig(**payload.get("execution", {})),
                   overwrite=bool(payload.get("overwrite", False)), repair=bool(payload.get("repair", False)),
                   cascade_phase=payload.get("cascade_phase"))

    def with_execution(self, **changes: Any) -> ScoreConfig:
        return replace(self, execution=replace(self.execution, **changes))


@dataclass(frozen=True)
class SelectConfig:
    """What `gateau select` keeps: the top ``ratio`` of all samples or the top ``count``, ranked by ``method``
    with ``options`` (an instance of that method's options dataclass; None: its defaults)."""

    method: str = "gateau"
    ratio: float | None = None
    count: int | None = None
    options: Any = None

    def __post_init__(self) -> None:
        if (self.ratio is None) == (self.count is None):
            raise ValueError("give exactly one of --ratio and --count")
        if self.ratio is not None and not 0 < self.ratio <= 1:
            raise ValueError(f"--ratio must be in (0, 1], got {self.ratio}")
        _positive("select", count=self.count)

    def keep(self, n: int) -> int:
        """How many of ``n`` samples to keep (ratio: ceil(ratio * n), at least 1; count: as given)."""
        if self.count is not None:
            return self.count
        return n if self.ratio == 1 else max(1, math.ceil(self.ratio * n - 1e-9))


def parse_names(spec: str) -> tuple[str, ...]:
    """Comma-separated names -> a tuple (blanks and duplicates removed, order kept)."""
    return tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
