"""`gateau score`: measure raw per-sample numbers for the chosen methods and store them, resumably.

load → encode (template, left truncation) → rows requested by the methods (shared rows run once) → one
`RowRunner` per model (length-sorted, token-budget batches) → per-method columns → a Parquet shard per chunk.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
from tqdm import tqdm

from gateau import __version__
from gateau.data import FieldMap, Sample, load_samples
from gateau.measure.aux_models import DEFAULT_EMBED_MODEL, AuxModels, aux_specs
from gateau.measure.runner import RowRequest, RowResult, RowRunner
from gateau.methods import merge_requests, parse_methods
from gateau.methods.base import LONG, SHORT, Measured, MeasureSettings, RowFailure, RowKey, SampleEncoding
from gateau.models import (DEFAULT_MODEL, LoadedModel, load_model, load_tokenizer, model_context_window, resolve_device,
                     resolve_dtype, same_tokenizer)
from gateau.prompt import PromptEncoder, TooLongError
from gateau.status import Status
from gateau.store import BASE_COLUMNS, RunStore, fingerprint

DEFAULT_SHORT_WINDOW = 128
MAX_LENGTH_CAP = 65536


@dataclass
class ScoreConfig:
    """Everything `gateau score` needs. Measurement-relevant fields enter the run's fingerprint."""

    data: str
    out: str
    methods: str = "gateau"
    long_model: str = DEFAULT_MODEL
    short_model: str | None = None
    short_window: int | None = None
    short_rope_theta: float | None = None
    reward_model: str | None = None  # CaR: HF sequence-classification reward model (num_labels=1)
    embed_model: str = DEFAULT_EMBED_MODEL  # CaR: sentence-transformers model; default = packaged MiniLM-L6-v2
    max_length: int | None = None
    template: str = "plain"
    segment_len: int = 128
    max_segments: int | None = None
    seed: int = 0
    limit: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    attn_impl: str = "sdpa"
    token_budget: int = 16384
    chunk_size: int = 16
    fields: FieldMap = field(default_factory=FieldMap)
    overwrite: bool = False
    progress: bool = True

    def measure_settings(self) -> MeasureSettings:
        window = None if self.short_model else (self.short_window or DEFAULT_SHORT_WINDOW)
        return MeasureSettings(short_window=window, segment_len=self.segment_len, max_segments=self.max_segments,
                               seed=self.seed)

    def resolved_max_length(self) -> int:
        """``max_length``, or the long model's context window (at most `MAX_LENGTH_CAP`) when unset."""
        if self.max_length is not None:
            if self.max_length < 16:
                raise ValueError("--max-length must be at least 16 tokens")
            return self.max_length
        return min(model_context_window(self.long_model) or MAX_LENGTH_CAP, MAX_LENGTH_CAP)

    def aux_models(self) -> dict[str, str]:
        """The extra models the chosen methods need ({"reward_model": M, "embed_model": E} for car), checked:
        ValueError saying which flag to pass when one is missing or unusable."""
        needs = {need for m in parse_methods(self.methods) for need in m.aux_models}
        return aux_specs(needs, self.reward_model, self.embed_model)

    def fingerprint_fields(self) -> dict[str, Any]:
        """The settings that change measured numbers (not device, batching or paths)."""
        dev = resolve_device(self.device)
        return {
            "methods": sorted(m.name for m in parse_methods(self.methods)),
            "long_model": self.long_model,
            "short_model": self.short_model,
            "short_rope_theta": self.short_rope_theta,
            "max_length": self.resolved_max_length(),
            "template": self.template,
            "dtype": str(resolve_dtype(self.dtype, dev)),
            "fields": asdict(self.fields),
            **self.aux_models(),
            **asdict(self.measure_settings()),
        }


@dataclass
class ScoreSummary:
    """What a run did: status counts over all samples, samples measured now, tokens and wall time."""

    total: int
    measured_now: int
    skipped_done: int
    statuses: dict[str, int]
    notes: int
    forward_tokens: int
    measure_s: float
    wall_s: float

    def lines(self) -> list[str]:
        rate = self.forward_tokens / self.measure_s if self.measure_s > 0 else 0.0
        out = [f"samples: {self.total} (measured now {self.measured_now}, already done {self.skipped_done})",
               "status: " + ", ".join(f"{k}={v}" for k, v in sorted(self.statuses.items()))]
        if self.notes:
            out.append(f"notes: {self.notes} samples have a note (see the `note` column)")
        if self.forward_tokens:
            out.append(f"model tokens: {self.forward_tokens} in {self.measure_s:.1f} s of measuring "
                       f"({rate:.0f} tok/s)")
        out.append(f"wall time: {self.wall_s:.1f} s (loading included)")
        return out


