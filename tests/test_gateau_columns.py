"""A run scored with ``--methods hmg,cam`` (the paper's two components) ranks by ``--method gateau`` exactly as a run
scored with ``--methods gateau``: the token columns are needed only when ``--token-weight`` > 0 (issue 23 item 7)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gateau.cli import main
from gateau.methods import method_options
from gateau.select.rank import rank_table

WORDS = ("the harbour keeps a blue lighthouse and the archive holds every essay while founders talk to users "
         "and write code the secret number is kept by the red boats").split()


def make_records(n: int = 9) -> list[dict]:
    rng = random.Random(3)
    return [{"id": f"r{i}", "context": " ".join(rng.choice(WORDS) for _ in range(40 + 15 * i)),
             "instruction": "What is the secret number?", "response": " ".join(rng.choice(WORDS) for _ in range(4 + i))}
            for i in range(n)]


def score(data: Path, out: Path, model_dir: Path, methods: str) -> Path:
    code = main(["score", str(data), "--out", str(out), "--long-model", str(model_dir), "--methods", methods,
                 "--max-length", "256", "--segment-len", "16", "--short-window", "24", "--device", "cpu",
                 "--no-progress"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("columns")
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_records()))
    return {"parts": score(data, root / "parts", tiny_model_dir, "hmg,cam"),
            "gateau": score(data, root / "gateau", tiny_model_dir, "gateau")}


def test_hmg_cam_run_ranks_by_gateau_like_a_gateau_run(runs):
    parts, whole = (pq.read_table(runs[k] / "scores.parquet") for k in ("parts", "gateau"))
    assert "tok_nll_long" not in parts.column_names and "tok_nll_long" in whole.column_names
    for options in (None, method_options("gateau", "paper"), method_options("gateau", alpha=0.5, norm="rank")):
        a, b = rank_table(parts, "gateau", options), rank_table(whole, "gateau", options)
        assert len(a.order) == 9 and a.order.tolist() == b.order.tolist()
        np.testing.assert_array_equal(a.score, b.score)


def test_token_weight_still_needs_the_token_columns(runs):
    table = pq.read_table(runs["parts"] / "scores.parquet")
    with pytest.raises(ValueError, match=r"tok_nll_long.*--methods including gateau"):
        rank_table(table, "gateau", method_options("gateau", token_weight=0.5))


def test_select_and_report_on_a_hmg_cam_run(runs, tmp_path, capsys):
    assert main(["select", str(runs["parts"]), "--ratio", "0.3", "--method", "gateau"]) == 0
    assert main(["report", str(runs["parts"]), "--ratio", "0.3", "--top", "1", "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").stat().st_size > 0
    assert "needs columns" not in capsys.readouterr().err
