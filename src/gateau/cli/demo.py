"""``gateau demo``: score a small labelled set with the embedded model and select 30%."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import ModelConfig


def register(subparsers: Any) -> None:
    """Add the ``demo`` command."""
    p = subparsers.add_parser("demo", help="score a small labelled long-context set with the embedded model and "
                              "select 30%%")
    p.add_argument("--out", default="gateau-demo", help="directory for the demo data and run (default gateau-demo)")
    p.add_argument("--n", type=int, default=36, help="samples (default 36)")
    p.add_argument("--words", type=int, default=600, help="context words per sample (default 600)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=ModelConfig.device)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo (it prints its own summary)."""
    from ..demo import run_demo

    run_demo(Path(args.out), n=args.n, words=args.words, seed=args.seed, device=args.device,
             progress=not args.no_progress)
    return 0
