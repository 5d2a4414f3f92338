"""`gateau plan`: the rows and model tokens a `gateau score` run will send through its models, before any forward.

Loads only the tokenizer(s) and builds the rows with the scorer's own code: the same chunks (`plan_chunks`), the same
encoding and method requests (`Scorer.plan`), the same grouping by model (`role_requests`) and the same batches and
padding (`gateau.measure.batching`). So the plan's ``total_tokens`` equals the ``forward_tokens`` that `gateau score`
records in ``RUN/history.jsonl`` for a fresh run of the same data and settings, padding included (unless a batch
runs out of memory and is split, which pads differently).

Rows are counted per pass kind (full, window, segments, neutral, direct answer, short model) with the tokens as
run (padded to their batch's width, or their own length when packed), and per method (the rows it asks for,
unpadded; rows shared between methods, like the long model's full pass, count in each). Extra models (CaR's
reward model and embedder) run one row per measurable sample; their tokens are not model tokens of the causal LMs
and are not in ``total_tokens``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from ..config import ScoreConfig
from ..data import Sample, SampleReader, SampleRef, index_samples, source_of
from ..measure.batching import MAX_PAD_FRACTION, batch_tokens, batches, is_packed
from ..measure.rows import SHORT, RowKey
from ..methods.base import SampleEncoding
from ..models import LoadedModel, load_tokenizer, resolve_device
from ..status import Status
from .run_plan import plan_chunks
from .scorer import Scorer, base_row, role_requests

PASS_KINDS = ("full", "window", "segments", "neutral", "direct answer", "short model", "reward", "embedding")


def pass_kind(key: RowKey) -> str:
    """The pass kind of a row key (the kinds the methods name their rows by: ``full``, ``window<W>``, ``seg<i>``,
    ``neutral``, ``alone``; any row of model A in pair mode is ``short model``)."""
    if key.role == SHORT:
        return "short model"
    for prefix, kind in (("window", "window"), ("seg", "segments"), ("neutral", "neutral"), ("alone", "direct answer")):
        if key.kind.startswith(prefix):
            return kind
    return key.kind


@dataclass
class PassCount:
    """Rows of one kind, the tokens they send through the model (padded as run, or unpadded for a method's own
    count) and the longest row in tokens."""

    rows: int = 0
    tokens: int = 0
    longest: int = 0

    def add(self, rows: int, tokens: int, longest: int) -> None:
        self.rows += rows
        self.tokens += tokens
        self.longest = max(self.longest, longest)


@dataclass
class TokenPlan:
    """What a run will measure. ``passes``: by pass kind, tokens as run (padded); ``methods``: per method, the
    rows it requests, unpadded, shared rows counted in each; ``batches``: forward passes per model role, each
    (rows, width in tokens, tokens sent, with attention probe); ``statuses``: samples by the status they get before any forward (ok = measured)."""

    samples: int
    statuses: dict[str, int]
    passes: dict[str, PassCount] = field(default_factory=dict)
    methods: dict[str, PassCount] = field(default_factory=dict)
    batches: dict[str, list[tuple[int, int, int, bool]]] = field(default_factory=dict)
    cascade: dict[str, Any] | None = None  # a cascade's phase totals and bounds (`plan_cascade`)

    @property
    def total_tokens(self) -> int:
        """Model tokens of the causal LMs, padding included: what `gateau score` records as forward_tokens."""
        return sum(p.tokens for kind, p in self.passes.items() if kind not in ("reward", "embedding"))

    @property
    def total_rows(self) -> int:
        return sum(p.rows for kind, p in self.passes.items() if kind not in ("reward", "embedding"))

    @property
    def longest_row(self) -> int:
        return max((p.longest for p in self.passes.values()), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "statuses": self.statuses, "total_tokens": self.total_tokens,
                "total_rows": self.total_rows, "longest_row": self.longest_row,
                "passes": {k: asdict(v) for k, v in self.passes.items()},
                "methods": {k: asdict(v) for k, v in self.methods.items()},
                **({"cascade": self.cascade} if self.cascade else {})}


def planning_scorer(config: ScoreConfig) -> Scorer:
    """A `Scorer` with the run's tokenizers and no weights: it encodes and plans rows but runs none."""
    device = resolve_device(config.models.device)
    long = LoadedModel(model=None, tokenizer=load_tokenizer(config.models.long_model, config.models.hub), spec=config.models.long_model,
                       device=device)
    short = None
    if config.models.short_model:
        short = LoadedModel(model=None, tokenizer=load_tokenizer(config.models.short_model, config.models.hub),
                            spec=config.models.short_model, device=device)
    return Scorer(config, long, short)


