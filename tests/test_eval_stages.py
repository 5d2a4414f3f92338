"""MT-Bench, judge-samples and the lm-eval bridge end to end (tiny model, judge on a 127.0.0.1 HTTP server)."""

from __future__ import annotations

import json

import pytest
from eval_fixtures import chat_server_fixture, read_csv  # noqa: F401 (fixture)

from gateau.cli import main
from gateau.eval.mtbench import (
    judge_prompts,
    judge_request,
    questions,
    reference_answers,
)


def test_mt_bench_data_and_judge_prompts():
    qs = questions()
    assert len(qs) == 80 and all(len(q["turns"]) == 2 for q in qs)
    math = next(q for q in qs if q["category"] == "math")
    req = judge_request(math, ["a1", "a2"], 2, judge_prompts(), reference_answers())
    assert "### Reference answer:" in req.messages[1]["content"] and "a2" in req.messages[1]["content"]
    assert req.messages[0]["content"].startswith("Please act as an impartial judge")
    writing = next(q for q in qs if q["category"] == "writing")
    req = judge_request(writing, ["first answer", "x"], 1, judge_prompts(), reference_answers())
    assert req.messages[0]["content"] == "You are a helpful assistant."
    assert "[The Start of Assistant's Answer]\nfirst answer\n" in req.messages[1]["content"]


def test_eval_mt_bench_end_to_end(chat_server, tiny_model_dir, tmp_path, capsys):
    replies = iter(["Rating: [[8]]", "[[6]]", "[[4]]", "[[2]]"] * 10)
    chat_server.default = lambda body: next(replies)
    out = tmp_path / "mt"
    argv = ["eval", "mt-bench", str(tiny_model_dir), "--out", str(out), "--limit", "2", "--max-new-tokens", "4",
            "--judge-url", chat_server.url, "--judge-model", "gpt-4", "--judge-workers", "1", "--no-progress"]
    assert main(argv) == 0  # one worker: the scripted replies must arrive in request order
    rows = read_csv(out / "mt_bench.csv")
    assert [(r["question_id"], r["turn"]) for r in rows] == [("81", "1"), ("81", "2"), ("82", "1"), ("82", "2")]
    summary = json.loads((out / "mt_bench.json").read_text())["summary"]
    # two judgments per answer, averaged; the server answers 8, 6 (turn 1) then 4, 2 (turn 2) per question
    assert summary["average"] == 5.0 and summary["first_turn"] == 7.0 and summary["second_turn"] == 3.0
    # turn 2 saw the model's own first answer
    turn2 = chat_server.requests[2]["messages"][1]["content"]
    assert "### User:\nRewrite your previous response." in turn2
    assert len(chat_server.requests) == 8
    assert main(argv) == 0 and len(chat_server.requests) == 8  # answers and judgments resumed from disk
    assert main(argv[:-5] + ["--no-progress"]) == 2  # MT-Bench needs a judge: one line, after any --config
    assert "this evaluation needs a judge: give --judge-model NAME" in capsys.readouterr().err


def _records():
    return [{"id": f"s{i}", "messages": [{"role": "user", "content": f"Context number {i}.\n\nWhat is {i}?"},
                                        {"role": "assistant", "content": f"It is {i}."}]} for i in range(6)]


