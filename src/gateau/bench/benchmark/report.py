"""The benchmark's report text: settings and markdown tables of the result rows, per-type percentile tables, the
"recommended defaults" paragraph (`recommend`), and `write_report`, which writes results.md, results.json and
(through `gateau.bench.benchmark.plot`) results.png into the benchmark directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...config import SelectConfig
from ...methods import method_options
from ..synth import LONG_DEPENDENT_TYPES, SAMPLE_TYPES
from .stats import hanley_mcneil_se
from .variants import MAIN_WINDOW, sort_rows

DEFAULT_METHOD = SelectConfig.method  # the tool's default method, whose defaults the benchmark checks

RESULTS_MD, RESULTS_JSON, RESULTS_PNG = "results.md", "results.json", "results.png"


def settings_text(row: dict[str, Any]) -> str:
    """Short human text of a row's settings, e.g. ``norm=rank α=0.8 attn=softmax sink=0``."""
    names = {"norm": "norm", "temperature": "T", "segment_temperature": "T_seg", "alpha": "α", "is_norm": "IS",
             "attn_norm": "attn", "attn_sink_tokens": "sink", "seed": "seed",
             "ifd_keep_above_one": "keep>1", "attn_calibration": "calib", "token_aggregate": "tok",
             "top_k": "k", "key_gain": "gain_t", "key_logp": "logp_t", "token_weight": "w_tok"}
    parts = []
    for k, v in row["settings"].items():
        if k == "temperature" and row["settings"].get("norm") in ("log-rank", "rank", "zscore", "raw"):
            continue  # no softmax taken: the temperature does not apply
        if _inapplicable(k, row["settings"]):
            continue
        parts.append(f"{names.get(k, k)}={_fmt_value(v)}")
    return " ".join(parts) or "—"


