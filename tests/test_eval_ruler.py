"""RULER tasks: samples follow the task definitions, fit the length, score with RULER's metrics; CLI end to end."""

from __future__ import annotations

import collections
import json
import re

import pytest
from eval_fixtures import read_csv

from gateau.cli import main
from gateau.eval.ruler import RulerBuilder, postprocess, task_configs


@pytest.fixture(scope="module")
def builder(tiny_tokenizer):
    return RulerBuilder(tiny_tokenizer, seed=42)


def test_the_13_tasks_of_synthetic_yaml():
    assert list(task_configs()) == ["niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1",
                                    "niah_multikey_2", "niah_multikey_3", "niah_multivalue", "niah_multiquery",
                                    "vt", "cwe", "fwe", "qa_1", "qa_2"]


@pytest.mark.parametrize("task", ["niah_single_1", "niah_single_2", "niah_multikey_2", "niah_multivalue",
                                  "niah_multiquery", "vt", "cwe", "fwe", "qa_1"])
def test_samples_fit_and_hold_their_answers(builder, task):
    length = 2500
    s, ids = builder.item(task, length, 0)
    assert len(ids) + builder.budget(task) <= length
    bigger = builder.sample(task, length, 0, builder.fitted_size(task, length) * 2)[1]
    assert len(bigger) + builder.budget(task) > length  # the size was the largest that fits (to RULER's step)
    family = task_configs()[task]["task"]
    if family == "niah":
        for value in s.outputs:
            assert f"is: {value}." in s.user
        n_values = task_configs()[task]["args"]["num_needle_v"] * task_configs()[task]["args"]["num_needle_q"]
        assert len(s.outputs) == n_values
        assert ("A special magic" in s.user) == (n_values == 1)
    elif family == "variable_tracking":
        assert len(s.outputs) == 5
        value = re.search(r"VAR " + s.outputs[0] + r" = (\d+)", s.user).group(1)
        for a, b in zip(s.outputs, s.outputs[1:]):
            assert f"VAR {b} = VAR {a}" in s.user
        assert f"assigned the value {value}" in s.user and "5 variables" in s.prefix
    elif family == "common_words_extraction":
        listing = s.user.split("\n")[-2]  # the question's list (after the one-shot example)
        counts = collections.Counter(re.findall(r"\d+\. (\S+)", listing))
        assert {w for w, _ in counts.most_common(10)} == set(s.outputs)
        others = [c for w, c in counts.items() if w not in s.outputs]
        assert others and min(counts[w] for w in s.outputs) > max(others)
    elif family == "freq_words_extraction":
        counts = collections.Counter(s.user.split("words. ", 1)[1].split("\nQuestion")[0].split())
        top = [w for w, _ in counts.most_common(4) if w != "..."][:3]
        assert top == s.outputs
    else:
        assert s.outputs == ["France"] * 4 and "Question: In what country is Normandy located?" in s.user


def test_samples_are_deterministic(tiny_tokenizer, builder):
    other = RulerBuilder(tiny_tokenizer, seed=42)
    assert builder.item("niah_single_2", 1200, 3)[1] == other.item("niah_single_2", 1200, 3)[1]
    assert builder.item("niah_single_2", 1200, 3)[1] != builder.item("niah_single_2", 1200, 4)[1]


def test_ruler_metrics(builder):
    assert builder.score("niah_multivalue", "1234567, 7654321", ["1234567", "7654321", "1111111", "2222222"]) == 50
    assert builder.score("qa_1", "It is in france.", ["France", "Normandy"]) == 100
    assert builder.score("vt", "\x00ABCDE", ["ABCDE"]) == 100
    assert builder.score("cwe", "nothing", ["a-word"]) == 0
    assert postprocess("  a\tb\n") == "a\nb"


def test_a_task_that_cannot_fit_is_reported(builder):
    assert builder.fitted_size("qa_2", 300) is None and builder.item("qa_2", 300, 0) is None


def test_eval_ruler_end_to_end(tiny_model_dir, tmp_path):
    out = tmp_path / "ruler"
    argv = ["eval", "ruler", str(tiny_model_dir), "--out", str(out), "--lengths", "800,1200", "--tasks",
            "niah_single_1,fwe", "--samples", "1", "--no-progress"]
    assert main(argv) == 0
    rows = read_csv(out / "ruler.csv")
    assert len(rows) == 4 and {r["task"] for r in rows} == {"niah_single_1", "fwe"}
    assert all(0 <= float(r["score"]) <= 100 and int(r["prompt_tokens"]) <= int(r["length"]) for r in rows)
    summary = json.loads((out / "ruler.json").read_text())["summary"]
    assert set(summary["scores"]) == {"niah_single_1", "fwe"} and summary["generated_now"] == 4
    table = (out / "ruler.md").read_text()
    assert table.startswith("| task \\ length | 800") and "| fwe " in table
    assert main(argv) == 0  # resumes: nothing generated again
    assert json.loads((out / "ruler.json").read_text())["summary"]["generated_now"] == 0
    assert main(["eval", "ruler", str(tiny_model_dir), "--out", str(out), "--lengths", "800", "--tasks", "nope"]) == 2
