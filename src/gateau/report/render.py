"""The report as one self-contained HTML page: inline CSS, PNG figures as data URIs, no script, no external link.

Every piece of text that comes from a run or a record goes through `esc` (records may hold ``<script>``): markup is
built only from `Safe` fragments, and anything else is escaped when it is put into one.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from .figures import data_uri, distributions_figure, length_figure, rank_figure, sample_plot
from .gather import SCORE, Difference, Labeled, ReportData, SampleText, median, option_items, unselected

NAV = (("run", "Run"), ("statuses", "Statuses"), ("selection", "Selection"), ("distributions", "Distributions"),
       ("agreement", "Agreement"), ("length", "Length"), ("top", "Top samples"), ("bottom", "Bottom samples"),
       ("compare", "Comparison"))
MAX_IDS_LISTED = 20  # ids listed per "only in one selection" group

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #24292f; color: #fff; padding: 14px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #d0d7de; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #ddd; padding: 6px 24px; z-index: 1; }
nav a { margin-right: 14px; color: #0969da; text-decoration: none; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 24px 40px; }
section { background: #fff; border: 1px solid #e1e4e8; border-radius: 6px; padding: 4px 18px 14px; margin: 16px 0; }
h2 { font-size: 18px; border-bottom: 1px solid #eee; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid #d8dee4; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f5f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 6px 8px; white-space: pre-wrap;
      word-break: break-word; font-size: 12.5px; margin: 4px 0 8px; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
.muted { color: #666; }
.warn { color: #9a6700; }
.sample { border-top: 1px solid #eee; padding-top: 6px; margin-top: 10px; }
.bar { display: inline-block; height: 10px; background: #1f77b4; vertical-align: middle; }
.bar.neg { background: #d62728; }
.cols { display: flex; flex-wrap: wrap; gap: 18px; }
"""


class Safe(str):
    """A fragment of markup that is already escaped; `esc` leaves it as it is."""


def esc(value: Any) -> Safe:
    """``value`` as HTML text: a `Safe` fragment unchanged, anything else converted with str() and escaped."""
    return value if isinstance(value, Safe) else Safe(html.escape(str(value), quote=True))


def tag(name: str, content: str | Iterable[str] = "", **attrs: Any) -> Safe:
    """``<name attrs>content</name>``; ``content``: text, a `Safe` fragment or an iterable of those; attribute
    values are escaped (``cls`` stands for ``class``)."""
    inner = esc(content) if isinstance(content, str) else "".join(esc(c) for c in content)
    attributes = "".join(f' {"class" if k == "cls" else k}="{esc(v)}"' for k, v in attrs.items() if v is not None)
    return Safe(f"<{name}{attributes}>{inner}</{name}>")


