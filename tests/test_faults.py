"""The standing fault suite: each bad case of issue 23 (and the issues before it) as one row of a table —
(case, command, expected exit code, expected message fragment, expected state of the files afterwards).

Rows run in-process through `gateau.cli.main` on a fresh run scored with ``--methods length`` (the tokenizer of the
tiny model, no forward pass). Signals and kill -9 need real processes: they are the slow tests at the end
(``-m slow``, named in the Makefile's SLOW_TESTS). Cases tested elsewhere are listed in docs/faults.md with their
tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from gateau.cli import main

WORDS = "the harbour keeps a blue lighthouse and the archive holds every essay in order".split()


def default_sigint() -> None:
    """In the child: SIGINT back to its default. A shell starts background jobs (nohup, `&`) with SIGINT ignored,
    which the child would inherit, and gateau rightly keeps an inherited SIG_IGN."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def record(i: int) -> dict:
    return {"id": f"r{i}", "context": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(20 + 5 * i)),
            "instruction": "What does the harbour keep?", "response": "A blue lighthouse."}


@dataclass
class Paths:
    """One case's files: ``data`` (4 records), ``run`` (scored with --methods length) under ``root``."""

    root: Path
    data: Path
    run: Path
    model: Path

    def lines(self, path: Path) -> list[dict]:
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@dataclass(frozen=True)
class Case:
    """``argv`` is formatted with {data}, {run}, {root}, {model}; ``setup`` prepares files (and may monkeypatch)
    before the command; ``after`` checks the state of the files (it asserts, or returns False when they are
    wrong); ``absent``: text that must not be printed."""

    name: str
    argv: tuple[str, ...]
    code: int
    fragment: str
    after: Callable[[Paths, dict[str, bytes]], None] = lambda p, before: None
    setup: Callable[[Paths, pytest.MonkeyPatch], None] = lambda p, mp: None
    absent: tuple[str, ...] = ()
    score: bool = True  # score the run first
    score_args: tuple[str, ...] = ()  # extra flags of that first score
    data: Callable[[int], dict] = field(default=record)


def unchanged(*names: str) -> Callable[[Paths, dict[str, bytes]], None]:
    """``after``: the named files (relative to root) hold the bytes they held before the command."""
    def check(p: Paths, before: dict[str, bytes]) -> None:
        for name in names:
            assert (p.root / name).read_bytes() == before[name], name
    return check


def symlink_to(name: str, target: str) -> Callable[[Paths, pytest.MonkeyPatch], None]:
    def make(p: Paths, mp: pytest.MonkeyPatch) -> None:
        (p.root / name).symlink_to(p.root / target)
    return make


def mkdir(name: str) -> Callable[[Paths, pytest.MonkeyPatch], None]:
    return lambda p, mp: (p.root / name).mkdir()


def symlinked_out_after(p: Paths, before: dict[str, bytes]) -> None:
    link = p.root / "link.jsonl"
    assert link.is_symlink() and [r["id"] for r in p.lines(p.root / "target.jsonl")] == ["r3", "r2"]


def read_only_run(p: Paths, mp: pytest.MonkeyPatch) -> None:
    """RUN/.lock cannot be opened (root, who runs the tests here, is never refused: the refusal is injected)."""
    from gateau.store import RunStore

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(p.run / ".lock"))

    mp.setattr(RunStore, "lock", refuse)


