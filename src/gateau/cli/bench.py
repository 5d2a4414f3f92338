"""``gateau bench synth | run | e2e``: the method's validation (`gateau.bench`), flags -> typed configs."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import ExecutionConfig, ModelConfig
from ..errors import UsageError
from ..hub import REVISION_HELP, TRUST_REMOTE_CODE_HELP
from .config_file import SettingsFile, add_config_flags, file_settings, overlay, plain, yaml_text

# `gateau bench e2e`'s flags -> their key in its settings file (the fields of `E2EConfig`).
_E2E_KEYS = {"out": "out", "quick": "quick", "model": "model", "n": "pool.n", "n_eval": "pool.n_eval",
             "seeds": "seeds", "arms": "arms", "short_count": "short_count", "max_steps": "max_steps",
             "epochs": "epochs", "lr": "lr", "train_last_layers": "train_last_layers", "device": "device",
             "no_progress": "progress", "size": "size", "other_seeds": "other_seeds", "lora_r": "lora_r",
             "revision": "revision", "trust_remote_code": "trust_remote_code"}


def register(subparsers: Any) -> None:
    """Add ``bench`` and its sub-commands."""
    p = subparsers.add_parser("bench", help="long-dependency benchmark: build a labelled set, score it, compare "
                              "variants")
    bsub = p.add_subparsers(dest="bench_command", required=True)
    s = bsub.add_parser("synth", help="write DIR/data.jsonl + DIR/labels.jsonl (labelled synthetic set)")
    s.add_argument("--out", required=True, help="benchmark directory")
    s.add_argument("--n", type=int, help="samples (default 120; --quick 12)")
    s.add_argument("--words", type=int, help="context words per sample (default 600; --quick 400)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quick", action="store_true", help="smoke-test size: --n 12 --words 400")
    s.set_defaults(handler=run_synth)
    r = bsub.add_parser("run", help="score DIR/data.jsonl (resumable) and evaluate every method and variant",
                        description="Score DIR/data.jsonl once per short window into DIR/runs/ (the first window "
                        "with --methods, the others with hmg only; reruns skip finished samples), then evaluate "
                        "every method, normalisation, alpha, CAM option and window against DIR/labels.jsonl and "
                        "write DIR/results.md, results.json and results.png.")
    r.add_argument("dir", help="benchmark directory made by `gateau bench synth`")
    r.add_argument("--methods", help="methods scored at the first window (default: gateau,ppl,ifd; plus car "
                   "with --reward-model)")
    r.add_argument("--windows", help="comma-separated short windows W (default 64,128,256; --quick 128)")
    r.add_argument("--quick", action="store_true", help="one window (128): a smoke test in a few minutes")
    r.add_argument("--long-model", default=ModelConfig.long_model, help="model B (default: the embedded "
                   "SmolLM2-135M)")
    r.add_argument("--reward-model", help="also score and evaluate car with this reward model")
    r.add_argument("--device", default=ModelConfig.device)
    r.add_argument("--dtype", default=ModelConfig.dtype)
    r.add_argument("--token-budget", type=int, default=ExecutionConfig.token_budget)
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(handler=run_bench)
    e = bsub.add_parser("e2e", help="select -> train -> evaluate every arm (gateau and random at 10/30/50%%, full at "
                        "equal epochs and equal steps, ablations, LongCE, no long data) over seeds; "
                        "results.md/json/png (resumable)")
    e.add_argument("--out", required=True, help="benchmark directory (re-run the same command to resume)")
    e.add_argument("--quick", action="store_true", help="smoke test: tiny random model, 20 samples, 1 seed, 2 steps")
    e.add_argument("--size", choices=["cpu", "gpu"], default="cpu", help="the full form: cpu (embedded SmolLM2-135M; "
                   "--sweep prints its estimated wall time) or gpu (a 1B model, 8k samples, the paper's recipe; "
                   "docs/e2e.md)")
    e.add_argument("--model", help="model to score and fine-tune (default: the embedded SmolLM2-135M-Instruct)")
    # no defaults here: None keeps the full form's value (E2EConfig, listed in the README)
    e.add_argument("--n", type=int, help="pool samples")
    e.add_argument("--n-eval", type=int, help="held-out QA items")
    e.add_argument("--seeds", help="comma-separated seeds of the main arms (gateau, random, full)")
    e.add_argument("--other-seeds", help="comma-separated seeds of the other arms")
    e.add_argument("--arms", help="comma-separated arms (default: all but ppl and ifd)")
    e.add_argument("--short-data", default="sharegpt", choices=["sharegpt"], help="short data mixed into every arm")
    e.add_argument("--short-count", type=int, help="ShareGPT conversations per arm")
    e.add_argument("--max-steps", type=int, help="optimizer steps per run (default: --epochs)")
    e.add_argument("--epochs", type=float, help="epochs per run")
    e.add_argument("--lr", type=float, help="learning rate")
    e.add_argument("--train-last-layers", type=int, help="train only the last N decoder layers (0: all)")
    e.add_argument("--lora-r", type=int, help="train LoRA of this rank instead (turns --train-last-layers off)")
    e.add_argument("--revision", help=REVISION_HELP)
    e.add_argument("--trust-remote-code", action="store_true", help=TRUST_REMOTE_CODE_HELP)
    e.add_argument("--device", help="cpu or cuda (default: cpu; --size gpu: cuda)")
    e.add_argument("--no-progress", action="store_true")
    e.add_argument("--extra-eval", metavar="FILE.jsonl", help="evaluate every stored arm model (and the untrained "
                   "one) on your own QA records {context, question, answers}, resumable, with the same statistics; "
                   "no training")
    e.add_argument("--sweep", action="store_true", help="choose the recipe: train full and no_long under a grid "
                   "(lr x trained layers or LoRA rank x epochs), report needle, chat NLL and QA F1 against the "
                   "untrained model and the full form's estimated wall time; writes OUT/sweep/")
    e.add_argument("--sweep-lrs", help="sweep learning rates (default 5e-05,0.0001,0.0002)")
    e.add_argument("--sweep-recipes", help="sweep recipes: lastN, loraR or all (default last4,last2)")
    e.add_argument("--sweep-epochs", help="sweep epochs (default 1)")
    e.add_argument("--sweep-n-eval", type=int, help="held-out QA items per sweep evaluation (default 50)")
    add_config_flags(e, _e2e_file(), keys="E2EConfig (pool, plan and the recipe; --quick's form with quick: true)")
    e.set_defaults(handler=run_e2e)


def _e2e_file() -> SettingsFile:
    """`gateau bench e2e`'s settings file: the keys of `E2EConfig` (imported only when its parser is built)."""
    from ..bench.e2e import E2EConfig

    return SettingsFile(E2EConfig, _E2E_KEYS)