def fmt(value: Any) -> str:
    """A number for a table cell (4 significant digits; "–" for missing or NaN); other values as text."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return "–" if not math.isfinite(value) else f"{float(value):.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def cell(value: Any, header: bool = False, align: bool = True) -> Safe:
    """One ``td`` (or ``th``); numbers right-aligned when ``align``."""
    if isinstance(value, Safe):
        return tag("th" if header else "td", value)
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    return tag("th" if header else "td", fmt(value), cls="num" if numeric and align and not header else None)


def table(headers: list[Any] | None, rows: Iterable[Iterable[Any]], row_headers: bool = False) -> Safe:
    """A table; cells are formatted with `fmt` and escaped unless they are `Safe`; with ``row_headers`` the first
    cell of each row is a ``th``."""
    head = tag("tr", [cell(h, header=True) for h in headers]) if headers else Safe("")
    body = [tag("tr", [cell(v, header=row_headers and j == 0, align=not row_headers) for j, v in enumerate(row)])
            for row in rows]
    return tag("table", [head, *body])


def kv_table(items: Iterable[tuple[str, Any]]) -> Safe:
    """Name / value rows."""
    return table(None, ([k, v] for k, v in items), row_headers=True)


def image(uri: str, alt: str) -> Safe:
    return Safe(f'<img src="{esc(uri)}" alt="{esc(alt)}">')


def section(anchor: str, title: str, *content: Any) -> Safe:
    return tag("section", [tag("h2", title), *content], id=anchor)


def paragraph(*parts: Any, cls: str | None = None) -> Safe:
    return tag("p", parts, cls=cls)


def id_list(ids: list[str], total: int | None = None) -> Safe:
    """Some ids, and how many more there are of ``total``."""
    shown = ", ".join(ids) or "none"
    more = total - len(ids) if total is not None else 0
    return esc(shown + (f" … (+{more})" if more > 0 else ""))


# ---------------------------------------------------------------------------------------------------------------
# Sections


def run_section(data: ReportData) -> Safe:
    """Data file, models, settings, versions, and the scoring history with its speed."""
    f = data.facts
    overview = kv_table([
        ("run directory", f.run), ("data file", f.data_path), ("records", f.n_records), ("rows scored", f.n_scored),
        ("settings fingerprint", f.fingerprint), ("gateau version", f.gateau_version),
        ("model tokens (all invocations)", f.total_tokens),
        ("measuring time", f"{f.total_measure_s:.1f} s"), ("wall time", f"{f.total_wall_s:.1f} s"),
        ("tokens/s of measuring", f.total_tokens / f.total_measure_s if f.total_measure_s else None)])
    models = kv_table((k, v) for k, v in f.models.items() if v is not None)
    measure = kv_table(f.measure.items())
    execution = kv_table(f.execution.items())
    versions = kv_table(sorted(f.versions.items()))
    headers = ["finished", "executor", "workers", "measured", "skipped (done)", "statuses", "model tokens",
               "measuring s", "wall s", "tokens/s"]
    rows = [[inv.entry.get("finished"), inv.entry.get("executor"), inv.entry.get("workers"),
             inv.entry.get("measured_now"), inv.entry.get("skipped_done"),
             ", ".join(f"{k}={v}" for k, v in sorted((inv.entry.get("statuses") or {}).items())),
             inv.entry.get("forward_tokens"), inv.entry.get("measure_s"), inv.entry.get("wall_s"), inv.tokens_per_s]
            for inv in f.history]
    history = (table(headers, rows) if rows else
               paragraph("no history.jsonl in this run (scored by an older gateau)", cls="muted"))
    exports = (table(["selection file", "method", "ratio", "count", "records", "sha256", "now"],
                     [[e["file"], e["selection"].get("method"), e["selection"].get("ratio"),
                       e["selection"].get("count"), e["records"], e["sha256"], e["state"]] for e in f.exports])
               if f.exports else paragraph("no `gateau select --out` export recorded in this run", cls="muted"))
    return section("run", "Run", overview,
                   tag("div", [tag("div", [tag("h3", "Models"), models]),
                               tag("div", [tag("h3", "Measurement settings (fingerprinted)"), measure]),
                               tag("div", [tag("h3", "Execution"), execution]),
                               tag("div", [tag("h3", "Library versions (latest invocation)"), versions])],
                       cls="cols"),
                   tag("h3", "Scoring history (one row per `gateau score` invocation)"), history,
                   tag("h3", "Provenance: selections exported from this run (each file's FILE.meta.json points back "
                       "here; a model trained on one records it in its gateau_provenance.json and README.md)"),
                   exports)


def status_section(data: ReportData) -> Safe:
    """Counts by status with each reason and example ids; the notes stored with samples."""
    rows = []
    for group in data.statuses:
        if not group.reasons:
            rows.append([group.status, group.count, Safe(""), Safe("")])
        for reason in group.reasons:
            rows.append([group.status, reason.count, reason.text, id_list(reason.ids, reason.count)])
    parts = [paragraph("Samples whose status is not ok are never ranked nor selected."),
             table(["status", "samples", "reason", "examples"], rows)]
    if data.notes:
        parts += [tag("h3", "Notes stored with the samples"),
                  table(["note", "samples", "examples"],
                        ([n.text, n.count, id_list(n.ids, n.count)] for n in data.notes))]
    return section("statuses", "Statuses", *parts)


def selection_section(data: ReportData) -> Safe:
    """The method, its options and select's own summary."""
    sel = data.main.selection
    spec = data.main.spec
    amount = f"ratio {spec.config.ratio}" if spec.config.ratio is not None else f"count {spec.config.count}"
    options = option_items(sel.ranking.options)
    return section("selection", "Selection",
                   paragraph(f"{data.main.label}: {len(sel.chosen)} of {len(sel.ranking.order)} ranked samples "
                             f"selected ({amount}; {len(sel.ids)} samples in the run)."),
                   tag("h3", "Options"),
                   kv_table(options) if options else paragraph("this method has no options", cls="muted"),
                   tag("h3", "Summary (as `gateau select` prints it)"),
                   tag("pre", "\n".join(sel.summary_lines())))


def distributions_section(data: ReportData) -> Safe:
    """Each component's (and the score's) distribution, selected vs not, and the medians."""
    r = data.main.selection.ranking
    chosen = data.main.selection.chosen
    rest = unselected(data.main.selection)
    fig = distributions_figure(data.components, chosen, rest)
    rows = []
    for name, values in data.components.items():
        sel, other = values[chosen], values[rest]
        rows.append([name, median(sel), median(other), int((~np.isfinite(values[r.order])).sum())])
    return section("distributions", "Distributions: selected vs not selected",
                   paragraph("Each component behind the score, and the final score, over the ranked samples "
                             "(stacked histograms; log axis where positive values span more than 50x)."),
                   image(data_uri(fig), "distributions of each component, selected vs not selected"),
                   table(["component", "median selected", "median not selected", "undefined (ranked)"], rows))


