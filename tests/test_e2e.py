"""`gateau bench e2e`: the pool (kinds, mix, the HotpotQA index rule, disjoint eval), the bootstrap CI by hand,
and the whole --quick run end to end through the CLI (files, a table row per arm, the CI fields, resume)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from gateau.bench.e2e.pool import DEFAULT_MIX, HOTPOT_LIMIT, KINDS, PoolConfig, build_pool, hotpotqa, kind_counts, squad
from gateau.bench.e2e.arms import ARMS, DEFAULT_ARMS
from gateau.bench.e2e.stats import mean_std, paired_bootstrap

SRC = Path(__file__).resolve().parents[1] / "src"


def test_kind_counts_follow_the_mix():
    assert kind_counts(300, DEFAULT_MIX) == {"far": 105, "near": 60, "context_free": 45, "wrong": 45,
                                             "unsupported": 45}
    assert sum(kind_counts(7, DEFAULT_MIX).values()) == 7
    with pytest.raises(ValueError, match="unknown pool kinds"):
        kind_counts(10, {"bogus": 1.0})


def test_hotpotqa_index_rule():
    qas = hotpotqa()
    assert qas and max(q.index for q in qas) < HOTPOT_LIMIT


@pytest.fixture(scope="module")
def pool():
    return build_pool(PoolConfig(n=40, n_eval=10, seed=3))


def test_pool_kinds_and_shape(pool):
    records, labels, evals = pool
    assert Counter(l.kind for l in labels) == Counter(kind_counts(40, DEFAULT_MIX))
    assert set(l.kind for l in labels) == set(KINDS)
    for rec, lab in zip(records, labels):
        assert rec["id"] == lab.id and "kind" not in json.dumps(rec["messages"][1])
        user = rec["messages"][0]["content"]
        instruction = user.rsplit("\n\n", 1)[1]  # the question paragraph is always last, same template
        assert instruction.startswith("Background: ") and "\nQuestion: " in instruction
        assert lab.long_dependent == (lab.kind == "far") and lab.flawed == (lab.kind in ("wrong", "unsupported"))
        if lab.kind == "far":
            assert lab.gold_depths and all(0.0 <= d <= 0.7 for d in lab.gold_depths)
        if lab.kind == "near":  # the gold passages end right before the question (<= 40 filler words)
            qa = next(q for q in (hotpotqa() if lab.source == "hotpotqa" else squad()) if q.index == lab.question_index)
            context = user.rsplit("\n\n", 1)[0]
            end = max(context.rfind(g) + len(g) for g in qa.gold)
            assert len(context[end:].split()) <= 40
        if lab.kind in ("context_free", "unsupported"):
            assert lab.gold_depths == []
    hot = [l.question_index for l in labels if l.source == "hotpotqa"]
    assert hot and max(hot) < HOTPOT_LIMIT
    # not separable by length: every kind spans overlapping context sizes
    words = {k: [len(r["messages"][0]["content"].split()) for r, l in zip(records, labels) if l.kind == k]
             for k in KINDS}
    assert max(min(w) for w in words.values()) < min(max(w) for w in words.values())


def test_eval_questions_are_disjoint(pool):
    records, labels, evals = pool
    used = {(l.source, l.question_index) for l in labels}
    held = {(e["source"], int(e["id"].split("-")[1])) for e in evals}
    assert len(evals) == 10 and not used & held
    assert all(int(e["id"].split("-")[1]) < HOTPOT_LIMIT for e in evals if e["source"] == "hotpotqa")


def test_pool_is_deterministic():
    a = build_pool(PoolConfig(n=10, n_eval=4, seed=1))[0]
    b = build_pool(PoolConfig(n=10, n_eval=4, seed=1))[0]
    assert a == b


def test_bootstrap_ci_by_hand():
    a, b = [1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]
    ci = paired_bootstrap(a, b, n_boot=500, seed=7)
    d = np.array(a) - np.array(b)  # 1, 0, 0, 1
    idx = np.random.default_rng(7).integers(0, 4, size=(500, 4))
    means = d[idx].mean(axis=1)
    assert ci["diff"] == pytest.approx(0.5) and ci["n"] == 4
    assert ci["lo"] == pytest.approx(np.quantile(means, 0.025))
    assert ci["hi"] == pytest.approx(np.quantile(means, 0.975))
    assert ci["p_le_0"] == pytest.approx((means <= 0).mean())
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2.0)))
    assert mean_std([5.0]) == (5.0, 0.0)


def test_chat_nll_equals_a_naive_full_logits_computation(tmp_path):
    import naive

    from gateau.models import load_model
    from gateau.bench.e2e.short_checks import chat_nll
    from gateau.bench.e2e.tiny import build_tiny_model_dir

    loaded = load_model(str(build_tiny_model_dir(tmp_path / "tiny")), device="cpu", dtype="float32")
    tok = loaded.tokenizer
    chats = [{"id": "a", "messages": [{"role": "user", "content": "What is a startup?"},
                                      {"role": "assistant", "content": "A company designed to grow fast."}]},
             {"id": "b", "messages": [{"role": "user", "content": "Name a colour."},
                                      {"role": "assistant", "content": "Blue, the colour of the sky."}]}]
    expected = []
    for chat in chats:  # the reply and its end-of-turn token, after the prompt the template renders
        prompt = tok.apply_chat_template(chat["messages"][:1], tokenize=False, add_generation_prompt=True)
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        reply = tok(chat["messages"][1]["content"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
        expected.append(naive.response_nll(loaded.model, ids + reply, len(ids)))
    assert chat_nll(loaded, chats) == pytest.approx(sum(expected) / 2, rel=1e-5)
    # with the first layer's outputs kept (as for every arm that shares it with the base): the same, and reused
    from gateau.train.frozen_prefix import FrozenPrefixCache

    cache = FrozenPrefixCache()
    for _ in range(2):
        assert chat_nll(loaded, chats, frozen=(cache, 1)) == pytest.approx(sum(expected) / 2, rel=1e-5)
    assert (cache.computed, cache.reused) == (2, 2)


def test_short_instruction_sets_are_held_out_and_referenced():
    from gateau.eval.mtbench import reference_answers
    from gateau.bench.e2e.short_checks import HELDOUT_START, heldout_chats, mtbench_items
    from gateau.train.data import SampleSkip, record_to_messages, sharegpt_path
    from gateau.train.jsonarray import iter_json_array

    chats = heldout_chats(3)
    assert len(chats) == 3 and all([m["role"] for m in c["messages"]] == ["user", "assistant"] for c in chats)
    first = []  # the first usable records, which training's --short-count takes
    for record in iter_json_array(sharegpt_path()):
        try:
            record_to_messages(record)
        except (SampleSkip, ValueError):
            continue
        first.append(f"sharegpt-{record.get('id')}")
        if len(first) >= HELDOUT_START:
            break
    assert not {c["id"] for c in chats} & set(first)
    items = mtbench_items(4)
    refs = reference_answers()
    assert len(items) == 4 and all(it["reference"] == refs[int(it["id"].split("-")[1])][0] for it in items)


def _run_quick(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    return subprocess.run([sys.executable, "-m", "gateau", "bench", "e2e", "--quick", "--out", str(out),
                           "--no-progress", *extra], env=env, capture_output=True, text=True, timeout=600)


def _check_quick_run(out: Path, arms: tuple[str, ...], *extra: str) -> None:
    """Run `bench e2e --quick` (``extra`` flags) into ``out``: every file, a table row per arm, the CI fields;
    then run it again: it resumes and trains nothing."""
    proc = _run_quick(out, *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("results.md", "results.json", "results.png", "pool/data.jsonl", "pool/labels.jsonl",
                 "pool/eval.jsonl", "pool/chat.jsonl", "pool/mtbench.jsonl", "score/scores.parquet"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert set(results["arms"]) == {"untrained", *arms}
    for name in ("gateau_vs_random", "gateau_vs_full"):
        assert {"diff", "lo", "hi", "p_le_0", "n", "holds", "significant"} <= set(results["ci"][name])
        assert results["ci"][name]["lo"] <= results["ci"][name]["diff"] <= results["ci"][name]["hi"]
    table = (out / "results.md").read_text()
    for arm in ("untrained", *arms):
        assert f"| {arm} | {ARMS[arm].group if arm in ARMS else 'untrained'} | 1 |" in table
    for arm in arms:
        seed_dir = out / "arms" / arm / "seed0"
        assert (seed_dir / "result.json").is_file() and (seed_dir / "model" / "config.json").is_file()
        assert (seed_dir / "eval" / "qa.items.jsonl").is_file()
        heavy = ARMS[arm].heavy_eval  # RULER and MT-Bench for untrained, gateau, random, full, no_long only
        assert (seed_dir / "eval" / "mtbench.items.jsonl").is_file() == heavy
        assert (seed_dir / "eval" / "ruler" / "ruler.items.jsonl").is_file() == heavy
        row = json.loads((seed_dir / "result.json").read_text())
        assert row["chat_nll"] > 0
        assert row["shared_layers"] == 1  # the first layer came from the store: only the last one was trained
        if heavy:
            assert 0 <= row["mtbench_rouge"] <= 100 and 0 <= row["ruler"] <= 100
        else:
            assert np.isnan(row["mtbench_rouge"]) and np.isnan(row["ruler"])
    assert (out / "arms" / "gateau" / "selected.jsonl").is_file()
    assert (out / "arms" / "random" / "seed0" / "selected.jsonl").is_file()
    # resumable: a second run trains nothing again
    again = _run_quick(out, *extra)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "training on" not in again.stdout and again.stdout.count("done before, kept") == len(arms)


# One arm of each kind: a method's selection (gateau), the seeded random one, full data, no long data, another
# ratio, full at equal steps, a preset, LongCE. The other arms take these paths with another method, ratio or
# loss; the slow test below runs them all.
ARM_KINDS = ("gateau", "random", "full", "no_long", "gateau-10", "full-steps", "gateau-paper-limited",
             "gateau+longce")


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_quick_end_to_end_one_arm_of_each_kind(tmp_path):
    assert set(ARM_KINDS) <= set(ARMS)
    out = tmp_path / "e2e"
    _check_quick_run(out, ARM_KINDS, "--arms", ",".join(ARM_KINDS))
    gateau_long = len((out / "arms" / "gateau" / "selected.jsonl").read_text().splitlines())
    ten = len((out / "arms" / "gateau-10" / "selected.jsonl").read_text().splitlines())
    assert 0 < ten < gateau_long  # 10% vs 30% of the pool
    log = json.loads((out / "arms" / "gateau+longce" / "seed0" / "model" / "train_config.json").read_text())
    assert log["loss"] == "longce" and log["packing"] is False
    # --extra-eval: every stored model answers a user's file, resumable, with the same statistics
    items = [json.loads(line) for line in (out / "pool" / "eval.jsonl").read_text().splitlines()][:3]
    extra = tmp_path / "mine.jsonl"
    extra.write_text("".join(json.dumps({"context": it["context"], "question": it["question"],
                                         "answers": it["answers"]}) + "\n" for it in items))
    for _ in range(2):  # the second call reuses every stored answer
        proc = _run_quick(out, "--extra-eval", str(extra))
        assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((out / "extra-mine" / "results.json").read_text())
    assert set(got["arms"]) == {"untrained", *ARM_KINDS} and got["n_items"] == 3
    assert {"diff", "lo", "hi", "se", "mde"} <= set(got["ci"]["gateau_vs_random"])
    # --sweep: full and no_long under a one-point grid, the table, the chosen recipe and the estimate
    proc = _run_quick(out, "--sweep", "--sweep-lrs", "1e-3", "--sweep-recipes", "lora4", "--sweep-n-eval", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = json.loads((out / "sweep" / "sweep.json").read_text())
    assert [t["point"] for t in sweep["table"]] == ["lr0.001-lora4-ep1"]
    assert sweep["chosen"]["point"] == "lr0.001-lora4-ep1" and sweep["estimate"]["total_s"] > 0
    assert (out / "sweep" / "lr0.001-lora4-ep1" / "full" / "model" / "config.json").is_file()


@pytest.mark.slow  # every default arm: about twice the run above (make test runs it by name)
def test_quick_end_to_end(tmp_path):
    _check_quick_run(tmp_path / "e2e", DEFAULT_ARMS)
