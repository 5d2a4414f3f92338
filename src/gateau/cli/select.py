"""``gateau select RUN (--ratio R | --count K) [--out FILE]``: rank a scored run and export the top samples."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_method_options, select_config


def register(subparsers: Any) -> None:
    """Add the ``select`` command."""
    p = subparsers.add_parser("select", help="rank a scored run and export the top samples (no model needed)")
    p.add_argument("run", help="run directory made by `gateau score`")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--ratio", type=float, help="fraction of all samples to keep, e.g. 0.3; 1 = all, ranked")
    amount.add_argument("--count", type=int, help="number of samples to keep")
    p.add_argument("--out", help="JSONL file for the selected records (omit to only print the summary)")
    add_method_options(p)
    p.add_argument("--data", help="input file to export from (default: the path recorded in the run); it must hold "
                   "the records that were scored")
    p.add_argument("--allow-partial", action="store_true", help="rank an unfinished run's scored samples")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Rank, print the summary, export the selection when --out is given."""
    from ..select import export_jsonl, select

    selection = select(args.run, select_config(args), allow_partial=args.allow_partial)
    print("\n".join(selection.summary_lines()))
    if args.out:
        n = export_jsonl(selection, args.run, args.out, data=args.data)
        print(f"wrote {n} record{'' if n == 1 else 's'} to {args.out}")
    return 0
