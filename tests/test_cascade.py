"""`gateau score --cam-top F`: CAM only on HMG's top F (checked against a complete run and a hand count), the rest
marked and ranked by HMG below every CAM-measured sample, resume after an interruption in the CAM phase, the
fingerprint, the plan's bounds, and the α bound that makes the cascade principled."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateau.bench.benchmark.cascade import replay
from gateau.cli import main
from gateau.config import ScoreConfig
from gateau.pipeline.scorer import measurement_fields
from gateau.select.rank import rank_table
from gateau.store import RunStore

WORDS = ("the harbour keeps a blue lighthouse and the archive holds every essay while founders talk to users "
         "and write code the secret number is kept by the red boats").split()
FLAGS = ["--max-length", "256", "--segment-len", "16", "--short-window", "24", "--chunk-size", "3", "--device", "cpu",
         "--no-progress"]
F = 0.5


def make_records(n: int = 12) -> list[dict]:
    rng = random.Random(11)
    recs = [{"id": f"r{i}", "context": " ".join(rng.choice(WORDS) for _ in range(30 + 11 * i)),
             "instruction": "What is the secret number?", "response": " ".join(rng.choice(WORDS) for _ in range(3 + i % 6))}
            for i in range(n)]
    recs.append({"id": "empty", "context": "a b c", "instruction": "q?", "response": ""})
    return recs


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cascade")
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_records()))
    common = [str(data), "--long-model", str(tiny_model_dir), *FLAGS]
    assert main(["score", *common, "--out", str(root / "full")]) == 0
    assert main(["score", *common, "--out", str(root / "cascade"), "--cam-top", str(F)]) == 0
    return {"data": data, "full": root / "full", "cascade": root / "cascade", "common": common, "root": root}


def read(run: Path) -> pa.Table:
    return pq.read_table(run / "scores.parquet")


def naive_top(full: dict[str, list], fraction: float) -> list[str]:
    """HMG's top fraction of ok samples by nll_short - nll_long, written from the definition."""
    ok = [(full["nll_short"][i] - full["nll_long"][i], -i, full["id"][i]) for i in range(len(full["id"]))
          if full["status"][i] == "ok"]
    k = math.ceil(fraction * len(ok))
    return [sid for _, _, sid in sorted(ok, reverse=True)[:k]]


def test_cam_is_measured_on_hmgs_top_fraction_only(runs):
    full, casc = read(runs["full"]).to_pydict(), read(runs["cascade"]).to_pydict()
    top = naive_top(full, F)
    assert len(top) == 6
    assert sorted(i for i, m in zip(casc["id"], casc["cam_cascade"]) if m == "top") == sorted(top)
    for i, sid in enumerate(casc["id"]):
        assert casc["status"][i] == full["status"][i]
        if full["status"][i] != "ok":
            assert casc["cam_cascade"][i] is None
            continue
        assert casc["nll_short"][i] == pytest.approx(full["nll_short"][i], abs=1e-5)
        assert casc["nll_long"][i] == pytest.approx(full["nll_long"][i], abs=1e-5)
        # the attention profile comes from phase 1's full row: the same batches as the complete run's
        assert casc["seg_attn"][i] == full["seg_attn"][i] and casc["attn_head"][i] == full["attn_head"][i]
        if sid in top:
            np.testing.assert_allclose(casc["seg_nll"][i], full["seg_nll"][i], atol=1e-5)
            if full["cas"][i] is None:
                assert casc["cas"][i] is None
            else:
                assert casc["cas"][i] == pytest.approx(full["cas"][i], abs=2e-5)  # segment batches pad differently
            assert "cam not measured" not in casc["note"][i] and casc["note"][i] == full["note"][i]
        else:
            assert casc["cam_cascade"][i] == "rest" and casc["seg_nll"][i] is None and casc["cas"][i] is None
            assert "outside the cascade's top 0.5" in casc["note"][i]
    assert "cam_cascade" not in read(runs["full"]).column_names  # runs without a cascade store what they did
    saved = json.loads((runs["cascade"] / "cascade.json").read_text())
    assert saved["top"] == top and saved["n_ok"] == 12


