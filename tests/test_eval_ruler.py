"""RULER tasks: samples follow the task definitions, fit the length, score with RULER's metrics; CLI end to end."""

from __future__ import annotations

import collections
import json
import re
import sys

import pytest
from eval_fixtures import read_csv

from gateau.cli import main
from gateau.eval.ruler import RulerBuilder, postprocess, task_configs
from gateau.eval.ruler.sentences import sentence_splitter
from gateau.eval.ruler.sources import essay_words, vocabulary
from gateau.eval.text import split_sentences


@pytest.fixture(scope="module")
def builder(tiny_tokenizer):
    return RulerBuilder(tiny_tokenizer, seed=42)


def test_the_13_tasks_of_synthetic_yaml():
    assert list(task_configs()) == ["niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1",
                                    "niah_multikey_2", "niah_multikey_3", "niah_multivalue", "niah_multiquery",
                                    "vt", "cwe", "fwe", "qa_1", "qa_2"]


@pytest.mark.parametrize("task", ["niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_2",
                                  "niah_multivalue",
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
    assert (summary["vocabulary"], summary["sentences"]) == ("wonderwords", "punkt-english")
    table = (out / "ruler.md").read_text()
    assert table.startswith("| task \\ length | 800") and "| fwe " in table
    assert table.endswith("word lists: wonderwords; essay sentences: punkt-english\n")
    assert main(argv) == 0  # resumes: nothing generated again
    assert json.loads((out / "ruler.json").read_text())["summary"]["generated_now"] == 0
    assert main(["eval", "ruler", str(tiny_model_dir), "--out", str(out), "--lengths", "800", "--tasks", "nope"]) == 2


@pytest.fixture
def without_word_packages(monkeypatch):
    """wonderwords and punkt hidden (``import`` fails, ``find_spec`` finds nothing), the cached choices cleared
    before and after."""
    for name in ("wonderwords", "punkt"):
        monkeypatch.setitem(sys.modules, name, None)
    vocabulary.cache_clear()
    sentence_splitter.cache_clear()
    yield
    vocabulary.cache_clear()
    sentence_splitter.cache_clear()


def test_word_lists_are_wonderwords_files_as_ruler_reads_them():
    from wonderwords import random_word  # RULER's niah.py / common_words_extraction.py read the lists with it

    lists, source = vocabulary()
    assert source == "wonderwords"
    for kind, name in [("nouns", "nounlist.txt"), ("adjs", "adjectivelist.txt"), ("verbs", "verblist.txt")]:
        assert lists[kind] == random_word._get_words_from_text_file(name)


def test_essay_sentences_are_punkts():
    import punkt

    text = " ".join(essay_words()[:5000]).strip()
    split, source = sentence_splitter()
    ours = split(text)
    assert source == "punkt-english"
    assert ours == punkt.sent_tokenize(text, "english")
    assert len(ours) < len(split_sentences(text))  # the regex also cuts inside "fun.The" and such


def test_without_the_packages_the_fallbacks_are_used_and_stated(without_word_packages, tiny_model_dir, tmp_path):
    from gateau.eval.generate import HFGenerator
    from gateau.eval.results import ItemLog
    from gateau.eval.ruler import Ruler, RulerConfig
    from gateau.eval.task import RunStats
    from gateau.models import load_model

    lists, source = vocabulary()
    assert source == "paul-graham-essay-words" and lists["nouns"] == lists["verbs"] and "startup" in lists["nouns"]
    assert sentence_splitter() == (split_sentences, "regex")
    ruler = Ruler(RulerConfig(out=str(tmp_path), lengths=(800,), tasks=("niah_single_2",), samples=1),
                  HFGenerator(load_model(str(tiny_model_dir), device="cpu", progress=False)))
    log = ItemLog(tmp_path / "ruler.items.jsonl", ruler.log_settings())
    sample = ruler.builder.item("niah_single_2", 800, 0)[0]  # the key: two essay words
    key = re.search(r"What is the special magic number for (\w+)-(\w+) mentioned", sample.user).groups()
    assert all(w in lists["nouns"] for w in key)
    assert [len(items) for _, items in ruler.stages(log)] == [1]
    assert (log.settings["vocabulary"], log.settings["sentences"]) == ("paul-graham-essay-words", "regex")
    rows = ruler.score(log, None)
    summary = ruler.summarize(rows, RunStats(0, 0.0, 0.0), None).to_json()
    assert (summary["vocabulary"], summary["sentences"]) == ("paul-graham-essay-words", "regex")
    assert ruler.table(rows).endswith("\n\nword lists: paul-graham-essay-words; essay sentences: regex")


def test_list_tasks_prints_every_task_of_synthetic_yaml_one_line_each(capsys):
    import importlib.util
    from pathlib import Path

    import yaml

    wheel = Path(importlib.util.find_spec("long_context_eval").submodule_search_locations[0])
    reference = yaml.safe_load((wheel / "synthetic.yaml").read_text())
    with pytest.raises(SystemExit) as stop:  # no MODEL, no --lengths: listing needs neither
        main(["eval", "ruler", "--list-tasks"])
    assert stop.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(reference)
    for line, (name, conf) in zip(lines, reference.items()):
        assert line.split()[1] == conf["task"] + ":"
        assert all(f"{k}={v}" in line for k, v in conf["args"].items())
