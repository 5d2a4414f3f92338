"""`gateau judge-samples` on a run written by the real `gateau score`, without --data: the run's config.json gives
the data path, field map and limit. The judge is a real OpenAI-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import re

import pytest
from eval_fixtures import chat_server_fixture  # noqa: F401 (fixture)

from gateau.cli import main

N_RECORDS, LIMIT = 8, 6


def _rating(body: dict) -> str:
    """The judge's verdict: 1 + (the record number written in the prompt) mod 5."""
    number = int(re.search(r"(?:Document|Question|Answer) (\d+)", body["messages"][-1]["content"]).group(1))
    return f"[[{1 + number % 5}]]"


def test_judge_samples_on_a_scored_run_without_data(chat_server, tiny_model_dir, tmp_path):
    # renamed keys: only the run's field map can read these records; record i's context grows with i
    records = [{"key": f"k{i}", "doc": f"Document {i}. " * (i + 2), "question": f"Question {i}?",
                "answer": f"Answer {i}."} for i in range(N_RECORDS)]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    run, selected, out = tmp_path / "run", tmp_path / "selected.jsonl", tmp_path / "judged"
    assert main(["score", str(data), "--out", str(run), "--long-model", str(tiny_model_dir), "--methods", "length",
                 "--id-field", "key", "--context-field", "doc", "--instruction-field", "question",
                 "--response-field", "answer", "--limit", str(LIMIT), "--no-progress"]) == 0
    assert isinstance(json.loads((run / "config.json").read_text())["data"], dict)  # the layout real runs write
    assert main(["select", str(run), "--method", "length", "--ratio", "0.5", "--out", str(selected)]) == 0
    chosen = [json.loads(line)["key"] for line in selected.read_text().splitlines()]
    # naive reference: the longest half of the scored records (the first LIMIT), by context length
    scored = records[:LIMIT]
    expected = sorted(scored, key=lambda r: -len(r["doc"]))[:LIMIT // 2]
    assert sorted(chosen) == sorted(r["key"] for r in expected)

    chat_server.default = _rating
    assert main(["judge-samples", str(run), "--selected", str(selected), "--out", str(out),
                 "--judge-url", chat_server.url, "--judge-model", "gpt-4-turbo", "--judge-times", "1",
                 "--no-progress"]) == 0
    summary = json.loads((out / "judge_samples.json").read_text())["summary"]
    assert summary["groups"] == {"selected": LIMIT // 2, "unselected": LIMIT - LIMIT // 2}  # records 6, 7 unscored
    numbers = {"selected": [int(k[1:]) for k in chosen],
               "unselected": [i for i in range(LIMIT) if f"k{i}" not in chosen]}
    for group, members in numbers.items():
        want = sum(1 + n % 5 for n in members) / len(members)
        assert summary["result"][group]["mean"] == pytest.approx(want)
        assert all(v == pytest.approx(want) for v in summary["result"][group].values())
    sent = [body["messages"][-1]["content"] for body in chat_server.requests]
    assert len(sent) == LIMIT * 5  # every scored record once per aspect
    for r in scored:  # the judge saw the mapped fields: the whole context, the instruction, the response
        assert any(r["doc"].strip() in text for text in sent)
        assert any(r["question"] in text for text in sent) and any(r["answer"] in text for text in sent)
    assert not any("Document 6." in text or "Question 7?" in text for text in sent)
