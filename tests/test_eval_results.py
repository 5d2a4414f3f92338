"""The shared results writer: resumable item log, tables, outputs."""

from __future__ import annotations

import json

import pytest
from eval_fixtures import read_csv

from gateau.eval.results import (
    EvalError,
    ItemLog,
    SettingsMismatch,
    format_table,
    pivot,
    write_outputs,
)


def test_item_log_resumes_and_refuses_other_settings(tmp_path):
    path = tmp_path / "x.items.jsonl"
    log = ItemLog(path, {"model": "m", "n": 1})
    log.add("a", {"answer": "one"})
    log.add("b", {"answer": "two"})
    again = ItemLog(path, {"model": "m", "n": 1})
    assert "a" in again and "b" in again and len(again) == 2
    assert again.get("b")["answer"] == "two"
    with pytest.raises(SettingsMismatch, match="changed: n"):
        ItemLog(path, {"model": "m", "n": 2})
    assert len(ItemLog(path, {"model": "m", "n": 2}, overwrite=True)) == 0


def test_item_log_drops_a_line_cut_short(tmp_path):
    path = tmp_path / "x.items.jsonl"
    log = ItemLog(path, {"s": 1})
    log.add("a", {"v": 1})
    with open(path, "a") as f:
        f.write('{"key": "b", "v"')  # killed mid-write
    again = ItemLog(path, {"s": 1})
    assert len(again) == 1 and "b" not in again
    again.add("b", {"v": 2})
    assert ItemLog(path, {"s": 1}).get("b")["v"] == 2


def test_item_log_malformed_middle_line_is_an_error(tmp_path):
    path = tmp_path / "x.items.jsonl"
    ItemLog(path, {"s": 1}).add("a", {"v": 1})
    with open(path, "a") as f:
        f.write("garbage\n" + json.dumps({"key": "c", "v": 3}) + "\n")
    with pytest.raises(EvalError, match=":3: malformed"):
        ItemLog(path, {"s": 1})


def test_pivot_and_table():
    rows = [{"t": "a", "n": 1, "s": 1.0}, {"t": "a", "n": 2, "s": 0.0}, {"t": "b", "n": 1, "s": 0.5},
            {"t": "b", "n": 1, "s": 0.25}]
    header, body = pivot(rows, "t", "n", "s")
    assert header == ["t", "1", "2", "mean"]
    assert body[0] == ["a", 1.0, 0.0, 0.5]
    assert body[1] == ["b", 0.375, None, 0.375]
    assert body[2] == ["mean", 0.6875, 0.0, pytest.approx((1 + 0 + 0.375) / 3)]
    table = format_table(header, body)
    assert table.splitlines()[0].startswith("| t ")
    assert "| b    | 0.38 |" in table.replace("  ", " ") or "0.38" in table


def test_write_outputs(tmp_path):
    rows = [{"a": 1, "b": "x|y"}, {"a": 2, "b": None}]
    paths = write_outputs(tmp_path, "r", rows, summary={"k": 1}, table="T")
    assert json.loads(paths["json"].read_text())["summary"] == {"k": 1}
    assert read_csv(paths["csv"]) == [{"a": "1", "b": "x|y"}, {"a": "2", "b": ""}]
    assert paths["md"].read_text() == "T\n"
