"""`gateau bench e2e`: pool → one score run → every arm's selection → train (per arm and seed) → evaluate →
statistics and report. Resumable: the pool, the score run (gateau score resumes), each arm's selection, each
(arm, seed) training (skipped when its ``train_summary.json`` exists) and evaluation (``result.json``) are kept.

Layout of OUT: ``pool/`` (data, labels, eval), ``score/`` (the run), ``arms/ARM/selected.jsonl`` (random arms:
``arms/ARM/seedS/selected.jsonl``; ``gateau+longce`` trains on ``arms/gateau/selected.jsonl``),
``arms/ARM/seedS/{model/,eval/,result.json}`` (every model folder is kept, for ``--extra-eval``),
``arms/untrained/``, ``results.md``, ``results.json``, ``results.png``. The arms are `arms.ARMS`.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...hub import HubOptions
from ...util.atomic import atomic_write
from .arms import ARMS, DATA_FULL, DATA_NONE, DEFAULT_ARMS, Arm, selection_dir
from .evaluate import EvalPlan, evaluate_model
from .pool import PoolConfig, read_jsonl, write_pool
from .shared_prefix import store_for

if TYPE_CHECKING:
    from ...train.frozen_prefix import FrozenPrefixCache

SCORED_METHODS = "gateau,hmg,cam,ppl,ifd"
RESULT_FILE = "result.json"
SIZES = ("cpu", "gpu")


@dataclass(frozen=True)
class E2EConfig:
    """Settings of `gateau bench e2e`. The defaults are the full form on CPU (``--size cpu``) with the embedded
    SmolLM2-135M: 100 pool samples of about 250–450 tokens (two inserted paragraphs; the short model's window is
    128 tokens) and 100 held-out QA items of the same length range, 5 seeds for the main arms
    (gateau, random, full) and 3 for the others (`arms.ARMS`), 1 epoch training the last 4 of the 30 decoder layers
    at lr 5e-5 (the recipe `--sweep` chose, docs/e2e-results/sweep.md),
    LongAlign's sequence-weighted loss (each sequence weighs the same, so the long samples' few answer tokens are not
    drowned by the short chats' long replies); the same recipe for every arm. ``max_length`` exceeds every pool
    sample. ``longce_window`` is the scorer's short window (HMG's W), used by the LongCE arms."""

    out: str
    model: str = "default"
    revision: str | None = None
    """Hub revision of a hub-id ``model`` (scoring, training, evaluation); None = its default branch."""
    trust_remote_code: bool = False
    """Let a ``model`` that ships its own modelling code run it (every load of it and of the arms' models)."""
    pool: PoolConfig = field(default_factory=lambda: PoolConfig(n=100, n_eval=100, min_tokens=250, max_tokens=450,
                                                                passages=2))
    ratio: float = 0.3
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Seeds of the main arms (gateau, random, full)."""
    other_seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of every other arm."""
    arms: tuple[str, ...] = DEFAULT_ARMS
    short_count: int = 8
    max_length: int = 2048
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 1
    grad_accum: int = 4
    lr: float = 5e-5
    train_last_layers: int | None = 4
    lora_r: int | None = None
    loss_weighting: str = "sequence"
    longce_window: int = 128
    plan: EvalPlan = field(default_factory=EvalPlan)
    device: str = "cpu"
    n_boot: int = 2000
    progress: bool = False
    quick: bool = False
    size: str = "cpu"

    @property
    def hub(self) -> HubOptions:
        """``revision`` and ``trust_remote_code`` (`gateau.hub.HubOptions`)."""
        return HubOptions(revision=self.revision, trust_remote_code=self.trust_remote_code)


def quick_config(out: str) -> E2EConfig:
    """The smoke-test form: a tiny random model (2 layers, the last one trained, so the first comes from the
    shared-prefix store), a handful of short samples, 1 seed, a few steps, 2 needle cells, one RULER task at 512
    tokens, 2 chats and 2 MT-Bench questions."""
    return E2EConfig(out=out, model="tiny", pool=PoolConfig(n=20, n_eval=6, n_chat=2, n_mtbench=2, min_tokens=300,
                                                            max_tokens=500),
                     seeds=(0,), other_seeds=(0,), short_count=4, max_length=1536, max_steps=2, grad_accum=1,
                     lr=1e-3, train_last_layers=1, longce_window=32,
                     plan=EvalPlan(max_new_tokens=8, needle_lengths=(256,), needle_depths=(25.0, 75.0),
                                   ruler_lengths=(512,), ruler_tasks=("niah_single_2",), mtbench_new_tokens=8),
                     n_boot=200, quick=True)


GPU_MODEL = "meta-llama/Llama-3.2-1B-Instruct"


def gpu_config(out: str) -> E2EConfig:
    """``--size gpu``: a 1B model, 8,000 pool samples of 4k–16k tokens, 200 held-out QA items, the paper's recipe
    on one GPU (full fine-tuning, lr 2e-5, 2 epochs, 8 sequences × 12 accumulation steps, LongAlign's sequence
    loss), ShareGPT's first 8,000 conversations as short data, needle and RULER at 4k–16k. Not run here (no GPU)."""
    return E2EConfig(out=out, model=GPU_MODEL,
                     pool=PoolConfig(n=8000, n_eval=200, n_chat=64, n_mtbench=40, min_tokens=4000, max_tokens=16000),
                     short_count=8000, max_length=16384, epochs=2.0, batch_size=8, grad_accum=12, lr=2e-5,
                     train_last_layers=None, device="cuda",
                     plan=EvalPlan(max_new_tokens=32, needle_lengths=(4096, 8192, 16384),
                                   needle_depths=(10.0, 30.0, 50.0, 70.0, 90.0), ruler_lengths=(4096, 16384),
                                   mtbench_new_tokens=256),
                     size="gpu")


def sized_config(out: str, size: str) -> E2EConfig:
    """The full form for ``size`` (`SIZES`)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {SIZES}")
    return gpu_config(out) if size == "gpu" else E2EConfig(out=out)


def arm_seeds(config: E2EConfig, arm: Arm) -> tuple[int, ...]:
    """The seeds an arm is trained with."""
    return config.seeds if arm.main else config.other_seeds


def _say(msg: str) -> None:
    print(f"gateau bench e2e: {msg}", flush=True)


def _score(config: E2EConfig, model: str, data: Path, run: Path) -> None:
    from ...config import ScoreConfig
    from ...pipeline.run import run_score

    summary = run_score(ScoreConfig.from_flat(str(data), str(run), methods=SCORED_METHODS, long_model=model,
                                              device=config.device, progress=config.progress,
                                              revision=config.revision,
                                              trust_remote_code=config.trust_remote_code))
    _say("scored: " + "; ".join(summary.lines()[:2]))


def _select(run: Path, method: str, ratio: float, seed: int, out: Path, preset: str | None = None) -> Path:
    from ...config import SelectConfig
    from ...methods import method_options
    from ...select import export_jsonl, select

    if not out.is_file():
        options = method_options(method, preset, strict=False, seed=seed)
        selection = select(run, SelectConfig(method=method, ratio=ratio, options=options))
        out.parent.mkdir(parents=True, exist_ok=True)
        export_jsonl(selection, run, out)  # atomic: appears only complete
    return out


def short_only_file(path: Path, count: int) -> Path:
    """The first ``count`` ShareGPT records that hold an answer, as the `no_long` arm's training data (the
    other arms get the same conversations through ``--short-data sharegpt --short-count``)."""
    if path.is_file():
        return path
    from .short_checks import usable_sharegpt

    kept = []
    for record, _ in usable_sharegpt():
        kept.append(record)
        if len(kept) >= count:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept))
    return path


def train_model(config: E2EConfig, model: str, data: Path, out: Path, seed: int, short: bool, *,
                loss: str = "ce", max_steps: int | None = None,
                prefix_cache: FrozenPrefixCache | None = None) -> dict[str, Any]:
    """Train one arm's model into ``out`` with ``config``'s recipe (kept when its summary exists); its summary.
    ``prefix_cache``: the frozen layers' outputs shared by every training of the run (`gateau.train.frozen_prefix`;
    the pool's sequences pass through them once for all arms)."""
    summary_file = out / "train_summary.json"
    if summary_file.is_file() and (out / "config.json").is_file():
        return json.loads(summary_file.read_text())
    from ...config import FieldMap
    from ...train.recipe import resolve_config
    from ...train.runtime import resolve_runtime
    from ...train.trainer import train

    overrides: dict[str, Any] = dict(resolve_runtime(device=config.device, packing="off"), data=str(data),
                                     out=str(out), model=model, revision=config.revision,
                                     trust_remote_code=config.trust_remote_code,
                                     short_data="sharegpt" if short else None,
                                     short_count=config.short_count if short else None,
                                     max_length=config.max_length, epochs=config.epochs,
                                     max_steps=config.max_steps if max_steps is None else max_steps,
                                     batch_size=config.batch_size, grad_accum=config.grad_accum, lr=config.lr,
                                     seed=seed, save_steps=10**6, save_total_limit=1, progress=config.progress,
                                     train_last_layers=config.train_last_layers, lora_r=config.lora_r,
                                     gradient_checkpointing=False, loss_weighting=config.loss_weighting, loss=loss,
                                     longce_window=config.longce_window, fields=FieldMap())
    train_config, _ = resolve_config("default", overrides)
    train(train_config, overwrite=True, prefix_cache=prefix_cache)
    return json.loads(summary_file.read_text())


