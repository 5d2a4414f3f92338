"""`gateau bench e2e --sweep`: choose a recipe that keeps the model's abilities before any arm is compared.

The ``full`` and ``no_long`` arms (seed 0, no scoring needed) are trained under a small grid of learning rate ×
what is trained (the last N decoder layers, or LoRA of a rank) × epochs, and each model is evaluated on the first
``n_eval`` held-out QA items, the needle cells and the held-out chats (RULER and MT-Bench are left out; the
untrained model gets them, to time them for the estimate). A point passes when, for both arms, needle recall is at
least `NEEDLE_MIN` and the chat NLL at most `CHAT_NLL_MAX_RISE` above the untrained model's, and the full arm's
QA F1 moved at least `QA_MIN_MOVE` points from the untrained model's. The chosen recipe: the passing point with the
largest QA F1 gain of the full arm (else the point that passes the most criteria, then the largest gain).

Resumable (each point × arm keeps ``result.json``; every model folder is kept). Writes ``OUT/sweep/sweep.md`` and
``sweep.json``, with the full form's wall-time estimate (`estimate`) from the times measured here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ...util.atomic import atomic_write
from .estimate import estimate_full_form, measured_timings
from .evaluate import evaluate_model
from .pool import read_jsonl, write_pool
from .run import E2EConfig, short_only_file, train_model
from .shared_prefix import PrefixStore, store_for

NEEDLE_MIN = 75.0
CHAT_NLL_MAX_RISE = 0.05
QA_MIN_MOVE = 2.0
SWEEP_N_EVAL = 50


@dataclass(frozen=True)
class SweepPoint:
    """One recipe: peak ``lr``; ``train_last_layers`` N or LoRA rank ``lora_r`` (one of them, or neither: every
    layer); ``epochs``."""

    lr: float
    train_last_layers: int | None = 4
    lora_r: int | None = None
    epochs: float = 1.0

    @property
    def name(self) -> str:
        what = f"lora{self.lora_r}" if self.lora_r else f"last{self.train_last_layers}" if self.train_last_layers \
            else "all"
        return f"lr{self.lr:g}-{what}-ep{self.epochs:g}"


# lr x the last 4 or 2 layers: both keep the lower layers frozen, so the sweep and the full form use the prefix store
# and the frozen-prefix cache (LoRA on every layer, `--sweep-recipes lora16`, trains and evaluates ~3x slower here).
DEFAULT_GRID = tuple(SweepPoint(lr, layers, None, 1.0) for lr in (5e-5, 1e-4, 2e-4) for layers in (4, 2))


def parse_grid(lrs: str | None, recipes: str | None, epochs: str | None) -> tuple[SweepPoint, ...]:
    """A grid from comma lists: ``lrs`` (floats), ``recipes`` (``lastN``, ``loraR`` or ``all``), ``epochs``;
    None = the default grid's values."""
    lr_values = [float(x) for x in lrs.split(",")] if lrs else sorted({p.lr for p in DEFAULT_GRID})
    recipe_values = recipes.split(",") if recipes else ["last4", "last2"]
    epoch_values = [float(x) for x in epochs.split(",")] if epochs else [1.0]
    points = []
    for lr in lr_values:
        for recipe in recipe_values:
            recipe = recipe.strip()
            if recipe == "all":
                layers, rank = None, None
            elif recipe.startswith("last") and recipe[4:].isdigit():
                layers, rank = int(recipe[4:]), None
            elif recipe.startswith("lora") and recipe[4:].isdigit():
                layers, rank = None, int(recipe[4:])
            else:
                raise ValueError(f"unknown sweep recipe {recipe!r}; use lastN, loraR or all")
            points.extend(SweepPoint(lr, layers, rank, ep) for ep in epoch_values)
    return tuple(points)


def _evaluate(model: str, where: Path, eval_items, chats, mtbench, config: E2EConfig, heavy: bool,
              store: PrefixStore | None) -> dict[str, Any]:
    result_file = where / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    res = evaluate_model(model, where / "eval", eval_items, chats, mtbench, config.plan, device=config.device,
                         progress=config.progress, heavy=heavy, store=store, hub=config.hub)
    return res


