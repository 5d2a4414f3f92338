"""`results.md`, `results.json` and `results.png` of `gateau bench e2e`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .arms import ARMS
from .stats import MDE_FACTOR, hierarchical_bootstrap, mean_std

METRICS = ("qa_f1", "qa_em", "hotpotqa_f1", "squad_f1", "needle", "ruler", "chat_nll", "mtbench_rouge")
PLOTTED = (("qa_f1", "held-out QA F1"), ("needle", "needle recall (×100)"), ("ruler", "RULER 1–2k (0–100)"),
           ("chat_nll", "held-out ShareGPT reply NLL (lower is better)"))
# (a, b): "a beats b" is the paper's ordering (or, for the LongCE rows, this tool's claim) that the report tests.
COMPARISONS = (("gateau", "random"), ("gateau", "full"), ("gateau", "full-steps"), ("gateau", "hmg"),
               ("gateau", "cam"), ("gateau-10", "random-10"), ("gateau-50", "random-50"),
               ("gateau", "gateau-paper"), ("gateau", "gateau-paper-limited"), ("gateau+longce", "gateau"),
               ("full+longce", "full"))
GROUP_ORDER = ("untrained", "ratio", "compute", "ablation", "longce", "baseline")


def item_matrix(rows: list[dict[str, Any]], arm: str, keys: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """(seeds × items) F1 of ``arm`` (0–1) over ``keys`` (default: the items of its first seed, sorted)."""
    runs = [r["per_item"] for r in rows if r["arm"] == arm]
    if not runs:
        return np.zeros((0, 0)), []
    keys = sorted(runs[0]) if keys is None else keys
    return np.array([[p[k]["f1"] for k in keys] for p in runs], dtype=float), keys


def compare(rows: list[dict[str, Any]], a: str, b: str, *, n_boot: int) -> dict[str, Any] | None:
    """Hierarchical bootstrap of QA F1 (×100) for arm ``a`` minus arm ``b`` over their common items; None when an
    arm has no rows."""
    ma, keys = item_matrix(rows, a)
    mb, _ = item_matrix(rows, b)
    if not ma.size or not mb.size:
        return None
    common = sorted(set(keys) & set(next(r["per_item"] for r in rows if r["arm"] == b)))
    if not common:
        return None
    ma, _ = item_matrix(rows, a, common)
    mb, _ = item_matrix(rows, b, common)
    ci = hierarchical_bootstrap(ma, mb, n_boot=n_boot, seed=0)
    ci = {k: (100 * v if k in ("diff", "lo", "hi", "se", "mde") else v) for k, v in ci.items()}
    ci["holds"] = ci["diff"] > 0
    ci["significant"] = ci["lo"] > 0 or ci["hi"] < 0
    return ci


def comparisons(rows: list[dict[str, Any]], n_boot: int) -> dict[str, dict[str, Any]]:
    """``"A_vs_B"`` -> `compare`'s interval for each pair of `COMPARISONS` whose two arms both have rows."""
    out = {}
    for a, b in COMPARISONS:
        ci = compare(rows, a, b, n_boot=n_boot)
        if ci is not None:
            out[f"{a}_vs_{b}"] = ci
    return out


def _group(arm: str) -> str:
    return "untrained" if arm == "untrained" else ARMS[arm].group if arm in ARMS else "baseline"


def summarize(rows: list[dict[str, Any]], *, n_boot: int = 2000) -> dict[str, Any]:
    arms = sorted(dict.fromkeys(r["arm"] for r in rows), key=lambda a: GROUP_ORDER.index(_group(a)))
    table = {}
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm]
        table[arm] = {"seeds": [r["seed"] for r in mine],
                      "group": _group(arm),
                      **{m: dict(zip(("mean", "std"), mean_std([r[m] for r in mine]))) for m in METRICS},
                      "train_seconds": float(sum(r.get("train_seconds", 0.0) for r in mine)),
                      "eval_seconds": float(sum(r.get("eval_seconds", 0.0) for r in mine)),
                      "mix": mine[0].get("mix", {})}
    return {"arms": table, "ci": comparisons(rows, n_boot)}


