"""The paper's baselines as scoring methods: IFD (Cherry), length, random, CaR (reward model + k-means)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (BertConfig, BertForSequenceClassification, BertTokenizerFast, LlamaConfig,
                          LlamaForCausalLM, LlamaForSequenceClassification)

from gateau.cli import main
from gateau.config import ScoreConfig, SelectConfig
from gateau.methods import method_options
from gateau.select.rank import rank_table
from gateau.data import Sample
from gateau.measure.aux_models import (AuxModels, RewardModel, check_reward_model, default_embed_model_dir)
from gateau.methods import METHODS, get_method
from gateau.methods.base import LONG
from gateau.methods.car import car_select, n_clusters
from gateau.methods.hmg import FULL
from gateau.methods.ifd import ALONE
from gateau.methods.random_baseline import uniform_from_id
from gateau.models import LoadedModel
from gateau.pipeline.run import run_score
from gateau.pipeline.scorer import Scorer, measurement_fields
from gateau.status import Status
from gateau.select import select
from gateau.store import RunStore
from naive import response_nll as _naive_nll
from helpers import score_config, write_jsonl

WORDS = ("the archive keeps every essay in order while founders talk to users and write code the secret number "
         "of the blue lighthouse is 7481 and the red harbour keeps 2210 boats").split()


def _text(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(WORDS, size=n))


def _records(n: int = 12, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"id": f"s{i}", "context": _text(rng, int(rng.integers(20, 90))),
             "instruction": "What is the code? " + _text(rng, 4), "response": _text(rng, int(rng.integers(1, 12)))}
            for i in range(n)]


def _samples(records: list[dict]) -> list[Sample]:
    return [Sample(i, r["id"], r["context"], r["instruction"], r["response"]) for i, r in enumerate(records)]


def _config(tmp_path: Path, methods: str, **kw) -> ScoreConfig:
    return score_config(tmp_path / "data.jsonl", tmp_path / "run", **{"methods": methods, "long_model": "tiny", **kw})


def _loaded(model, tokenizer) -> LoadedModel:
    return LoadedModel(model=model, tokenizer=tokenizer, spec="tiny", device=torch.device("cpu"))



# ---------------------------------------------------------------------------------------------------------------
# IFD


@pytest.mark.parametrize("template", ["plain", "chat"])
def test_ifd_equals_a_naive_two_pass_computation(tmp_path, tiny_llama, tiny_tokenizer, template):
    samples = _samples(_records(6))
    scorer = Scorer(_config(tmp_path, "ifd", template=template), _loaded(tiny_llama, tiny_tokenizer))
    rows = scorer.score_batch(samples)
    bos = [tiny_tokenizer.bos_token_id] if template == "plain" else []  # the chat template has no BOS
    for sample, row in zip(samples, rows):
        assert row["status"] == "ok", row["error"]
        enc = scorer.encode(sample)
        ids, start = enc.long.row()
        nll_long = _naive_nll(tiny_llama, ids, start)
        # Cherry's direct answer: the response after the template's response header, one text
        header = "### Response:\n" if template == "plain" else "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"
        alone = bos + tiny_tokenizer(header + sample.response, add_special_tokens=False)["input_ids"]
        start_alone = len(bos) + len(tiny_tokenizer(header, add_special_tokens=False)["input_ids"])
        assert tiny_tokenizer.decode(alone[start_alone:]) == sample.response
        nll_alone = _naive_nll(tiny_llama, alone, start_alone)
        assert row["nll_long"] == pytest.approx(nll_long, abs=1e-5)
        assert row["nll_alone"] == pytest.approx(nll_alone, abs=1e-5)
        assert row["ifd"] == pytest.approx(nll_long / nll_alone, rel=1e-5)


def test_ifd_shares_the_full_row_with_hmg_and_ppl(tmp_path, tiny_llama, tiny_tokenizer):
    samples = _samples(_records(4))
    scorer = Scorer(_config(tmp_path, "ifd,ppl,hmg", token_budget=1), _loaded(tiny_llama, tiny_tokenizer))
    rows = scorer.score_batch(samples)
    expected = 0
    for sample in samples:
        enc = scorer.encode(sample)
        keys = {}
        for m in scorer.methods:
            keys.update(m.requests(enc, scorer.settings))
        assert FULL in keys and ALONE in keys and len(keys) == 3  # full (shared), window, alone
        expected += sum(len(r.ids) for r in keys.values())
    assert scorer.runners[LONG].forward_tokens == expected  # token_budget=1: one unpadded row per pass
    for row in rows:
        assert "ppl_long" not in row  # the mean NLL is stored once, in nats; PPL is derived where shown


def test_ifd_above_one_is_dropped_by_default_and_kept_on_request():
    table = {"ifd": np.array([0.5, 1.2, 0.9, np.nan, 1.01])}
    ifd = get_method("ifd")
    options = method_options("ifd")
    score = ifd.score(table, options)
    notes = ifd.notes(table, options, score, np.array([0]))
    assert np.isnan(score[[1, 3, 4]]).all() and score[0] == 0.5 and score[2] == 0.9
    assert "2 samples with IFD > 1 dropped" in notes[0]
    kept = ifd.score(table, method_options("ifd", ifd_keep_above_one=True))
    assert kept[1] == 1.2 and kept[4] == 1.01


def _stored_run(tmp_path: Path, columns: dict[str, list], methods: str = "ifd") -> Path:
    """A run directory holding hand-made rows (all ok) with ``columns``."""
    from gateau.pipeline.scorer import output_schema

    n = len(next(iter(columns.values())))
    records = [{"id": f"s{i}", "context": "c", "instruction": "i", "response": "r"} for i in range(n)]
    data = write_jsonl(tmp_path / "data.jsonl", records)
    config = _config(tmp_path, methods)
    store = RunStore(config.out)
    store.open({"data": str(data), "fingerprint": "fp", "measure": {"fields": {}}})
    rows = [{"index": i, "id": f"s{i}", "status": "ok", "error": "", "note": "", "fingerprint": "fp",
             "n_context": 10 * (i + 1), **{k: v[i] for k, v in columns.items()}} for i in range(n)]
    store.write_shard(rows, output_schema(config))
    store.consolidate()
    return Path(config.out)


def test_select_ifd_drops_above_one_and_says_how_many(tmp_path, capsys):
    ifd = [0.3, 1.5, 0.8, 1.1, 0.6, 0.95]
    run = _stored_run(tmp_path, {"ifd": ifd, "nll_long": ifd, "nll_alone": [1.0] * 6})
    sel = select(run, SelectConfig(method="ifd", ratio=1))
    assert [sel.ids[i] for i in sel.chosen] == ["s5", "s2", "s4", "s0"]
    assert any("2 samples with IFD > 1 dropped" in line for line in sel.summary_lines())
    assert main(["select", str(run), "--method", "ifd", "--ratio", "1", "--ifd-keep-above-one"]) == 0
    out = capsys.readouterr().out
    assert "ranked: 6" in out and "kept and ranked" in out


# ---------------------------------------------------------------------------------------------------------------
# length and random


def test_length_ranks_by_context_tokens():
    score = get_method("length").score({"n_context": np.array([5.0, np.nan, 50.0])}, None)
    assert score[2] > score[0] and np.isnan(score[1])


def test_random_is_deterministic_per_seed_and_independent_of_row_order():
    ids = [f"id{i}" for i in range(200)]
    rnd = get_method("random")
    a = rnd.score({"id": ids}, method_options("random", seed=3))
    assert np.array_equal(a, rnd.score({"id": ids}, method_options("random", seed=3)))
    assert not np.array_equal(a, rnd.score({"id": ids}, method_options("random", seed=4)))
    perm = np.random.default_rng(0).permutation(len(ids))
    assert np.array_equal(rnd.score({"id": [ids[i] for i in perm]}, method_options("random", seed=3)), a[perm])
    assert ((a >= 0) & (a < 1)).all() and 0.4 < a.mean() < 0.6
    assert a[0] == uniform_from_id(3, "id0")
    assert np.isnan(rnd.score({"id": [None, "x"]}, method_options("random"))[0])


def test_score_length_and_random_load_no_model_weights(tmp_path, tiny_tokenizer):
    tok_dir = tmp_path / "tokenizer-only"
    tiny_tokenizer.save_pretrained(tok_dir)  # no config.json, no weights: loading a model would fail
    records = _records(5)
    write_jsonl(tmp_path / "data.jsonl", records)
    assert not METHODS["length"].uses_model and not METHODS["random"].uses_model
    summary = run_score(_config(tmp_path, "length,random", long_model=str(tok_dir)))
    assert summary.statuses == {"ok": 5} and summary.forward_tokens == 0
    sel = select(tmp_path / "run", SelectConfig(method="length", ratio=1))
    n_ctx = [len(tiny_tokenizer(r["context"], add_special_tokens=False)["input_ids"]) for r in records]
    assert [sel.ids[i] for i in sel.chosen] == [f"s{i}" for i in np.argsort(-np.array(n_ctx), kind="stable")]
    a = select(tmp_path / "run", SelectConfig(method="random", ratio=0.6, options=method_options("random", seed=1)))
    b = select(tmp_path / "run", SelectConfig(method="random", ratio=0.6, options=method_options("random", seed=1)))
    assert len(a.chosen) == 3 and list(a.chosen) == list(b.chosen)


# ---------------------------------------------------------------------------------------------------------------
# CaR: selection bookkeeping


@pytest.mark.parametrize("n,k", [(1, 1), (2, 1), (8, 2), (50, 5), (200, 10), (52002, 161)])
def test_cluster_count_is_round_sqrt_half_n(n, k):
    assert n_clusters(n) == k == max(1, round(math.sqrt(n / 2)))


def _blobs(n: int = 60, centers: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % centers
    middle = rng.normal(size=(centers, 16)) * 10
    emb = middle[truth] + rng.normal(size=(n, 16)) * 0.1
    reward = rng.normal(size=n)
    return reward, emb, truth


def test_car_selection_fills_the_count_with_n1_after_one_per_cluster():
    reward, emb, _ = _blobs(50)
    sel = car_select(reward, emb, count=12, seed=0)
    assert sel.k == 5 and sel.n2 == 1 and sel.cluster_picks == 5
    assert len(sel.chosen) == 12 and len(set(sel.chosen.tolist())) == 12
    order = np.argsort(-reward, kind="stable")
    per_cluster_best = {c: next(i for i in order if sel.labels[i] == c) for c in range(5)}
    assert set(per_cluster_best.values()) <= set(sel.chosen.tolist())  # every cluster's best is in
    assert set(order[: sel.n1].tolist()) <= set(sel.chosen.tolist())  # the top n1 overall are in
    assert len(set(order[: sel.n1].tolist()) | set(per_cluster_best.values())) == 12
    assert set(order[: sel.n1 - 1].tolist()) | set(per_cluster_best.values()) != set(sel.chosen.tolist())
    assert list(sel.chosen) == sorted(sel.chosen, key=lambda i: -reward[i])  # best reward first


def test_car_selection_counts_with_n2_and_explicit_n1():
    reward, emb, _ = _blobs(60)
    sel = car_select(reward, emb, count=10, n2=2, seed=0)
    assert sel.k == 5 and sel.cluster_picks == 10 and sel.n1 == 0 and len(sel.chosen) == 10
    assert np.bincount(sel.labels[sel.chosen], minlength=5).tolist() == [2] * 5
    few = car_select(reward, emb, count=3, seed=0)  # fewer than the clusters: the 3 best cluster leaders
    assert len(few.chosen) == 3 and few.n1 == 0 and len(set(few.labels[few.chosen].tolist())) == 3
    fixed = car_select(reward, emb, count=10, n1=4, n2=1, seed=0)
    order = np.argsort(-reward, kind="stable")
    assert fixed.n1 == 4 and set(order[:4].tolist()) <= set(fixed.chosen.tolist())
    assert len(fixed.chosen) == len(set(order[:4].tolist()) | set(
        next(i for i in order if fixed.labels[i] == c) for c in range(5)))


def test_car_selection_is_deterministic_for_a_seed_and_finds_the_blobs():
    reward, emb, truth = _blobs(50)
    a, b = car_select(reward, emb, 10, seed=7), car_select(reward, emb, 10, seed=7)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.chosen, b.chosen)
    # well-separated blobs: the k-means partition is the true one (up to label names)
    assert len({(int(t), int(lab)) for t, lab in zip(truth, a.labels)}) == 5


def test_car_score_puts_the_car_set_first_then_reward_order():
    reward, emb, _ = _blobs(40)
    table = {"car_reward": reward, "car_embedding": [list(e) for e in emb]}
    car = get_method("car")
    options = method_options("car")
    score = car.score(table, options, k=8)
    notes = car.notes(table, options, score, np.argsort(-score)[:8], k=8)
    top8 = np.argsort(-score, kind="stable")[:8]
    assert set(top8.tolist()) == set(car_select(reward, emb, 8).chosen.tolist())
    rest = np.argsort(-score, kind="stable")[8:]
    assert list(rest) == sorted(rest, key=lambda i: -reward[i])
    assert "k = 4 clusters" in notes[0] and "CaR set = 8" in notes[0]
    everything = car.score(table, options)  # no count: pure reward order
    assert list(np.argsort(-everything, kind="stable")) == list(np.argsort(-reward, kind="stable"))


# ---------------------------------------------------------------------------------------------------------------
# CaR: models


@pytest.fixture(scope="module")
def bert_reward_dir(tmp_path_factory) -> Path:
    """A tiny random BertForSequenceClassification (num_labels=1, 64 positions) with the packaged MiniLM tokenizer."""
    path = tmp_path_factory.mktemp("bert-reward")
    tok = BertTokenizerFast.from_pretrained(default_embed_model_dir())
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, num_labels=1)
    BertForSequenceClassification(cfg).eval().save_pretrained(path)
    tok.model_max_length = 64
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def llama_reward_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny random LlamaForSequenceClassification (num_labels=1) with the tiny tokenizer (chat template, pad)."""
    path = tmp_path_factory.mktemp("llama-reward")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, num_labels=1,
                      pad_token_id=tiny_tokenizer.pad_token_id)
    LlamaForSequenceClassification(cfg).eval().save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def test_bert_reward_input_keeps_instruction_and_response_and_cuts_the_context_start(bert_reward_dir):
    rm = RewardModel(str(bert_reward_dir), torch.device("cpu"), torch.float32, 16384)
    assert rm.max_length == 64 and not rm.chat
    context = " ".join(f"w{i}" for i in range(200))
    ids, dropped = rm.encode(context, "what is the code", "the code is 7481")
    text = rm.tokenizer.decode(ids)
    assert len(ids) <= 64 and dropped > 0
    assert "what is the code" in text and "the code is 7481" in text and "w199" in text and "w0 " not in text
    short, none = rm.encode("a short context", "what is the code", "7481")
    assert none == 0 and "a short context" in rm.tokenizer.decode(short)