def _arm_data(config: E2EConfig, arm: Arm, seed: int, paths: dict[str, Path], run: Path, arms_dir: Path) -> Path:
    if arm.data == DATA_FULL:
        return paths["data"]
    if arm.data == DATA_NONE:
        return short_only_file(arms_dir / "no_long" / "short.jsonl", config.short_count)
    where = arms_dir / selection_dir(arm) / (f"seed{seed}" if arm.seeded_selection else "")
    ratio = config.ratio if arm.ratio is None else arm.ratio
    return _select(run, arm.method, ratio, seed, where / "selected.jsonl", preset=arm.preset)


def equal_steps(config: E2EConfig, n_long: int) -> int:
    """Optimizer steps of an arm with ``n_long`` long sequences plus the short ones under ``config`` (what the
    trainer takes for ``epochs``: ceil(sequences / effective batch) per epoch), or ``max_steps`` when given."""
    if config.max_steps > 0:
        return config.max_steps
    per_epoch = math.ceil((n_long + config.short_count) / (config.batch_size * config.grad_accum))
    return max(1, math.ceil(config.epochs * per_epoch))


def _steps_of(config: E2EConfig, arm: Arm, run: Path, arms_dir: Path) -> int | None:
    """``max_steps`` for an arm: the 30% gateau arm's step count for ``equal_steps`` arms, else None (epochs)."""
    if not arm.equal_steps:
        return None
    selected = _arm_data(config, ARMS["gateau"], 0, {}, run, arms_dir)
    return equal_steps(config, len(read_jsonl(selected)))


