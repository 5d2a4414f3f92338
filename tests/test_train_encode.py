"""Assistant-only label masks against a naive per-token mask (one tokenisation of the whole text, character
offsets), truncation from the right, packing, and template errors."""

from __future__ import annotations

import copy

import pytest
from trl.data_utils import pack_dataset
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from gateau.train.data import SampleSkip
from gateau.train.encode import IGNORE_INDEX, ConversationEncoder, TemplateError

SINGLE = [{"role": "user", "content": "The archive keeps every essay.\n\nWhat is the code?"},
          {"role": "assistant", "content": "The secret number is 7481."}]
MULTI = [{"role": "system", "content": "Answer briefly."},
         {"role": "user", "content": "Startups grow when founders talk to users.\n\nSummarise the paragraph."},
         {"role": "assistant", "content": "Founders talk to users."},
         {"role": "user", "content": "Explain why."},
         {"role": "assistant", "content": "Users keep costs low."}]


def naive_chat_mask(tok, messages):
    """Tokenise the whole chat text once; a token has a label iff it starts inside an assistant's
    ``content<|im_end|>`` span (found by string search)."""
    text = tok.apply_chat_template(messages, tokenize=False)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    spans, cursor = [], 0
    for m in messages:
        if m["role"] == "assistant":
            needle = m["content"] + "<|im_end|>"
            start = text.index(needle, cursor)
            spans.append((start, start + len(needle)))
            cursor = start + len(needle)
    labels = [i if any(a <= s < b for a, b in spans) else IGNORE_INDEX
              for i, (s, _) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)]
    return enc["input_ids"], labels


def naive_plain_mask(tok, pieces):
    """``pieces`` = (text, trainable) of the plain template written out by hand; EOS written as its token text."""
    text = "".join(p for p, _ in pieces)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    spans, pos = [], 0
    for p, trainable in pieces:
        if trainable:
            spans.append((pos, pos + len(p)))
        pos += len(p)
    labels = [i if any(a <= s < b for a, b in spans) else IGNORE_INDEX
              for i, (s, _) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)]
    return [tok.bos_token_id] + enc["input_ids"], [IGNORE_INDEX] + labels


@pytest.mark.parametrize("messages", [SINGLE, MULTI], ids=["single", "multi"])
def test_chat_mask_equals_naive(tiny_tokenizer, messages):
    enc = ConversationEncoder(tiny_tokenizer, "chat", 4096).encode(messages)
    ids, labels = naive_chat_mask(tiny_tokenizer, messages)
    assert enc.input_ids == ids and enc.labels == labels
    assert enc.truncated == 0
    trained = tiny_tokenizer.decode([i for i in enc.labels if i != IGNORE_INDEX])
    assert trained == "".join(m["content"] + "<|im_end|>" for m in messages if m["role"] == "assistant")


def test_plain_mask_equals_naive(tiny_tokenizer):
    eos = tiny_tokenizer.eos_token
    pieces = [("Answer briefly.\n\n### Input:\nStartups grow when founders talk to users.\n\n### Instruction:\n"
               "Summarise the paragraph.\n\n### Response:\n", False), ("Founders talk to users." + eos, True),
              ("\n\n### Instruction:\nExplain why.\n\n### Response:\n", False), ("Users keep costs low." + eos, True)]
    enc = ConversationEncoder(tiny_tokenizer, "plain", 4096).encode(MULTI)
    ids, labels = naive_plain_mask(tiny_tokenizer, pieces)
    assert enc.input_ids == ids and enc.labels == labels


@pytest.mark.parametrize("template", ["chat", "plain"])
def test_truncation_cuts_from_the_right_keeping_the_prompt(tiny_tokenizer, template):
    encoder = ConversationEncoder(tiny_tokenizer, template, 4096)
    full = encoder.encode(MULTI)
    prompt = encoder.prompt_length(MULTI)
    assert full.labels[:prompt] == [IGNORE_INDEX] * prompt and full.labels[prompt] != IGNORE_INDEX
    cut_at = prompt + 3
    short = ConversationEncoder(tiny_tokenizer, template, cut_at).encode(MULTI)
    assert short.input_ids == full.input_ids[:cut_at] and short.labels == full.labels[:cut_at]
    assert short.truncated == len(full.input_ids) - cut_at and short.n_labels == 3
    with pytest.raises(SampleSkip, match="prompt alone fills --max-length") as info:
        ConversationEncoder(tiny_tokenizer, template, prompt).encode(MULTI)
    assert info.value.reason == "no_response_token"


def test_packed_batches_keep_every_mask(tiny_tokenizer):
    import datasets

    encoder = ConversationEncoder(tiny_tokenizer, "chat", 4096)
    convs = [SINGLE, MULTI, MULTI[:3], [MULTI[1], SINGLE[1]]]
    encoded = [encoder.encode(c) for c in convs]
    ds = datasets.Dataset.from_dict({"input_ids": [e.input_ids for e in encoded],
                                     "labels": [e.labels for e in encoded]})
    longest = max(len(e.input_ids) for e in encoded)
    packed = pack_dataset(ds, seq_length=longest + 10, strategy="bfd")
    assert len(packed) < len(encoded)  # some rows hold several sequences
    collator = DataCollatorForLanguageModeling(pad_token_id=tiny_tokenizer.pad_token_id, padding_free=True)
    batch = collator([packed[i] for i in range(len(packed))])
    ids, labels, pos = batch["input_ids"][0].tolist(), batch["labels"][0].tolist(), batch["position_ids"][0]
    starts = (pos == 0).nonzero().flatten().tolist() + [len(ids)]
    segments = sorted((tuple(ids[a:b]), tuple(labels[a:b])) for a, b in zip(starts, starts[1:], strict=False))
    assert segments == sorted((tuple(e.input_ids), tuple(e.labels)) for e in encoded)


def test_template_errors(tiny_tokenizer):
    bare = copy.deepcopy(tiny_tokenizer)
    bare.chat_template = None
    with pytest.raises(TemplateError, match="has none; use --template plain"):
        ConversationEncoder(bare, "chat")
    ConversationEncoder(bare, "plain").encode(SINGLE)  # plain needs no template
    hides_history = copy.deepcopy(tiny_tokenizer)
    hides_history.chat_template = (  # earlier assistant turns rendered without content (like reasoning templates)
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['role'] != 'assistant' or loop.last %}"
        "{{ m['content'] }}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    with pytest.raises(SampleSkip, match="continuation") as info:
        ConversationEncoder(hides_history, "chat").encode(MULTI)
    assert info.value.reason == "template_error"
