"""``gateau plan DATA [score's options]``: the rows and model tokens `gateau score` would run, with time and memory
estimates, from the tokenizer alone (`gateau.pipeline.token_plan`, `gateau.pipeline.plan_view`)."""

from __future__ import annotations

import argparse
from typing import Any

from .score import add_score_arguments, config_from_args


def register(subparsers: Any) -> None:
    """Add the ``plan`` command: every flag of ``score`` (so a score command can be planned as it is) plus its own."""
    from ..pipeline.cost_model import DEFAULT_MFU, DEFAULT_PEAK_TFLOPS  # light: json and pathlib only

    p = subparsers.add_parser("plan", help="count the rows and model tokens `gateau score` would run, and estimate its "
                              "time and memory (tokenizer only, no model forward)",
                              description="Tokenise DATA and plan the rows that `gateau score DATA` with the same "
                              "options would run, without loading model weights: rows and tokens per pass kind and "
                              "per method, the longest row, and estimated wall time and peak memory. The token total "
                              "equals what `gateau score` records in RUN/history.jsonl for a fresh run. Score's own "
                              "flags (--out, --overwrite, ...) are accepted and change nothing.")
    add_score_arguments(p, out_required=False)
    p.add_argument("--json", action="store_true", help="print one JSON object (total_tokens at its top level)")
    p.add_argument("--mfu", type=float, default=DEFAULT_MFU, help=f"GPU estimate: model FLOPs utilisation "
                   f"(default {DEFAULT_MFU})")
    p.add_argument("--peak-tflops", type=float, default=DEFAULT_PEAK_TFLOPS, help="GPU estimate: the device's peak "
                   f"TFLOP/s in the scoring dtype (default {DEFAULT_PEAK_TFLOPS:g}: H100 bf16 dense)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..pipeline.plan_view import plan_lines, plan_report
    from ..pipeline.token_plan import plan_tokens

    config = config_from_args(args)
    report = plan_report(plan_tokens(config), config, mfu=args.mfu, peak_tflops=args.peak_tflops)
    print(json.dumps(report, indent=1) if args.json else "\n".join(plan_lines(report)))
    return 0
