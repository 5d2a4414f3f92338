"""The pure scoring step: loaded models + settings map a batch of samples to stored rows.

encode (template, left truncation) → the rows the methods request (shared rows run once) → one `RowRunner` per
model (length-sorted, token-budget batches) → per-method columns. A `Scorer` knows nothing about files, progress
bars, resume or scheduling: executors (`gateau.pipeline.executors`: local, ray, shard) drive it and the
store (`gateau.store`) keeps what it returns.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from typing import Any, Callable

import pyarrow as pa

from ..config import MAX_LENGTH_CAP, ModelConfig, ScoreConfig
from ..data import Sample, SampleRef
from ..measure.aux_models import AuxModels, aux_specs
from ..hub import is_hub_id
from ..measure.rows import EMBED, LONG, REWARD, SHORT, RowKey, RowRequest, RowResult
from ..measure.runner import RowRunner
from ..methods import merge_requests, parse_methods
from ..methods.base import Measured, MeasureSettings, RowFailure, SampleEncoding
from ..methods.cam import phase_methods
from ..models import (LoadedModel, load_model, load_tokenizer, model_context_window, resolve_device, resolve_dtype,
                      same_tokenizer)
from ..prompt import EncodeError, PromptEncoder
from ..status import Status
from ..store import BASE_COLUMNS, fingerprint

Models = tuple[LoadedModel, LoadedModel | None]


def resolved_max_length(config: ScoreConfig) -> int:
    """``measure.max_length``, or the long model's context window (at most `MAX_LENGTH_CAP`) when unset."""
    if config.measure.max_length is not None:
        return config.measure.max_length
    return min(model_context_window(config.models.long_model, config.models.hub) or MAX_LENGTH_CAP, MAX_LENGTH_CAP)


def measurement_fields(config: ScoreConfig) -> dict[str, Any]:
    """The resolved settings that change measured numbers (not device, batching, executor or paths): the run's
    settings fingerprint is their hash. Reads the long model's config and checks CaR's reward model."""
    m, models = config.measure, config.models
    methods = parse_methods(m.methods)
    needs = {need for method in methods for need in method.aux_models}
    settings = MeasureSettings.from_config(config)
    return {
        "methods": sorted(method.name for method in methods),
        "long_model": models.long_model,
        "short_model": models.short_model,
        "short_rope_theta": models.short_rope_theta,
        "max_length": resolved_max_length(config),
        "template": m.template,
        "dtype": str(resolve_dtype(models.dtype, resolve_device(models.device))),
        "fields": asdict(config.data.fields),
        **aux_specs(needs, models.reward_model, models.embed_model, models.hub),
        **settings.fingerprinted(),
        **revision_field(models, needs),
    }


def revision_field(models: ModelConfig, needs: set[str]) -> dict[str, str]:
    """``{"revision": R}`` when ``--revision R`` is set and reaches a hub model of the run (it then chooses the
    weights, so it enters the fingerprint); {} otherwise, so runs without it keep their fingerprint. Local folders
    ignore it. ``trust_remote_code`` never enters: it lets code run, it does not choose weights."""
    loaded = [models.long_model, models.short_model]
    loaded += [models.reward_model] if REWARD in needs else []
    loaded += [models.embed_model] if EMBED in needs else []
    return {"revision": models.revision} if models.revision is not None and any(map(is_hub_id, loaded)) else {}


def output_schema(config: ScoreConfig) -> pa.Schema:
    columns = dict(BASE_COLUMNS)
    settings = MeasureSettings.from_config(config)
    for method in parse_methods(config.measure.methods):
        columns.update(method.columns)
        columns.update(method.extra_columns(settings))
    return pa.schema(list(columns.items()))


def base_row(sample: Sample | SampleRef, fp: str) -> dict[str, Any]:
    """The columns every output row has, before any measurement (status from loading)."""
    return {"index": sample.index, "id": sample.id, "status": sample.status.value, "error": sample.error,
            "note": "", "content_hash": sample.content_hash, "fingerprint": fp}