def _fmt(stat: dict[str, float], digits: int = 2) -> str:
    if not np.isfinite(stat["mean"]):
        return "—"  # not evaluated for this arm (RULER and MT-Bench run for the heavy-eval arms only)
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def ci_lines(cis: dict[str, dict[str, Any]], n_boot: int) -> list[str]:
    """The hierarchical-bootstrap paragraph of a report: the method, then one line per comparison."""
    lines = [f"Hierarchical bootstrap of QA F1 (each resample draws the items with replacement, the same items for "
             f"both arms, and each arm's seeds with replacement within the arm; the statistic is the mean over the "
             f"drawn seeds and items; {n_boot} resamples, seed 0, 95% percentile interval). SE = the std of the "
             f"resampled differences; smallest detectable ΔF1 = (z_0.975 + z_0.80) · SE = {MDE_FACTOR:.2f} · SE "
             "(a two-sided test at α = 0.05 with 80% power):", ""]
    for name, ci in cis.items():
        a, b = name.split("_vs_")
        verdict = ("holds" if ci["holds"] else "does not hold") + (
            ", the CI excludes 0" if ci["significant"] else ", the CI includes 0")
        lines.append(f"- {a} vs {b}: ΔF1 = {ci['diff']:+.2f} [{ci['lo']:+.2f}, {ci['hi']:+.2f}], SE {ci['se']:.2f}, "
                     f"smallest detectable ΔF1 {ci['mde']:.2f} (items {ci['n']}, seeds {ci['seeds_a']} vs "
                     f"{ci['seeds_b']}): {a} > {b} {verdict}.")
    return lines


def _header(meta: dict[str, Any]) -> str:
    """The settings and time line above the tables."""
    cfg = meta["config"]
    layers = (f"LoRA rank {cfg['lora_r']}" if cfg.get("lora_r") else f"the last {cfg['train_last_layers']} layers"
              if cfg["train_last_layers"] else "every layer")
    text = (f"Model {cfg['model_name']}; pool {sum(meta['pool_kinds'].values())} samples {meta['pool_kinds']}; "
            f"{meta['n_eval']} held-out QA items; ratio {cfg['ratio']}; seeds {list(cfg['seeds'])} "
            "(gateau, random, full), "
            f"{list(cfg.get('other_seeds', cfg['seeds']))} (the other arms); short data: "
            f"ShareGPT first {cfg['short_count']}; epochs {cfg['epochs']}, max steps {cfg['max_steps']}, "
            f"lr {cfg['lr']}, "
            f"training {layers}, loss weighting {cfg['loss_weighting']}, max length {cfg['max_length']}; time: "
            f"{meta['stage_seconds']:.0f} s over all calls (scoring {meta['score_seconds']:.0f} s + every training and "
            f"evaluation, model loading included; pool building and selection not counted), "
            f"{meta['wall_seconds']:.0f} s wall in this call.")
    return text + (" **--quick: tiny random model, the numbers mean nothing.**" if cfg.get("quick") else "")


def _num(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if np.isfinite(value) else "—"


def write_report(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any], *, n_boot: int = 2000) -> dict[str, Any]:
    summary = summarize(rows, n_boot=n_boot)
    results = {**meta, **summary, "rows": rows}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    cfg = meta["config"]
    lines = ["# gateau bench e2e", "", _header(meta), "",
             "| arm | group | seeds | QA F1 | QA EM | HotpotQA F1 | SQuAD F1 | needle | RULER | chat NLL "
             "| MT-Bench ROUGE-L | train s | eval s | long samples (far/near/ctx-free/wrong/unsup.) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm, t in summary["arms"].items():
        mix = t["mix"]
        mix_s = "/".join(str(mix.get(k, 0)) for k in ("far", "near", "context_free", "wrong", "unsupported"))
        cells = " | ".join(_fmt(t[m], 3 if m == "chat_nll" else 2) for m in METRICS)
        lines.append(f"| {arm} | {t['group']} | {len(t['seeds'])} | " + cells
                     + f" | {t['train_seconds']:.0f} | {t['eval_seconds']:.0f} | {mix_s} |")
    lines += [""] + ci_lines(summary["ci"], n_boot)
    lines += ["", "Per seed:", "", "| arm | seed | QA F1 | QA EM | needle | RULER | chat NLL | MT-Bench ROUGE-L | "
              "train s | eval s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['seed'] if r['seed'] is not None else ''} | {r['qa_f1']:.2f} | "
                     f"{r['qa_em']:.2f} | {r['needle']:.1f} | {_num(r['ruler'], 1)} | {r['chat_nll']:.3f} | "
                     f"{_num(r['mtbench_rouge'], 1)} | {r.get('train_seconds', 0):.0f} | "
                     f"{r.get('eval_seconds', 0):.0f} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    _plot(out / "results.png", summary, cfg)
    return results


def _plot(path: Path, summary: dict[str, Any], cfg: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(summary["arms"])
    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(5 * len(PLOTTED), 4))
    for ax, (metric, title) in zip(axes, PLOTTED):
        means = [summary["arms"][a][metric]["mean"] for a in arms]
        stds = [summary["arms"][a][metric]["std"] for a in arms]
        colors = ["tab:red" if a == "gateau" else "tab:gray" if a == "untrained" else "tab:blue" for a in arms]
        ax.bar(range(len(arms)), means, yerr=stds, color=colors, capsize=3)
        ax.set_xticks(range(len(arms)), arms, rotation=35, ha="right")
        ax.set_title(title)
    fig.suptitle(f"gateau bench e2e: {cfg['model_name']}, mean ± std over seeds"
                 + (" (--quick: tiny random model)" if cfg.get("quick") else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