def _signed(rho: float) -> str:
    return f"{rho:+.3f}" if math.isfinite(rho) else "–"


def _shaded(value: float, signed: bool = True) -> Safe:
    """A cell for a value in [-1, 1] (a correlation; a Jaccard index, ``signed`` False), shaded blue (positive) or
    red by size."""
    if not math.isfinite(value):
        return tag("td", "–")
    shade = f"rgba({'31,119,180' if value >= 0 else '214,39,40'},{abs(value) * 0.6:.2f})"
    text = _signed(value) if signed else f"{value:.3f}"
    return Safe(f'<td class="num" style="background:{shade}">{esc(text)}</td>')


def square_table(names: list[str], values: np.ndarray, signed: bool = True) -> Safe:
    """A names x names table of shaded values (``values[i, j]`` in row i, column j)."""
    head = Safe("<tr><th></th>" + "".join(cell(n, header=True) for n in names) + "</tr>")
    rows = [Safe(f"<tr>{cell(a, header=True)}" + "".join(_shaded(v, signed) for v in values[i]) + "</tr>")
            for i, a in enumerate(names)]
    return tag("table", [head, *rows])


def agreement_section(data: ReportData) -> Safe:
    """Spearman of the score with each component, and between every pair."""
    ordered = sorted(data.agreement.items(), key=lambda kv: -abs(kv[1]))
    rows = [[name, _signed(rho),
             Safe(f'<span class="bar{" neg" if rho < 0 else ""}" style="width:{abs(rho) * 160:.0f}px"></span>')]
            for name, rho in ordered]
    matrix = square_table(data.matrix_names, data.matrix)
    lead = (f"The final ranking follows {ordered[0][0]} most closely (rho {ordered[0][1]:+.3f}). If a weight such as "
            "alpha says one thing and this table another, the normalisation, not the weight, decides the mix."
            if ordered else "No component varies enough over the ranked samples for a correlation.")
    return section("agreement", "Spearman agreement",
                   paragraph("Spearman correlation of the final score with each component over the ranked samples "
                             "(components that are constant or have fewer than 3 values are left out). ", lead),
                   table(["component", "rho with the score", ""], rows),
                   tag("h3", "Between every pair (each over the samples where both are defined)"), matrix)


def length_section(data: ReportData) -> Safe:
    """Score against sample length, and how long the selected samples are."""
    r = data.main.selection.ranking
    chosen = data.main.selection.chosen
    rest = unselected(data.main.selection)
    fig = length_figure(data.lengths, r.score, chosen, rest, data.length_spearman)
    return section("length", "Score vs sample length",
                   paragraph("Is the selection just picking long samples? Median length: selected ",
                             fmt(median(data.lengths[chosen])), " tokens, not selected ",
                             fmt(median(data.lengths[rest])), " tokens; Spearman rho(score, length) ",
                             _signed(data.length_spearman), "."),
                   image(data_uri(fig), "final score against sample length"))


def sample_block(data: ReportData, pos: int) -> Safe:
    """One shown sample: rank, score, components, token counts, note, text and its CAM plot."""
    sel = data.main.selection
    cols = sel.ranking.columns
    sid = sel.ids[pos]
    rank = int(sel.ranking.rank[pos])
    comps = [(name, values[pos]) for name, values in data.components.items() if name != SCORE]
    header = table(["rank", SCORE, *[n for n, _ in comps]], [[rank, sel.ranking.score[pos], *[v for _, v in comps]]])
    tokens = (f"tokens: context {fmt(cols['n_context'][pos])} ({fmt(cols['n_truncated'][pos])} cut from the left), "
              f"instruction {fmt(cols['n_instruction'][pos])}, response {fmt(cols['n_response'][pos])}")
    parts: list[Any] = [tag("h3", f"#{rank}  {sid}"), header, paragraph(tokens, cls="muted")]
    if cols["note"][pos]:
        parts.append(paragraph("note: ", cols["note"][pos], cls="warn"))
    parts.extend(_text_parts(data.texts.get(sid, SampleText(problem="not read")), data.config.excerpt_chars))
    uri, reason = sample_plot(data.main, pos)
    if uri:
        parts.append(image(uri, f"segment importance vs attention of sample {sid}"))
    elif reason:
        parts.append(paragraph("no importance-vs-attention plot: ", reason, cls="muted"))
    return tag("div", parts, cls="sample")


def _text_parts(text: SampleText, limit: int) -> list[Safe]:
    if text.problem:
        return [paragraph(text.problem, cls="warn")]
    response = text.response if len(text.response) <= limit else text.response[:limit] + " …"
    cut = f" (first {limit} of {len(text.response):,} characters)" if len(text.response) > limit else ""
    return [tag("b", "Instruction"), tag("pre", text.instruction), tag("b", "Response" + cut), tag("pre", response)]


