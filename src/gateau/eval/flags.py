"""Command-line flags declared on the settings dataclasses of the evaluations (standard library only).

A settings field made with ``flag(...)`` becomes one ``gateau eval NAME`` option: ``--field-name`` (or a
positional argument), its help text, its parser and its default taken from the field itself, so a default is
written once. Fields made with plain ``field``/defaults (the model settings, ``overwrite``) are not flags of their
own: the shared option groups of ``cli/eval.py`` fill them.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

_NO_DEFAULT: Any = dataclasses.MISSING


def flag(help: str, default: Any = _NO_DEFAULT, *, parse: Callable[[str], Any] | None = None,
         required: bool = False, positional: bool = False, show_default: bool = True) -> Any:
    """A dataclass field that is also a command-line option.

    ``default``: the field's default (none: the option is required). ``parse``: turns the flag's text into the
    field's value (e.g. ``token_counts``). ``required``: the option is required on the command line although
    the Python API has a default. ``positional``: an argument, not an option. ``show_default``: append
    "(default X)" to the help (never for None, empty or boolean defaults).
    """
    meta = {"help": help, "parse": parse, "required": required, "positional": positional,
            "show_default": show_default}
    return dataclasses.field(default=default, metadata=meta)


def is_flag(f: dataclasses.Field) -> bool:
    """Whether a settings field was declared with ``flag``."""
    return "help" in f.metadata


def add_flags(parser: argparse.ArgumentParser | Any, settings_type: type) -> list[str]:
    """Add one option per ``flag`` field of ``settings_type`` to ``parser``; returns the field names."""
    names = []
    for f in dataclasses.fields(settings_type):
        if not is_flag(f):
            continue
        meta, default = f.metadata, f.default
        help_text = meta["help"]
        if meta["show_default"] and default not in (_NO_DEFAULT, None, (), "") and not isinstance(default, bool):
            shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) \
                if isinstance(default, tuple) else str(default)
            help_text += f" (default {shown})"
        kwargs: dict[str, Any] = {"help": help_text}
        if meta["parse"] is not None:
            kwargs["type"] = meta["parse"]
        if meta["positional"]:
            parser.add_argument(f.name, **kwargs)
        elif isinstance(default, bool):
            parser.add_argument("--" + f.name.replace("_", "-"), action="store_true", dest=f.name, help=help_text)
        else:
            required = meta["required"] or default is _NO_DEFAULT
            parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, required=required,
                                default=None if default is _NO_DEFAULT else default, **kwargs)
        names.append(f.name)
    return names


def token_counts(text: str) -> tuple[int, ...]:
    """'512,1k,2k' → (512, 1024, 2048): comma-separated token counts, 'k' = 1024."""
    out = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(int(float(part[:-1]) * 1024) if part.endswith("k") else int(part))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a token count: {part!r} (use e.g. 512,1k,4096)") from exc
    if not out:
        raise argparse.ArgumentTypeError("give at least one value")
    return tuple(out)


def numbers(text: str) -> tuple[float, ...]:
    """'0,50,100' → (0.0, 50.0, 100.0)."""
    try:
        out = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from exc
    if not out:
        raise argparse.ArgumentTypeError("give at least one value")
    return out


def names(text: str) -> tuple[str, ...]:
    """'a, b,c' → ('a', 'b', 'c')."""
    return tuple(p.strip() for p in text.split(",") if p.strip())
