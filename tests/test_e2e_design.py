"""`gateau bench e2e` design without training: the arm table and seed counts, equal steps against the steps the
real trainer took in the first full run, the sweep's criteria and choice, the time estimate by hand, and the
--extra-eval record check."""

from __future__ import annotations

import json

import pytest

from gateau.bench.e2e.arms import ARMS, DEFAULT_ARMS, HEAVY_ARMS
from gateau.bench.e2e.estimate import estimate_full_form, measured_timings
from gateau.bench.e2e.extra import read_extra_eval
from gateau.bench.e2e.run import E2EConfig, arm_seeds, equal_steps, gpu_config
from gateau.bench.e2e.sweep import choose, parse_grid, sweep_table
from gateau.errors import GateauError


def test_arms_and_seed_counts_of_the_full_form():
    config = E2EConfig(out="x")
    assert config.pool.n_eval >= 100
    for name in ("gateau", "random", "full"):
        assert len(arm_seeds(config, ARMS[name])) >= 5
    for name in DEFAULT_ARMS:
        assert len(arm_seeds(config, ARMS[name])) >= 3
    assert set(HEAVY_ARMS) == {"gateau", "random", "full", "no_long"}
    assert {"gateau-10", "gateau-50", "random-10", "random-50", "full-steps", "hmg", "cam", "gateau-paper",
            "gateau-paper-limited", "gateau+longce", "full+longce"} <= set(DEFAULT_ARMS)
    assert ARMS["gateau-paper-limited"].preset == "paper-limited" and ARMS["full+longce"].loss == "longce"
    gpu = gpu_config("x")
    assert (gpu.pool.n, gpu.lr, gpu.epochs, gpu.batch_size * gpu.grad_accum, gpu.train_last_layers) == (
        8000, 2e-5, 2.0, 96, None)


def test_equal_steps_match_the_trainer_steps_of_the_first_full_run():
    # docs/e2e-results/results.json: 30 selected + 8 chats -> 10 steps, 100 + 8 -> 27, 8 chats alone -> 2
    # (batch 1 x accumulation 4, 1 epoch), as `gateau train` counted them
    config = E2EConfig(out="x")
    assert (equal_steps(config, 30), equal_steps(config, 100), equal_steps(config, 0)) == (10, 27, 2)
    assert equal_steps(E2EConfig(out="x", epochs=2.0), 30) == 20
    assert equal_steps(E2EConfig(out="x", max_steps=7), 100) == 7


def _row(point, arm, qa, needle, chat):
    return {"point": point, "recipe": {"lr": 1.0}, "arm": arm, "qa_f1": qa, "needle": needle, "chat_nll": chat}


def test_sweep_criteria_and_choice():
    untrained = {"qa_f1": 5.0, "needle": 100.0, "chat_nll": 2.0}
    rows = [_row("a", "full", 12.0, 0.0, 2.3), _row("a", "no_long", 3.0, 75.0, 2.0),  # big gain, breaks the needle
            _row("b", "full", 8.0, 100.0, 2.04), _row("b", "no_long", 4.0, 75.0, 2.01),  # passes everything
            _row("c", "full", 6.0, 100.0, 2.0), _row("c", "no_long", 4.0, 100.0, 2.0),  # QA did not move
            _row("d", "full", 9.0, 100.0, 2.0)]  # one arm only: left out
    table = {t["point"]: t for t in sweep_table(rows, untrained)}
    assert set(table) == {"a", "b", "c"}
    assert (table["a"]["needle_ok"], table["a"]["chat_ok"], table["a"]["qa_moved"]) == (False, False, True)
    assert table["b"]["passes"] and table["b"]["full_qa_gain"] == pytest.approx(3.0)
    assert (table["c"]["qa_moved"], table["c"]["passes"]) == (False, False)
    assert choose(list(table.values()))["point"] == "b"
    assert choose([table["a"], table["c"]])["point"] == "c"  # 2 of 3 criteria beat a's 1 of 3
    assert [p.name for p in parse_grid("1e-4", "last4,lora8,all", "1,2")] == [
        "lr0.0001-last4-ep1", "lr0.0001-last4-ep2", "lr0.0001-lora8-ep1", "lr0.0001-lora8-ep2",
        "lr0.0001-all-ep1", "lr0.0001-all-ep2"]
    with pytest.raises(ValueError, match="unknown sweep recipe"):
        parse_grid(None, "layers4", None)