def test_gateau_ranks_the_rest_by_hmg_below_every_measured_sample(runs):
    table = read(runs["cascade"])
    cols = table.to_pydict()
    ranking = rank_table(table, "gateau")
    order = [cols["id"][i] for i in ranking.order]
    marks = dict(zip(cols["id"], cols["cam_cascade"]))
    assert [marks[sid] for sid in order] == ["top"] * 6 + ["rest"] * 6
    hmp = {sid: s - l for sid, s, l, st in zip(cols["id"], cols["nll_short"], cols["nll_long"], cols["status"])
           if st == "ok"}
    rest = order[6:]
    assert rest == sorted(rest, key=lambda sid: -hmp[sid])
    notes = ranking.notes(ranking.order[:4])
    assert any("6 samples outside cam's top fraction" in n for n in notes)
    cam = rank_table(table, "cam")  # cam alone ranks only what it measured
    assert sorted(cols["id"][i] for i in cam.order) == sorted(sid for sid, m in marks.items() if m == "top")


def test_replay_of_a_complete_run_ranks_like_the_real_cascade(runs):
    replayed, top = replay(read(runs["full"]), F)
    real = read(runs["cascade"])
    a, b = rank_table(replayed, "gateau"), rank_table(real, "gateau")
    assert a.order.tolist() == b.order.tolist()
    np.testing.assert_allclose(a.score, b.score, atol=1e-6)
    assert top == json.loads((runs["cascade"] / "cascade.json").read_text())["top"]


