"""The registry of evaluations (lm-evaluation-harness's task registry is the model).

A module (or package) of ``gateau.eval`` registers its evaluation with the ``@register`` class decorator;
``evaluations()`` imports every module of the package once so that their decorators run, and returns the
evaluations by command name. Adding an evaluation is adding its module: nothing else lists it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .task import Evaluation

_REGISTRY: dict[str, type[Evaluation]] = {}


def register(cls: type[Evaluation]) -> type[Evaluation]:
    """Class decorator: make ``cls`` the evaluation of ``gateau eval {cls.command}``."""
    other = _REGISTRY.get(cls.command)
    if other is not None and other is not cls:
        raise RuntimeError(f"gateau eval {cls.command}: registered twice ({other.__module__}, {cls.__module__})")
    _REGISTRY[cls.command] = cls
    return cls


def evaluations() -> dict[str, type[Evaluation]]:
    """Every registered evaluation by command name, in command-name order."""
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{info.name}")
    return dict(sorted(_REGISTRY.items()))
