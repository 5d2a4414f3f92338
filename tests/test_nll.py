"""Response NLL (`gateau.measure.nll`, `RowRunner`) against a naive full-logits reference.

The reference runs every row alone and unpadded through ``model(ids).logits``, shifts by one, takes an fp32
log-softmax over the whole vocabulary and averages −log p over the response tokens. Nothing of
`gateau.measure` is used to compute it.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from conftest import build_tiny_model

from gateau.data import Sample
from gateau.measure.nll import forward_response, forward_response_nll, make_batch
from gateau.measure.runner import RowRequest, RowResult, RowRunner
from gateau.prompt import PromptEncoder
from naive import response_nll_cached as naive_nll
from naive import response_token_nll as naive_token_nll

ATOL = 1e-5
WORDS = ("the quick brown fox jumps over lazy dog archive keeps every essay in order startups grow when founders "
         "talk to users write code and keep costs low secret number of blue lighthouse is red harbour boats").split()


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def make_samples(n: int, seed: int = 0) -> list[Sample]:
    """``n`` samples with clearly different context / instruction / response lengths."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(Sample(index=i, id=str(i), context=_text(rng, 6 + 9 * i + rng.randint(0, 4)),
                          instruction=_text(rng, rng.randint(2, 8)) + "?",
                          response=_text(rng, rng.randint(3, 15)) + "."))
    rng.shuffle(out)  # not sorted by length: the runner must restore request order itself
    return out


def make_requests(tokenizer, template: str, n: int = 6, seed: int = 0) -> list[RowRequest]:
    enc = PromptEncoder(tokenizer, template, max_length=4096)
    reqs = []
    for s in make_samples(n, seed):
        ids, start = enc.encode(s).row()
        reqs.append(RowRequest(tuple(ids), start))
    return reqs


@pytest.mark.parametrize("template", ["plain", "chat"])
def test_single_row_matches_naive(tiny_model, tiny_tokenizer, template):
    req = make_requests(tiny_tokenizer, template, n=1)[0]
    runner = RowRunner(tiny_model, tiny_tokenizer.pad_token_id, 16384)
    (res,) = runner.run([req])
    assert res.error is None and res.attention is None
    assert res.nll == pytest.approx(naive_nll(tiny_model, list(req.ids), req.response_start), abs=ATOL)
    assert runner.forward_tokens == len(req.ids)


@pytest.mark.parametrize("template", ["plain", "chat"])
@pytest.mark.parametrize("budget", ["one_row_per_batch", "several_padded_batches", "one_padded_batch"])
def test_batched_variable_length_rows_match_naive(tiny_model, tiny_tokenizer, template, budget):
    reqs = make_requests(tiny_tokenizer, template, n=6)
    lengths = sorted(len(r.ids) for r in reqs)
    assert len(set(lengths)) == len(lengths), "rows must differ in length so batches need padding"
    token_budget = {"one_row_per_batch": 1, "several_padded_batches": 2 * lengths[-1],
                    "one_padded_batch": 10 ** 7}[budget]
    # max_pad_fraction=1: let rows of any length share a batch, so padding is exercised
    runner = RowRunner(tiny_model, tiny_tokenizer.pad_token_id, token_budget=token_budget, max_pad_fraction=1.0)
    batches: list[tuple[int, int]] = []
    results = runner.run(reqs, on_rows_done=lambda rows, toks: batches.append((rows, toks)))

    assert len(results) == len(reqs)
    for req, res in zip(reqs, results):  # request order, each against its own naive value
        assert res.error is None
        assert res.nll == pytest.approx(naive_nll(tiny_model, list(req.ids), req.response_start), abs=ATOL)

    assert sum(rows for rows, _ in batches) == len(reqs)
    assert sum(toks for _, toks in batches) == sum(lengths)
    if budget == "one_row_per_batch":
        assert [rows for rows, _ in batches] == [1] * len(reqs)
        assert runner.forward_tokens == sum(lengths)  # nothing padded
    elif budget == "several_padded_batches":
        assert len(batches) >= 2 and max(rows for rows, _ in batches) >= 2
        assert runner.forward_tokens > sum(lengths)  # padding happened
        # batches are consecutive runs of the length-sorted rows; each fits the budget at its own width
        desc, pos = lengths[::-1], 0
        for rows, _ in batches:
            assert rows == 1 or rows * desc[pos] <= token_budget
            pos += rows
    else:
        assert batches == [(len(reqs), sum(lengths))]
        assert runner.forward_tokens == len(reqs) * lengths[-1]