def test_judge_samples_end_to_end(chat_server, tmp_path):
    def rate(body):
        text = body["messages"][-1]["content"]
        return "[[5]]" if "Context number 1." in text or "Context number 2." in text else "[4]" \
            if "Context number" in text else "[3]"

    chat_server.default = rate
    data = tmp_path / "data.jsonl"
    records = _records()
    del records[2]["id"]  # its id is its position, "2"; the selection's copy is matched by content
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    selected = tmp_path / "sel.jsonl"
    chosen = [dict(records[1], gateau={"rank": 1}), dict(records[2], gateau={"rank": 2})]
    selected.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    out = tmp_path / "js"
    assert main(["judge-samples", "--selected", str(selected), "--data", str(data), "--out", str(out),
                 "--judge-url", chat_server.url, "--judge-model", "gpt-4-turbo", "--judge-times", "1",
                 "--no-progress"]) == 0
    result = json.loads((out / "judge_samples.json").read_text())["summary"]["result"]
    # coherence / necessity / faithfulness show the context; helpfulness / complexity do not
    assert result["selected"] == {"coherence": 5, "necessity": 5, "helpfulness": 3, "faithfulness": 5,
                                  "complexity": 3, "mean": 4.2}
    assert result["unselected"]["coherence"] == 4 and result["unselected"]["complexity"] == 3
    assert len(chat_server.requests) == 6 * 5
    assert "| selected   | 2 |" in (out / "judge_samples.md").read_text()
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": {"path": str(data)}}))  # real runs: test_judge_samples.py
    assert main(["judge-samples", str(run), "--selected", str(selected), "--out", str(out), "--aspects",
                 "complexity", "--judge-url", chat_server.url, "--judge-model", "gpt-4-turbo", "--judge-times", "1",
                 "--no-progress"]) == 0
    assert json.loads((out / "judge_samples.json").read_text())["summary"]["result"]["selected"] == {
        "complexity": 3, "mean": 3}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "nope", "messages": []}) + "\n")
    assert main(["judge-samples", "--selected", str(bad), "--data", str(data), "--out", str(out),
                 "--judge-url", chat_server.url, "--judge-model", "m"]) == 2


@pytest.mark.slow  # lm-eval's import and task indexing take ~15-45 s here
def test_lm_eval_bridge_on_a_local_task(tiny_model_dir, tmp_path):
    (tmp_path / "data.jsonl").write_text('{"question": "Say A:", "answer": "A"}\n{"question": "B:", "answer": "B"}\n')
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "gateau_tiny.yaml").write_text(f"""task: gateau_tiny
dataset_path: json
dataset_kwargs:
  data_files:
    test: {tmp_path / "data.jsonl"}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 3
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
""")
    out = tmp_path / "out"
    assert main(["eval", "lm-eval", str(tiny_model_dir), "--out", str(out), "--tasks", "gateau_tiny",
                 "--include-path", str(tasks), "--device", "cpu"]) == 0
    rows = read_csv(out / "lm_eval.csv")
    assert [(r["task"], r["metric"], r["filter"]) for r in rows] == [("gateau_tiny", "exact_match", "none")]
    assert 0.0 <= float(rows[0]["value"]) <= 1.0
    raw = json.loads((out / "lm_eval" / "results.json").read_text())
    assert "gateau_tiny" in raw["results"]
    assert main(["eval", "lm-eval", str(tiny_model_dir), "--out", str(out), "--tasks", "no_such_task_xyz",
                 "--include-path", str(tasks)]) == 2


def test_eval_longbench_chat_end_to_end(chat_server, tiny_model_dir, tmp_path):
    chat_server.replies = ["Rating: [7]", "[[9]]"]
    cases = tmp_path / "test_cases.json"
    cases.write_text(json.dumps([{"idx": 1, "prompt": "Read this long text. " * 30 + "What is it about?",
                                  "query": "What is it about?", "answer": "A long text."}]))
    shots = tmp_path / "few_shots.json"
    shots.write_text(json.dumps([[{"answer": "Text.", "score": 6}, {"answer": "Nothing.", "score": 1},
                                  {"answer": "A long text.", "score": 10}]]))
    out = tmp_path / "lbc"
    assert main(["eval", "longbench-chat", str(tiny_model_dir), "--cases", str(cases), "--few-shots", str(shots),
                 "--out", str(out), "--max-length", "60", "--max-new-tokens", "4", "--judge-url", chat_server.url,
                 "--judge-model", "gpt-4", "--no-progress"]) == 0
    summary = json.loads((out / "longbench_chat.json").read_text())["summary"]
    assert summary["mean_score"] == 8.0
    sent = chat_server.requests[0]["messages"]
    assert sent[0]["content"] == "You're a good assistant at evaluating the quality of texts."
    assert "[Question] What is it about?\n\n[Reference answer begins] A long text. [Reference answer ends]" in \
        sent[1]["content"]
    assert "[Assistant’s answer begins] Nothing. [Assistant’s answer ends]\n\nRating: [1]" in sent[1]["content"]
    shots.write_text(json.dumps([[{"answer": "only one", "score": 5}]]))
    assert main(["eval", "longbench-chat", str(tiny_model_dir), "--cases", str(cases), "--few-shots", str(shots),
                 "--out", str(out), "--judge-url", chat_server.url, "--judge-model", "gpt-4"]) == 2
