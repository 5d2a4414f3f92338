"""Experiment trackers for `gateau train` (``--report-to``): which transformers integration, and whether it can run.

transformers' own callbacks do the logging: ``tensorboard`` writes event files to ``OUT/runs/<date>_<host>/``,
``wandb`` and ``trackio`` send the metrics where their environment variables say (``WANDB_PROJECT``,
``TRACKIO_PROJECT``, ...). ``none`` (the default) logs only to ``train_log.jsonl``.
"""

from __future__ import annotations

import importlib.util

from .recipe import ConfigError

# tracker -> (module that must be importable, pip package)
_NEEDS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"), "trackio": ("trackio", "trackio")}


def report_to(tracker: str) -> list[str]:
    """The ``report_to`` value of transformers' arguments for ``--report-to tracker``."""
    return [] if tracker == "none" else [tracker]


def check_tracker(tracker: str) -> None:
    """ConfigError naming the package to install when ``tracker``'s package is missing."""
    if tracker == "none":
        return
    module, package = _NEEDS[tracker]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"--report-to {tracker} needs the `{package}` package: pip install {package}")