def run_sweep(config: E2EConfig, grid: tuple[SweepPoint, ...] = DEFAULT_GRID, *,
              n_eval: int = SWEEP_N_EVAL) -> dict[str, Any]:
    """Run (or resume) the sweep into ``config.out/sweep``; returns what ``sweep.json`` holds."""
    import time

    out = Path(config.out)
    sweep_dir = out / "sweep"
    model = config.model
    if model == "tiny":
        from .tiny import build_tiny_model_dir

        model = str(build_tiny_model_dir(out / "tiny-model"))
    paths = write_pool(out / "pool", config.pool)
    eval_items = read_jsonl(paths["eval"])[:n_eval]
    chats, mtbench = read_jsonl(paths["chat"]), read_jsonl(paths["mtbench"])
    untrained_dir = sweep_dir / "untrained"
    last = [p.train_last_layers for p in grid if p.train_last_layers]  # the store serves every lastN point
    store = store_for(model, max(last), device=config.device, hub=config.hub) if last else None
    untrained = _evaluate(model, untrained_dir, eval_items, chats, mtbench, config, heavy=True, store=store)
    atomic_write(untrained_dir / "result.json", json.dumps(untrained) + "\n")
    _say(f"untrained: QA F1 {untrained['qa_f1']:.2f}, needle {untrained['needle']:.1f}, chat NLL "
         f"{untrained['chat_nll']:.3f}")
    from ...train.frozen_prefix import FrozenPrefixCache

    rows = []
    prefix_cache = FrozenPrefixCache()  # shared by every lastN point: one base model
    for point in grid:
        recipe = replace(config, lr=point.lr, train_last_layers=point.train_last_layers, lora_r=point.lora_r,
                         epochs=point.epochs)
        for arm in ("full", "no_long"):
            where = sweep_dir / point.name / arm
            if (where / "result.json").is_file():
                rows.append(json.loads((where / "result.json").read_text()))
                continue
            data = paths["data"] if arm == "full" else short_only_file(out / "arms" / "no_long" / "short.jsonl",
                                                                       config.short_count)
            _say(f"{point.name} {arm}: training on {data}")
            t = time.perf_counter()
            summary = train_model(recipe, model, data, where / "model", 0, short=arm == "full",
                                  prefix_cache=prefix_cache)
            train_seconds = round(time.perf_counter() - t, 1)
            res = {"point": point.name, "recipe": asdict(point), "arm": arm, "seed": 0, "train_seconds": train_seconds,
                   "train_steps": summary.get("steps"),
                   **_evaluate(str(where / "model"), where, eval_items, chats, mtbench, config, heavy=False,
                               store=store)}
            atomic_write(where / "result.json", json.dumps(res) + "\n")
            rows.append(res)
            _say(f"{point.name} {arm}: QA F1 {res['qa_f1']:.2f}, needle {res['needle']:.1f}, chat NLL "
                 f"{res['chat_nll']:.3f} (train {train_seconds:.0f} s, eval {res['eval_seconds']:.0f} s)")
    table = sweep_table(rows, untrained)
    chosen = choose(table)
    timings, estimate = {}, None
    if chosen:  # the full form as it would run: its config with the chosen recipe, timed on that recipe's runs
        timings = measured_timings([r for r in rows if r["point"] == chosen["point"]], untrained,
                                   n_eval=len(eval_items))
        recipe = chosen["recipe"]
        full_form = replace(config, lr=recipe["lr"], train_last_layers=recipe["train_last_layers"],
                            lora_r=recipe["lora_r"], epochs=recipe["epochs"])
        estimate = estimate_full_form(full_form, timings) if timings else None
    results = {"untrained": {k: untrained[k] for k in ("qa_f1", "needle", "chat_nll", "ruler", "mtbench_rouge")},
               "criteria": {"needle_min": NEEDLE_MIN, "chat_nll_max_rise": CHAT_NLL_MAX_RISE,
                            "qa_min_move": QA_MIN_MOVE}, "n_eval": len(eval_items), "table": table,
               "chosen": chosen, "timings": timings, "estimate": estimate, "rows": rows}
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(sweep_dir / "sweep.json", json.dumps(results, indent=1) + "\n")
    atomic_write(sweep_dir / "sweep.md", "\n".join(sweep_lines(results)) + "\n")
    _say(f"wrote {sweep_dir / 'sweep.md'}" + (f"; chosen recipe {chosen['point']}" if chosen else ""))
    if estimate:
        _say(f"estimated full form: {estimate['total_s'] / 3600:.2f} h on this machine")
    return results


