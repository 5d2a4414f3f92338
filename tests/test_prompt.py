"""`PromptEncoder`: templates, left truncation, windows, segments; window-mode HMG against a naive reference.

References are built by hand from the template strings (plain: the official GATEAU format; chat: the ChatML
template of the test tokenizer) and scored with full-sequence logits, never with `gateau.measure`.
"""

from __future__ import annotations

import random
import string

import pytest
import torch
from conftest import CHAT_TEMPLATE, build_tiny_model, build_tiny_tokenizer

from gateau.data import Sample
from gateau.models import LoadedModel
from gateau.prompt import EncodeError, PromptEncoder
from gateau.status import Status
from gateau.config import ScoreConfig
from gateau.pipeline.scorer import Scorer
from naive import response_nll as naive_nll

WORDS = ("the quick brown fox jumps over lazy dog archive keeps every essay in order startups grow when founders "
         "talk to users write code and keep costs low secret number of blue lighthouse is red harbour boats").split()


def _text(seed: int, n_words: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def sample(n_ctx_words: int = 60, seed: int = 0, instruction: str = "What is the secret number of the lighthouse?",
           response: str = "The secret number is 7481, said the archive.") -> Sample:
    return Sample(index=seed, id=str(seed), context=_text(seed, n_ctx_words), instruction=instruction,
                  response=response)


def ids_of(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"] if text else []


def reference_parts(tok, template: str, s: Sample) -> tuple[list[int], list[int], list[int], list[int]]:
    """(head, context, middle, response) ids written from the template text, independently of gateau.prompt."""
    if template == "plain":
        head = [tok.bos_token_id] + ids_of(tok, "### Input:\n")
        middle = ids_of(tok, "\n\n### Instruction:\n" + s.instruction + "\n\n### Response:\n")
    else:  # conftest's ChatML template, one user turn "context\n\ninstruction" and one assistant turn
        head = ids_of(tok, "<|im_start|>user\n")
        middle = ids_of(tok, "\n\n" + s.instruction + "<|im_end|>\n<|im_start|>assistant\n")
    return head, ids_of(tok, s.context), middle, ids_of(tok, s.response)



# ---------------------------------------------------------------------------------------------------------------
# Templates


def test_plain_template_text(tiny_tokenizer):
    s = sample()
    enc = PromptEncoder(tiny_tokenizer, "plain").encode(s)
    ids, start = enc.row()
    text = tiny_tokenizer.decode(ids)
    assert text == f"<s>### Input:\n{s.context}\n\n### Instruction:\n{s.instruction}\n\n### Response:\n{s.response}"
    assert tiny_tokenizer.decode(ids[start:]) == s.response
    assert (enc.head, enc.context, enc.middle, enc.response) == reference_parts(tiny_tokenizer, "plain", s)
    assert enc.truncated == 0


def _conversation(s: Sample) -> list[dict[str, str]]:
    return [{"role": "user", "content": s.context + "\n\n" + s.instruction},
            {"role": "assistant", "content": s.response}]


@pytest.mark.parametrize("system", [False, True])
def test_chat_parts_round_trip(system):
    tok = build_tiny_tokenizer()
    if system:  # a template that always injects a system prompt first
        tok.chat_template = ("<|im_start|>system\nYou are a careful reader.<|im_end|>\n" + CHAT_TEMPLATE)
    s = sample(40, seed=1)
    enc = PromptEncoder(tok, "chat").encode(s)
    decoded = tok.decode(enc.head + enc.context + enc.middle + enc.response)
    rendered = tok.apply_chat_template(_conversation(s), tokenize=False)
    # the response is scored without the end-of-turn text the template appends after it
    assert rendered == decoded + "<|im_end|>\n"
    assert tok.decode(enc.context) == s.context
    assert tok.decode(enc.response) == s.response
    if system:
        assert tok.decode(enc.head).startswith("<|im_start|>system\nYou are a careful reader.")
    else:
        assert (enc.head, enc.context, enc.middle, enc.response) == reference_parts(tok, "chat", s)


def test_encoder_rejects_bad_template_choices(tiny_tokenizer):
    with pytest.raises(ValueError, match="unknown template"):
        PromptEncoder(tiny_tokenizer, "alpaca")
    tok = build_tiny_tokenizer()
    tok.chat_template = None
    with pytest.raises(ValueError, match="chat template"):
        PromptEncoder(tok, "chat")


def test_response_alone(tiny_tokenizer):
    s = sample()
    pe = PromptEncoder(tiny_tokenizer, "plain")
    ids, start = pe.response_alone(s)
    # Cherry's direct answer: the response after the response header, tokenised as one text
    assert ids == [tiny_tokenizer.bos_token_id] + ids_of(tiny_tokenizer, "### Response:\n" + s.response)
    assert tiny_tokenizer.decode(ids[start:]) == s.response
    assert tiny_tokenizer.decode(ids[1:start]) == "### Response:\n"
    chat = PromptEncoder(tiny_tokenizer, "chat")
    ids, start = chat.response_alone(s)  # chat: a conversation whose user turn is empty
    assert tiny_tokenizer.decode(ids) == "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n" + s.response
    assert tiny_tokenizer.decode(ids[start:]) == s.response


# ---------------------------------------------------------------------------------------------------------------
# Left truncation


@pytest.mark.parametrize("template", ["plain", "chat"])
@pytest.mark.parametrize("drop", [1, 7, 50])
def test_left_truncation_keeps_instruction_and_response(tiny_tokenizer, template, drop):
    s = sample(80, seed=2)
    head, ctx, middle, resp = reference_parts(tiny_tokenizer, template, s)
    total = len(head) + len(ctx) + len(middle) + len(resp)
    assert drop < len(ctx)
    enc = PromptEncoder(tiny_tokenizer, template, max_length=total - drop).encode(s)

    assert enc.n_tokens == total - drop and len(enc.row()[0]) == total - drop
    assert enc.truncated == drop
    assert enc.head == head and enc.middle == middle and enc.response == resp  # only context tokens are dropped
    assert enc.context == ctx[drop:]  # the oldest ones
    full_text = tiny_tokenizer.decode(ctx)
    kept_text = tiny_tokenizer.decode(enc.context)
    assert kept_text and full_text.endswith(kept_text) and len(kept_text) < len(full_text)
    ids, start = enc.row()
    assert tiny_tokenizer.decode(ids[start:]) == s.response
    assert s.instruction in tiny_tokenizer.decode(ids[:start])


@pytest.mark.parametrize("template", ["plain", "chat"])
def test_no_truncation_when_it_fits_exactly(tiny_tokenizer, template):
    s = sample(30, seed=3)
    head, ctx, middle, resp = reference_parts(tiny_tokenizer, template, s)
    total = len(head) + len(ctx) + len(middle) + len(resp)
    enc = PromptEncoder(tiny_tokenizer, template, max_length=total).encode(s)
    assert enc.truncated == 0 and enc.context == ctx


@pytest.mark.parametrize("template", ["plain", "chat"])
def test_too_long_boundary(tiny_tokenizer, template):
    s = sample(30, seed=4)
    head, _, middle, resp = reference_parts(tiny_tokenizer, template, s)
    fixed = len(head) + len(middle) + len(resp)
    for max_length in (fixed, fixed - 1, 16):  # template + instruction + response ≥ max_length: no room for context
        with pytest.raises(EncodeError) as info:
            PromptEncoder(tiny_tokenizer, template, max_length=max_length).encode(s)
        assert info.value.status == Status.TOO_LONG == "too_long"
        assert str(max_length) in str(info.value)
    enc = PromptEncoder(tiny_tokenizer, template, max_length=fixed + 1).encode(s)  # one context token survives
    assert enc.context == ids_of(tiny_tokenizer, s.context)[-1:]
    assert enc.n_tokens == fixed + 1


# ---------------------------------------------------------------------------------------------------------------
# Windows and segments


@pytest.mark.parametrize("template", ["plain", "chat"])
def test_window_row(tiny_tokenizer, template):
    s = sample(60, seed=5)
    head, ctx, middle, resp = reference_parts(tiny_tokenizer, template, s)
    enc = PromptEncoder(tiny_tokenizer, template).encode(s)
    for w in (1, 16, 33, len(ctx), len(ctx) + 10):
        ids, start = enc.window_row(w)
        assert (ids, start) == enc.row(ctx[-w:])
        assert ids == head + ctx[-w:] + middle + resp
        assert start == len(ids) - len(resp)
    ids, start = enc.window_row(0)
    assert ids == head + middle + resp


def test_segments_cover_the_context(tiny_tokenizer):
    enc = PromptEncoder(tiny_tokenizer, "plain").encode(sample(70, seed=6))
    n = len(enc.context)
    assert n % 16, "the test needs a short last segment"
    spans = enc.segments(16, keep_last=True)
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(e - s == 16 for s, e in spans[:-1]) and 0 < spans[-1][1] - spans[-1][0] < 16
    assert len(spans) == -(-n // 16)
    full = enc.segments(16)  # default: the short last segment is dropped, as in the paper
    assert full == spans[:-1] and len(full) == n // 16
    sub = enc.segments(16, max_segments=3, seed=1)
    assert len(sub) == 3 and sub == sorted(sub) and set(sub) <= set(full)
    assert sub == enc.segments(16, max_segments=3, seed=1)  # seeded


# ---------------------------------------------------------------------------------------------------------------
# Window-mode HMG through the Scorer


@pytest.mark.parametrize("template", ["plain", "chat"])
def test_window_mode_hmg_matches_naive(tiny_tokenizer, template):
    model = build_tiny_model("llama", len(tiny_tokenizer), seed=7)
    window, max_length = 24, 240
    samples = [sample(20, seed=10), sample(60, seed=11), sample(120, seed=12)]  # untruncated, truncated twice
    for i, s in enumerate(samples):
        s.index, s.id = i, f"s{i}"
    config = ScoreConfig.from_flat(data="unused.jsonl", out="unused", methods="hmg", long_model="tiny",
                                   short_window=window, max_length=max_length, template=template,
                                   token_budget=300, progress=False)
    scorer = Scorer(config, LoadedModel(model, tiny_tokenizer, spec="tiny", device=torch.device("cpu")))
    rows = scorer.score_batch(samples)

    truncated = []
    for s, row in zip(samples, rows):
        head, ctx, middle, resp = reference_parts(tiny_tokenizer, template, s)
        keep = min(len(ctx), max_length - len(head) - len(middle) - len(resp))
        kept = ctx[len(ctx) - keep:]
        truncated.append(len(ctx) - keep)
        long_ids = head + kept + middle + resp
        short_ids = head + kept[-window:] + middle + resp
        assert s.context.endswith(tiny_tokenizer.decode(kept[-window:]))  # the window is the context's tail
        start_long, start_short = len(long_ids) - len(resp), len(short_ids) - len(resp)
        assert row["status"] == "ok", row
        assert row["n_truncated"] == len(ctx) - keep
        assert row["n_context"] == len(ctx)
        assert row["n_response"] == len(resp)
        assert row["n_short_context"] == min(window, keep)
        assert row["nll_long"] == pytest.approx(naive_nll(model, long_ids, start_long), abs=1e-5)
        assert row["nll_short"] == pytest.approx(naive_nll(model, short_ids, start_short), abs=1e-5)
    assert truncated[0] == 0 and truncated[1] > 0 and truncated[2] > truncated[1]


# ---------------------------------------------------------------------------------------------------------------
# Tokenise once: the scored ids are the ids of the whole text


def sentencepiece_style_tokenizer():
    """A Llama-2-like tokenizer built offline: BPE over Metaspace ("▁" for spaces, one prepended at the start)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
                                  initial_alphabet=list(string.printable))
    tok.train_from_iterator([" ".join(WORDS), "### Input: ### Instruction: ### Response: What is it?"] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.mark.parametrize("kind", ["sentencepiece", "byte-level"])
def test_scored_ids_are_the_ids_of_the_whole_text(tiny_tokenizer, kind):
    tok = sentencepiece_style_tokenizer() if kind == "sentencepiece" else tiny_tokenizer
    s = sample(40, seed=8)
    text = f"### Input:\n{s.context}\n\n### Instruction:\n{s.instruction}\n\n### Response:\n{s.response}"
    whole = [tok.bos_token_id] + ids_of(tok, text)
    enc = PromptEncoder(tok, "plain").encode(s)
    ids, start = enc.row()
    assert ids == whole
    assert tok.decode(ids[start:]).strip() == s.response
    if kind == "sentencepiece":  # the bug this guards against: parts tokenised apart gain a leading "▁" each
        apart = [tok.bos_token_id] + [i for part in reference_parts(tok, "plain", s)[1:] for i in part]
        assert apart != whole[:1] + whole[len(enc.head):]


def test_untokenisable_text_is_a_bad_text_status(tiny_tokenizer):
    s = sample(10, seed=9, response="lone surrogate \ud800 here")
    with pytest.raises(EncodeError) as info:
        PromptEncoder(tiny_tokenizer, "plain").encode(s)
    assert info.value.status == Status.BAD_TEXT


def _outcome(result):
    """An encoding's parts, or an error's status and message, for comparing `encode` with `encode_many`."""
    if isinstance(result, Exception):
        return ("error", result.status, str(result))
    return (result.head, result.context, result.middle, result.response, result.truncated)


@pytest.mark.parametrize("template", ["plain", "chat"])
@pytest.mark.parametrize("kind", ["bpe", "sentencepiece"])
def test_a_batch_encodes_as_each_sample_alone(tiny_tokenizer, template, kind):
    """`encode_many` / `response_alone_many` (one batched tokenizer call) give, sample by sample, what `encode` /
    `response_alone` give, errors included: an empty response, a sample too long for --max-length, a lone
    surrogate (the whole batch then falls back to one text at a time) and an empty context."""
    tok = sentencepiece_style_tokenizer() if kind == "sentencepiece" else tiny_tokenizer
    if template == "chat" and not getattr(tok, "chat_template", None):
        tok.chat_template = CHAT_TEMPLATE
    encoder = PromptEncoder(tok, template, max_length=120)
    batch = [sample(30, seed=1), sample(200, seed=2), sample(0, seed=3), sample(10, seed=4, response=""),
             sample(10, seed=5, instruction=" ".join(WORDS * 8)), sample(50, seed=6, response="ok ünïcödé ✓")]
    for extra in ([], [sample(10, seed=9, response="lone surrogate \ud800 here")]):
        samples = batch + extra
        singles = []
        for s in samples:
            try:
                singles.append(encoder.encode(s))
            except EncodeError as exc:
                singles.append(exc)
        assert [_outcome(r) for r in encoder.encode_many(samples)] == [_outcome(r) for r in singles]
        alone = encoder.response_alone_many(samples)
        for s, got in zip(samples, alone):
            try:
                assert got == encoder.response_alone(s)
            except EncodeError as exc:
                assert _outcome(got) == _outcome(exc)
    assert {type(r).__name__ for r in encoder.encode_many(batch)} == {"EncodedSample", "EncodeError"}