@pytest.mark.parametrize("attention", [False, True])
def test_per_token_nll_from_the_same_forward_matches_naive(tiny_model, tiny_tokenizer, attention):
    """Padded batches of rows of different lengths: each row's per-token NLLs equal the naive full-logits values,
    in response order, and their mean is the stored mean NLL; one forward per batch gives both."""
    reqs = [RowRequest(r.ids, r.response_start, attention) for r in make_requests(tiny_tokenizer, "plain", n=5,
                                                                                   seed=7)]
    runner = RowRunner(tiny_model, tiny_tokenizer.pad_token_id, token_budget=10 ** 7, max_pad_fraction=1.0)
    forwards: list[int] = []
    results = runner.run(reqs, on_rows_done=lambda rows, _toks: forwards.append(rows))
    assert forwards == [len(reqs)]  # one padded batch, one forward
    for req, res in zip(reqs, results):
        want = naive_token_nll(tiny_model, list(req.ids), req.response_start)
        assert res.token_nll is not None and res.token_nll.dtype == np.float32
        assert res.token_nll.shape == (len(req.ids) - req.response_start,)
        np.testing.assert_allclose(res.token_nll, want, atol=ATOL)
        assert res.nll == pytest.approx(float(np.mean(res.token_nll, dtype=np.float64)), abs=1e-6)


def test_forward_response_gives_mean_and_tokens(tiny_llama, tiny_tokenizer):
    reqs = make_requests(tiny_tokenizer, "chat", n=3, seed=8)
    rows = [(list(r.ids), r.response_start) for r in reqs]
    batch = make_batch(rows, tiny_tokenizer.pad_token_id, torch.device("cpu"))
    got = forward_response(tiny_llama, batch)
    assert [g.mean for g in got] == forward_response_nll(tiny_llama, batch)
    for (ids, start), g in zip(rows, got):
        np.testing.assert_allclose(g.tokens, naive_token_nll(tiny_llama, ids, start), atol=ATOL)


def test_rows_of_very_different_lengths_never_share_a_batch(tiny_llama, tiny_tokenizer):
    """Default padding cap: a short row (e.g. a window row) is not padded up to a long one."""
    reqs = make_requests(tiny_tokenizer, "plain", n=6)
    runner = RowRunner(tiny_llama, tiny_tokenizer.pad_token_id, token_budget=10 ** 7)
    batches: list[tuple[int, int]] = []
    results = runner.run(reqs, on_rows_done=lambda rows, toks: batches.append((rows, toks)))
    assert all(r.error is None for r in results)
    by_length = sorted(reqs, key=lambda r: -len(r.ids))
    pos = 0
    for rows, _ in batches:  # each batch: consecutive length-sorted rows within 10% of the batch's longest
        members = by_length[pos: pos + rows]
        assert min(len(r.ids) for r in members) >= 0.9 * len(members[0].ids)
        pos += rows
    assert runner.forward_tokens <= 1.1 * sum(len(r.ids) for r in reqs)


def test_make_batch_and_forward_directly(tiny_llama, tiny_tokenizer):
    reqs = make_requests(tiny_tokenizer, "plain", n=3, seed=3)
    rows = [(list(r.ids), r.response_start) for r in reqs]
    batch = make_batch(rows, tiny_tokenizer.pad_token_id, torch.device("cpu"))
    width = max(len(ids) for ids, _ in rows)
    assert tuple(batch.ids.shape) == (3, width)
    assert batch.attention_mask is not None and batch.attention_mask.sum().item() == sum(len(i) for i, _ in rows)
    assert batch.keep.sum().item() == sum(len(ids) - s for ids, s in rows) == batch.targets.numel()
    got = forward_response_nll(tiny_llama, batch)
    for (ids, start), value in zip(rows, got):
        assert value == pytest.approx(naive_nll(tiny_llama, ids, start), abs=ATOL)
    # equal lengths: no mask needed
    same = make_batch([rows[0], rows[0]], tiny_tokenizer.pad_token_id, torch.device("cpu"))
    assert same.attention_mask is None


@pytest.mark.parametrize("start", [0, 5])
def test_make_batch_rejects_response_outside_row(start):
    with pytest.raises(ValueError):
        make_batch([([3, 4, 5, 6, 7], start)], pad_id=2, device=torch.device("cpu"))


def test_results_in_request_order_with_mixed_attention(tiny_tokenizer):
    """Attention rows are batched apart from plain rows; results still come back in request order."""
    model = build_tiny_model("qwen2", len(tiny_tokenizer), seed=1)
    reqs = make_requests(tiny_tokenizer, "plain", n=5, seed=1)
    mixed = [RowRequest(r.ids, r.response_start, attention=(i % 2 == 0)) for i, r in enumerate(reqs)]
    results = RowRunner(model, tiny_tokenizer.pad_token_id, token_budget=10 ** 6).run(mixed)
    for req, res in zip(mixed, results):
        assert (res.attention is not None) == req.attention
        if req.attention:
            assert res.attention.shape == (len(req.ids),)
        assert res.nll == pytest.approx(naive_nll(model, list(req.ids), req.response_start), abs=ATOL)


def _oom_forward(model: torch.nn.Module, fails, calls: list[int]):
    original = model.forward

    def forward(*args, **kwargs):
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        calls.append(tuple(ids.shape))
        if fails(ids):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(*args, **kwargs)

    return forward


