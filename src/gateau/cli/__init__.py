"""Command line: a thin map from arguments onto the typed functions of the package.

One module per command (``gateau.cli.score``, ``plan``, ``select``, ``inspect``, ``report``, ``demo``, ``train``, ``bench``,
``eval``), each with ``register(subparsers)``, which adds its parser with ``set_defaults(handler=fn)``; ``fn(args)``
builds the typed config, calls the package and prints, returning the exit code. Shared flags live in
`gateau.cli.options`. Building the parser imports no heavy package (torch, matplotlib): each handler imports what
it runs.

`main` is the one error boundary and signal policy of every command:

- a `GateauError` (a mistake the user can fix) prints ``gateau CMD: error: MESSAGE`` and exits 2;
- an `OSError` naming a file (permission denied, a directory in the way, a read-only run) prints
  ``gateau CMD: error: PATH: REASON`` and exits 2;
- SIGINT (Ctrl-C) and SIGTERM print ``gateau CMD: interrupted`` (``score`` says how many samples are stored) and
  exit 130 and 143 (`gateau.cli.signals`);
- anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import GateauError
from ..util import interrupts
from . import signals

# The command modules, in the order `gateau --help` lists them.
COMMAND_MODULES: tuple[str, ...] = ("score", "plan", "select", "inspect", "demo", "bench", "train", "eval", "report")


def version() -> str:
    """The installed distribution's version (the package's own when run from a source tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("gateau")
    except PackageNotFoundError:
        from .. import __version__

        return __version__


class _VersionAction(argparse.Action):
    """``--version``: print ``gateau VERSION`` and exit (the version is looked up only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"gateau {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The ``gateau`` parser with every command registered."""
    parser = argparse.ArgumentParser(prog="gateau", description="Select influential long-context SFT samples "
                                     "(GATEAU: homologous models' guidance + contextual awareness measurement).")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _os_error_line(exc: OSError) -> str:
    """``PATH: REASON`` of an OSError that names its file; of a rename or copy, its destination (the output the
    user named, not a temporary)."""
    path = exc.filename if exc.filename2 is None else exc.filename2
    return f"{path}: {exc.strerror or exc}"


def main(argv: list[str] | None = None) -> int:
    """Run one ``gateau`` command; returns its exit status (see the module docstring for the policy)."""
    signals.install()
    prog = "gateau"
    try:
        args = build_parser().parse_args(argv)
        # `plan` forks nothing and costs its tokenisation: the fast tokenizer may use every core for a batch. The
        # other commands fork (Ray workers, data loaders) after tokenising, where a parallel tokenizer can
        # deadlock. A value the user set is kept.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true" if args.command == "plan" else "false")
        args.argv = list(sys.argv[1:] if argv is None else argv)  # what --config's "flags override" reads
        prog = f"gateau {args.command}"
        code = args.handler(args)
        interrupts.raise_if_received()  # a signal whose KeyboardInterrupt was swallowed where it landed
        return code
    except KeyboardInterrupt:
        with signals.finishing():
            print(f"\n{prog}: interrupted", file=sys.stderr)
        return signals.exit_code()
    except Exception as exc:
        if isinstance(exc, GateauError):
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, OSError) and exc.filename is not None:
            print(f"{prog}: error: {_os_error_line(exc)}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