def score_seconds(run: Path) -> float:
    """Wall seconds of the `gateau score` calls that measured samples in ``run`` (``history.jsonl``)."""
    history = run / "history.jsonl"
    rows = read_jsonl(history) if history.is_file() else []
    return sum(float(r.get("wall_s", 0.0)) for r in rows if r.get("measured_now", 0) > 0)


def selection_mix(path: Path, labels: dict[str, str]) -> dict[str, int]:
    """Kinds of the pool samples in a training file (short records are not pool samples and are not counted)."""
    return dict(Counter(labels[r["id"]] for r in read_jsonl(path) if r.get("id") in labels))


def run_e2e(config: E2EConfig) -> dict[str, Any]:
    """Run (or resume) the whole benchmark; returns the results written to ``results.json``."""
    from ...models import DEFAULT_MODEL
    from .report import write_report

    start = time.perf_counter()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    model = config.model
    if model == "tiny":
        from .tiny import build_tiny_model_dir

        model = str(build_tiny_model_dir(out / "tiny-model"))
    paths = write_pool(out / "pool", config.pool)
    labels = {r["id"]: r["kind"] for r in read_jsonl(paths["labels"])}
    eval_items = read_jsonl(paths["eval"])
    chats, mtbench = read_jsonl(paths["chat"]), read_jsonl(paths["mtbench"])
    _say(f"pool {len(labels)} samples {dict(Counter(labels.values()))}, eval {len(eval_items)} items -> {out / 'pool'}")
    run = out / "score"
    _score(config, model, paths["data"], run)
    arms_dir = out / "arms"
    eval_args = (eval_items, chats, mtbench, config.plan)
    eval_kwargs = dict(device=config.device, progress=config.progress, hub=config.hub,
                       store=store_for(model, config.train_last_layers, device=config.device, hub=config.hub))
    from ...train.frozen_prefix import FrozenPrefixCache

    rows: list[dict[str, Any]] = []
    prefix_cache = FrozenPrefixCache()
    untrained = arms_dir / "untrained"
    if not (untrained / RESULT_FILE).is_file():
        _say("evaluating the untrained model")
        res = {"arm": "untrained", "seed": None, **evaluate_model(model, untrained / "eval", *eval_args, **eval_kwargs),
               "train_seconds": 0.0, "mix": {}}
        untrained.mkdir(parents=True, exist_ok=True)
        (untrained / RESULT_FILE).write_text(json.dumps(res) + "\n")
    rows.append(json.loads((untrained / RESULT_FILE).read_text()))
    for seed in sorted(set(config.seeds) | set(config.other_seeds)):  # seed-major: an interrupted run has every
        for name in config.arms:  # arm at its first seeds
            arm = ARMS[name]
            if seed not in arm_seeds(config, arm):
                continue
            where = arms_dir / name / f"seed{seed}"
            if (where / RESULT_FILE).is_file():
                rows.append(json.loads((where / RESULT_FILE).read_text()))
                _say(f"{name} seed {seed}: done before, kept")
                continue
            data = _arm_data(config, arm, seed, paths, run, arms_dir)
            _say(f"{name} seed {seed}: training on {data}")
            t = time.perf_counter()
            summary = train_model(config, model, data, where / "model", seed, short=arm.data != DATA_NONE,
                                  loss=arm.loss, max_steps=_steps_of(config, arm, run, arms_dir),
                                  prefix_cache=prefix_cache)
            train_seconds = time.perf_counter() - t
            res = {"arm": name, "seed": seed, **evaluate_model(str(where / "model"), where / "eval", *eval_args,
                                                               heavy=arm.heavy_eval, **eval_kwargs),
                   "train_seconds": round(train_seconds, 1), "train_steps": summary.get("steps"),
                   "mix": selection_mix(data, labels), "data": str(data)}
            atomic_write(where / RESULT_FILE, json.dumps(res) + "\n")  # the marker of a complete (arm, seed)
            rows.append(res)
            _say(f"{name} seed {seed}: QA F1 {res['qa_f1']:.2f}, needle {res['needle']:.1f}, RULER {res['ruler']:.1f}, "
                 f"chat NLL {res['chat_nll']:.3f}, MT-Bench ROUGE-L {res['mtbench_rouge']:.1f} "
                 f"(train {train_seconds:.0f} s, eval {res['eval_seconds']:.0f} s)")
    meta = {"config": {**asdict(config), "model_resolved": model,
                       "model_name": "SmolLM2-135M-Instruct (embedded)" if model == DEFAULT_MODEL else model},
            "pool_kinds": dict(Counter(labels.values())), "n_eval": len(eval_items),
            "score_seconds": round(score_seconds(run), 1), "wall_seconds": round(time.perf_counter() - start, 1)}
    meta["stage_seconds"] = round(meta["score_seconds"] + sum(r.get("train_seconds", 0.0) + r.get("eval_seconds", 0.0)
                                                              for r in rows), 1)
    results = write_report(out, rows, meta, n_boot=config.n_boot)
    _say(f"wrote {out / 'results.md'}, results.json, results.png ({meta['wall_seconds']:.0f} s this call)")
    return results
