"""The arms of `gateau bench e2e`: what each one trains on, with which loss, for how long, over how many seeds and
with which evaluations. One table (`ARMS`); the runner and the report read it and never branch on an arm's name.

Rows of the report, by ``group``:

- ``ratio``: gateau and random at 10%, 30% (``gateau``, ``random``) and 50% of the pool, every selection trained
  the same number of epochs (as the paper does: a larger selection takes more optimizer steps);
- ``compute``: ``full`` (the whole pool, the same epochs: "selection vs more data") and ``full-steps`` (the whole
  pool for as many optimizer steps, so as many sequences, as the 30% gateau arm: "selection vs equal compute");
- ``ablation``: w/o CAM (``hmg``), w/o HMG (``cam``), the ``paper`` preset and the ``paper-limited`` preset
  (α = 0.7, the paper's limited-short-data setting) at 30%;
- ``longce``: ``gateau+longce`` and ``full+longce``, the 30% gateau selection and the whole pool trained with
  LongCE (`gateau.train.longce`);
- ``baseline``: ``no_long`` (short data only), and the other scorers ``ppl``, ``ifd`` (not in the default arms).
"""

from __future__ import annotations

from dataclasses import dataclass

DATA_SELECT, DATA_FULL, DATA_NONE = "select", "full", "none"


@dataclass(frozen=True)
class Arm:
    """One arm. ``ratio`` None = the config's ratio; ``main`` arms get the config's ``seeds`` (≥ 5 in the full
    form), the others its ``other_seeds``; ``heavy_eval`` adds RULER and MT-Bench to QA, needle and chat NLL."""

    name: str
    group: str
    data: str
    method: str | None = None
    ratio: float | None = None
    preset: str | None = None
    loss: str = "ce"
    equal_steps: bool = False
    main: bool = False
    heavy_eval: bool = False
    seeded_selection: bool = False
    """A new selection per seed (random)."""


ARMS: dict[str, Arm] = {a.name: a for a in (
    Arm("gateau", "ratio", DATA_SELECT, "gateau", main=True, heavy_eval=True),
    Arm("random", "ratio", DATA_SELECT, "random", main=True, heavy_eval=True, seeded_selection=True),
    Arm("full", "compute", DATA_FULL, main=True, heavy_eval=True),
    Arm("no_long", "baseline", DATA_NONE, heavy_eval=True),
    Arm("gateau-10", "ratio", DATA_SELECT, "gateau", ratio=0.1),
    Arm("gateau-50", "ratio", DATA_SELECT, "gateau", ratio=0.5),
    Arm("random-10", "ratio", DATA_SELECT, "random", ratio=0.1, seeded_selection=True),
    Arm("random-50", "ratio", DATA_SELECT, "random", ratio=0.5, seeded_selection=True),
    Arm("full-steps", "compute", DATA_FULL, equal_steps=True),
    Arm("hmg", "ablation", DATA_SELECT, "hmg"),
    Arm("cam", "ablation", DATA_SELECT, "cam"),
    Arm("gateau-paper", "ablation", DATA_SELECT, "gateau", preset="paper"),
    Arm("gateau-paper-limited", "ablation", DATA_SELECT, "gateau", preset="paper-limited"),
    Arm("gateau+longce", "longce", DATA_SELECT, "gateau", loss="longce"),
    Arm("full+longce", "longce", DATA_FULL, loss="longce"),
    Arm("ppl", "baseline", DATA_SELECT, "ppl"),
    Arm("ifd", "baseline", DATA_SELECT, "ifd"),
)}
DEFAULT_ARMS = tuple(name for name in ARMS if name not in ("ppl", "ifd"))
HEAVY_ARMS = tuple(name for name, arm in ARMS.items() if arm.heavy_eval)


def selection_dir(arm: Arm) -> str:
    """The folder under ``arms/`` that holds an arm's selection: its own, or the one it shares (a LongCE arm trains
    on the selection of the arm without LongCE)."""
    return "gateau" if arm.name == "gateau+longce" else arm.name
