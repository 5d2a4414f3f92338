"""Everything a report shows, gathered from the run directory and the selections (no plotting, no HTML, no torch).

The report never branches on a method's name: the components come from each `Ranking`, the per-sample CAM plot
appears where the run stored segment columns, and the statuses, notes and history come from the store as written.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..config import FieldMap
from ..data import RecordSource, content_hash, iter_records, record_to_sample, recorded_source
from ..methods import get_method
from ..provenance import run_exports
from ..select import Selection, select
from ..status import Status
from ..store import RunStore
from ..util.stats import spearman
from .config import ReportConfig, SelectionSpec

SCORE = "score"  # the name the final score carries beside the components in every table and figure
EXAMPLE_IDS = 5  # ids listed per status reason or note


@dataclass
class Invocation:
    """One `gateau score` invocation from ``history.jsonl``; ``tokens_per_s``: model tokens per second of
    measuring (None when the entry lacks either number)."""

    entry: dict[str, Any]
    tokens_per_s: float | None


@dataclass
class RunFacts:
    """What the run is: where its data came from, the models and settings, versions, and its scoring history."""

    run: str
    data_path: str
    n_records: int | None
    n_scored: int
    fingerprint: str
    gateau_version: str
    models: dict[str, Any]
    measure: dict[str, Any]
    execution: dict[str, Any]
    history: list[Invocation]
    versions: dict[str, str]  # library versions of the latest invocation
    exports: list[dict[str, Any]] = field(default_factory=list)  # `gateau select --out` files (provenance)

    @property
    def total_tokens(self) -> int:
        return int(sum(inv.entry.get("forward_tokens") or 0 for inv in self.history))

    @property
    def total_measure_s(self) -> float:
        return float(sum(inv.entry.get("measure_s") or 0.0 for inv in self.history))

    @property
    def total_wall_s(self) -> float:
        return float(sum(inv.entry.get("wall_s") or 0.0 for inv in self.history))


@dataclass
class Reason:
    """One distinct reason text, how many samples give it, and a few of their ids."""

    text: str
    count: int
    ids: list[str]


@dataclass
class StatusGroup:
    """The samples of one status and their reasons, most frequent first."""

    status: str
    count: int
    reasons: list[Reason]


@dataclass
class SampleText:
    """The text of one shown sample as read back from the data file; ``problem`` says why it is not shown."""

    instruction: str = ""
    response: str = ""
    problem: str = ""


@dataclass
class Labeled:
    """A selection with a short label for tables and legends."""

    label: str
    spec: SelectionSpec
    selection: Selection

    @property
    def chosen_ids(self) -> list[str]:
        return [self.selection.ids[i] for i in self.selection.chosen]


@dataclass
class Overlap:
    """How the picks of selection ``a`` and ``b`` overlap (by sample id)."""

    a: str
    b: str
    n_a: int
    n_b: int
    both: list[str]
    only_a: list[str]
    only_b: list[str]

    @property
    def jaccard(self) -> float:
        union = len(self.both) + len(self.only_a) + len(self.only_b)
        return len(self.both) / union if union else float("nan")


@dataclass
class Difference:
    """The main selection against one other: their overlap, the main run's components over each group of picks
    (medians: ``groups`` name -> component -> median), the ranks of common samples in both, and the Spearman
    correlation of the two rankings over samples ranked in both."""

    other: Labeled
    overlap: Overlap
    groups: dict[str, dict[str, float]]
    group_sizes: dict[str, int]
    ranks_main: np.ndarray
    ranks_other: np.ndarray
    picked_main: np.ndarray
    picked_other: np.ndarray
    rank_spearman: float
    not_in_main_run: int  # picks of the other selection whose id the main run does not have


@dataclass
class ReportData:
    """Everything the page shows."""

    config: ReportConfig
    facts: RunFacts
    main: Labeled
    statuses: list[StatusGroup]
    notes: list[Reason]
    components: dict[str, np.ndarray]  # the main ranking's components plus the final score, all rows
    agreement: dict[str, float]
    matrix_names: list[str]
    matrix: np.ndarray
    lengths: np.ndarray  # tokens per sample (context before truncation + instruction + response), NaN if unknown
    length_spearman: float
    top: list[int]
    bottom: list[int]
    texts: dict[str, SampleText]
    others: list[Labeled] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# The run


def run_facts(run: str | Path, n_scored: int) -> RunFacts:
    """Read ``config.json`` and ``history.jsonl`` of ``run``."""
    store = RunStore(run)
    config = store.read_config()
    whole = config.get("config", {})
    history = [Invocation(e, _rate(e.get("forward_tokens"), e.get("measure_s"))) for e in store.read_history()]
    versions = dict(history[-1].entry.get("versions") or {}) if history else {}
    versions.setdefault("gateau", str(config.get("gateau_version", "")))
    return RunFacts(run=str(run), data_path=str(config.get("data", {}).get("path", "")),
                    n_records=config.get("n_records"), n_scored=n_scored,
                    fingerprint=str(config.get("fingerprint", "")),
                    gateau_version=str(config.get("gateau_version", "")),
                    models=dict(whole.get("models", {})), measure=dict(config.get("measure", {})),
                    execution=dict(whole.get("execution", {})), history=history, versions=versions,
                    exports=run_exports(run))


def _rate(tokens: Any, seconds: Any) -> float | None:
    if not tokens or not seconds:
        return None
    return float(tokens) / float(seconds)


# ---------------------------------------------------------------------------------------------------------------
# Statuses and notes


def group_reasons(ids: list[str], texts: list[str | None]) -> list[Reason]:
    """Distinct non-empty ``texts`` with their counts and up to `EXAMPLE_IDS` ids each, most frequent first."""
    by_text: dict[str, list[str]] = defaultdict(list)
    for sid, text in zip(ids, texts):
        if text:
            by_text[text].append(sid)
    return [Reason(text, len(members), members[:EXAMPLE_IDS])
            for text, members in sorted(by_text.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


def status_groups(ids: list[str], statuses: list[str], errors: list[str | None]) -> list[StatusGroup]:
    """Counts by status (``ok`` first, then the most frequent), each with its reasons."""
    counts = Counter(statuses)
    order = sorted(counts, key=lambda s: (s != Status.OK, -counts[s], s))
    out = []
    for status in order:
        members = [i for i, s in enumerate(statuses) if s == status]
        reasons = group_reasons([ids[i] for i in members], [errors[i] for i in members])
        out.append(StatusGroup(status, counts[status], reasons))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Selections


def selection_label(spec: SelectionSpec, options: Any, main_run: str) -> str:
    """``method`` plus the ``options`` that differ from the method's defaults, plus the run if it is not the main
    one."""
    defaults = asdict(type(get_method(spec.config.method)).options())
    options = asdict(options)
    changed = [f"{k}={v}" for k, v in options.items() if defaults.get(k) != v]
    label = spec.config.method + (f" ({', '.join(changed)})" if changed else "")
    if Path(spec.run).resolve() != Path(main_run).resolve():
        label += f" on {spec.run}"
    return label


def labelled_selections(specs: list[SelectionSpec], allow_partial: bool) -> list[Labeled]:
    """Run each selection; labels are made unique (``#2``, ``#3`` ...) where two would read the same."""
    main_run = specs[0].run
    out: list[Labeled] = []
    seen: Counter[str] = Counter()
    for spec in specs:
        selection = select(spec.run, spec.config, allow_partial=allow_partial)
        label = selection_label(spec, selection.ranking.options, main_run)
        seen[label] += 1
        if seen[label] > 1:
            label += f" #{seen[label]}"
        out.append(Labeled(label, spec, selection))
    return out


def overlap(a: Labeled, b: Labeled) -> Overlap:
    """The picks of ``a`` and ``b`` compared by id (order: ``a``'s rank, then ``b``'s)."""
    ids_a, ids_b = a.chosen_ids, b.chosen_ids
    set_a, set_b = set(ids_a), set(ids_b)
    return Overlap(a.label, b.label, len(ids_a), len(ids_b), [i for i in ids_a if i in set_b],
                   [i for i in ids_a if i not in set_b], [i for i in ids_b if i not in set_a])


def difference(main: Labeled, other: Labeled, components: dict[str, np.ndarray]) -> Difference:
    """How ``other``'s picks differ from ``main``'s, described with the main run's components."""
    ov = overlap(main, other)
    position = {sid: i for i, sid in enumerate(main.selection.ids)}
    groups_ids = {"both": ov.both, f"only {main.label}": ov.only_a, f"only {other.label}": ov.only_b}
    groups: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    for name, members in groups_ids.items():
        rows = np.array([position[i] for i in members if i in position], dtype=np.int64)
        sizes[name] = len(rows)
        groups[name] = {c: median(values[rows]) for c, values in components.items()}
    other_rank = dict(zip(other.selection.ids, other.selection.ranking.rank))
    common = [i for i, sid in enumerate(main.selection.ids)
              if main.selection.ranking.rank[i] > 0 and other_rank.get(sid, 0) > 0]
    ranks_main = main.selection.ranking.rank[common].astype(np.float64)
    ranks_other = np.array([other_rank[main.selection.ids[i]] for i in common], dtype=np.float64)
    chosen_main, chosen_other = set(main.chosen_ids), set(other.chosen_ids)
    picked_main = np.array([main.selection.ids[i] in chosen_main for i in common], dtype=bool)
    picked_other = np.array([main.selection.ids[i] in chosen_other for i in common], dtype=bool)
    return Difference(other, ov, groups, sizes, ranks_main, ranks_other, picked_main, picked_other,
                      spearman(ranks_main, ranks_other), sum(1 for i in ov.only_b if i not in position))


def median(values: np.ndarray) -> float:
    """Median of the finite values (NaN if none)."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else float("nan")


def spearman_matrix(values: dict[str, np.ndarray], rows: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Pairwise Spearman correlations of ``values`` over ``rows`` (each pair over the rows where both are finite)."""
    names = list(values)
    out = np.full((len(names), len(names)), np.nan)
    for i, a in enumerate(names):
        for j, b in enumerate(names[i:], start=i):
            out[i, j] = out[j, i] = spearman(values[a][rows], values[b][rows])
    return names, out


# ---------------------------------------------------------------------------------------------------------------
# Sample text


def sample_texts(source: RecordSource, fmap: FieldMap, wanted: dict[str, str]) -> dict[str, SampleText]:
    """Instruction and response of the samples ``wanted`` (id -> the content hash stored when scored), streamed
    from ``source``; a record that is missing or was edited since scoring gets a ``problem`` instead of text."""
    out: dict[str, SampleText] = {}
    try:
        for index, (location, record) in enumerate(iter_records(source)):
            sample = record_to_sample(record, index, location, fmap)
            if sample.id not in wanted or sample.id in out:
                continue
            if content_hash(record) != wanted[sample.id]:
                out[sample.id] = SampleText(
                    problem=f"the record in {source.path} was edited after scoring; text not shown")
            else:
                out[sample.id] = SampleText(sample.instruction, sample.response)
            if len(out) == len(wanted):
                break
    except (OSError, ValueError) as exc:  # DataError is a ValueError: unreadable file, unknown shape
        problem = f"cannot read {source.path}: {exc}"
        return {sid: out.get(sid) or SampleText(problem=problem) for sid in wanted}
    return {sid: out.get(sid) or SampleText(problem=f"no record with this id in {source.path}") for sid in wanted}


# ---------------------------------------------------------------------------------------------------------------
# Everything


def gather(config: ReportConfig) -> ReportData:
    """Rank every selection and collect what the page shows."""
    labelled = labelled_selections([config.main, *config.others], config.allow_partial)
    main = labelled[0]
    sel, ranking = main.selection, main.selection.ranking
    cols = ranking.columns
    facts = run_facts(config.main.run, len(sel.ids))
    components = {**ranking.components, SCORE: ranking.score}
    names, matrix = spearman_matrix(components, ranking.order)
    lengths = sum((np.asarray(cols[c], dtype=np.float64) for c in ("n_context", "n_instruction", "n_response")),
                  start=np.zeros(len(sel.ids)))
    n = min(config.top, len(ranking.order))
    top = [int(i) for i in ranking.order[:n]]
    bottom = [int(i) for i in ranking.order[max(n, len(ranking.order) - n):]]
    store = RunStore(config.main.run)
    stored = store.read_config()
    scores = store.read_scores().select(["content_hash", "note"]).to_pydict()
    texts = sample_texts(recorded_source(stored["data"], config.data), FieldMap(**stored["data"]["fields"]),
                         {sel.ids[i]: scores["content_hash"][i] for i in top + bottom})
    notes = group_reasons(sel.ids, scores["note"])
    others = labelled[1:]
    return ReportData(
        config=config, facts=facts, main=main, statuses=status_groups(sel.ids, sel.statuses, sel.errors),
        notes=notes, components=components, agreement=ranking.agreement(), matrix_names=names, matrix=matrix,
        lengths=lengths, length_spearman=spearman(ranking.score[ranking.order], lengths[ranking.order]),
        top=top, bottom=bottom, texts=texts, others=others,
        overlaps=[overlap(a, b) for i, a in enumerate(labelled) for b in labelled[i + 1:]],
        differences=[difference(main, other, components) for other in others])


def unselected(selection: Selection) -> np.ndarray:
    """Row positions of the ranked samples the selection did not pick, best first."""
    picked = np.zeros(len(selection.ids), dtype=bool)
    picked[selection.chosen] = True
    return selection.ranking.order[~picked[selection.ranking.order]]


def option_items(options: Any) -> list[tuple[str, Any]]:
    """The (name, value) pairs of a method's options dataclass."""
    return [(f.name, getattr(options, f.name)) for f in fields(options)] if options is not None else []
