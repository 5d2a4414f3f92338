"""Needle placement (depth ±1 sentence, prompt length ±1%), recall scoring, and `gateau eval needle` end to end."""

from __future__ import annotations

import json

import pytest
from eval_fixtures import read_csv

from gateau.cli import main
from gateau.eval.needle import (
    NEEDLE,
    QUESTION,
    NeedleBuilder,
    NeedleConfig,
    default_key_phrases,
    default_lengths,
    keyphrase_recall,
)
from gateau.eval.text import TokenMap, sentence_ends


@pytest.fixture(scope="module")
def builder(tiny_tokenizer):
    return NeedleBuilder(tiny_tokenizer, NeedleConfig(out="unused"))


@pytest.mark.parametrize("length", [300, 1000, 2500])
@pytest.mark.parametrize("depth", [0, 10, 33, 50, 77, 100])
def test_needle_sits_whole_at_depth_and_prompt_has_length(builder, tiny_tokenizer, length, depth):
    case = builder.case(length, depth)
    assert abs(len(case.ids) - length) <= 0.01 * length
    assert case.context[case.needle_start:case.needle_start + len(NEEDLE)] == NEEDLE
    assert NEEDLE in tiny_tokenizer.decode(case.ids)
    # the haystack without the needle, and where the requested depth falls in it
    before = case.context[:case.needle_start].rstrip()
    after = case.context[case.needle_start + len(NEEDLE):].lstrip()
    hay = (before + " " + after).strip() if before and after else (before or after)
    hay_map = TokenMap.build(tiny_tokenizer, hay)
    n = len(hay_map.ids)
    target = hay_map.char_start(round(n * depth / 100))
    cut = len(before)
    assert cut <= target + 1
    if depth == 100:
        assert after == ""
    else:  # the needle starts at a sentence boundary, and no other boundary lies between it and the target
        assert cut == 0 or cut in sentence_ends(hay[:cut + 1])
        assert not [e for e in sentence_ends(hay[: target + 1]) if cut < e <= target]
    assert case.depth_actual <= depth + 100 / n * 2


def test_key_phrases_and_recall():
    phrases = default_key_phrases(NEEDLE, QUESTION)
    assert phrases == ("eat", "sandwich", "sit", "dolores", "park", "sunny", "day")
    assert keyphrase_recall("Eat a sandwich and sit in Dolores Park on a sunny day.", phrases) == 1.0
    assert keyphrase_recall("Go to Dolores Park.", phrases) == pytest.approx(2 / 7)
    assert keyphrase_recall("Eating a sandwich and sitting in Dolores Park on sunny days.", phrases) == 1.0
    assert keyphrase_recall("sandwichmaker parkland", phrases) == 0.0  # whole words or inflections only
    assert keyphrase_recall("in dolores park", ["Dolores Park", "sunny day"]) == 0.5


def test_default_lengths():
    assert default_lengths(8192, 64) == (1024, 2048, 4096, 8128)
    assert default_lengths(4096, 64)[-1] == 4032


def test_eval_needle_end_to_end(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "needle"
    argv = ["eval", "needle", str(tiny_model_dir), "--out", str(out), "--lengths", "400,700", "--depths", "0,50",
            "--max-new-tokens", "6", "--no-progress"]
    assert main(argv) == 0
    rows = read_csv(out / "needle.csv")
    assert [(r["length"], r["depth"]) for r in rows] == [("400", "0.0"), ("400", "50.0"), ("700", "0.0"),
                                                          ("700", "50.0")]
    for r in rows:
        assert abs(int(r["prompt_tokens"]) - int(r["length"])) <= 0.01 * int(r["length"])
        assert 0.0 <= float(r["score"]) <= 1.0
    summary = json.loads((out / "needle.json").read_text())["summary"]
    assert summary["generated_now"] == 4 and summary["scorer"] == "keyphrase-recall"
    assert (out / "needle.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "depth % \\ length" in (out / "needle.md").read_text()
    # a re-run resumes: nothing is generated again; another needle is refused without --overwrite
    assert main(argv) == 0
    assert json.loads((out / "needle.json").read_text())["summary"]["generated_now"] == 0
    assert main(argv + ["--needle", "Another needle sentence."]) == 2
    assert "other settings (changed: needle)" in capsys.readouterr().err


def test_eval_needle_bad_input(tiny_model_dir, tmp_path, capsys):
    assert main(["eval", "needle", str(tiny_model_dir), "--out", str(tmp_path), "--depths", "150"]) == 2
    assert "between 0 and 100" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "needle", "default", "--out", str(tmp_path), "--lengths", "1x"])