def run_synth(args: argparse.Namespace) -> int:
    """Write the labelled synthetic set and say where."""
    from ..bench import benchmark as bench

    n = args.n if args.n is not None else (bench.QUICK_N if args.quick else bench.DEFAULT_N)
    words = args.words if args.words is not None else (bench.QUICK_WORDS if args.quick else bench.DEFAULT_WORDS)
    data, labels = bench.synth(args.out, n=n, words=words, seed=args.seed)
    print(f"wrote {n} samples of ~{words} words: {data} and {labels}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """Score the set and evaluate every method and variant (`run_bench` writes and prints the results)."""
    from ..bench import benchmark as bench

    windows = (bench.parse_windows(args.windows) if args.windows else
               bench.QUICK_WINDOWS if args.quick else bench.DEFAULT_WINDOWS)
    bench.run_bench(bench.BenchConfig(dir=args.dir, methods=args.methods, windows=windows,
                                      long_model=args.long_model, reward_model=args.reward_model,
                                      device=args.device, dtype=args.dtype, token_budget=args.token_budget,
                                      progress=not args.no_progress))
    return 0


def _seeds(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give comma-separated integers, e.g. 0,1,2") from None


def e2e_config(args: argparse.Namespace) -> Any:
    """The e2e flags -> `E2EConfig`: the full form of ``--size`` (or ``--quick``'s: the flag, or ``quick: true`` in
    ``--config``'s file) with the file's values and then the flags given replacing its values."""
    from ..bench.e2e import ARMS, PoolConfig, quick_config, sized_config

    from_file = file_settings(args)
    quick = args.quick or bool((from_file or {}).get("quick"))
    size = (from_file or {}).get("size", args.size)
    config = quick_config(args.out) if quick else sized_config(args.out, size)
    pool: PoolConfig = config.pool
    if args.n is not None:
        pool = replace(pool, n=args.n)
    if args.n_eval is not None:
        pool = replace(pool, n_eval=args.n_eval)
    changes: dict = {"pool": pool, "progress": not args.no_progress}
    if args.device:
        changes["device"] = args.device
    if args.model:
        changes["model"] = args.model
    if args.revision:
        changes["revision"] = args.revision
    if args.trust_remote_code:
        changes["trust_remote_code"] = True
    if args.seeds:
        changes["seeds"] = _seeds(args.seeds, "--seeds")
    if args.other_seeds:
        changes["other_seeds"] = _seeds(args.other_seeds, "--other-seeds")
    if args.arms:
        arms = tuple(a.strip() for a in args.arms.split(","))
        unknown = [a for a in arms if a not in ARMS]
        if unknown:
            raise UsageError(f"unknown --arms {unknown}; choose from {', '.join(ARMS)}")
        changes["arms"] = arms
    for name in ("short_count", "max_steps", "epochs", "lr"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.train_last_layers is not None:
        changes["train_last_layers"] = args.train_last_layers or None
    if args.lora_r is not None:
        changes.update(lora_r=args.lora_r, train_last_layers=None)
    config = replace(config, **changes)
    return config if from_file is None else overlay(config, from_file)  # the flags given are not in from_file


def run_e2e(args: argparse.Namespace) -> int:
    """Run (or resume) the end-to-end benchmark (``--print-config``: print its resolved settings), its recipe sweep
    (``--sweep``) or an extra evaluation of its stored models (``--extra-eval``)."""
    config = e2e_config(args)
    if args.print_config:
        import sys

        sys.stdout.write(yaml_text(plain(config)))
        return 0
    if args.extra_eval and args.sweep:
        raise UsageError("--extra-eval and --sweep are separate runs; give one of them")
    if args.extra_eval:
        from ..bench.e2e.extra import run_extra_eval
        from ..bench.e2e.tiny import build_tiny_model_dir

        model = str(build_tiny_model_dir(Path(config.out) / "tiny-model")) if config.model == "tiny" else config.model
        run_extra_eval(config.out, args.extra_eval, model, max_new_tokens=config.plan.max_new_tokens,
                       device=config.device, progress=config.progress, n_boot=config.n_boot,
                       train_last_layers=config.train_last_layers, hub=config.hub)
        return 0
    if args.sweep:
        from ..bench.e2e.sweep import SWEEP_N_EVAL, parse_grid, run_sweep

        try:
            grid = parse_grid(args.sweep_lrs, args.sweep_recipes, args.sweep_epochs)
        except ValueError as exc:
            raise UsageError(f"--sweep-lrs/--sweep-recipes/--sweep-epochs: {exc}") from None
        run_sweep(config, grid, n_eval=args.sweep_n_eval or SWEEP_N_EVAL)
        return 0
    from ..bench.e2e import run_e2e as run

    run(config)
    return 0