def _inapplicable(name: str, settings: dict[str, Any]) -> bool:
    """Token options that do not act under the row's aggregate (top_k outside topk, thresholds outside key-*)."""
    aggregate = settings.get("token_aggregate")
    if aggregate is None:
        return False
    if name == "top_k":
        return aggregate != "topk"
    if name in ("key_gain", "key_logp"):
        return not aggregate.startswith("key-")
    return False


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _pct(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{100 * v:.0f}%"


def _method_label(row: dict[str, Any]) -> str:
    return row["method"] + (" *" if row.get("extra") else "")


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The variants as a markdown table (in the order given)."""
    head = "| # | method | W | settings | preset | AUROC ± SE | P@10% | P@30% | P@50% | ranked |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for i, r in enumerate(rows, 1):
        auroc = "nan" if not np.isfinite(r["auroc"]) else f"{r['auroc']:.3f} ± {r['auroc_se']:.3f}"
        lines.append(f"| {i} | {_method_label(r)} | {r['window'] or '—'} | {settings_text(r)} | "
                     f"{r['preset'] or ''} | {auroc} | {_pct(r['p10'])} | {_pct(r['p30'])} | {_pct(r['p50'])} | "
                     f"{r['n_ranked']}/{r['n']} |")
    return "\n".join(lines)


def type_table(rows: Sequence[dict[str, Any]]) -> str:
    """Mean percentile (100 = ranked first) of each sample type, per variant; positives marked (+)."""
    types = [t for t in SAMPLE_TYPES if any(t in r["type_pct"] for r in rows)]
    head = "| method | W | settings | " + " | ".join(
        f"{t} ({'+' if t in LONG_DEPENDENT_TYPES else '−'})" for t in types) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(types)]
    for r in rows:
        cells = " | ".join(f"{r['type_pct'][t]:.0f}" if t in r["type_pct"] else "" for t in types)
        lines.append(f"| {_method_label(r)} | {r['window'] or '—'} | {settings_text(r)} | {cells} |")
    return "\n".join(lines)


def _describe(row: dict[str, Any]) -> str:
    where = f" at W={row['window']}" if row["window"] else ""
    return f"{row['method']} ({settings_text(row)}{where}): AUROC {row['auroc']:.3f} ± {row['auroc_se']:.3f}, " \
           f"top-30% precision {_pct(row['p30'])}"


def _wrong_types(row: dict[str, Any]) -> str:
    bad = [f"{t} {p:.0f}" for t, p in row["type_pct"].items()
           if (t in LONG_DEPENDENT_TYPES and p < 50) or (t not in LONG_DEPENDENT_TYPES and p > 50)]
    return ", ".join(bad) if bad else "none (every positive type above the 50th percentile, every negative below)"


def recommend(rows: Sequence[dict[str, Any]], main_window: int | None = None) -> tuple[str, dict[str, Any]]:
    """The "recommended defaults" paragraph and its numbers: the best registered gateau variant, whether the
    tool's default is within one SE of it, where the paper / official presets land, the best extra, and the
    sample types the recommended variant gets wrong (positives below / negatives above the 50th percentile)."""
    ranked = sort_rows([r for r in rows if np.isfinite(r["auroc"])])
    if not ranked:
        return "No variant has a defined AUROC (need both long-dependent and other samples).", {}
    position = {id(r): i + 1 for i, r in enumerate(ranked)}
    registered = [r for r in ranked if not r["extra"]]
    gateau = [r for r in registered if r["method"] == DEFAULT_METHOD]
    facts: dict[str, Any] = {"n_variants": len(ranked), "best_overall": ranked[0], "best_registered": registered[0]}
    lines = []
    if gateau:
        default = method_options(DEFAULT_METHOD)
        windows = sorted({r["window"] for r in rows if r["window"]})
        w_main = main_window or (MAIN_WINDOW if MAIN_WINDOW in windows else windows[0] if windows else None)
        top = [r for r in gateau if r["auroc"] >= gateau[0]["auroc"] - 1e-9 and r["p30"] >= gateau[0]["p30"] - 1e-9]
        best = min(top, key=lambda r: _distance(r, default, w_main))  # exact ties: the one closest to the defaults
        dflt = next((r for r in gateau if r["window"] == w_main and not r["preset"]
                     and r["settings"] and all(getattr(default, k) == v for k, v in r["settings"].items())),
                    None)
        facts.update(best_gateau=best, default_gateau=dflt)
        lines.append(f"Best gateau configuration: {_describe(best)} (#{position[id(best)]} of {len(ranked)}).")
        if dflt is not None:
            tied = best["auroc"] - dflt["auroc"] <= max(best["auroc_se"], dflt["auroc_se"], 1e-12)
            lines.append(f"The tool default ({settings_text(dflt)}, W={dflt['window']}) scores "
                         f"{dflt['auroc']:.3f} (#{position[id(dflt)]}): "
                         + ("within one SE of the best, keep it." if tied else "more than one SE below the best."))
        for preset in ("paper", "official"):
            p = next((r for r in gateau if r["preset"] == preset and r["window"] == w_main), None)
            if p is not None:
                facts[f"{preset}_gateau"] = p
                lines.append(f"`--preset {preset}` (W={p['window']}): AUROC {p['auroc']:.3f} ± {p['auroc_se']:.3f}, "
                             f"top-30% precision {_pct(p['p30'])} (#{position[id(p)]} of {len(ranked)}).")
        lines.append(f"Sample types the best gateau configuration gets wrong (mean percentile, 100 = first): "
                     f"{_wrong_types(best)}.")
        for name, row in (("the tool default", dflt), ("the paper preset", facts.get("paper_gateau"))):
            if row is not None and row is not best:
                lines.append(f"Types {name} gets wrong: {_wrong_types(row)}.")
    if registered and (not gateau or registered[0] is not gateau[0]):
        lines.append(f"Best registered variant of any method: {_describe(registered[0])}.")
    extras = [r for r in ranked if r["extra"]]
    if extras:
        e = extras[0]
        facts["best_extra"] = e
        ref = registered[0]["auroc"] if registered else float("nan")
        verdict = ("clearly better (more than one SE) than" if e["auroc"] - ref > e["auroc_se"] else
                   "on par with" if abs(e["auroc"] - ref) <= e["auroc_se"] else "worse than")
        lines.append(f"Best bench-only extra: {_describe(e)}; {verdict} the best registered variant.")
    spans = {}
    for r in registered:
        spans.setdefault(r["method"], []).append(r["auroc"])
    lines.append("AUROC range of each method over its variants: "
                 + ", ".join(f"{m} {min(v):.3f}–{max(v):.3f}" for m, v in spans.items() if len(v) > 1) + ".")
    n, n_pos = ranked[0]["n"], _n_positive(ranked[0])
    lines.append(f"With n={n} samples an AUROC near 0.8 has SE ≈{hanley_mcneil_se(0.8, n_pos, n - n_pos):.2f}; "
                 "differences below ~2 SE are noise — rerun with a larger --n before changing a default.")
    return " ".join(lines), facts


def _n_positive(row: dict[str, Any]) -> int:
    """Long-dependent samples behind a row (from its per-type counts)."""
    return sum(row.get("type_n", {}).get(t, 0) for t in LONG_DEPENDENT_TYPES)


def _distance(row: dict[str, Any], default: Any, main_window: int | None) -> tuple[int, float]:
    """How far a row's settings are from the default method's defaults (differing settings, then the summed
    numeric gaps)."""
    s = row["settings"]
    differ = sum(v != getattr(default, k) for k, v in s.items())
    gap = sum(abs(v - getattr(default, k)) for k, v in s.items() if isinstance(v, float))
    return differ + (row["window"] != main_window) + (row["preset"] is not None), gap


def write_report(out_dir: str | Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any],
                 distributions: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> tuple[str, str]:
    """Write results.md / results.json / results.png into ``out_dir``; returns (printed text, recommendation)."""
    from .plot import plot_results  # plot labels rows with this module's helpers: import at call time

    out_dir = Path(out_dir)
    ordered = sort_rows(rows)
    main = sort_rows([r for r in rows if r["main"]])
    text, facts = recommend(rows, meta.get("main_window"))
    positives = ", ".join(t for t in SAMPLE_TYPES if t in LONG_DEPENDENT_TYPES)
    legend = (f"AUROC: long-dependent ({positives}) vs the rest; unranked samples last. "
              "P@k%: long-dependent share of the top k% (base rate "
              f"{meta.get('base_rate', float('nan')):.0%}). `*` = bench-only extra, not a registered method. "
              "Percentiles: 100 = ranked first.")
    md = [f"# gateau bench: {meta.get('data', '')}", "", _meta_line(meta), "", legend, "",
          "## Main variants", "", markdown_table(main), "", "## Recommended defaults", "", text, "",
          "## Mean percentile per sample type (main variants)", "", type_table(main), "",
          f"## All {len(ordered)} variants, by AUROC", "", markdown_table(ordered), ""]
    (out_dir / RESULTS_MD).write_text("\n".join(md), encoding="utf-8")
    payload = {"meta": meta, "recommendation": text,
               "recommended": {k: _json_row(v) for k, v in facts.items() if isinstance(v, dict)},
               "rows": [_json_row(r) for r in ordered]}
    (out_dir / RESULTS_JSON).write_text(json.dumps(payload, indent=1, allow_nan=True), encoding="utf-8")
    plot_results(main, distributions or {}, out_dir / RESULTS_PNG)
    printed = "\n".join([_meta_line(meta), "", markdown_table(main), "",
                         f"Top 10 of {len(ordered)} variants:", "", markdown_table(ordered[:10]), "",
                         "Recommended defaults: " + text])
    return printed, text


def _meta_line(meta: dict[str, Any]) -> str:
    counts = ", ".join(f"{t} {c}" for t, c in meta.get("type_counts", {}).items())
    return (f"n={meta.get('n')} ({counts}); windows {meta.get('windows')}; main W={meta.get('main_window')}; "
            f"model {meta.get('long_model')}")


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (np.floating, np.integer)):
            return clean(v.item())
        return v
    return {k: clean(v) for k, v in row.items()}
