"""The shared generation path: chat rendering, batching under a token budget, left padding = one-by-one."""

from __future__ import annotations

import pytest

from gateau.cli import main
from gateau.eval.generate import GenRequest, HFGenerator, Prompt, render
from gateau.models import load_model


@pytest.fixture(scope="module")
def generator(tiny_model_dir):
    return HFGenerator(load_model(str(tiny_model_dir), device="cpu"), progress=False)


def test_render_uses_the_chat_template(tiny_tokenizer):
    ids = render(tiny_tokenizer, Prompt.user("hello", system="be brief", assistant_prefix="Answer:"))
    assert tiny_tokenizer.decode(ids) == ("<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n"
                                          "<|im_start|>assistant\nAnswer:")
    assert tiny_tokenizer.decode(render(tiny_tokenizer, Prompt(raw="plain text"))) == "plain text"


def test_batches_respect_budget_padding_and_limits(generator):
    reqs = [GenRequest([5] * n, m) for n, m in [(100, 8), (95, 8), (60, 8), (100, 4), (99, 8)]]
    generator.token_budget, generator.max_batch = 330, 8
    batches = generator.batches(reqs)
    # same max_new_tokens, within 10% of the batch's longest, rows x (longest + new) <= 330
    assert batches == [[0, 4, 1], [2], [3]]
    generator.token_budget = 32768


def test_left_padded_batches_match_one_by_one(generator, tiny_tokenizer):
    texts = ["The quick brown fox", "The secret number of the blue lighthouse is", "Startups grow when founders",
             "What is the code?"]
    reqs = [GenRequest(render(tiny_tokenizer, Prompt.user(t)), 12) for t in texts]
    generator.max_batch = 1
    alone = generator.generate(reqs)
    generator.max_batch = 8
    generator.token_budget = 10 ** 6
    with pytest.MonkeyPatch.context() as mp:  # one batch with all four (lengths differ by more than 10%)
        mp.setattr(generator, "batches", lambda requests: [list(range(len(requests)))])
        together = generator.generate(reqs)
    assert [g.text for g in together] == [g.text for g in alone]
    assert all(g.new_tokens == 12 and g.prompt_tokens == len(r.ids) for g, r in zip(together, reqs))
    assert generator.stats.new_tokens >= 96 and generator.stats.tokens_per_second > 0


def test_sampling_is_seeded(generator, tiny_tokenizer):
    req = [GenRequest(render(tiny_tokenizer, Prompt.user("The quick brown fox")), 10)]
    a = generator.generate(req, temperature=1.0, seed=3)[0].text
    b = generator.generate(req, temperature=1.0, seed=3)[0].text
    assert a == b


def test_vllm_backend_missing_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", "needle", "some/model", "--out", str(tmp_path), "--backend", "vllm"]) == 2
    assert "pip install vllm" in capsys.readouterr().err
