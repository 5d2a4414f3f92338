"""LongBench metrics on hand-computed examples (English and Chinese), the first-line rule, buckets, and the CLI."""

from __future__ import annotations

import json

import pytest
from eval_fixtures import chat_server_fixture  # noqa: F401 (fixture)

from gateau.cli import main
from gateau.eval.longbench import (
    aggregate,
    bucket,
    first_line,
    score_item,
    truncate_middle,
)

TREC_CLASSES = ["Abbreviation", "Entity", "Description", "Human", "Location", "Numeric"]


def test_qa_f1_english():
    # normalised: [cat, sat, on, mat] vs [cat, on, mat] -> 3 common; P = 3/4, R = 1, F1 = 1.5 / 1.75
    assert score_item("hotpotqa", "The cat sat on the mat.", ["a cat on a mat"], None) == pytest.approx(6 / 7)
    # best over the references
    assert score_item("narrativeqa", "Paris", ["London", "paris"], None) == 1.0


def test_qa_f1_chinese():
    # jieba: 北京/是/中国/的/首都 vs 中国/的/首都 -> 3 common; P = 3/5, R = 1, F1 = 0.75
    assert score_item("multifieldqa_zh", "北京是中国的首都", ["中国的首都"], None) == pytest.approx(0.75)


def test_rouge_l_english_and_chinese():
    # LCS "cat was under bed" = 4 of 5 predicted and 4 reference words: P = 4/5, R = 1, F = 8/9
    assert score_item("gov_report", "cat was found under bed", ["cat was under bed"], None) == pytest.approx(8 / 9)
    # jieba: 会议/讨论/了/预算/问题 vs 会议/讨论/预算 -> LCS 3: P = 3/5, R = 1, F = 0.75
    assert score_item("vcsum", "会议讨论了预算问题", ["会议讨论预算"], None) == pytest.approx(0.75)


def test_classification():
    assert score_item("lsht", "Location", ["Location"], TREC_CLASSES) == 1.0
    assert score_item("lsht", "Human or Location", ["Location"], TREC_CLASSES) == 0.5  # two classes named
    assert score_item("lsht", "Numeric", ["Location"], TREC_CLASSES) == 0.0
    # a class inside the ground truth (cat in category) is not counted against it
    assert score_item("lsht", "category", ["category"], ["cat", "category", "dog"]) == 1.0


def test_retrieval_count_code():
    assert score_item("passage_retrieval_en", "Paragraph 3", ["Paragraph 3"], None) == 1.0
    assert score_item("passage_retrieval_en", "Paragraph 3 or Paragraph 5", ["Paragraph 3"], None) == 0.5
    assert score_item("passage_retrieval_zh", "段落3和段落12", ["段落3"], None) == 0.5
    assert score_item("passage_count", "There are 5 unique paragraphs, not 6", ["5"], None) == 0.5
    # the first line without ``` or # or //: "x = foo(1)" vs "x = foo(2)": 9 of 10 characters match -> 0.9
    assert score_item("lcc", "```python\n# comment\nx = foo(1)\n", ["x = foo(2)"], None) == pytest.approx(0.9)
    assert score_item("repobench-p_e", "x = foo(2)", ["x = foo(2)"], None) == 1.0  # _e files: same metric


def test_first_line_rule():
    assert first_line("\n\nLocation\nHuman") == "Location"
    assert score_item("trec", "\n\nLocation\nHuman", ["Location"], TREC_CLASSES) == 1.0
    assert score_item("lsht", "\n\nLocation\nHuman", ["Location"], TREC_CLASSES) == 1.0
    # qasper is not a few-shot dataset: both lines count
    assert score_item("qasper", "yes\nno", ["yes"], None) == pytest.approx(2 / 3)
    assert score_item("triviaqa", "Paris\nis the capital of France", ["Paris"], None) == 1.0


def test_buckets_and_rounding():
    assert [bucket(n) for n in (0, 3999, 4000, 7999, 8000, 50000)] == ["0-4k", "0-4k", "4-8k", "4-8k", "8k+", "8k+"]
    assert aggregate([1.0, 0.5, 0.0]) == 50.0
    assert aggregate([1.0, 0.0, 0.0]) == 33.33
    assert aggregate([1.0, 0.5, 0.0, 1 / 3], [100, 5000, 9000, 4000]) == {"0-4k": 100.0, "4-8k": 41.67, "8k+": 0.0}
    assert aggregate([1.0], [100]) == {"0-4k": 100.0, "4-8k": None, "8k+": None}