def test_llama_reward_uses_the_chat_template_and_batches_like_single_rows(llama_reward_dir):
    items = [(_text(np.random.default_rng(i), 10 + 15 * i), "What is the code?", _text(np.random.default_rng(9), i + 1))
             for i in range(5)]
    batched = RewardModel(str(llama_reward_dir), torch.device("cpu"), torch.float32, token_budget=100_000)
    assert batched.chat
    one_by_one = RewardModel(str(llama_reward_dir), torch.device("cpu"), torch.float32, token_budget=1)
    a = [v for v, err in batched.score(items)]
    b = [v for v, err in one_by_one.score(items)]
    assert np.allclose(a, b, atol=1e-5) and len(set(np.round(a, 6))) == 5
    text = batched.tokenizer.decode(batched.encode(*items[0])[0])
    assert text.startswith("<|im_start|>user\n") and "<|im_start|>assistant\n" in text


def test_reward_model_errors_say_what_to_pass(tmp_path):
    with pytest.raises(ValueError, match="--reward-model OpenAssistant/reward-model-deberta-v3-large-v2"):
        check_reward_model(None)
    causal = tmp_path / "causal"
    LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).config.save_pretrained(causal)
    cfg = json.loads((causal / "config.json").read_text())
    cfg["architectures"] = ["LlamaForCausalLM"]
    (causal / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="not a sequence classifier.*LlamaForCausalLM"):
        check_reward_model(str(causal))
    two = tmp_path / "two-labels"
    BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
               num_labels=2, architectures=["BertForSequenceClassification"]).save_pretrained(two)
    with pytest.raises(ValueError, match="2 output labels"):
        check_reward_model(str(two))