def _say(msg: str) -> None:
    print(f"gateau bench e2e --sweep: {msg}", flush=True)


def sweep_table(rows: list[dict[str, Any]], untrained: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per point with both arms' metrics and the criteria it passes."""
    points = list(dict.fromkeys(r["point"] for r in rows))
    table = []
    for name in points:
        arms = {r["arm"]: r for r in rows if r["point"] == name}
        if set(arms) != {"full", "no_long"}:
            continue
        needle_ok = all(arms[a]["needle"] >= NEEDLE_MIN for a in arms)
        chat_ok = all(arms[a]["chat_nll"] <= untrained["chat_nll"] + CHAT_NLL_MAX_RISE for a in arms)
        qa_gain = arms["full"]["qa_f1"] - untrained["qa_f1"]
        table.append({"point": name, "recipe": arms["full"]["recipe"],
                      **{f"{a}_{m}": arms[a][m] for a in ("full", "no_long") for m in ("qa_f1", "needle", "chat_nll")},
                      "full_qa_gain": qa_gain, "needle_ok": needle_ok, "chat_ok": chat_ok,
                      "qa_moved": abs(qa_gain) >= QA_MIN_MOVE,
                      "passes": needle_ok and chat_ok and abs(qa_gain) >= QA_MIN_MOVE})
    return table


def choose(table: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The chosen point (see the module docstring) with the reason, or None for an empty table."""
    if not table:
        return None
    best = max(table, key=lambda t: (t["needle_ok"] + t["chat_ok"] + t["qa_moved"], t["full_qa_gain"]))
    why = ("passes every criterion with the largest QA F1 gain of the full arm" if best["passes"] else
           "no point passes every criterion; this one passes the most "
           f"({best['needle_ok'] + best['chat_ok'] + best['qa_moved']} of 3), then has the largest QA F1 gain")
    return {"point": best["point"], "recipe": best["recipe"], "why": why}


def sweep_lines(results: dict[str, Any]) -> list[str]:
    u = results["untrained"]
    c = results["criteria"]
    lines = ["# gateau bench e2e --sweep", "",
             f"Untrained: QA F1 {u['qa_f1']:.2f} ({results['n_eval']} items), needle {u['needle']:.1f}, chat NLL "
             f"{u['chat_nll']:.3f}. Criteria: needle ≥ {c['needle_min']:g} and chat NLL ≤ untrained + "
             f"{c['chat_nll_max_rise']:g} for full and no_long; |full QA F1 − untrained| ≥ {c['qa_min_move']:g}.",
             "",
             "| recipe | full QA F1 | full needle | full chat NLL | no_long QA F1 | no_long needle | no_long chat NLL "
             "| needle ok | chat ok | QA moved | passes |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    yes = {True: "yes", False: "no"}
    for t in results["table"]:
        lines.append(f"| {t['point']} | {t['full_qa_f1']:.2f} | {t['full_needle']:.1f} | {t['full_chat_nll']:.3f} | "
                     f"{t['no_long_qa_f1']:.2f} | {t['no_long_needle']:.1f} | {t['no_long_chat_nll']:.3f} | "
                     f"{yes[t['needle_ok']]} | {yes[t['chat_ok']]} | {yes[t['qa_moved']]} | {yes[t['passes']]} |")
    if results["chosen"]:
        lines += ["", f"Chosen: **{results['chosen']['point']}**: {results['chosen']['why']}."]
    if results["estimate"]:
        e = results["estimate"]
        lines += ["", f"Full-form estimate from these times: {e['total_s']:.0f} s = {e['total_s'] / 3600:.2f} h "
                  f"({e['trainings']} trainings, {e['evaluations']} evaluations; training {e['train_s']:.0f} s, "
                  f"evaluation {e['eval_s']:.0f} s, scoring {e['score_s']:.0f} s). Model: {e['model']}."]
    return lines
