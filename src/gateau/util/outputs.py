"""The one guard of every user-named output: an output may never destroy an input or a run.

Before a command writes the file (or folder) the user named (``select --out``, ``report --out``, ``inspect --out``,
``train --out``), `check_output_file` / `check_output_dir` resolve it through symlinks, as `gateau.util.atomic`
writes it, and refuse it with an `OutputError` when it is

- an input of the command (the scored data, a selection being trained on), reached by any path or link;
- inside a run directory (a folder holding ``config.json`` with ``shards/`` or ``scores.parquet``), or the run
  itself: writing there breaks the run;
- (files only) a directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..errors import GateauError

# What makes a folder a run directory (`gateau.store`'s file names; repeated here so this guard imports no pyarrow).
_RUN_CONFIG = "config.json"
_RUN_CONTENT = ("shards", "scores.parquet")


class OutputError(GateauError, ValueError):
    """A user-named output that would overwrite an input, break a run, or is a directory."""


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def is_run_dir(path: Path) -> bool:
    """True if ``path`` is a folder that `gateau score` wrote (config.json plus shards/ or scores.parquet)."""
    return (path / _RUN_CONFIG).is_file() and any((path / name).exists() for name in _RUN_CONTENT)


def enclosing_run(path: str | Path) -> Path | None:
    """The run directory that ``path`` (resolved through symlinks) is, or lies inside; None if there is none."""
    real = _real(path)
    for folder in (real, *real.parents):
        if folder.is_dir() and is_run_dir(folder):
            return folder
    return None


def _check(path: str | Path, flag: str, inputs: Iterable[str | Path | None]) -> Path:
    real = _real(path)
    for given in inputs:
        if given is not None and Path(given).exists() and _real(given) == real:
            via = "" if Path(path).absolute() == real else f" (it resolves to {real})"
            raise OutputError(f"{flag} {path} is an input of this command ({given}){via}; writing there would "
                              "destroy it: give another path")
    run = enclosing_run(real)
    if run is not None:
        where = "is the run directory" if run == real else "is inside the run directory"
        raise OutputError(f"{flag} {path} {where} {run}; writing there would break the run: give a path outside it")
    return real


def check_output_file(path: str | Path, flag: str, inputs: Iterable[str | Path | None] = ()) -> Path:
    """``path`` resolved through symlinks, if a file may be written there; `OutputError` naming ``flag`` if it is
    one of ``inputs``, a run directory or inside one, or a directory."""
    real = _check(path, flag, inputs)
    if real.is_dir():
        raise OutputError(f"{flag} {path} is a directory; give a file name")
    return real


def check_output_dir(path: str | Path, flag: str, inputs: Iterable[str | Path | None] = ()) -> Path:
    """``path`` resolved through symlinks, if an output folder may be made there; `OutputError` naming ``flag`` if
    it is one of ``inputs``, or a run directory or inside one."""
    return _check(path, flag, inputs)