def test_oom_on_a_batch_halves_it(tiny_tokenizer, monkeypatch):
    model = build_tiny_model("llama", len(tiny_tokenizer), seed=2)
    reqs = make_requests(tiny_tokenizer, "chat", n=5, seed=2)
    expected = [naive_nll(model, list(r.ids), r.response_start) for r in reqs]
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(model, "forward", _oom_forward(model, lambda ids: ids.shape[0] > 1, calls))
    batches: list[int] = []
    results = RowRunner(model, tiny_tokenizer.pad_token_id, token_budget=10 ** 7, max_pad_fraction=1.0).run(
        reqs, on_rows_done=lambda rows, _toks: batches.append(rows))
    sizes = [b for b, _ in calls]
    # 5 → (2, 3) → 2 → (1, 1), 3 → (1, 2) → 2 → (1, 1): each failed batch is split in halves, never dropped
    assert sizes == [5, 2, 1, 1, 3, 1, 2, 1, 1]
    assert batches == [1] * 5
    for res, want in zip(results, expected):
        assert res.error is None
        assert res.nll == pytest.approx(want, abs=ATOL)


def test_single_row_oom_gives_an_error_result(tiny_tokenizer, monkeypatch):
    model = build_tiny_model("llama", len(tiny_tokenizer), seed=2)
    reqs = make_requests(tiny_tokenizer, "plain", n=4, seed=4)
    longest = max(len(r.ids) for r in reqs)
    expected = [naive_nll(model, list(r.ids), r.response_start) for r in reqs]
    calls: list[tuple[int, int]] = []
    # Any batch holding the longest row runs out of memory, even alone; the others fit one at a time.
    monkeypatch.setattr(model, "forward", _oom_forward(model, lambda ids: ids.shape[0] > 1 or ids.shape[1] == longest,
                                                       calls))
    results = RowRunner(model, tiny_tokenizer.pad_token_id, token_budget=10 ** 7).run(reqs)
    assert len(results) == len(reqs)
    for req, res, want in zip(reqs, results, expected):
        assert isinstance(res, RowResult)
        if len(req.ids) == longest:
            assert res.nll is None and res.attention is None
            assert "out of memory" in res.error and str(longest) in res.error
        else:
            assert res.error is None and res.nll == pytest.approx(want, abs=ATOL)


def test_every_row_oom(tiny_tokenizer, monkeypatch):
    model = build_tiny_model("llama", len(tiny_tokenizer), seed=2)
    reqs = make_requests(tiny_tokenizer, "plain", n=2, seed=5)
    monkeypatch.setattr(model, "forward", _oom_forward(model, lambda ids: True, []))
    results = RowRunner(model, tiny_tokenizer.pad_token_id, 16384).run(reqs)
    assert [r.nll for r in results] == [None, None]
    assert all("out of memory" in r.error for r in results)


def test_other_errors_are_not_swallowed(tiny_tokenizer, monkeypatch):
    model = build_tiny_model("llama", len(tiny_tokenizer), seed=2)
    reqs = make_requests(tiny_tokenizer, "plain", n=2, seed=5)

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch in layer 3")

    monkeypatch.setattr(model, "forward", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        RowRunner(model, tiny_tokenizer.pad_token_id, 16384).run(reqs)


def test_no_requests(tiny_llama, tiny_tokenizer):
    runner = RowRunner(tiny_llama, tiny_tokenizer.pad_token_id, 16384)
    assert runner.run([]) == [] and runner.forward_tokens == 0


@pytest.mark.parametrize("template", ["plain", "chat"])
@pytest.mark.parametrize("budget", ["two_packs", "one_pack"])
def test_packed_rows_match_naive_and_are_never_padded(tiny_model, tiny_tokenizer, template, budget):
    """Rows packed into one sequence (position ids restarting per row, no mask) give each row's own NLL."""
    reqs = make_requests(tiny_tokenizer, template, n=6)
    lengths = [len(r.ids) for r in reqs]
    token_budget = {"two_packs": sum(lengths) // 2 + max(lengths), "one_pack": 10 ** 7}[budget]
    runner = RowRunner(tiny_model, tiny_tokenizer.pad_token_id, token_budget=token_budget, pack=True)
    batches: list[int] = []
    results = runner.run(reqs, on_rows_done=lambda rows, toks: batches.append(rows))
    for req, res in zip(reqs, results):
        assert res.nll == pytest.approx(naive_nll(tiny_model, list(req.ids), req.response_start), abs=ATOL)
    assert runner.forward_tokens == sum(lengths)  # packed: no padding token at all
    assert len(batches) == (2 if budget == "two_packs" else 1) and sum(batches) == len(reqs)


def test_packed_rows_give_per_token_nlls_too(tiny_model, tiny_tokenizer):
    """Packing changes only the batch layout: each packed row's per-token NLLs equal the naive values."""
    reqs = make_requests(tiny_tokenizer, "plain", n=4, seed=11)
    results = RowRunner(tiny_model, tiny_tokenizer.pad_token_id, token_budget=10 ** 7, pack=True).run(reqs)
    for req, res in zip(reqs, results):
        np.testing.assert_allclose(res.token_nll, naive_token_nll(tiny_model, list(req.ids), req.response_start),
                                   atol=ATOL)