def test_history_tokens_and_plan_bounds(runs, capsys):
    """The cascade's recorded tokens = phase 1 planned (full and window rows exactly as the complete run batches
    them) + phase 2 planned for the top set the run chose (segment rows only); the plan's bounds hold for every
    top set of that size; the cascade runs fewer tokens than the complete run."""
    from gateau.data import load_samples
    from gateau.pipeline.token_plan import cascade_phase2, plan_tokens

    tokens = RunStore(runs["cascade"]).read_history()[0]["forward_tokens"]
    assert main(["plan", *runs["common"], "--cam-top", str(F), "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    plan = planned["cascade"]
    assert plan["top_samples"] == 6
    assert main(["plan", *runs["common"], "--json"]) == 0
    complete = json.loads(capsys.readouterr().out)
    full = complete["total_tokens"]
    assert full == RunStore(runs["full"]).read_history()[0]["forward_tokens"]
    for kind in ("full", "window"):  # phase 1 runs the complete run's full (with the probe) and window rows
        assert planned["passes"][kind] == complete["passes"][kind]
    assert plan["phase1_tokens"] == complete["passes"]["full"]["tokens"] + complete["passes"]["window"]["tokens"]
    config = ScoreConfig.from_dict(RunStore(runs["cascade"]).read_config()["config"])
    samples = load_samples(runs["data"])
    top = json.loads((runs["cascade"] / "cascade.json").read_text())["top"]
    phase2 = cascade_phase2(config, samples, top)
    assert set(phase2.passes) == {"segments"}  # phase 2 repeats no full or window row
    assert plan["phase1_tokens"] + phase2.total_tokens == tokens < full
    assert planned["total_tokens"] == plan["phase1_tokens"] + plan["phase2_tokens_max"]
    ok = [sid for sid, st in zip(*read(runs["full"]).select(["id", "status"]).to_pydict().values()) if st == "ok"]
    alone = sorted(cascade_phase2(config, samples, [sid]).total_tokens for sid in ok)  # one sample: no padding
    assert plan["phase2_tokens_min"] == sum(alone[:6])
    rng = random.Random(3)
    sizes = [cascade_phase2(config, samples, rng.sample(ok, 6)).total_tokens for _ in range(30)]
    assert plan["phase2_tokens_min"] <= min(sizes) and max(sizes) <= plan["phase2_tokens_max"]
    assert plan_tokens(config).total_tokens == planned["total_tokens"]


def test_interrupted_cam_phase_resumes_to_the_same_run(runs, monkeypatch):
    from dataclasses import replace

    from gateau.pipeline.local_executor import LocalExecutor

    out = runs["root"] / "resumed"
    real = LocalExecutor.run
    calls = []

    def stop_in_the_cam_phase(self, plan, store, models=None):
        calls.append(plan.config.cascade_phase)
        if plan.config.cascade_phase == "cam":
            real(self, replace(plan, chunks=plan.chunks[:1]), store, models)  # one chunk of phase 2 stored, Ctrl-C
            raise KeyboardInterrupt
        return real(self, plan, store, models)

    monkeypatch.setattr(LocalExecutor, "run", stop_in_the_cam_phase)
    assert main(["score", *runs["common"], "--out", str(out), "--cam-top", str(F)]) == 130
    monkeypatch.setattr(LocalExecutor, "run", real)
    partial = read_rows(out)
    assert sum(m == "top" for m in partial["cam_cascade"]) == 3 and "rest" not in partial["cam_cascade"]
    pending = rank_table(RunStore(out).consolidate(), "gateau")
    assert len(pending.order) == 3  # samples awaiting cam are unranked, never mixed in
    assert main(["score", *runs["common"], "--out", str(out), "--cam-top", str(F)]) == 0
    assert_same_run(read(out), read(runs["cascade"]))
    second = RunStore(out).read_history()[-1]
    assert second["measured_now"] == 0  # phase 1 was complete: only the 3 missing top samples ran
    assert 0 < second["forward_tokens"] < RunStore(runs["cascade"]).read_history()[0]["forward_tokens"] / 2


def test_interrupted_hmg_phase_resumes_to_the_same_run(runs, monkeypatch):
    """Killed after two chunks of phase 1: the rerun scores the rest of phase 1, then phase 3 on the whole top set."""
    from dataclasses import replace

    from gateau.pipeline.local_executor import LocalExecutor

    out = runs["root"] / "resumed-hmg"
    real = LocalExecutor.run

    def stop_in_the_hmg_phase(self, plan, store, models=None):
        assert plan.config.cascade_phase == "hmg"
        real(self, replace(plan, chunks=plan.chunks[:2]), store, models)
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalExecutor, "run", stop_in_the_hmg_phase)
    assert main(["score", *runs["common"], "--out", str(out), "--cam-top", str(F)]) == 130
    monkeypatch.setattr(LocalExecutor, "run", real)
    partial = read_rows(out)
    assert partial["cam_cascade"] == ["pending"] * 6 and not (out / "cascade.json").exists()
    assert main(["score", *runs["common"], "--out", str(out), "--cam-top", str(F)]) == 0
    assert_same_run(read(out), read(runs["cascade"]))
    assert json.loads((out / "cascade.json").read_text())["top"] == json.loads(
        (runs["cascade"] / "cascade.json").read_text())["top"]


def assert_same_run(a: pa.Table, b: pa.Table) -> None:
    """Two cascaded runs of the same data store the same samples, marks, measurements and ranking."""
    assert a.column("id").to_pylist() == b.column("id").to_pylist()
    for column in ("cam_cascade", "status", "note", "seg_tokens"):
        assert a.column(column).to_pylist() == b.column(column).to_pylist(), column
    for column in ("nll_short", "nll_long", "cas"):
        np.testing.assert_allclose(np.array(a.column(column).to_pylist(), dtype=float),
                                   np.array(b.column(column).to_pylist(), dtype=float), atol=2e-5, err_msg=column)
    ra, rb = rank_table(a, "gateau"), rank_table(b, "gateau")
    assert ra.order.tolist() == rb.order.tolist()
    np.testing.assert_allclose(ra.score, rb.score, atol=1e-6)


def read_rows(run: Path) -> dict[str, list]:
    return RunStore(run).stored_rows().to_pydict()


def test_cam_top_is_in_the_fingerprint_only_below_one(runs):
    base = dict(data=str(runs["data"]), out="-", long_model="tiny", max_length=256)
    one = measurement_fields(ScoreConfig.from_flat(**base))
    assert "cam_top" not in one  # runs without a cascade keep their fingerprint
    assert measurement_fields(ScoreConfig.from_flat(**base, cam_top=0.4))["cam_top"] == 0.4
    out = runs["root"] / "refingerprint"
    shutil.copytree(runs["full"], out)
    assert main(["score", *runs["common"], "--out", str(out), "--cam-top", "0.4"]) == 2  # other settings: refused


@pytest.mark.parametrize("bad", [["--cam-top", "0"], ["--cam-top", "1.5"], ["--cam-top", "0.5", "--methods", "cam"],
                                 ["--cam-top", "0.5", "--methods", "hmg"]])
def test_bad_cam_top(runs, bad, capsys):
    assert main(["plan", *runs["common"], *bad]) == 2
    assert "--cam-top" in capsys.readouterr().err


def test_alpha_bound_what_the_cascade_relies_on():
    """With α = 0.8 and rank normalisation a sample below HMG's top r + (1 − α)/α never enters a top-r selection,
    whatever its CAS: on random tables, the complete run's top 30% lies inside HMG's top 55%."""
    from test_combine import hand_table

    rng = np.random.default_rng(0)
    for trial in range(20):
        n = 60
        rows = [(f"s{i}", "ok", float(np.exp(rng.normal(1, 0.5))), float(np.exp(rng.normal(1, 0.5))),
                 list(np.exp(rng.normal(1, 0.5, 4))), list(rng.dirichlet(np.ones(4)))) for i in range(n)]
        table = hand_table(rows)
        ranking = rank_table(table, "gateau")  # default: log-rank, α = 0.8
        chosen = {int(i) for i in ranking.order[: math.ceil(0.3 * n)]}
        hmg_order = rank_table(table, "hmg").order
        assert chosen <= {int(i) for i in hmg_order[: math.ceil(0.55 * n)]}, trial


@pytest.mark.slow
def test_calibrated_cascade_runs_the_neutral_row_with_the_segments(runs, tmp_path):
    """With --calibrate-attention the neutral row is CAM's alone: phase 3 runs it for the top samples only, and
    their neutral profiles equal a complete calibrated run's; the tokens equal the plan's phases exactly."""
    from gateau.data import load_samples
    from gateau.pipeline.token_plan import cascade_phase2, plan_tokens

    common = [*runs["common"], "--calibrate-attention"]
    assert main(["score", *common, "--out", str(tmp_path / "full")]) == 0
    assert main(["score", *common, "--out", str(tmp_path / "cascade"), "--cam-top", str(F)]) == 0
    full, casc = read(tmp_path / "full").to_pydict(), read(tmp_path / "cascade").to_pydict()
    for i, mark in enumerate(casc["cam_cascade"]):
        if mark == "top" and full["seg_attn_neutral"][i] is not None:
            np.testing.assert_allclose(casc["seg_attn_neutral"][i], full["seg_attn_neutral"][i], atol=1e-6)
            assert casc["cas"][i] == pytest.approx(full["cas"][i], abs=2e-5)
        elif mark == "rest":
            assert casc["seg_attn_neutral"][i] is None and casc["seg_nll"][i] is None
        if full["seg_attn"][i] is not None:  # the complete run batched the full rows with the neutral ones
            np.testing.assert_allclose(casc["seg_attn"][i], full["seg_attn"][i], atol=1e-6)
    config = ScoreConfig.from_dict(RunStore(tmp_path / "cascade").read_config()["config"])
    top = json.loads((tmp_path / "cascade" / "cascade.json").read_text())["top"]
    phase2 = cascade_phase2(config, load_samples(runs["data"]), top)
    assert set(phase2.passes) == {"segments", "neutral"} and phase2.passes["neutral"].rows == len(top)
    tokens = RunStore(tmp_path / "cascade").read_history()[0]["forward_tokens"]
    assert plan_tokens(config).cascade["phase1_tokens"] + phase2.total_tokens == tokens