def test_estimate_by_hand():
    rows = [{"arm": "full", "train_seconds": 300.0, "train_steps": 27,
             "seconds": {"load": 2.0, "qa": 100.0, "needle": 10.0, "chat": 6.0}},
            {"arm": "no_long", "train_seconds": 50.0, "train_steps": 2,
             "seconds": {"load": 4.0, "qa": 60.0, "needle": 14.0, "chat": 8.0}}]
    untrained = {"seconds": {"qa": 250.0, "ruler": 40.0, "mtbench": 30.0}}
    t = measured_timings(rows, untrained, n_eval=50)
    assert t["step_s"] == pytest.approx(10.0) and t["train_fixed_s"] == pytest.approx(30.0)
    assert (t["load_s"], t["qa_item_s"], t["needle_s"], t["chat_s"]) == (3.0, 1.6, 12.0, 7.0)
    config = E2EConfig(out="x", arms=("gateau", "hmg", "full+longce"), seeds=(0, 1), other_seeds=(0,))
    est = estimate_full_form(config, t)
    light = 3.0 + 100 * 1.6 + 12.0 + 7.0  # 100 eval items
    heavy = light + 40.0 + 30.0
    expected_train = 2 * (30 + 10 * 10.0) + (30 + 10 * 10.0) + (30 + 27 * 10.0 * t["longce_factor"])
    untrained_eval = heavy - 100 * 1.6 + 100 * 5.0  # it fills the prefix store: 250 s for the 50 sweep items
    expected_eval = 2 * heavy + light + light + untrained_eval  # gateau x2 (heavy), hmg, full+longce, untrained
    assert est["train_s"] == pytest.approx(expected_train, abs=0.2)
    assert est["eval_s"] == pytest.approx(expected_eval, abs=0.2)
    score = 100 * 5.84 / 1.2 * (250 + 450) / 2000  # 100 samples drawn at 250-450 tokens
    assert est["total_s"] == pytest.approx(expected_train + expected_eval + score, abs=0.5)
    assert (est["trainings"], est["evaluations"]) == (4, 5)


def test_extra_eval_records_are_checked(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"context": "c", "question": "q", "answers": ["a"]}) + "\n\n"
                    + json.dumps({"id": "x", "context": "c", "question": "q", "answers": "b", "source": "s"}) + "\n")
    items = read_extra_eval(good)
    assert [(i["id"], i["source"], i["answers"]) for i in items] == [("extra-1", "extra", ["a"]), ("x", "s", ["b"])]
    for text, match in [("{", "line 1: not JSON"), ("[1]", "not a JSON object"),
                        (json.dumps({"context": "c", "question": "q"}), "needs"),
                        (json.dumps({"context": "c", "question": "q", "answers": []}), "needs"),
                        (json.dumps({"id": 1, "context": "c", "question": "q", "answers": ["a"]}) * 1 + "\n"
                         + json.dumps({"id": 1, "context": "c", "question": "q", "answers": ["a"]}), "repeats"),
                        ("", "no records")]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        with pytest.raises(GateauError, match=match):
            read_extra_eval(bad)
    with pytest.raises(GateauError, match="no such file"):
        read_extra_eval(tmp_path / "absent.jsonl")


def _parse(*argv: str):
    import argparse

    from gateau.cli import bench

    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers(dest="command"))
    return bench.e2e_config(parser.parse_args(["bench", "e2e", "--out", "o", *argv]))


def test_e2e_flags():
    gpu = _parse("--size", "gpu", "--n", "100")
    assert (gpu.model, gpu.pool.n, gpu.device, gpu.lr) == ("meta-llama/Llama-3.2-1B-Instruct", 100, "cuda", 2e-5)
    cpu = _parse("--lora-r", "8", "--seeds", "0,1,2,3,4,5", "--other-seeds", "7", "--arms", "gateau,full+longce")
    assert (cpu.lora_r, cpu.train_last_layers, cpu.seeds, cpu.other_seeds, cpu.arms) == (
        8, None, (0, 1, 2, 3, 4, 5), (7,), ("gateau", "full+longce"))
    assert _parse("--quick").other_seeds == (0,) and _parse().device == "cpu"
    assert (_parse().lr, _parse().train_last_layers) == (5e-5, 4)  # the sweep's choice (docs/e2e-results/sweep.md)
    with pytest.raises(GateauError, match="--seeds"):
        _parse("--seeds", "a,b")
    with pytest.raises(GateauError, match="unknown --arms"):
        _parse("--arms", "gateau,bogus")