def samples_section(data: ReportData, anchor: str, title: str, rows: list[int], what: str) -> Safe:
    """The samples at ``rows`` (row positions), in rank order."""
    if not rows:
        return section(anchor, title, paragraph(f"no {what} samples to show", cls="muted"))
    return section(anchor, title, paragraph(f"The {len(rows)} {what} ranked samples, with their components."),
                   *[sample_block(data, pos) for pos in rows])


def compare_section(data: ReportData) -> Safe:
    """Jaccard overlap of every pair of selections, and how each other selection differs from the main one."""
    if not data.others:
        return section("compare", "Comparison",
                       paragraph("No other selection given (use --compare RUN2 or --also 'OPTIONS').", cls="muted"))
    labels = [data.main.label, *[o.label for o in data.others]]
    jaccard = np.eye(len(labels))
    for o in data.overlaps:
        i, j = labels.index(o.a), labels.index(o.b)
        jaccard[i, j] = jaccard[j, i] = o.jaccard
    matrix = square_table(labels, jaccard, signed=False)
    overlaps = table(["selection A", "selection B", "picked by A", "picked by B", "both", "only A", "only B",
                      "Jaccard"],
                     ([o.a, o.b, o.n_a, o.n_b, len(o.both), len(o.only_a), len(o.only_b), o.jaccard]
                      for o in data.overlaps))
    parts: list[Any] = [paragraph("Overlap of the picks, by sample id (Jaccard = |A ∩ B| / |A ∪ B|)."),
                        matrix, overlaps]
    for diff in data.differences:
        parts.append(_difference_block(diff, data.main))
    return section("compare", "Comparison", *parts)


def _difference_block(diff: Difference, main: Labeled) -> Safe:
    """Medians of the main run's components over both / only-main / only-other picks, the ids only one picked,
    and the rank-vs-rank plot."""
    names = list(next(iter(diff.groups.values())).keys()) if diff.groups else []
    medians = table(["picks", "samples", *[f"median {n}" for n in names]],
                    ([group, diff.group_sizes[group], *[diff.groups[group][n] for n in names]]
                     for group in diff.groups))
    ov = diff.overlap
    rank_of = dict(zip(main.selection.ids, main.selection.ranking.rank))
    other_rank = dict(zip(diff.other.selection.ids, diff.other.selection.ranking.rank))

    def listing(ids: list[str]) -> Safe:
        shown = [f"{i} ({_rank_text(rank_of.get(i))} / {_rank_text(other_rank.get(i))})"
                 for i in ids[:MAX_IDS_LISTED]]
        return id_list(shown, len(ids))

    parts: list[Any] = [tag("h3", f"{main.label}  vs  {diff.other.label}"),
                        paragraph(f"The main run's components over each group of picks (medians). Jaccard "
                                  f"{fmt(ov.jaccard)}; rank correlation over samples ranked by both "
                                  f"{_signed(diff.rank_spearman)}."), medians]
    if diff.not_in_main_run:
        parts.append(paragraph(f"{diff.not_in_main_run} picks of {diff.other.label} are not samples of the main run.",
                               cls="warn"))
    parts += [table(["only in", "samples (rank main / rank other)"],
                    [[main.label, listing(ov.only_a)], [diff.other.label, listing(ov.only_b)]])]
    if len(diff.ranks_main):
        parts.append(image(data_uri(rank_figure(diff, main)), f"ranks under {main.label} vs {diff.other.label}"))
    return tag("div", parts)


def _rank_text(rank: Any) -> str:
    return "–" if rank is None or int(rank) == 0 else str(int(rank))


def render(data: ReportData) -> str:
    """The whole page."""
    sel = data.main.selection
    subtitle = (f"{data.facts.run} · {data.main.label} · {len(sel.chosen)} of {len(sel.ids)} samples selected · "
                f"generated {time.strftime('%Y-%m-%d %H:%M:%S')}")
    body = [
        tag("header", [tag("h1", "gateau report"), paragraph(subtitle)]),
        tag("nav", [tag("a", title, href=f"#{anchor}") for anchor, title in NAV]),
        tag("main", [run_section(data), status_section(data), selection_section(data), distributions_section(data),
                     agreement_section(data), length_section(data),
                     samples_section(data, "top", "Top samples", data.top, "best"),
                     samples_section(data, "bottom", "Bottom samples", data.bottom, "worst"),
                     compare_section(data)]),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc('gateau report: ' + data.facts.run)}</title><style>{CSS}</style>"
            # no favicon request: the page must load nothing
            "<link rel=\"icon\" href=\"data:,\"></head>\n<body>" + "".join(body) + "</body></html>\n")
