"""``gateau judge-samples``: rate selected vs unselected training samples on the paper's five aspects (App. D.1).

Inputs are files, not engine internals: one or more selection JSONL files written by ``gateau select --out``
(records in their input form plus a ``gateau`` object) and the scored data (``--data``, or the one a run's
``config.json`` names, with the run's field map and limit), read as `gateau score` reads it. A record's id is its
id field, else its 0-based position in the data; a selected record without an id is matched to the data by
content. What is judged is `gateau.data.judge_view`: the context, instruction and response that were scored.
Groups: each selection file (``selected`` when there is one) and ``unselected`` (records in no selection file).
Up to ``per_group`` records per group are drawn (seeded) and each is rated 1–5 on coherence and necessity of the
long context, helpfulness and faithfulness of the response and complexity of the instruction, with the paper's
prompts, each judged ``--judge-times`` times and averaged.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import DataConfig, FieldMap
from ..data import iter_records, judge_view, record_id, source_of
from .judge import JudgeRequest
from .judge_prompts import D1_ASPECTS
from .results import EvalError, format_table, mean, write_outputs


def read_selection(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """(location, record) of a selection file (JSONL, JSON or Parquet, read by `gateau.data.iter_records`)."""
    if not Path(path).is_file():
        raise EvalError(f"{path} not found")
    return list(iter_records(path))


def data_of_run(run: str | Path) -> DataConfig:
    """The input a run scored, as ``RUN/config.json`` records it (``data``: path, field map, limit)."""
    path = Path(run) / "config.json"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalError(f"{run} is not a scored run ({path}: {exc})") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict) or not payload["data"].get("path"):
        raise EvalError(f"{path} names no data file (not written by `gateau score`?); pass --data")
    data = payload["data"]
    try:
        return DataConfig(path=str(data["path"]), fields=FieldMap(**data.get("fields", {})), limit=data.get("limit"),
                          split=data.get("split"), subset=data.get("subset"),
                          streaming=bool(data.get("streaming", False)))
    except (TypeError, ValueError) as exc:
        raise EvalError(f"{path}: cannot read the run's settings ({exc}); pass --data") from exc


def _content_key(record: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if k != "gateau"}, sort_keys=True, ensure_ascii=False)


def _cut_middle(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n[...]\n" + text[-half:]


@dataclass(frozen=True)
class JudgeSamplesConfig:
    """Settings of ``gateau judge-samples`` (see the module docstring). ``data``: the scored input, its field map
    and limit (`data_of_run` gives a run's); ``max_context_chars`` cuts long contexts from the middle before
    judging (None: whole)."""

    selected: tuple[str, ...]
    data: DataConfig
    out: str
    per_group: int = 50
    seed: int = 0
    aspects: tuple[str, ...] | None = None
    max_context_chars: int | None = None

    def aspect_list(self):
        known = {a.name: a for a in D1_ASPECTS}
        if not self.aspects:
            return list(D1_ASPECTS)
        bad = [a for a in self.aspects if a not in known]
        if bad:
            raise EvalError(f"unknown aspect(s) {', '.join(bad)}; choose from {', '.join(known)}")
        return [known[a] for a in self.aspects]

    def validate(self) -> None:
        self.aspect_list()
        if self.per_group < 1:
            raise EvalError("--per-group must be at least 1")


def groups(config: JudgeSamplesConfig) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Records by group: ``{group: [(id, location, record), ...]}`` (all members, in data order)."""
    fields, data = config.data.fields, []
    for index, (location, record) in enumerate(iter_records(source_of(config.data))):
        if config.data.limit is not None and index >= config.data.limit:
            break
        data.append((record_id(record, index, fields), location, record))
    by_content = {_content_key(r): sid for sid, _, r in data}
    known = {sid for sid, _, _ in data}
    names = ["selected"] if len(config.selected) == 1 else [Path(p).stem for p in config.selected]
    if len(set(names)) != len(names):
        raise EvalError("--selected files need distinct names")
    members: dict[str, set[str]] = {}
    for name, path in zip(names, config.selected):
        chosen = set()
        for location, rec in read_selection(path):
            rid = rec.get(fields.id_field)
            sid = str(rid) if rid is not None else by_content.get(_content_key(rec))
            if sid is None or sid not in known:
                raise EvalError(f"{location}: this selected record is not in the scored data {config.data.path} "
                                "(pass the file that was scored with --data)")
            chosen.add(sid)
        members[name] = chosen
    anywhere = set().union(*members.values())
    out = {name: [m for m in data if m[0] in chosen] for name, chosen in members.items()}
    out["unselected"] = [m for m in data if m[0] not in anywhere]
    return out


def run_judge_samples(config: JudgeSamplesConfig, judge: Any) -> dict[str, Any]:
    """Rate up to ``per_group`` records of each group on each aspect; write ``judge_samples.csv/.json/.md``."""
    config.validate()
    if judge is None:
        raise EvalError("judge-samples needs a judge: --judge-model (and --judge-url for an endpoint)")
    start = time.perf_counter()
    aspects = config.aspect_list()
    by_group = groups(config)
    rng = random.Random(config.seed)
    requests, meta = [], []
    for group, members in by_group.items():
        picked = sorted(rng.sample(range(len(members)), min(config.per_group, len(members))))
        for k in picked:
            sid, location, record = members[k]
            context, instruction, response = judge_view(record, location, config.data.fields)
            fields = {"context": _cut_middle(context, config.max_context_chars), "instruction": instruction,
                      "response": response}
            for aspect in aspects:
                prompt = aspect.template.format(**{f: fields[f] for f in aspect.fields})
                requests.append(JudgeRequest.user(prompt, low=1, high=5))
                meta.append((group, sid, aspect.name))
    verdicts = judge.judge(requests, desc="judging samples")
    rows = [{"group": g, "id": sid, "aspect": a, "rating": v.rating, "ratings": v.ratings, "malformed": v.malformed}
            for (g, sid, a), v in zip(meta, verdicts)]
    names = [a.name for a in aspects]
    header = ["group", "n"] + names + ["mean"]
    body = []
    result: dict[str, dict[str, float | None]] = {}
    for group, members in by_group.items():
        mine = [r for r in rows if r["group"] == group]
        cells = {a: mean(r["rating"] for r in mine if r["aspect"] == a) for a in names}
        result[group] = {**cells, "mean": mean(cells.values())}
        body.append([group, len({r["id"] for r in mine})] + [cells[a] for a in names] + [result[group]["mean"]])
    table = format_table(header, body)
    summary = {**judge.describe(), "groups": {g: len(m) for g, m in by_group.items()}, "per_group": config.per_group,
               "result": result, "malformed_judgments": sum(r["malformed"] for r in rows),
               "judge_usage": vars(judge.usage).copy(), "wall_seconds": round(time.perf_counter() - start, 1)}
    paths = write_outputs(config.out, "judge_samples", rows, columns=["group", "id", "aspect", "rating", "malformed"],
                          summary=summary, table=table)
    summary["files"] = {k: str(v) for k, v in paths.items()}
    summary["table"] = table
    return summary
