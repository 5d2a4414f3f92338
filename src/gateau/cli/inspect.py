"""``gateau inspect RUN ID --out FILE.png``: one sample's segment importance vs attention."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_method_options, method_options


def register(subparsers: Any) -> None:
    """Add the ``inspect`` command."""
    p = subparsers.add_parser("inspect", help="draw one sample's segment importance vs attention (PNG)")
    p.add_argument("run", help="run directory made by `gateau score`")
    p.add_argument("id", help="sample id")
    p.add_argument("--out", required=True, help="PNG file to write")
    add_method_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Draw the figure and print where it went."""
    from ..inspect import inspect_sample

    path = inspect_sample(args.run, args.id, args.out, args.method, method_options(args))
    print(f"wrote {path}")
    return 0