class Scorer:
    """Loaded models + encoders + runners for one configuration; `score_samples` measures a list of samples."""

    def __init__(self, config: ScoreConfig, long: LoadedModel, short: LoadedModel | None = None):
        self.config = config
        self.settings = config.measure_settings()
        self.methods = parse_methods(config.methods)
        self.long = long
        self.short = short
        measure = config.fingerprint_fields()  # resolved once: it may read model configs and check the reward model
        max_length = measure["max_length"]
        self.long_encoder = PromptEncoder(long.tokenizer, config.template, max_length)
        self.short_encoder = None
        if short is not None and not same_tokenizer(long.tokenizer, short.tokenizer):
            self.short_encoder = PromptEncoder(short.tokenizer, config.template, max_length)
        self.runners: dict[str, RowRunner] = {}
        if long.model is not None:  # None: no chosen method needs the causal LM (tokenizer only)
            self.runners[LONG] = RowRunner(long.model, long.tokenizer.pad_token_id, config.token_budget)
        if short is not None:
            self.runners[SHORT] = RowRunner(short.model, short.tokenizer.pad_token_id, config.token_budget)
        self.fp = fingerprint(measure)
        self.aux = AuxModels(measure.get("reward_model"), measure.get("embed_model"), long.device,
                             resolve_dtype(config.dtype, long.device), config.token_budget)

    @property
    def forward_tokens(self) -> int:
        return sum(r.forward_tokens for r in self.runners.values())

    def encode(self, sample: Sample) -> SampleEncoding:
        enc = self.long_encoder.encode(sample)
        short = self.short_encoder.encode(sample) if self.short_encoder else enc
        return SampleEncoding(long=enc, short=short, alone=self.long_encoder.response_alone(enc))

    def plan(self, sample: Sample, row: dict[str, Any]) -> tuple[SampleEncoding, dict[RowKey, RowRequest]] | None:
        """Encode ``sample`` and collect the rows its methods need; None (status recorded in ``row``) if it cannot
        be measured."""
        if not sample.ok:
            return None
        try:
            enc = self.encode(sample)
        except TooLongError as exc:
            row.update(status=exc.status, error=str(exc))
            return None
        row.update(n_context=len(enc.long.context) + enc.long.truncated, n_truncated=enc.long.truncated,
                   n_response=len(enc.long.response), n_instruction=len(enc.long.middle))
        reqs: dict[RowKey, RowRequest] = {}
        for method in self.methods:
            reqs = merge_requests(reqs, method.requests(enc, self.settings))
        return enc, reqs

    def score_samples(self, samples: list[Sample], progress: Callable[[float], None] | None = None
                      ) -> list[dict[str, Any]]:
        """One output row (dict) per sample, in the order given. Never raises for a per-sample problem.

        ``progress(k)`` is called as work finishes, with k in samples (fractions while rows of a chunk run)."""
        rows = [base_row(s, self.fp) for s in samples]
        plans = {i: plan for i, s in enumerate(samples) if (plan := self.plan(s, rows[i])) is not None}
        planned = sum(len(r.ids) for _, reqs in plans.values() for r in reqs.values())
        per_token = len(plans) / planned if planned else 0.0
        results = self._run(plans, (lambda tokens: progress(tokens * per_token)) if progress else None)
        for i, (enc, _) in plans.items():
            for method in self.methods:
                try:
                    _record(rows[i], method.measure(enc, results[i], self.settings))
                except RowFailure as exc:
                    rows[i].update(status=Status.OOM, error=str(exc))
                    break
        for method in self.methods:  # the hook for extra models (CaR), once per chunk
            live = [i for i in plans if rows[i]["status"] == Status.OK]
            batch = method.measure_samples([samples[i] for i in live], [plans[i][0] for i in live], self.settings,
                                           self.aux) if live else None
            for i, measured in zip(live, batch or []):
                _record(rows[i], measured)
        return rows

    def _run(self, plans: dict[int, tuple[SampleEncoding, dict[RowKey, RowRequest]]],
             advance: Callable[[int], None] | None) -> dict[int, dict[RowKey, RowResult]]:
        results: dict[int, dict[RowKey, RowResult]] = {i: {} for i in plans}
        for role, runner in self.runners.items():
            owners = [(i, key) for i, (_, reqs) in plans.items() for key in reqs if key.role == role]
            requests = [plans[i][1][key] for i, key in owners]
            if not requests:
                continue
            done = (lambda _rows, tokens: advance(tokens)) if advance else None
            for (i, key), res in zip(owners, runner.run(requests, done)):
                results[i][key] = res
        return results