def load_models(config: ScoreConfig) -> Models:
    """The long model and, in pair mode, the short one (with the optional RoPE-base override). When no chosen
    method needs the causal LM (length, random, car), only the long model's tokenizer is loaded (for token counts)."""
    models = config.models
    if not any(m.uses_model for m in parse_methods(config.measure.methods)):
        return LoadedModel(model=None, tokenizer=load_tokenizer(models.long_model, models.hub), spec=models.long_model,
                           device=resolve_device(models.device)), None
    kwargs = dict(device=models.device, dtype=models.dtype, attn_impl=models.attn_impl,
                  progress=config.execution.progress, hub=models.hub)
    long = load_model(models.long_model, **kwargs)
    short = load_model(models.short_model, rope_theta=models.short_rope_theta, **kwargs) if models.short_model else None
    window, max_length = long.context_window, resolved_max_length(config)
    if window is not None and max_length > window:
        print(f"gateau: note: --max-length {max_length} exceeds the long model's context window {window}; "
              "longer samples are scored beyond it", file=sys.stderr)
    return long, short


class Scorer:
    """Loaded models + encoders + runners for one configuration; `score_batch` measures a list of samples."""

    def __init__(self, config: ScoreConfig, long: LoadedModel, short: LoadedModel | None = None,
                 measure: dict[str, Any] | None = None, fp: str | None = None):
        """``measure``/``fp``: the plan's resolved measurement settings and their fingerprint (resolved here when
        not given)."""
        self.config = config
        self.settings = MeasureSettings.from_config(config)
        self.methods = phase_methods(parse_methods(config.measure.methods), self.settings)
        self.long = long
        self.short = short
        if measure is None:  # resolved once: it may read model configs and check the reward model
            measure = measurement_fields(config)
        max_length = measure["max_length"]
        template = config.measure.template
        self.long_encoder = PromptEncoder(long.tokenizer, template, max_length)
        self.short_encoder = None
        if short is not None and not same_tokenizer(long.tokenizer, short.tokenizer):
            self.short_encoder = PromptEncoder(short.tokenizer, template, max_length)
        budget = config.execution.token_budget
        self.pack = pack = config.execution.pack == "on" or (config.execution.pack == "auto"
                                                             and "flash" in config.models.attn_impl)
        self.runners: dict[str, RowRunner] = {}
        # model None: tokenizer only (no chosen method needs the causal LM, or `gateau plan`, which runs nothing)
        if long.model is not None:
            self.runners[LONG] = RowRunner(long.model, long.tokenizer.pad_token_id, budget, pack=pack)
        if short is not None and short.model is not None:
            self.runners[SHORT] = RowRunner(short.model, short.tokenizer.pad_token_id, budget, pack=pack)
        self.fp = fp or fingerprint(measure)
        self.aux = AuxModels(measure.get("reward_model"), measure.get("embed_model"), long.device,
                             resolve_dtype(config.models.dtype, long.device), budget, hub=config.models.hub)

    @property
    def forward_tokens(self) -> int:
        """Padded tokens sent through the causal LMs so far (for throughput reports)."""
        return sum(r.forward_tokens for r in self.runners.values())

    def encode(self, sample: Sample) -> SampleEncoding:
        """`encode_many` of one sample; raises its `EncodeError`."""
        enc = self.encode_many([sample])[0]
        if isinstance(enc, EncodeError):
            raise enc
        return enc

    def encode_many(self, samples: list[Sample]) -> list[SampleEncoding | EncodeError]:
        """`encode` of each sample (its `EncodeError` in its place), each tokenizer called once for the batch."""
        longs = self.long_encoder.encode_many(samples)
        shorts = self.short_encoder.encode_many(samples) if self.short_encoder else longs
        alones = self.long_encoder.response_alone_many(samples)
        out: list[SampleEncoding | EncodeError] = []
        for sample, enc, short, alone in zip(samples, longs, shorts, alones):
            error = next((x for x in (enc, short, alone) if isinstance(x, EncodeError)), None)
            out.append(error if error is not None else
                       SampleEncoding(long=enc, short=short, alone=alone, neutral=self._neutral(sample)))
        return out

    def _neutral(self, sample: Sample) -> list[int] | None:
        """The long model's tokens of the content-free response in this sample's response place (tokenised with
        the whole text, like every row), or None when no calibration profile is measured or it cannot be encoded."""
        text = self.settings.neutral_response
        if text is None:
            return None
        try:
            return self.long_encoder.encode(replace(sample, response=text)).response
        except EncodeError:
            return None

    def plan(self, sample: Sample, row: dict[str, Any]) -> tuple[SampleEncoding, dict[RowKey, RowRequest]] | None:
        """Encode ``sample`` and collect the rows its methods need; None (status recorded in ``row``) if it cannot
        be measured."""
        return self.plan_many([sample], [row]).get(0)

    def plan_many(self, samples: list[Sample], rows: list[dict[str, Any]]
                  ) -> dict[int, tuple[SampleEncoding, dict[RowKey, RowRequest]]]:
        """Encode the samples (one batched tokenisation) and collect the rows each one's methods need, by position;
        a sample that cannot be measured is left out, its status recorded in its ``rows`` entry."""
        live = [i for i, s in enumerate(samples) if s.ok]
        plans = {}
        for i, enc in zip(live, self.encode_many([samples[i] for i in live])):
            if isinstance(enc, EncodeError):
                rows[i].update(status=enc.status.value, error=str(enc))
                continue
            rows[i].update(n_context=len(enc.long.context) + enc.long.truncated, n_truncated=enc.long.truncated,
                           n_response=len(enc.long.response), n_instruction=len(enc.long.middle))
            plans[i] = (enc, self.requests(enc))
        return plans

    def requests(self, enc: SampleEncoding) -> dict[RowKey, RowRequest]:
        """The rows the methods need for the encoded sample ``enc`` (rows shared between methods once)."""
        reqs: dict[RowKey, RowRequest] = {}
        for method in self.methods:
            reqs = merge_requests(reqs, method.requests(enc, self.settings))
        return reqs

    def score_batch(self, samples: list[Sample], progress: Callable[[float], None] | None = None
                    ) -> list[dict[str, Any]]:
        """One output row (dict) per sample, in the order given. Never raises for a per-sample problem.

        ``progress(k)`` is called as work finishes, with k in samples (fractions while rows of a batch run)."""
        rows = [base_row(s, self.fp) for s in samples]
        plans = self.plan_many(samples, rows)
        planned = sum(len(r.ids) for _, reqs in plans.values() for r in reqs.values())
        per_token = len(plans) / planned if planned else 0.0
        results = self._run(plans, (lambda tokens: progress(tokens * per_token)) if progress else None)
        for i, (enc, _) in plans.items():
            for method in self.methods:
                try:
                    _record(rows[i], method.measure(enc, results[i], self.settings))
                except RowFailure as exc:
                    rows[i].update(status=exc.status, error=str(exc))
                    break
        for method in self.methods:  # the hook for extra models (CaR), once per batch
            live = [i for i in plans if rows[i]["status"] == Status.OK]
            batch = method.measure_samples([samples[i] for i in live], [plans[i][0] for i in live], self.settings,
                                           self.aux) if live else None
            for i, measured in zip(live, batch or []):
                _record(rows[i], measured)
        return rows

    def _run(self, plans: dict[int, tuple[SampleEncoding, dict[RowKey, RowRequest]]],
             advance: Callable[[int], None] | None) -> dict[int, dict[RowKey, RowResult]]:
        results: dict[int, dict[RowKey, RowResult]] = {i: {} for i in plans}
        by_role = role_requests(plans)
        for role, runner in self.runners.items():
            owners, requests = by_role.get(role, ([], []))
            if not requests:
                continue
            done = (lambda _rows, tokens: advance(tokens)) if advance else None
            for (i, key), res in zip(owners, runner.run(requests, done)):
                results[i][key] = res
        return results


def role_requests(plans: dict[int, tuple[SampleEncoding, dict[RowKey, RowRequest]]]
                  ) -> dict[str, tuple[list[tuple[int, RowKey]], list[RowRequest]]]:
    """The rows of a batch of planned samples grouped by the model that runs them: role -> (owners, requests),
    ``owners[j]`` = (sample position, row key) of ``requests[j]``, in the order one `RowRunner.run` call gets them
    (its batches depend on that order; `gateau plan` batches the same lists)."""
    out: dict[str, tuple[list[tuple[int, RowKey]], list[RowRequest]]] = {}
    for i, (_, reqs) in plans.items():
        for key, req in reqs.items():
            owners, requests = out.setdefault(key.role, ([], []))
            owners.append((i, key))
            requests.append(req)
    return out


def _record(row: dict[str, Any], measured: Measured) -> None:
    """Merge a method's measurement into the output row (an error turns the row into a retryable failure)."""
    if measured.error:
        row.update(status=Status.OOM.value, error=measured.error)
        return
    row.update(measured.columns)
    if measured.note:
        row["note"] = "; ".join(n for n in (row["note"], measured.note) if n)