def no_hub(p: Paths, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("HF_HUB_OFFLINE", "1")


def bad_response(i: int) -> dict:
    out = record(i)
    if i != 1:
        del out["response"]
    return out


def no_response(i: int) -> dict:
    out = record(i)
    del out["response"]
    return out


def with_bom(p: Paths, mp: pytest.MonkeyPatch) -> None:
    p.data.write_bytes(b"\xef\xbb\xbf" + p.data.read_bytes())


def dataset_dict(*splits: str) -> Callable[[Paths, pytest.MonkeyPatch], None]:
    """A `datasets` save_to_disk folder ``ROOT/dd`` holding a DatasetDict with ``splits``, each the 4 records."""
    def make(p: Paths, mp: pytest.MonkeyPatch) -> None:
        import datasets

        records = [record(i) for i in range(4)]
        datasets.DatasetDict({name: datasets.Dataset.from_list(records) for name in splits}).save_to_disk(
            str(p.root / "dd"))
    return make


def no_ruler_files(folder: str) -> Callable[[Paths, dict[str, bytes]], None]:
    """``after``: ``folder`` (formatted with {model}, {run}) holds no ``ruler.*`` file."""
    def check(p: Paths, before: dict[str, bytes]) -> None:
        assert not list(Path(folder.format(model=p.model, run=p.run)).glob("ruler*"))
    return check


def symlink_to_model(name: str) -> Callable[[Paths, pytest.MonkeyPatch], None]:
    return lambda p, mp: (p.root / name).symlink_to(p.model)


LONGBENCH_RECORD = json.dumps({"_id": "q0", "input": "What does the harbour keep?", "context": " ".join(WORDS),
                               "answers": ["a blue lighthouse"], "length": 16, "all_classes": None}) + "\n"


def longbench_data(p: Paths, mp: pytest.MonkeyPatch) -> None:
    (p.root / "lb").mkdir()
    (p.root / "lb" / "hotpotqa.jsonl").write_text(LONGBENCH_RECORD)


def nothing_at(name: str) -> Callable[[Paths, dict[str, bytes]], None]:
    """``after``: nothing was made at ``name`` (relative to root)."""
    def check(p: Paths, before: dict[str, bytes]) -> None:
        assert not (p.root / name).exists(), name
    return check


def longbench_data_kept(p: Paths, before: dict[str, bytes]) -> None:
    folder = p.root / "lb"
    assert sorted(x.name for x in folder.iterdir()) == ["hotpotqa.jsonl"]
    assert (folder / "hotpotqa.jsonl").read_text() == LONGBENCH_RECORD


def lone_surrogate(i: int) -> dict:
    out = record(i)
    if i == 2:
        out["response"] = "a lone \ud800 surrogate"
    return out


def damage_first_shard(p: Paths, mp: pytest.MonkeyPatch) -> None:
    first = sorted((p.run / "shards").glob("part-*.parquet"))[0]
    first.write_bytes(b"garbage")
    (p.run / "scores.parquet").unlink()


def lose_one_chunk(p: Paths, mp: pytest.MonkeyPatch) -> None:
    """An unfinished run: one of its chunks never stored (the run was scored with --chunk-size 1)."""
    sorted((p.run / "shards").glob("part-*.parquet"))[0].unlink()
    (p.run / "scores.parquet").unlink()


def edit_record_r1(p: Paths, mp: pytest.MonkeyPatch) -> None:
    rows = p.lines(p.data)
    rows[1]["response"] = "an edited answer"
    p.data.write_text("".join(json.dumps(r) + "\n" for r in rows))


def another_data_file(p: Paths, mp: pytest.MonkeyPatch) -> None:
    (p.root / "other.jsonl").write_text("".join(json.dumps(record(i)) + "\n" for i in range(5)))


def hold_the_run_lock(p: Paths, mp: pytest.MonkeyPatch) -> None:
    """A second scorer: this test holds RUN/.lock (flock is per open file, so the command's own open conflicts)."""
    import fcntl

    handle = open(p.run / ".lock", "a+")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    mp.setattr(Paths, "held_lock", handle, raising=False)  # kept open (and locked) until the test ends


def append_binary_line(p: Paths, mp: pytest.MonkeyPatch) -> None:
    with open(p.data, "ab") as handle:
        handle.write(b"\x00\xff\xfe binary\n")


def settings_file(name: str, settings: dict) -> Callable[[Paths, pytest.MonkeyPatch], None]:
    def write(p: Paths, mp: pytest.MonkeyPatch) -> None:
        (p.root / name).write_text(json.dumps(settings))
    return write


SELECT = ("select", "{run}", "--method", "length")
RULER = ("eval", "ruler", "--lengths", "800", "--tasks", "niah_single_1", "--samples", "1", "--no-progress")
SCORE = ("score", "{data}", "--out", "{root}/fresh", "--long-model", "{model}", "--methods", "length",
         "--no-progress")
DATA_AND_RUN = ("data.jsonl", "run/config.json", "run/scores.parquet")

CASES = [
    # item 1: select --out onto the scored data
    Case("select --out onto the scored data", (*SELECT, "--ratio", "0.5", "--out", "{data}"), 2,
         "is an input of this command", unchanged(*DATA_AND_RUN)),
    Case("select --out a symlink to the scored data", (*SELECT, "--ratio", "0.5", "--out", "{root}/alias.jsonl"), 2,
         "(it resolves to", unchanged(*DATA_AND_RUN), setup=symlink_to("alias.jsonl", "data.jsonl")),
    Case("select --data X --out X", (*SELECT, "--ratio", "0.5", "--data", "{data}", "--out", "{data}"), 2,
         "is an input of this command", unchanged(*DATA_AND_RUN)),
    # item 2: select --out into the run
    Case("select --out RUN/config.json", (*SELECT, "--ratio", "0.5", "--out", "{run}/config.json"), 2,
         "is inside the run directory", unchanged(*DATA_AND_RUN)),
    Case("select --out RUN/scores.parquet", (*SELECT, "--ratio", "0.5", "--out", "{run}/scores.parquet"), 2,
         "is inside the run directory", unchanged(*DATA_AND_RUN)),
    Case("select --out RUN/shards/new.jsonl", (*SELECT, "--ratio", "0.5", "--out", "{run}/shards/new.jsonl"), 2,
         "is inside the run directory", lambda p, b: not (p.run / "shards" / "new.jsonl").exists()),
    Case("report --out onto the scored data", ("report", "{run}", "--method", "length", "--ratio", "0.5", "--out",
                                               "{data}"), 2, "is an input of this command", unchanged(*DATA_AND_RUN)),
    Case("report --out RUN/config.json", ("report", "{run}", "--method", "length", "--ratio", "0.5", "--out",
                                          "{run}/config.json"), 2, "is inside the run directory",
         unchanged(*DATA_AND_RUN)),
    Case("inspect --out RUN/scores.parquet", ("inspect", "{run}", "r1", "--out", "{run}/scores.parquet"), 2,
         "is inside the run directory", unchanged(*DATA_AND_RUN)),
    Case("train --out RUN", ("train", "{data}", "--out", "{run}", "--model", "{model}", "--max-steps", "1"), 2,
         "is the run directory", unchanged(*DATA_AND_RUN)),
    Case("train --out the training data", ("train", "{data}", "--out", "{data}", "--model", "{model}"), 2,
         "is an input of this command", unchanged(*DATA_AND_RUN)),
    # items 3 and 6 (landed from branch shard): a damaged config.json names the file and --repair; an unknown
    # --methods leaves nothing behind
    Case("a truncated config.json", (*SELECT, "--ratio", "0.5"), 2, "config.json is damaged",
         setup=lambda p, mp: (p.run / "config.json").write_text('{"fingerprint": "x", "meas')),
    Case("an unknown --methods leaves no run behind", (*SCORE[:-2], "nope", "--no-progress"), 2,
         "unknown method 'nope'", lambda p, b: not (p.root / "fresh").exists()),
    # item 4: silent misreads
    Case("--id-field absent from every record", (*SCORE, "--id-field", "uid"), 2,
         "the id field 'uid' (--id-field) is in none of the 4 records; they have the fields context, id, "
         "instruction, response", lambda p, b: not (p.root / "fresh").exists()),
    Case("select --out a symlink: the target is written, the link kept",
         (*SELECT, "--count", "2", "--out", "{root}/link.jsonl"), 0, "wrote 2 records to", symlinked_out_after,
         setup=lambda p, mp: ((p.root / "target.jsonl").write_text("stale\n"),
                              (p.root / "link.jsonl").symlink_to(p.root / "target.jsonl"))),
    Case("a DatasetDict with several splits and no --split",
         ("score", "{root}/dd", "--out", "{root}/fresh", "--long-model", "{model}", "--methods", "length"), 2,
         "{root}/dd: a dataset with 2 splits ('train', 'test'): choose one with --split NAME", nothing_at("fresh"),
         setup=dataset_dict("train", "test"), score=False),
    Case("--split naming no split of the DatasetDict",
         ("score", "{root}/dd", "--out", "{root}/fresh", "--long-model", "{model}", "--methods", "length",
          "--split", "dev"), 2, "{root}/dd: no split 'dev' (--split); its splits are 'train', 'test'", nothing_at("fresh"),
         setup=dataset_dict("train", "test"), score=False),
    Case("a DatasetDict with one split: used and named",
         ("score", "{root}/dd", "--out", "{root}/fresh", "--long-model", "{model}", "--methods", "length",
          "--no-progress"), 0, "data: split 'validation' (the only split of {root}/dd)",
         setup=dataset_dict("validation"), score=False),
    Case("--split on a JSONL file", (*SCORE, "--split", "train"), 2,
         "--split applies to a HuggingFace dataset", nothing_at("fresh"), score=False),
    # item 5: one line instead of a traceback
    Case("select --out a directory", (*SELECT, "--ratio", "0.5", "--out", "{root}/taken"), 2,
         "{root}/taken is a directory; give a file name", lambda p, b: not list((p.root / "taken").iterdir()),
         setup=mkdir("taken")),
    Case("report --out a directory", ("report", "{run}", "--method", "length", "--ratio", "0.5", "--out",
                                      "{root}/taken"), 2, "is a directory", setup=mkdir("taken")),
    Case("inspect --out a directory", ("inspect", "{run}", "r1", "--out", "{root}/taken"), 2, "is a directory",
         setup=mkdir("taken")),
    Case("select --out under a file", (*SELECT, "--ratio", "0.5", "--out", "{data}/x.jsonl"), 2,
         "{data}", unchanged(*DATA_AND_RUN)),
    Case("resuming a read-only run", ("score", "{data}", "--out", "{run}", "--long-model", "{model}", "--methods",
                                      "length", "--no-progress"), 2, "{run}/.lock: Permission denied",
         unchanged(*DATA_AND_RUN), setup=read_only_run),
    # item 9: messages that mislead
    Case("a model folder that does not exist", ("score", "{data}", "--out", "{root}/fresh", "--long-model",
                                                "{root}/no-such-model", "--methods", "length", "--no-progress"), 2,
         "no such local folder", lambda p, b: not (p.root / "fresh" / "config.json").exists()),
    Case("a hub id offline", ("score", "{data}", "--out", "{root}/fresh", "--long-model", "someone/no-such-model",
                              "--methods", "length", "--no-progress"), 2,
         "no such local folder, and HF_HUB_OFFLINE is set", setup=no_hub),
    Case("--count beyond the samples", (*SELECT, "--count", "100", "--out", "{root}/sel.jsonl"), 0,
         "100 samples asked for, but only 4 are ranked: selected 4",
         lambda p, b: len(p.lines(p.root / "sel.jsonl")) == 4 or pytest.fail("not 4 records")),
    Case("a selection with nothing ranked", (*SELECT, "--ratio", "1", "--out", "{root}/sel.jsonl"), 2,
         "no sample is ranked by method 'length'", lambda p, b: not (p.root / "sel.jsonl").exists(),
         data=no_response),
    Case("the score summary names not-ok ids with reasons", SCORE, 0,
         "missing_field: r0 (missing field 'response' for shape 'explicit'), r2 (missing field 'response' for "
         "shape 'explicit'), r3 (missing field 'response' for shape 'explicit')", data=bad_response, score=False),
    Case("the select summary names unranked ids with reasons", (*SELECT, "--ratio", "1"), 0,
         "  missing_field: r0 (missing field 'response'", data=bad_response),
    Case("wrote 1 record", (*SELECT, "--count", "1", "--out", "{root}/sel.jsonl"), 0, "wrote 1 record to",
         absent=("wrote 1 records",)),
    Case("a UTF-8 BOM file is read", SCORE, 0, "status: ok=4", setup=with_bom, score=False),
    # issue 23's leftovers (branch ruler): `gateau eval *` outputs go through the same guard, and its loaders
    # print no Loading weights bar under --no-progress
    Case("eval ruler --out onto the model's folder", (*RULER, "{model}", "--out", "{model}"), 2,
         "is an input of this command", no_ruler_files("{model}"), score=False),
    Case("eval ruler --out a symlink to the model's folder", (*RULER, "{model}", "--out", "{root}/alias"), 2,
         "(it resolves to", no_ruler_files("{model}"), setup=symlink_to_model("alias"), score=False),
    Case("eval ruler --out RUN", (*RULER, "{model}", "--out", "{run}"), 2, "is the run directory",
         lambda p, b: (unchanged(*DATA_AND_RUN)(p, b), no_ruler_files("{run}")(p, b))),
    Case("eval longbench --out onto its --data folder", ("eval", "longbench", "{model}", "--data", "{root}/lb",
                                                         "--out", "{root}/lb", "--no-progress"), 2,
         "is an input of this command", longbench_data_kept, setup=longbench_data, score=False),
    Case("eval mt-bench --judge-cache onto the judge model", ("eval", "mt-bench", "{model}", "--out", "{root}/mt",
                                                              "--judge-model", "{root}/judge", "--judge-cache",
                                                              "{root}/judge", "--no-progress"), 2,
         "--judge-cache {root}/judge is an input of this command", nothing_at("mt"),
         setup=mkdir("judge"), score=False),
    Case("no Loading weights bar in eval under --no-progress",
         ("eval", "passkey", "{model}", "--out", "{root}/ev", "--lengths", "256", "--depths", "50", "--samples", "1",
          "--max-new-tokens", "1", "--no-progress"), 0, "passkey json:", absent=("Loading weights",), score=False),
    Case("no Loading weights bar under --no-progress",
         ("score", "{data}", "--out", "{root}/fresh", "--long-model", "{model}", "--methods", "hmg", "--max-length",
          "256", "--short-window", "32", "--device", "cpu", "--dtype", "float32", "--no-progress"), 0,
         "status: ok=4", absent=("Loading weights",), score=False),
    # the cases of the last robustness issue (issue 11), as rows of the same table
    Case("a lone surrogate is one bad_text sample, the run goes on", SCORE, 0,
         "status: bad_text=1, ok=3", data=lone_surrogate, score=False),
    Case("a damaged shard names the shard and --repair", SCORE[:3] + ("{run}",) + SCORE[4:], 2,
         "is damaged", absent=("Traceback",), setup=damage_first_shard),
    Case("select on a run with a damaged shard names it too", (*SELECT, "--ratio", "0.5"), 2,
         "with --repair to set damaged chunks aside", setup=damage_first_shard),
    Case("a different file scored into an existing --out is refused", ("score", "{root}/other.jsonl", "--out",
                                                                      "{run}", *SCORE[4:]), 2,
         "holds a run of {data}, not {root}/other.jsonl; use --overwrite or another --out",
         unchanged(*DATA_AND_RUN), setup=another_data_file),
    Case("select on an unfinished run is refused with counts", (*SELECT, "--ratio", "0.5"), 2,
         "only 3 of 4 samples are scored; finish the run", setup=lose_one_chunk, score_args=("--chunk-size", "1")),
    Case("select --allow-partial ranks the scored samples", (*SELECT, "--ratio", "0.5", "--allow-partial"), 0,
         "samples: 3  ranked: 3  selected: 2", setup=lose_one_chunk, score_args=("--chunk-size", "1")),
    Case("select --out on edited data names the first edited id", (*SELECT, "--ratio", "0.5", "--out",
                                                                  "{root}/sel.jsonl"), 2,
         "sample 'r1' differs in {data} from the record that was scored",
         lambda p, b: not (p.root / "sel.jsonl").exists(), setup=edit_record_r1),
    Case("a second scorer on the same --out", SCORE[:3] + ("{run}",) + SCORE[4:], 2,
         "is being scored by another process", unchanged(*DATA_AND_RUN), setup=hold_the_run_lock),
    Case("--chunk-size 0", (*SCORE, "--chunk-size", "0"), 2, "--chunk-size must be positive, got 0",
         lambda p, b: not (p.root / "fresh").exists()),
    Case("--segment-len -1", (*SCORE, "--segment-len", "-1"), 2, "--segment-len must be positive, got -1"),
    Case("--token-budget 0", (*SCORE, "--token-budget", "0"), 2, "--token-budget must be positive, got 0"),
    Case("select --ratio 0", (*SELECT, "--ratio", "0"), 2, "--ratio must be in (0, 1], got 0.0"),
    Case("a binary line names the file and the line", SCORE, 2, "{data}:5: not UTF-8 text",
         lambda p, b: not (p.root / "fresh" / "scores.parquet").exists(), setup=append_binary_line, score=False),
    # the judge section of an evaluation's settings file (wave 3, issue 25)
    Case("mt-bench with a judge named nowhere", ("eval", "mt-bench", "{model}", "--out", "{root}/mt", "--config",
                                                 "{root}/mt.json"), 2,
         "this evaluation needs a judge: give --judge-model NAME", nothing_at("mt"),
         setup=settings_file("mt.json", {"judge": {"times": 1}})),
    Case("an unknown key in the judge section", ("eval", "mt-bench", "{model}", "--out", "{root}/mt", "--config",
                                                 "{root}/mt.json"), 2,
         "unknown key 'judge.modle'; valid keys of judge: model, url, ", nothing_at("mt"),
         setup=settings_file("mt.json", {"judge": {"modle": "gpt-4"}})),
    Case("--limit on a finished run counts what the limit covers",
         ("score", "{data}", "--out", "{run}", *SCORE[4:], "--limit", "2"), 0,
         "samples: 2 (measured now 0, already done 2)"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(case: Case, tmp_path, tiny_model_dir, monkeypatch, capsys):
    p = Paths(tmp_path, tmp_path / "data.jsonl", tmp_path / "run", tiny_model_dir)
    p.data.write_text("".join(json.dumps(case.data(i)) + "\n" for i in range(4)))
    if case.score:
        assert main(["score", str(p.data), "--out", str(p.run), "--long-model", str(p.model), "--methods", "length",
                     "--no-progress", *case.score_args]) == 0
    case.setup(p, monkeypatch)
    before = {name: (tmp_path / name).read_bytes() for name in DATA_AND_RUN if (tmp_path / name).is_file()}
    capsys.readouterr()
    argv = [a.format(data=p.data, run=p.run, root=tmp_path, model=p.model) for a in case.argv]
    assert main(argv) == case.code
    out, err = capsys.readouterr()
    fragment = case.fragment.format(data=p.data, run=p.run, root=tmp_path)
    if case.code == 0:
        assert fragment in out, out
    else:  # one line, naming what is wrong
        lines = err.strip().splitlines()
        assert len(lines) == 1 and ": error: " in lines[0] and fragment in lines[0], err
    assert "Traceback" not in err
    for text in case.absent:
        assert text not in out + err
    assert case.after(p, before) is not False, f"{case.name}: the files afterwards are not as expected"


def test_progress_counts_whole_samples():
    """The bar shows whole samples: measured fractions of a chunk count once a whole sample is done (naive
    reference: floor of the running sum), the stored count when the chunk ends."""
    import io

    from gateau.pipeline.progress import Progress

    progress = Progress(6, enabled=True)
    progress.bar.fp = io.StringIO()
    seen, total = [], 0.0
    for step in (0.5, 0.75, 1.25, 0.5):
        progress.partial(step)
        total += step
        seen.append((progress.bar.n, int(total)))
    progress.chunk_done(3, 100)
    assert [n for n, _ in seen] == [want for _, want in seen] and progress.bar.n == 3
    assert ".5/" not in progress.bar.fp.getvalue() and "3/6" in str(progress.bar)
    progress.bar.close()


@pytest.mark.parametrize("steps, ratio", [(1, 0.03), (2, 0.5), (3, 0.5), (10, 0.03), (100, 0.0), (4, 0.9)])
def test_a_warmup_that_takes_every_step_is_warned(steps, ratio):
    """The note appears exactly when transformers' linear schedule runs every step below the full learning rate
    (reference: the scheduler's own learning rate at each step)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from gateau.train.recipe import resolve_config

    config, notes = resolve_config("default", {"model": "m", "data": "d", "out": "o", "max_steps": steps,
                                               "warmup_ratio": ratio})
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    import math

    sched = get_linear_schedule_with_warmup(opt, math.ceil(steps * ratio), steps)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    all_in_warmup = all(lr < 1.0 for lr in lrs)
    assert any("the warm-up takes all" in n for n in notes) == all_in_warmup


KILL_SELECT = """
import sys, time
import gateau.select.choose as choose
real = choose._export_object
def slow(r, pos):
    if not getattr(slow, "once", False):
        slow.once = True
    else:
        print("WRITING", flush=True)
        time.sleep(600)
    return real(r, pos)
choose._export_object = slow
from gateau.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_select_killed_mid_write_leaves_a_temporary_the_next_write_removes(tmp_path, tiny_model_dir, capsys):
    """Item 6: kill -9 during `select --out` leaves ``.sel.jsonl.tmpPID`` (and the old file whole); the next select
    to the same file removes it."""
    data, run, out = tmp_path / "data.jsonl", tmp_path / "run", tmp_path / "sel.jsonl"
    data.write_text("".join(json.dumps(record(i)) + "\n" for i in range(4)))
    assert main(["score", str(data), "--out", str(run), "--long-model", str(tiny_model_dir), "--methods", "length",
                 "--no-progress"]) == 0
    out.write_text("old\n")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SELECT, "select", str(run), "--method", "length", "--ratio",
                             "1", "--out", str(out)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    printed = []  # the summary comes first, then the marker from inside the write
    while not printed or printed[-1] not in ("WRITING", ""):
        printed.append(proc.stdout.readline().strip())
    assert printed[-1] == "WRITING", f"the select ended before its write: {printed}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".sel.jsonl.tmp")]
    assert left == [f".sel.jsonl.tmp{proc.pid}"] and out.read_text() == "old\n"
    assert main(["select", str(run), "--method", "length", "--ratio", "1", "--out", str(out)]) == 0
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    assert len(out.read_text().splitlines()) == 4


@pytest.mark.slow
def test_ctrl_c_during_report_is_one_line_and_writes_nothing(tmp_path, tiny_model_dir):
    """Item 5: SIGINT while `report` runs (its imports, the figures) ends with one line, exit 130, no file."""
    data, run, out = tmp_path / "data.jsonl", tmp_path / "run", tmp_path / "r.html"
    data.write_text("".join(json.dumps(record(i)) + "\n" for i in range(4)))
    assert main(["score", str(data), "--out", str(run), "--long-model", str(tiny_model_dir), "--methods", "length",
                 "--no-progress"]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "gateau", "report", str(run), "--method", "length", "--ratio",
                             "0.5", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    time.sleep(1.0)
    assert proc.poll() is None, "the report ended before the signal"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()  # "gateau: ..." if the signal lands while the parser is being built
    assert "Traceback" not in err and lines in (["gateau report: interrupted"], ["gateau: interrupted"]), err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
