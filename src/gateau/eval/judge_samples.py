"""``gateau judge-samples``: rate selected vs unselected training samples on the paper's five aspects (App. D.1).

Inputs are files, not engine internals: one or more selection JSONL files written by ``gateau select --out``
(records in their input form plus a ``gateau`` object) and the scored data file (JSONL, or a JSON list). A
record's id is its ``id`` field, else its 0-based position in the data file; a selected record without an ``id``
is matched to the data by content. Groups: each selection file (``selected`` when there is one) and
``unselected`` (records in no selection file). Up to ``per_group`` records per group are drawn (seeded) and
each is rated 1–5 on coherence and necessity of the long context, helpfulness and faithfulness of the response
and complexity of the instruction, with the paper's prompts, each judged ``--judge-times`` times and averaged.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .judge import JudgeRequest
from .judge_prompts import D1_ASPECTS
from .results import EvalError, format_table, mean, write_outputs


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSONL file or a JSON list (line numbers in errors)."""
    p = Path(path)
    if not p.is_file():
        raise EvalError(f"{p} not found")
    text = p.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{p}: not valid JSON ({exc.msg})") from exc
        records = data
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise EvalError(f"{p}:{number}: not JSON ({exc.msg})") from exc
    if not all(isinstance(r, dict) for r in records):
        raise EvalError(f"{p}: every record must be a JSON object")
    return records


def data_of_run(run: str | Path) -> str:
    """The scored data file named by ``RUN/config.json`` (its ``data`` field)."""
    path = Path(run) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")).get("data")
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalError(f"{run} is not a scored run ({path}: {exc})") from exc
    if not data:
        raise EvalError(f"{path} names no data file; pass --data")
    return str(data)


def _content_key(record: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if k != "gateau"}, sort_keys=True, ensure_ascii=False)


def split_sample(record: dict[str, Any], splitter: str = "\n\n") -> tuple[str, str, str]:
    """(context, instruction, response) of a record in one of the shapes gateau reads: ``messages``
    (role/content), ``conversations`` (from/value), alpaca (instruction/input/output) or explicit
    (context/instruction/response). Chat shapes: the instruction is the first user turn's text after the last
    ``splitter``, the context everything before it; the response is the next assistant turn."""
    turns = record.get("messages") or record.get("conversations")
    if isinstance(turns, list):
        norm = [(t.get("role") or t.get("from"), t.get("content") if "content" in t else t.get("value"))
                for t in turns if isinstance(t, dict)]
        users = [i for i, (role, _) in enumerate(norm) if role in ("user", "human")]
        if not users:
            raise EvalError("a chat record has no user turn")
        user = norm[users[0]][1] or ""
        reply = next((c for role, c in norm[users[0] + 1:] if role in ("assistant", "gpt")), None)
        if reply is None:
            raise EvalError("a chat record has no assistant turn after its first user turn")
        context, _, instruction = user.rpartition(splitter)
        return context, instruction, reply
    if "output" in record and "instruction" in record:
        return str(record.get("input") or ""), str(record["instruction"]), str(record["output"])
    if {"context", "instruction", "response"} <= set(record):
        return str(record["context"]), str(record["instruction"]), str(record["response"])
    raise EvalError(f"cannot tell context/instruction/response in a record with fields {sorted(record)}")


def _cut_middle(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n[...]\n" + text[-half:]


@dataclass(frozen=True)
class JudgeSamplesConfig:
    """Settings of ``gateau judge-samples`` (see the module docstring); ``max_context_chars`` cuts long contexts
    from the middle before judging (None: whole)."""

    selected: tuple[str, ...]
    data: str
    out: str
    per_group: int = 50
    seed: int = 0
    aspects: tuple[str, ...] | None = None
    splitter: str = "\n\n"
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


def groups(config: JudgeSamplesConfig) -> tuple[dict[str, list[tuple[str, dict[str, Any]]]], list[dict[str, Any]]]:
    """Records by group: ``{group: [(id, record), ...]}`` (all members, data order) and the data records."""
    data = read_records(config.data)
    ids = [str(r["id"]) if "id" in r else str(i) for i, r in enumerate(data)]
    by_content = {_content_key(r): sid for r, sid in zip(data, ids)}
    known = set(ids)
    names = ["selected"] if len(config.selected) == 1 else [Path(p).stem for p in config.selected]
    if len(set(names)) != len(names):
        raise EvalError("--selected files need distinct names")
    members: dict[str, set[str]] = {}
    for name, path in zip(names, config.selected):
        chosen = set()
        for number, rec in enumerate(read_records(path), start=1):
            sid = str(rec["id"]) if "id" in rec else by_content.get(_content_key(rec))
            if sid is None or sid not in known:
                raise EvalError(f"{path}:{number}: this selected record is not in --data {config.data} "
                                "(pass the file that was scored)")
            chosen.add(sid)
        members[name] = chosen
    anywhere = set().union(*members.values())
    out = {name: [(sid, r) for sid, r in zip(ids, data) if sid in chosen] for name, chosen in members.items()}
    out["unselected"] = [(sid, r) for sid, r in zip(ids, data) if sid not in anywhere]
    return out, data


def run_judge_samples(config: JudgeSamplesConfig, judge: Any) -> dict[str, Any]:
    """Rate up to ``per_group`` records of each group on each aspect; write ``judge_samples.csv/.json/.md``."""
    config.validate()
    if judge is None:
        raise EvalError("judge-samples needs a judge: --judge-model (and --judge-url for an endpoint)")
    start = time.perf_counter()
    aspects = config.aspect_list()
    by_group, _ = groups(config)
    rng = random.Random(config.seed)
    requests, meta = [], []
    for group, members in by_group.items():
        picked = sorted(rng.sample(range(len(members)), min(config.per_group, len(members))))
        for k in picked:
            sid, record = members[k]
            context, instruction, response = split_sample(record, config.splitter)
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
