"""Scoring methods by name: every module of this package that defines a `Method` subclass with a ``name`` is
registered on import, so a new method is one module (plus its test) and nothing else."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import fields
from typing import Any

from ..errors import UsageError
from .base import Method, merge_requests

_HELPERS = {"base", "normalize", "presets"}  # modules of this package that hold no method


def _discover() -> dict[str, type[Method]]:
    found: dict[str, type[Method]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _HELPERS:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Method) and obj.__module__ == module.__name__:
                if obj.name in found:
                    raise RuntimeError(f"two methods are named {obj.name!r}: {found[obj.name]} and {obj}")
                found[obj.name] = obj
    return found


METHODS: dict[str, type[Method]] = _discover()


def get_method(name: str) -> Method:
    """A method instance by name; ValueError listing the known names otherwise."""
    try:
        return METHODS[name]()
    except KeyError:
        raise UsageError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None


def parse_methods(names: tuple[str, ...] | list[str]) -> list[Method]:
    """Method names -> instances (duplicates removed, order kept)."""
    names = list(dict.fromkeys(names))
    if not names:
        raise UsageError("--methods is empty")
    return [get_method(n) for n in names]


def method_options(name: str, preset: str | None = None, strict: bool = True, **overrides: Any) -> Any:
    """The options of method ``name`` from a preset and overrides (see `Method.options`)."""
    return type(get_method(name)).options(preset, strict, **overrides)


def all_option_fields() -> dict[str, Any]:
    """Every option field of every method, by name (first declaration wins): the `gateau select` flags."""
    out: dict[str, Any] = {}
    for cls in METHODS.values():
        for f in fields(cls.Options):
            out.setdefault(f.name, f)
    return out


def all_presets() -> list[str]:
    return sorted({p for cls in METHODS.values() for p in cls.presets})


__all__ = ["METHODS", "Method", "all_option_fields", "all_presets", "get_method", "merge_requests",
           "method_options", "parse_methods"]