def plan_tokens(config: ScoreConfig, scorer: Scorer | None = None) -> TokenPlan:
    """The rows and tokens of a fresh `gateau score` run of ``config`` (every sample of its data, indexed first and
    read chunk by chunk, as the run reads them). A cascade (``cam_top`` < 1) is planned as its two phases: HMG's
    exactly, CAM's as bounds (`plan_cascade`)."""
    index = index_samples(source_of(config.data), config.data.fields, config.data.limit)
    reader = index.reader()
    try:
        if config.measure.cam_top < 1:
            return plan_cascade(config, index.refs, reader, scorer)
        scorer = scorer or planning_scorer(config)
        plan = TokenPlan(samples=len(index.refs), statuses={})
        add_chunks(plan, scorer, plan_chunks(index.refs, config.execution.chunk_size), reader.read)
        return plan
    finally:
        reader.close()


def plan_cascade(config: ScoreConfig, samples: list[SampleRef], reader: SampleReader,
                 scorer: Scorer | None = None) -> TokenPlan:
    """A cascade's plan: phase 1 (every row but CAM's segment rows, for every sample) exactly; phase 2 (the segment
    rows, and neutral rows, of the top k = ceil(F × n_ok) samples by HMG) is not known before HMG is measured, so
    it is bounded over every possible top set of k samples: at least the k smallest sums of their rows' own
    lengths, at most the k largest sums of each row's widest possible batch (`padded_width_bound`). The passes and
    ``total_tokens`` are phase 1 plus that upper bound (the k samples it counts, at their bound); `gateau score`
    records phase 1 + the exact phase 2 of the top set it finds (`cascade_phase2`), within the bounds."""
    from .cascade import check_cascade, top_count

    check_cascade(config)
    first = scorer or planning_scorer(replace(config, cascade_phase="hmg"))
    second = Scorer(replace(config, cascade_phase="cam"), first.long, first.short)
    plan = TokenPlan(samples=len(samples), statuses={})
    rows = []  # per ok sample: (its phase-2 rows as (pass kind, length, attention), input index)

    def phase2_rows(sample: Sample, enc: SampleEncoding) -> None:  # from phase 1's encoding: each sample encoded once
        rows.append(([(pass_kind(key), len(req.ids), req.attention) for key, req in second.requests(enc).items()],
                     sample.index))

    add_chunks(plan, first, plan_chunks(samples, config.execution.chunk_size), reader.read, phase2_rows)
    phase1 = plan.total_tokens
    longest = max((n for sample_rows, _ in rows for _, n, _ in sample_rows), default=0)
    pack = second.pack

    def bound(sample_rows: list[tuple[str, int, bool]]) -> list[int]:
        return [n if pack and not attention else padded_width_bound(n, longest) for _, n, attention in sample_rows]

    k = top_count(config.measure.cam_top, len(rows))
    own = sorted(sum(n for _, n, _ in r) for r, _ in rows)
    worst = sorted(rows, key=lambda item: (sum(bound(item[0])), item[1]))[len(rows) - k:]
    for sample_rows, _ in worst:
        for (kind, n, _), width in zip(sample_rows, bound(sample_rows)):
            plan.passes.setdefault(kind, PassCount()).add(1, width, n)
    plan.passes = {kind: plan.passes[kind] for kind in sorted(plan.passes, key=_kind_order)}
    plan.cascade = {"cam_top": config.measure.cam_top, "top_samples": k, "phase1_tokens": phase1,
                    "phase2_tokens_min": sum(own[:k]), "phase2_tokens_max": sum(sum(bound(r)) for r, _ in worst)}
    return plan


