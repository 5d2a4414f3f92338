"""``gateau eval ...`` and ``gateau judge-samples``: registered by `gateau.eval.cli` (the eval package's own)."""

from __future__ import annotations

import argparse
import functools
from typing import Any, Callable

from ..errors import GateauError


class EvalUsageError(GateauError):
    """An evaluation's `gateau.eval.results.EvalError`, reported by the CLI as one line."""


def _one_line_eval_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``handler`` with `EvalError` (a ValueError, not yet a `GateauError`) raised as `EvalUsageError`."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from ..eval.results import EvalError

        try:
            return handler(args)
        except EvalError as exc:
            if isinstance(exc, GateauError):
                raise
            raise EvalUsageError(str(exc)) from exc

    return run


def register(subparsers: Any) -> None:
    """Add the eval package's commands; their handlers report `EvalError` as one line."""
    from ..eval.cli import register as register_eval

    before = set(subparsers.choices)
    register_eval(subparsers)
    for name in set(subparsers.choices) - before:
        _wrap_handlers(subparsers.choices[name])


def _wrap_handlers(parser: argparse.ArgumentParser) -> None:
    """Wrap the ``handler`` default of ``parser`` and of every sub-command below it."""
    handler = parser.get_default("handler")
    if handler is not None:
        parser.set_defaults(handler=_one_line_eval_errors(handler))
    for action in parser._actions:  # argparse keeps sub-parsers here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _wrap_handlers(sub)
