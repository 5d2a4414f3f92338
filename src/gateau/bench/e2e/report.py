"""`results.md`, `results.json` and `results.png` of `gateau bench e2e`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .stats import mean_std, paired_bootstrap

METRICS = ("qa_f1", "qa_em", "hotpotqa_f1", "squad_f1", "needle", "ruler", "chat_nll", "mtbench_rouge")
PLOTTED = (("qa_f1", "held-out QA F1"), ("needle", "needle recall (×100)"), ("ruler", "RULER 1–2k (0–100)"),
           ("chat_nll", "held-out ShareGPT reply NLL (lower is better)"))
COMPARISONS = (("gateau", "random"), ("gateau", "full"))


def _item_means(rows: list[dict[str, Any]], arm: str) -> dict[str, float]:
    """Per eval item F1 of ``arm``, averaged over its seeds."""
    runs = [r["per_item"] for r in rows if r["arm"] == arm]
    return {k: float(np.mean([p[k]["f1"] for p in runs])) for k in runs[0]} if runs else {}


def summarize(rows: list[dict[str, Any]], *, n_boot: int = 2000) -> dict[str, Any]:
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    table = {}
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm]
        table[arm] = {"seeds": [r["seed"] for r in mine],
                      **{m: dict(zip(("mean", "std"), mean_std([r[m] for r in mine]))) for m in METRICS},
                      "train_seconds": float(sum(r.get("train_seconds", 0.0) for r in mine)),
                      "eval_seconds": float(sum(r.get("eval_seconds", 0.0) for r in mine)),
                      "mix": mine[0].get("mix", {})}
    cis = {}
    for a, b in COMPARISONS:
        ia, ib = _item_means(rows, a), _item_means(rows, b)
        keys = sorted(set(ia) & set(ib))
        if not keys:
            continue
        ci = paired_bootstrap([ia[k] for k in keys], [ib[k] for k in keys], n_boot=n_boot, seed=0)
        ci = {k: (100 * v if k in ("diff", "lo", "hi") else v) for k, v in ci.items()}
        ci["holds"] = ci["diff"] > 0
        ci["significant"] = ci["lo"] > 0
        cis[f"{a}_vs_{b}"] = ci
    return {"arms": table, "ci": cis}


def _fmt(stat: dict[str, float], digits: int = 2) -> str:
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _header(meta: dict[str, Any]) -> str:
    """The settings and time line above the tables."""
    cfg = meta["config"]
    layers = f"the last {cfg['train_last_layers']} layers" if cfg["train_last_layers"] else "every layer"
    text = (f"Model {cfg['model_name']}; pool {sum(meta['pool_kinds'].values())} samples {meta['pool_kinds']}; "
            f"{meta['n_eval']} held-out QA items; ratio {cfg['ratio']}; seeds {list(cfg['seeds'])}; short data: "
            f"ShareGPT first {cfg['short_count']}; epochs {cfg['epochs']}, max steps {cfg['max_steps']}, "
            f"lr {cfg['lr']}, "
            f"training {layers}, loss weighting {cfg['loss_weighting']}, max length {cfg['max_length']}; time: "
            f"{meta['stage_seconds']:.0f} s over all calls (scoring {meta['score_seconds']:.0f} s + every training and "
            f"evaluation, model loading included; pool building and selection not counted), "
            f"{meta['wall_seconds']:.0f} s wall in this call.")
    return text + (" **--quick: tiny random model, the numbers mean nothing.**" if cfg.get("quick") else "")


def write_report(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any], *, n_boot: int = 2000) -> dict[str, Any]:
    summary = summarize(rows, n_boot=n_boot)
    results = {**meta, **summary, "rows": rows}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    cfg = meta["config"]
    lines = ["# gateau bench e2e", "", _header(meta), "",
             "| arm | seeds | QA F1 | QA EM | HotpotQA F1 | SQuAD F1 | needle | RULER | chat NLL | MT-Bench ROUGE-L "
             "| train s | eval s | long samples (far/near/ctx-free/wrong/unsup.) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm, t in summary["arms"].items():
        mix = t["mix"]
        mix_s = "/".join(str(mix.get(k, 0)) for k in ("far", "near", "context_free", "wrong", "unsupported"))
        cells = " | ".join(_fmt(t[m], 3 if m == "chat_nll" else 2) for m in METRICS)
        lines.append(f"| {arm} | {len(t['seeds'])} | " + cells
                     + f" | {t['train_seconds']:.0f} | {t['eval_seconds']:.0f} | {mix_s} |")
    lines += ["", "Paired bootstrap over eval items (QA F1, each arm averaged over its seeds; "
              f"{n_boot} resamples, seed 0, 95% percentile interval):", ""]
    for name, ci in summary["ci"].items():
        lines.append(f"- {name.replace('_vs_', ' vs ')}: Δ F1 = {ci['diff']:+.2f} [{ci['lo']:+.2f}, {ci['hi']:+.2f}]"
                     f" (n={ci['n']}); the paper's ordering {'holds' if ci['holds'] else 'does not hold'} here"
                     f"{' and the CI excludes 0' if ci['significant'] else ', CI includes 0' if ci['lo'] <= 0 <= ci['hi'] else ''}.")
    lines += ["", "Per seed:", "", "| arm | seed | QA F1 | QA EM | needle | RULER | chat NLL | MT-Bench ROUGE-L | "
              "train s | eval s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['seed'] if r['seed'] is not None else ''} | {r['qa_f1']:.2f} | "
                     f"{r['qa_em']:.2f} | {r['needle']:.1f} | {r['ruler']:.1f} | {r['chat_nll']:.3f} | "
                     f"{r['mtbench_rouge']:.1f} | {r.get('train_seconds', 0):.0f} | {r.get('eval_seconds', 0):.0f} |")
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
    fig.suptitle(f"gateau bench e2e: {cfg['model_name']}, mean ± std over seeds {list(cfg['seeds'])}"
                 + (" (--quick: tiny random model)" if cfg.get("quick") else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
