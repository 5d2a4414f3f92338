"""`gateau report RUN (--ratio R | --count K) [select's options] [--compare RUN2] [--also 'OPTIONS'] --out FILE`.

Building the parser imports the light `gateau.report.config` only; the report package (numpy, matplotlib, pyarrow;
never torch) is imported when the command runs.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any, NoReturn

from ..errors import UsageError
from .options import add_method_options, method_options, select_config


class _SpecParser(argparse.ArgumentParser):
    """Parses one --also value; raises `UsageError` instead of exiting, so `gateau` reports it as one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"--also {message}")


def register(subparsers: Any) -> None:
    """Add the ``report`` command to the `gateau` sub-parsers."""
    from ..report.config import ReportConfig

    p = subparsers.add_parser(
        "report", help="write one self-contained HTML page explaining a run and its selection",
        description="Rank RUN as `gateau select` does and write one HTML file (figures embedded, opens offline): "
        "the run and its scoring history, counts by status with reasons, each component's distribution for "
        "selected vs not selected samples, the Spearman agreement of the components with the final score, score "
        "vs sample length, the top and bottom samples with their text and importance-vs-attention plot, and, with "
        "--compare or --also, how other selections overlap and differ.")
    p.add_argument("run", help="run directory made by `gateau score`")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--ratio", type=float, help="fraction of all samples to keep, e.g. 0.3 (as in select)")
    amount.add_argument("--count", type=int, help="number of samples to keep (as in select)")
    p.add_argument("--out", required=True, help="HTML file to write")
    add_method_options(p)
    c = p.add_argument_group("other selections to compare with (same --ratio/--count)")
    c.add_argument("--compare", action="append", default=[], metavar="RUN2",
                   help="another run, ranked with the same method and options (repeatable)")
    c.add_argument("--also", action="append", default=[], metavar="'[RUN] OPTIONS'",
                   help="another selection: select's options in one quoted argument, e.g. --also='--method hmg' "
                   "or --also='--method gateau --alpha 0.5'; of RUN unless the value starts with a run directory "
                   "(repeatable)")
    p.add_argument("--top", type=int, default=ReportConfig.top, help="best and worst ranked samples shown in full "
                   f"(default {ReportConfig.top} each)")
    p.add_argument("--excerpt-chars", type=int, default=ReportConfig.excerpt_chars, help="response characters shown "
                   f"per sample (default {ReportConfig.excerpt_chars})")
    p.add_argument("--data", help="input file to read the samples' text from (default: the path recorded in the run)")
    p.add_argument("--allow-partial", action="store_true", help="report on an unfinished run's scored samples")
    p.set_defaults(handler=run)


def _also_spec(value: str, run: str, ratio: float | None, count: int | None) -> Any:
    """One --also value -> a SelectionSpec (select's option flags, optionally preceded by a run directory)."""
    from ..config import SelectConfig
    from ..report.config import SelectionSpec

    parser = _SpecParser(prog="--also", add_help=False)
    parser.add_argument("run", nargs="?", default=run)
    add_method_options(parser)
    args = parser.parse_args(shlex.split(value))
    return SelectionSpec(args.run, SelectConfig(method=args.method, ratio=ratio, count=count,
                                                options=method_options(args)))


def run(args: argparse.Namespace) -> int:
    """Build the report and print where it went and its size."""
    from ..report.build import write_report
    from ..report.config import ReportConfig, SelectionSpec

    config = select_config(args)
    others = [SelectionSpec(run2, config) for run2 in args.compare]
    others += [_also_spec(value, args.run, args.ratio, args.count) for value in args.also]
    report = ReportConfig(main=SelectionSpec(args.run, config), others=tuple(others), top=args.top, data=args.data,
                          allow_partial=args.allow_partial, excerpt_chars=args.excerpt_chars)
    size = write_report(report, args.out)
    print(f"wrote {args.out} ({size:,} bytes)")
    return 0