def test_truncate_middle(tiny_tokenizer):
    text = " ".join(f"w{i}" for i in range(400))
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    cut = truncate_middle(tiny_tokenizer, text, 100)
    assert cut.startswith(tiny_tokenizer.decode(ids[:50])) and cut.endswith(tiny_tokenizer.decode(ids[-50:]))
    assert truncate_middle(tiny_tokenizer, "short", 100) == "short"


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_eval_longbench_pred_dir(tmp_path, capsys):
    pred = tmp_path / "pred"
    pred.mkdir()
    _write(pred / "hotpotqa.jsonl", [
        {"pred": "Paris", "answers": ["Paris"], "all_classes": None, "length": 1200},
        {"pred": "The cat sat on the mat.", "answers": ["a cat on a mat"], "all_classes": None, "length": 9000}])
    _write(pred / "trec.jsonl", [
        {"pred": "\nLocation\nHuman", "answers": ["Location"], "all_classes": TREC_CLASSES, "length": 5000},
        {"pred": "Human", "answers": ["Location"], "all_classes": TREC_CLASSES, "length": 5100}])
    _write(pred / "multifieldqa_zh.jsonl", [
        {"pred": "北京是中国的首都", "answers": ["中国的首都"], "all_classes": None, "length": 300}])
    assert main(["eval", "longbench", str(pred)]) == 0
    assert json.loads((pred / "result.json").read_text()) == {"hotpotqa": 92.86, "multifieldqa_zh": 75.0,
                                                              "trec": 50.0}
    assert "| hotpotqa " in capsys.readouterr().out
    assert main(["eval", "longbench", str(pred), "--e"]) == 0
    assert json.loads((pred / "result.json").read_text()) == {
        "hotpotqa": {"0-4k": 100.0, "4-8k": None, "8k+": 85.71},
        "multifieldqa_zh": {"0-4k": 75.0, "4-8k": None, "8k+": None},
        "trec": {"0-4k": None, "4-8k": 50.0, "8k+": None}}


def test_eval_longbench_bad_input(tmp_path, capsys):
    assert main(["eval", "longbench", str(tmp_path / "missing")]) == 2
    assert "not a prediction folder" in capsys.readouterr().err
    (tmp_path / "notes.jsonl").write_text("{}\n")
    assert main(["eval", "longbench", str(tmp_path)]) == 2
    assert "notes.jsonl not LongBench dataset" in capsys.readouterr().err
    (tmp_path / "notes.jsonl").unlink()
    _write(tmp_path / "qasper.jsonl", [{"pred": "x", "answers": "x"}])
    assert main(["eval", "longbench", str(tmp_path)]) == 2
    assert "qasper.jsonl:1: needs `answers`, a list of strings" in capsys.readouterr().err
    _write(tmp_path / "qasper.jsonl", [{"pred": "x", "answers": ["x"], "all_classes": None}])
    assert main(["eval", "longbench", str(tmp_path), "--e"]) == 2
    assert "--e needs an integer `length`" in capsys.readouterr().err


def test_eval_longbench_predict_then_score(tiny_model_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "hotpotqa.jsonl", [
        {"_id": f"q{i}", "input": "Who keeps the essays?", "context": "The archive keeps every essay. " * 40,
         "answers": ["the archive"], "all_classes": None, "length": 240, "dataset": "hotpotqa"} for i in range(2)])
    _write(data / "trec.jsonl", [
        {"_id": "t0", "input": "What is the code?", "context": "Question: Who wrote it?\nType: Human\n",
         "answers": ["Entity"], "all_classes": TREC_CLASSES, "length": 12, "dataset": "trec"}])
    out = tmp_path / "pred"
    argv = ["eval", "longbench", str(tiny_model_dir), "--data", str(data), "--out", str(out), "--max-length", "120",
            "--no-progress"]
    assert main(argv) == 0
    lines = [json.loads(x) for x in (out / "hotpotqa.jsonl").read_text().splitlines()]
    assert [x["_id"] for x in lines] == ["q0", "q1"] and all(isinstance(x["pred"], str) for x in lines)
    assert set(json.loads((out / "result.json").read_text())) == {"hotpotqa", "trec"}
    items = (out / "gateau" / "hotpotqa.items.jsonl").read_text().splitlines()
    assert len(items) == 3  # header + 2 answers
    assert main(argv) == 0  # resumed: nothing new
    assert (out / "gateau" / "hotpotqa.items.jsonl").read_text().splitlines() == items
    assert main(["eval", "longbench", str(tiny_model_dir), "--data", str(data), "--datasets", "qmsum",
                 "--out", str(out)]) == 2


def test_eval_longbench_with_the_paper_judge(chat_server, tmp_path, capsys):
    chat_server.default = lambda body: "[2]" if "Question: " in body["messages"][-1]["content"] else "[4]"
    pred = tmp_path / "pred"
    pred.mkdir()
    _write(pred / "hotpotqa.jsonl", [{"pred": "Paris", "answers": ["Paris"], "all_classes": None, "length": 10,
                                      "input": "Where?"}])
    _write(pred / "gov_report.jsonl", [{"pred": "A summary.", "answers": ["The summary."], "all_classes": None,
                                        "length": 10}])
    _write(pred / "trec.jsonl", [{"pred": "Human", "answers": ["Human"], "all_classes": TREC_CLASSES, "length": 10}])
    assert main(["eval", "longbench", str(pred), "--judge-url", chat_server.url, "--judge-model", "gpt-4"]) == 0
    assert json.loads((pred / "result_judge.json").read_text()) == {"gov_report": 4.0, "hotpotqa": 2.0}
    sent = [r["messages"][-1]["content"] for r in chat_server.requests]
    assert any("Question: Where?\nReference answer: Paris\nAssistant’s answer: Paris\nRating:" in m for m in sent)
    assert any(m.startswith("You are asked to evaluate the quality of the AI assistant’s generated summary")
               for m in sent)
    assert len(sent) == 4  # trec is not judged; two judgments each
    _write(pred / "hotpotqa.jsonl", [{"pred": "Paris", "answers": ["Paris"], "all_classes": None, "length": 10}])
    assert main(["eval", "longbench", str(pred), "--judge-url", chat_server.url, "--judge-model", "gpt-4"]) == 2
    assert "the QA judge needs the question in `input`" in capsys.readouterr().err
