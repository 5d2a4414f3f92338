"""Running the benchmark (the part that loads a model): `synth` writes the labelled set, `BenchConfig` holds the
`gateau bench run` settings, `plan_runs` turns them into one `ScoreConfig` per short window, `run_bench` scores
each run resumably, evaluates every variant and writes the report, and `parse_windows` reads ``--windows``. Also
the set sizes and windows of the full and ``--quick`` benchmark."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...config import NEUTRAL_RESPONSE, ExecutionConfig, ScoreConfig, SelectConfig
from ...errors import UsageError
from ...methods import METHODS, method_options
from ..synth import SAMPLE_TYPES, read_labels, write_synthetic_set
from .plot import default_distributions
from .report import RESULTS_JSON, RESULTS_MD, RESULTS_PNG, write_report
from .variants import MAIN_WINDOW, evaluate, read_run, with_window

DEFAULT_N, DEFAULT_WORDS, DEFAULT_WINDOWS = 120, 600, (64, 128, 256)
QUICK_N, QUICK_WORDS, QUICK_WINDOWS = 12, 400, (128,)
# Scored at every other window: the methods all of whose columns depend on the window (HMG).
WINDOW_METHODS = tuple(n for n, c in METHODS.items() if c.window_columns and set(c.columns) <= set(c.window_columns))
DATA_FILE, LABELS_FILE, RUNS_DIR = "data.jsonl", "labels.jsonl", "runs"


def synth(out: str | Path, n: int = DEFAULT_N, words: int = DEFAULT_WORDS, seed: int = 0) -> tuple[Path, Path]:
    """`gateau bench synth`: DIR/data.jsonl + DIR/labels.jsonl."""
    return write_synthetic_set(Path(out), n=n, words=words, seed=seed)


@dataclass
class BenchConfig:
    """`gateau bench run` settings."""

    dir: str
    methods: str | None = None  # first window's methods; None: every registered method that needs no named model
    windows: tuple[int, ...] = DEFAULT_WINDOWS
    long_model: str = "default"
    reward_model: str | None = None  # adds car to the first window's methods
    device: str = "auto"
    dtype: str = "auto"
    token_budget: int = ExecutionConfig.token_budget
    progress: bool = True
    neutral_response: str | None = NEUTRAL_RESPONSE  # first window: CAM's calibration profile (None: not measured)


def default_methods(reward_model: str | None = None) -> str:
    """Every registered method that needs no user-named model, plus those that do when a reward model is given."""
    return ",".join(n for n, c in METHODS.items() if not c.aux_models or reward_model)


def _model_tag(spec: str) -> str:
    if spec in ("default", "", None):
        return ""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(spec.rstrip("/")).name)[:40] or "model"
    return f"{stem}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}-"


def plan_runs(cfg: BenchConfig) -> list[ScoreConfig]:
    """One `ScoreConfig` per window: the first with the full method set (and CAM's calibration profile), the
    others with the methods whose columns all change with W (hmg, hmg-tokens: the same two rows)."""
    if not cfg.windows:
        raise UsageError("--windows is empty")
    if any(w <= 0 for w in cfg.windows):
        raise UsageError("--windows must be positive token counts")
    root = Path(cfg.dir)
    data = root / DATA_FILE
    full = cfg.methods or default_methods(cfg.reward_model)
    out = []
    for i, w in enumerate(dict.fromkeys(cfg.windows)):
        methods = full if i == 0 else ",".join(WINDOW_METHODS)
        name = f"{_model_tag(cfg.long_model)}w{w}-{methods.replace(',', '+')}"
        out.append(ScoreConfig.from_flat(data, root / RUNS_DIR / name, methods=methods, long_model=cfg.long_model,
                                         short_window=w, reward_model=cfg.reward_model, device=cfg.device,
                                         dtype=cfg.dtype, token_budget=cfg.token_budget, progress=cfg.progress,
                                         neutral_response=cfg.neutral_response if i == 0 else None))
    return out


def _pending(config: ScoreConfig) -> int:
    """Samples of ``config`` not yet stored as done (all of them for a new run)."""
    from ...data import load_samples
    from ...pipeline.scorer import measurement_fields
    from ...store import RunStore, fingerprint

    samples = load_samples(config.data.path, config.data.fields, config.data.limit)
    store = RunStore(config.out)
    if not store.config_path.is_file():
        return len(samples)
    fp = fingerprint(measurement_fields(config))
    if store.read_config().get("fingerprint") != fp:
        return len(samples)  # run_score will refuse with a clear message
    done = store.done_ids(fp, {s.id: s.content_hash for s in samples})
    return sum(1 for s in samples if s.id not in done)


def run_bench(cfg: BenchConfig, log=print) -> dict[str, Any]:
    """`gateau bench run`: score (resumably) every planned run, evaluate, write the report. Returns
    {"rows", "text", "recommendation", "runs"}."""
    from ...pipeline.run import run_score
    from ...pipeline.scorer import load_models

    root = Path(cfg.dir)
    labels_path, data_path = root / LABELS_FILE, root / DATA_FILE
    if not data_path.is_file() or not labels_path.is_file():
        raise UsageError(f"{root} needs {DATA_FILE} and {LABELS_FILE}; create them with `gateau bench synth --out "
                         f"{root}`")
    labels = read_labels(labels_path)
    configs = plan_runs(cfg)
    models = None
    for i, config in enumerate(configs, 1):
        pending = _pending(config)
        methods = ",".join(config.measure.methods)
        log(f"[{i}/{len(configs)}] W={config.models.short_window} methods={methods} -> {config.out} "
            f"({pending} samples to score)")
        if pending and models is None:
            models = load_models(config)
        summary = run_score(config, models=models if pending else None)
        for line in summary.lines():
            log("  " + line)
    rows = evaluate([c.out for c in configs], labels)
    windows = [c.models.short_window for c in configs]
    main_window = MAIN_WINDOW if MAIN_WINDOW in windows else windows[0]
    _, base = read_run(configs[0].out)
    tables = {w: read_run(c.out)[1] for w, c in zip(windows, configs)}
    dist_table = with_window(base, tables[main_window])
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab.type] = counts.get(lab.type, 0) + 1
    meta = {"data": str(data_path), "n": len(labels), "windows": windows, "main_window": main_window,
            "long_model": cfg.long_model, "runs": [c.out for c in configs],
            "type_counts": {t: counts[t] for t in SAMPLE_TYPES if t in counts},
            "base_rate": float(np.mean([lab.long_dependent for lab in labels])) if labels else float("nan"),
            "first_window_methods": ",".join(configs[0].measure.methods),
            "default_options": asdict(method_options(SelectConfig.method))}
    printed, text = write_report(root, rows, meta, default_distributions(dist_table, labels))
    log(printed)
    log(f"\nwrote {root / RESULTS_MD}, {root / RESULTS_JSON}, {root / RESULTS_PNG}")
    return {"rows": rows, "text": printed, "recommendation": text, "runs": [c.out for c in configs]}


def parse_windows(spec: str) -> tuple[int, ...]:
    """"64,128,256" → (64, 128, 256)."""
    try:
        out = tuple(int(x) for x in spec.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"--windows must be comma-separated integers, got {spec!r}") from None
    if not out:
        raise UsageError("--windows is empty")
    return out