def _record(row: dict[str, Any], measured: Measured) -> None:
    """Merge a method's measurement into the output row (an error turns the row into a retryable failure)."""
    if measured.error:
        row.update(status=Status.OOM, error=measured.error)
        return
    row.update(measured.columns)
    if measured.note:
        row["note"] = "; ".join(n for n in (row["note"], measured.note) if n)


def output_schema(config: ScoreConfig) -> pa.Schema:
    columns = dict(BASE_COLUMNS)
    for method in parse_methods(config.methods):
        columns.update(method.columns)
    return pa.schema(list(columns.items()))


def load_models(config: ScoreConfig) -> tuple[LoadedModel, LoadedModel | None]:
    """The long model and, in pair mode, the short one (with the optional RoPE-base override). When no chosen
    method needs the causal LM (length, random, car), only the long model's tokenizer is loaded (for token counts)."""
    if not any(m.uses_model for m in parse_methods(config.methods)):
        return LoadedModel(model=None, tokenizer=load_tokenizer(config.long_model), spec=config.long_model,
                           device=resolve_device(config.device)), None
    long = load_model(config.long_model, device=config.device, dtype=config.dtype, attn_impl=config.attn_impl)
    short = None
    if config.short_model:
        short = load_model(config.short_model, device=config.device, dtype=config.dtype, attn_impl=config.attn_impl,
                           rope_theta=config.short_rope_theta)
    window, max_length = long.context_window, config.resolved_max_length()
    if window is not None and max_length > window:
        print(f"gateau: note: --max-length {max_length} exceeds the long model's context window {window}; "
              "longer samples are scored beyond it", file=sys.stderr)
    return long, short


def run_score(config: ScoreConfig, models: tuple[LoadedModel, LoadedModel | None] | None = None) -> ScoreSummary:
    """Score ``config.data`` into ``config.out``; resumes an interrupted run with the same settings."""
    start = time.perf_counter()
    samples = load_samples(config.data, config.fields, config.limit)
    store = RunStore(config.out)
    measure = config.fingerprint_fields()
    fp = fingerprint(measure)
    data_path = Path(config.data)
    data = str(data_path.resolve()) if data_path.exists() else str(config.data)
    store.open({"gateau_version": __version__, "data": data, "fingerprint": fp, "measure": measure,
                "run": {k: v for k, v in asdict(config).items() if k not in ("fields", "progress")}},
               overwrite=config.overwrite)
    done = store.done_ids(fp)
    todo = [s for s in samples if s.id not in done]
    scorer = None
    if any(s.ok for s in todo):
        scorer = Scorer(config, *(models or load_models(config)))
    bar = tqdm(total=len(todo), unit="sample", desc="scoring", disable=not config.progress or not todo,
               dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}{postfix}]")
    schema = output_schema(config)
    measure_start = time.perf_counter()
    with bar:
        for lo in range(0, len(todo), config.chunk_size):
            chunk = todo[lo: lo + config.chunk_size]
            rows = scorer.score_samples(chunk, bar.update) if scorer else [base_row(s, fp) for s in chunk]
            store.write_shard(rows, schema)
            bar.n = lo + len(chunk)  # exact count once the chunk is stored
            if scorer and scorer.forward_tokens:
                bar.set_postfix(tok_s=f"{scorer.forward_tokens / (time.perf_counter() - measure_start):.0f}")
            bar.refresh()
    measure_s = time.perf_counter() - measure_start
    table = store.consolidate()
    statuses = Counter(table.column("status").to_pylist())
    notes = sum(1 for n in table.column("note").to_pylist() if n)
    return ScoreSummary(total=len(samples), measured_now=len(todo), skipped_done=len(samples) - len(todo),
                        statuses=dict(statuses), notes=notes,
                        forward_tokens=scorer.forward_tokens if scorer else 0, measure_s=measure_s,
                        wall_s=time.perf_counter() - start)


def base_row(sample: Sample, fp: str) -> dict[str, Any]:
    """The columns every output row has, before any measurement (status from loading)."""
    return {"index": sample.index, "id": sample.id, "status": sample.status, "error": sample.error, "note": "",
            "fingerprint": fp}
