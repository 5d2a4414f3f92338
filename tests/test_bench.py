"""`gateau bench`: metrics on a hand-built table, window merging, the report, and both CLI commands end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from gateau import cli
from gateau.config import NEUTRAL_RESPONSE
from gateau.bench import benchmark as bench
from gateau.bench.synth import SynthLabel, read_labels

TYPES = ("far_fact", "two_facts", "near_fact", "no_context", "wrong_answer", "early_summary")
POSITIVE = ("far_fact", "two_facts", "early_summary")


def _labels(types=TYPES) -> list[SynthLabel]:
    return [SynthLabel(f"s{i}", t, t in POSITIVE, (), 400) for i, t in enumerate(types)]


def _table(ppl_long, ppl_short, status=None) -> pa.Table:
    n = len(ppl_long)
    status = status or ["ok"] * n
    return pa.table({
        "index": pa.array(range(n), pa.int64()), "id": [f"s{i}" for i in range(n)], "status": status,
        "error": [""] * n, "note": [""] * n, "n_context": pa.array([100 + i for i in range(n)], pa.int64()),
        "n_instruction": pa.array([5] * n, pa.int64()), "n_response": pa.array([7] * n, pa.int64()),
        "n_truncated": pa.array([0] * n, pa.int64()), "content_hash": ["h"] * n, "fingerprint": ["x"] * n,
        "nll_short": pa.array([None if p is None else math.log(p) for p in ppl_short], pa.float64()),
        "nll_long": pa.array([None if p is None else math.log(p) for p in ppl_long], pa.float64()),
        "n_short_context": pa.array([64] * n, pa.int64())})


def test_metrics_by_hand():
    # positives s0 (5), s1 (2), s5 (NaN: unrankable, last); negatives s2 (3), s3 (1), s4 (4)
    score = np.array([5.0, 2.0, 3.0, 1.0, 4.0, np.nan])
    labels = _labels()
    positive, types = bench.label_arrays([f"s{i}" for i in range(6)], labels)
    m = bench.metrics(score, positive, types)
    assert m["auroc"] == pytest.approx(4 / 9)  # s0 beats 3 negatives, s1 beats 1, s5 none: 4 of 9 pairs
    assert m["p10"] == 1.0  # top ceil(0.6) = 1: s0
    assert m["p30"] == 0.5  # top ceil(1.8) = 2: s0, s4
    assert m["p50"] == pytest.approx(1 / 3)  # top 3: s0, s4, s2
    assert m["n"] == 6 and m["n_ranked"] == 5
    expected = {"far_fact": 100, "two_facts": 50, "near_fact": 400 / 6, "no_context": 200 / 6,
                "wrong_answer": 500 / 6, "early_summary": 100 / 6}
    assert m["type_pct"] == pytest.approx(expected)
    a, n1, n2 = 4 / 9, 3, 3
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))
    assert m["auroc_se"] == pytest.approx(se)


def test_metrics_ties_count_half_and_single_class_is_nan():
    positive, types = bench.label_arrays(["s0", "s2"], _labels())
    assert bench.metrics(np.array([1.0, 1.0]), positive, types)["auroc"] == 0.5
    positive, types = bench.label_arrays(["s0", "s1"], _labels())
    assert math.isnan(bench.metrics(np.array([1.0, 2.0]), positive, types)["auroc"])


def test_unlabelled_id_is_an_error():
    with pytest.raises(ValueError, match="no label"):
        bench.label_arrays(["nope"], _labels())


def test_evaluate_tables_rows_match_hand_computed():
    # ppl_long as in test_metrics_by_hand, the sample s5 failed; ppl_short = ppl_long * ratio
    ppl_long = [5.0, 2.0, 3.0, 1.0, 4.0, None]
    ratio = [4.0, 3.0, 1.1, 0.9, 1.2, None]
    ppl_short = [None if p is None else p * r for p, r in zip(ppl_long, ratio)]
    status = ["ok"] * 5 + ["too_long"]
    table = _table(ppl_long, ppl_short, status)
    rows = bench.evaluate_tables({128: table}, _labels())
    by = {}
    for r in rows:
        by.setdefault(r["method"], []).append(r)
    assert {"random", "length", "ppl", "hmg"} <= set(by)
    assert "gateau" not in by and "cam" not in by and "ifd" not in by  # no CAM / IFD columns: skipped
    assert by["ppl"][0]["auroc"] == pytest.approx(4 / 9)
    # log-ratio ranks the two valid positives (ratios 4 and 3) above every negative; s5 is last
    logratio = next(r for r in by["hmg"] if r["settings"]["norm"] == "log-rank")
    assert not logratio["extra"] and logratio["window"] == 128
    assert logratio["auroc"] == pytest.approx(6 / 9)
    assert logratio["p30"] == 1.0
    # length = n_context = 100 + i: s5 is not ok, so unranked
    assert by["length"][0]["n_ranked"] == 5
    hmg_norms = {r["settings"]["norm"] for r in by["hmg"]}
    assert hmg_norms == {"softmax", "minmax-softmax", "log-rank", "rank", "zscore", "raw"}
    # raw: the plain difference PPL_A - PPL_B (ppl_short - ppl_long = ppl_long * (ratio - 1))
    raw = next(r for r in by["hmg"] if r["settings"]["norm"] == "raw")
    diff = [p * (q - 1) for p, q in zip(ppl_long[:5], ratio[:5])]  # 15, 4, 0.3, -0.1, 0.8: s0, s1 on top
    assert raw["p30"] == 1.0 and sorted(range(5), key=lambda i: -diff[i])[:2] == [0, 1]
    presets = {r["preset"] for r in by["hmg"]}
    assert {"paper", "official"} <= presets
    text, facts = bench.recommend(rows)
    assert "noise" in text and facts["best_overall"]["auroc"] >= facts["best_registered"]["auroc"]


def test_variants_needing_an_unmeasured_column_are_skipped():
    """Calibrated CAM variants need the neutral profile; a run without it evaluates the other CAM variants only."""
    n = 6
    seg = pa.list_(pa.float64())
    base = _table([5.0, 2.0, 3.0, 1.0, 4.0, 2.0], [20.0, 6.0, 3.3, 0.9, 4.8, 2.0])
    cam = {"seg_nll": pa.array([[0.1 * i, 0.5, 0.2] for i in range(n)], seg),
           "seg_attn": pa.array([[0.5, 0.2, 0.3]] * n, seg), "attn_head": pa.array([[0.1] * 4] * n, seg),
           "seg_tokens": pa.array([[8, 8, 8]] * n, pa.list_(pa.int64())),
           "seg_starts": pa.array([[0, 8, 16]] * n, pa.list_(pa.int64())), "cas": pa.array([None] * n, pa.float64())}
    for name, col in cam.items():
        base = base.append_column(name, col)

    def calibrated(neutral) -> list[dict]:
        t = base.append_column("seg_attn_neutral", pa.array(neutral, seg))
        t = t.append_column("attn_head_neutral", pa.array([None if v is None else [0.1] * 4 for v in neutral], seg))
        rows = bench.evaluate_tables({128: t}, _labels())
        return [r for r in rows if r["method"] == "cam" and r["settings"].get("attn_calibration", "none") != "none"]

    assert calibrated([None] * n) == []
    got = calibrated([[0.4, 0.1, 0.5]] * n)
    assert {r["settings"]["attn_calibration"] for r in got} == {"divide", "subtract"}
    assert all(r["n_ranked"] == n for r in got)


def test_with_window_replaces_hmg_columns_and_combines_status():
    base = _table([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    window = _table([1.0, 2.0, 3.0], [9.0, 8.0, 7.0], ["ok", "oom", "ok"])
    window = window.take(pa.array([2, 0, 1]))  # another order: aligned by id
    merged = bench.with_window(base, window)
    assert merged.column("nll_short").to_pylist() == pytest.approx([math.log(v) for v in (9.0, 8.0, 7.0)])
    assert merged.column("status").to_pylist() == ["ok", "window_failed", "ok"]
    assert bench.with_window(base, base) is base


def test_bench_synth_cli_writes_both_files(tmp_path):
    out = tmp_path / "b"
    assert cli.main(["bench", "synth", "--out", str(out), "--n", "6", "--words", "400", "--seed", "1"]) == 0
    data = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    labels = read_labels(out / "labels.jsonl")
    assert len(data) == len(labels) == 6
    assert [d["id"] for d in data] == [lab.id for lab in labels]
    assert {lab.type for lab in labels} == set(TYPES)


def test_plan_runs_first_window_full_others_hmg(tmp_path):
    configs = bench.plan_runs(bench.BenchConfig(dir=str(tmp_path), windows=(64, 128, 64)))
    assert [c.models.short_window for c in configs] == [64, 128]
    first = "cam,gateau,hmg,hmg-tokens,ifd,length,ppl,random"  # every registered method that needs no named model
    assert ",".join(configs[0].measure.methods) == first and configs[1].measure.methods == ("hmg", "hmg-tokens")
    assert configs[0].out.endswith(f"runs/w64-{first.replace(',', '+')}")
    assert configs[1].out.endswith("runs/w128-hmg+hmg-tokens")
    # the calibration profile is measured once, in the run with CAM
    assert configs[0].measure.neutral_response == NEUTRAL_RESPONSE and configs[1].measure.neutral_response is None
    with pytest.raises(ValueError):
        bench.parse_windows("64,x")


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_bench_run_quick_end_to_end(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "bq"
    assert cli.main(["bench", "synth", "--out", str(out), "--n", "6", "--words", "400"]) == 0
    args = ["bench", "run", str(out), "--quick", "--long-model", str(tiny_model_dir), "--device", "cpu",
            "--no-progress"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "AUROC" in printed and "Recommended defaults" in printed
    for name in ("results.md", "results.json", "results.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    result = json.loads((out / "results.json").read_text())
    methods = {r["method"] for r in result["rows"]}
    assert {"random", "length", "ppl", "ifd", "hmg", "hmg-tokens", "cam", "gateau"} <= methods
    tokens = {r["settings"]["token_aggregate"] for r in result["rows"] if r["method"] == "hmg-tokens"}
    assert tokens == {"topk", "key-share", "key-count", "key-gain", "positive-sum", "mean"}
    calibrated = {r["settings"].get("attn_calibration") for r in result["rows"] if r["method"] in ("cam", "gateau")}
    assert {"divide", "subtract"} <= calibrated  # the bench run measures the neutral profile
    gateau = [r for r in result["rows"] if r["method"] == "gateau"]
    assert {r["preset"] for r in gateau} >= {"paper", "official"}
    assert {r["settings"].get("alpha") for r in gateau} >= {0.5, 0.7, 0.8, 0.9}
    assert all(r["window"] == 128 for r in gateau)
    assert result["meta"]["windows"] == [128] and result["meta"]["n"] == 6
    md = (out / "results.md").read_text()
    assert "## Main variants" in md and "## Recommended defaults" in md and "early_summary" in md
    # resumable: a rerun scores nothing new and gives the same numbers
    assert cli.main(args) == 0
    assert "(0 samples to score)" in capsys.readouterr().out
    again = json.loads((out / "results.json").read_text())
    assert [r["auroc"] for r in again["rows"]] == [r["auroc"] for r in result["rows"]]