def padded_width_bound(length: int, longest: int) -> int:
    """The widest batch a row of ``length`` tokens can be padded to (`gateau.measure.batching.batches`): a row
    joins a batch only if length ≥ (1 − `MAX_PAD_FRACTION`) × the batch's width, and no batch is wider than the
    ``longest`` row there is."""
    width = min(int(length / (1 - MAX_PAD_FRACTION)) + 1, longest)
    while width > length and length < (1 - MAX_PAD_FRACTION) * width:  # the batcher's own float test
        width -= 1
    return max(width, length)


def cascade_phase2(config: ScoreConfig, samples: list[Sample] | list[SampleRef], top: list[str],
                   scorer: Scorer | None = None, read: Callable[[list[SampleRef]], list[Sample]] | None = None
                   ) -> TokenPlan:
    """The rows and tokens of a cascade's phase 2 (``cam``) for the top set ``top`` (ids): exactly what `gateau
    score --cam-top` runs once HMG has chosen ``top`` in a fresh run (the same chunks and batches)."""
    first = scorer or planning_scorer(config)
    second = Scorer(replace(config, cascade_phase="cam"), first.long, first.short)
    chosen = set(top)
    plan = TokenPlan(samples=len(chosen), statuses={})
    add_chunks(plan, second, plan_chunks([s for s in samples if s.id in chosen], config.execution.chunk_size), read)
    return plan


def add_chunks(plan: TokenPlan, scorer: Scorer, chunks: list[list[Sample]] | list[list[SampleRef]],
               read: Callable[[list[SampleRef]], list[Sample]] | None = None,
               encoded: Callable[[Sample, SampleEncoding], None] | None = None) -> None:
    """Add the rows and batches of ``chunks``, planned by ``scorer`` exactly as `Scorer.score_batch` runs them
    (chunks of refs: each read by ``read`` just before it is planned); ``encoded(sample, encoding)`` is called
    for every measurable sample."""
    statuses: Counter[str] = Counter(plan.statuses)
    aux = sorted({need for m in scorer.methods for need in m.aux_models})
    token_budget = scorer.config.execution.token_budget
    for chunk in chunks:
        chunk = read(chunk) if read else chunk
        rows = [base_row(s, scorer.fp) for s in chunk]
        plans = scorer.plan_many(chunk, rows)
        statuses.update(row["status"] for row in rows)
        for i, (enc, _) in plans.items() if encoded is not None else ():
            encoded(chunk[i], enc)
        for i, (enc, _) in plans.items():
            for method in scorer.methods:
                for key, req in method.requests(enc, scorer.settings).items():
                    plan.methods.setdefault(method.name, PassCount()).add(1, len(req.ids), len(req.ids))
        for role, (owners, requests) in role_requests(plans).items():
            for batch in batches(requests, token_budget, scorer.pack):
                reqs = [requests[j] for j in batch]
                width, packed = max(len(r.ids) for r in reqs), is_packed(reqs, scorer.pack)
                plan.batches.setdefault(role, []).append((len(reqs), width, batch_tokens(reqs, scorer.pack),
                                                           reqs[0].attention))
                for j, req in zip(batch, reqs):  # each row's share of the batch: its own length packed, else the width
                    share = len(req.ids) if packed else width
                    plan.passes.setdefault(pass_kind(owners[j][1]), PassCount()).add(1, share, len(req.ids))
        ok = sum(1 for row in rows if row["status"] == Status.OK)
        for need in aux:
            plan.passes.setdefault({"reward": "reward", "embed": "embedding"}[need], PassCount()).add(ok, 0, 0)
    plan.statuses = dict(statuses)
    plan.passes = {k: plan.passes[k] for k in sorted(plan.passes, key=_kind_order)}


def _kind_order(kind: str) -> int:
    return PASS_KINDS.index(kind) if kind in PASS_KINDS else len(PASS_KINDS)