def test_cli_car_without_reward_model_is_a_clear_error(tmp_path, tiny_tokenizer, capsys):
    tok_dir = tmp_path / "tok"
    tiny_tokenizer.save_pretrained(tok_dir)
    data = write_jsonl(tmp_path / "data.jsonl", _records(3))
    code = main(["score", str(data), "--out", str(tmp_path / "run"), "--methods", "car", "--long-model", str(tok_dir),
                 "--max-length", "256", "--no-progress"])
    assert code == 2
    assert "--reward-model OpenAssistant/reward-model-deberta-v3-large-v2" in capsys.readouterr().err


def test_car_end_to_end_scores_without_the_causal_lm_and_selects_exactly_the_car_set(
        tmp_path, tiny_tokenizer, bert_reward_dir):
    tok_dir = tmp_path / "tok"
    tiny_tokenizer.save_pretrained(tok_dir)  # tokenizer only: car must not load causal-LM weights
    records = _records(20, seed=3)
    write_jsonl(tmp_path / "data.jsonl", records)
    config = _config(tmp_path, "car", long_model=str(tok_dir), reward_model=str(bert_reward_dir), chunk_size=8)
    assert measurement_fields(config)["reward_model"] == str(bert_reward_dir)
    assert measurement_fields(config)["embed_model"] == "default"
    assert "reward_model" not in measurement_fields(_config(tmp_path, "ifd"))
    summary = run_score(config)
    assert summary.statuses == {"ok": 20} and summary.forward_tokens == 0
    table = RunStore(config.out).read_scores()
    reward = np.array(table.column("car_reward").to_pylist())
    emb = np.array(table.column("car_embedding").to_pylist())
    assert emb.shape == (20, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    rm = RewardModel(str(bert_reward_dir), torch.device("cpu"), torch.float32, 16384)
    assert reward[0] == pytest.approx(rm.score([(records[0]["context"], records[0]["instruction"],
                                                 records[0]["response"])])[0][0], abs=1e-5)
    sel = select(config.out, SelectConfig(method="car", ratio=0.4, options=method_options("car", seed=0)))
    expected = car_select(reward, emb, count=8, seed=0)
    assert len(sel.chosen) == 8 and list(sel.chosen) == list(expected.chosen)
    lines = "\n".join(sel.summary_lines())
    assert "k = 3 clusters" in lines and "n2 = 1 per cluster" in lines
    again = select(config.out, SelectConfig(method="car", ratio=0.4, options=method_options("car", seed=0)))
    assert list(again.chosen) == list(sel.chosen)
    ranking = rank_table(table, "car")
    assert "car_reward" in ranking.components


def test_measure_samples_hook_failure_marks_the_sample_retryable(tmp_path, tiny_tokenizer, bert_reward_dir,
                                                                  monkeypatch):
    config = _config(tmp_path, "car", reward_model=str(bert_reward_dir))
    scorer = Scorer(config, LoadedModel(model=None, tokenizer=tiny_tokenizer, spec="tiny",
                                        device=torch.device("cpu")))
    assert isinstance(scorer.aux, AuxModels) and scorer.runners == {}
    samples = _samples(_records(3))
    real = RewardModel.score

    def flaky(self, items):
        out = real(self, items)
        out[1] = (None, "out of memory in the reward model for one input of 99 tokens")
        return out

    monkeypatch.setattr(RewardModel, "score", flaky)
    rows = scorer.score_batch(samples)
    assert [r["status"] for r in rows] == ["ok", Status.OOM, "ok"]
    assert rows[0]["car_reward"] is not None and "car_reward" not in rows[1]
