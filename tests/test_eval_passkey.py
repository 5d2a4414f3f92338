"""Passkey retrieval: scoring against a naive reference, prompt placement and length, and the CLI end to end."""

from __future__ import annotations

import json

import pytest
from eval_fixtures import read_csv

from gateau.cli import main
from gateau.eval.passkey import KEY_LINE, PasskeyBuilder, PasskeyConfig, answer_is_correct, pass_key
from gateau.eval.registry import evaluations
from gateau.eval.text import TokenMap


def naive_correct(answer: str, key: int) -> bool:
    """Reference: walk the characters, collect the first run of digits, compare its value with the key."""
    digits = ""
    for ch in answer:
        if ch in "0123456789":
            digits += ch
        elif digits:
            break
    return digits != "" and int(digits) == key


@pytest.mark.parametrize("answer", ["12345", " 12345.", "The pass key is 12345. Remember it.", "012345",
                                    "1234", "123456", "12 345", "no idea", "", "key 99999 then 12345",
                                    "12345abc", "-12345"])
def test_scoring_matches_a_naive_reference(answer):
    assert answer_is_correct(answer, 12345) == naive_correct(answer, 12345)


def test_scoring_examples():
    assert answer_is_correct(" 4213. Remember it.", 4213)
    assert not answer_is_correct(" 42130", 4213) and not answer_is_correct("none", 4213)


class _Tok:
    """The evaluation-side view a builder needs: the tokenizer and the chat rendering."""

    def __init__(self, tokenizer):
        from gateau.eval.generate import render

        self.tokenizer = tokenizer
        self.render = lambda prompt: render(tokenizer, prompt)


@pytest.mark.parametrize("length", [300, 900])
@pytest.mark.parametrize("depth", [0, 40, 100])
def test_prompt_has_its_length_and_the_key_at_depth(tiny_tokenizer, length, depth):
    key = pass_key(0, length, depth, 0)
    ids = PasskeyBuilder(_Tok(tiny_tokenizer)).ids(length, depth, key)
    assert abs(len(ids) - length) <= 0.01 * length
    text = tiny_tokenizer.decode(ids)
    line = KEY_LINE.format(key=key)
    assert text.count(line) == 1 and text.rstrip().endswith("The pass key is")
    before, after = text.split(line)
    filler_before = TokenMap.build(tiny_tokenizer, before.split("there.\n", 1)[1].strip()).ids
    filler_after = TokenMap.build(tiny_tokenizer, after.split("What is the pass key?")[0].strip()).ids
    share = 100 * len(filler_before) / (len(filler_before) + len(filler_after))
    # moved back to a sentence boundary: at most one essay sentence (~60 tokens here) before the requested depth
    assert share <= depth + 1 and share >= depth - 100 * 60 / (len(filler_before) + len(filler_after))


def test_keys_are_seeded_per_item():
    assert pass_key(0, 1024, 50, 0) == pass_key(0, 1024, 50, 0)
    assert len({pass_key(0, 1024, 50, i) for i in range(20)}) > 15
    assert all(1 <= pass_key(s, 512, 0, 0) <= 50000 for s in range(50))


def test_registered_and_validated():
    assert evaluations()["passkey"].settings_type is PasskeyConfig
    with pytest.raises(ValueError, match="between 0 and 100"):
        PasskeyConfig(out="x", depths=(120.0,)).validate()


def test_eval_passkey_end_to_end(tiny_model_dir, tmp_path):
    out = tmp_path / "pk"
    argv = ["eval", "passkey", str(tiny_model_dir), "--out", str(out), "--lengths", "300,500", "--depths", "0,50",
            "--samples", "2", "--max-new-tokens", "6", "--no-progress"]
    assert main(argv) == 0
    rows = read_csv(out / "passkey.csv")
    assert [(r["length"], r["depth"], r["index"]) for r in rows] == [
        (n, d, i) for n in ("300", "500") for d in ("0.0", "50.0") for i in ("0", "1")]
    stored = {json.loads(x)["key"]: json.loads(x) for x in (out / "passkey.items.jsonl").read_text().splitlines()[1:]}
    for r in rows:
        item = stored[f"{r['length']}|{float(r['depth']):g}|{r['index']}"]
        assert int(r["pass_key"]) == item["pass_key"] == pass_key(0, int(r["length"]), float(r["depth"]),
                                                                  int(r["index"]))
        assert float(r["score"]) == float(naive_correct(item["answer"], item["pass_key"]))
        assert abs(int(r["prompt_tokens"]) - int(r["length"])) <= 0.01 * int(r["length"])
    summary = json.loads((out / "passkey.json").read_text())["summary"]
    assert summary["generated_now"] == 8
    assert summary["accuracy"] == pytest.approx(sum(float(r["score"]) for r in rows) / 8)
    assert (out / "passkey.md").read_text().startswith("| depth % \\ length | 300")
    assert main(argv) == 0  # resumed: nothing generated again
    assert json.loads((out / "passkey.json").read_text())["summary"]["generated_now"] == 0
