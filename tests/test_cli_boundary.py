"""`gateau.cli.main`'s one error boundary: a user's mistake is one line and exit 2, a bug keeps its traceback."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest

from gateau import cli
from gateau.cli import main
from gateau.errors import GateauError


@pytest.fixture(scope="module")
def length_run(tmp_path_factory, tiny_model_dir):
    """A run scored with the length method only (the tokenizer, no forward pass)."""
    root = tmp_path_factory.mktemp("boundary")
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i}", "context": "word " * (5 + i), "instruction": "why?",
                                        "response": "because."}) + "\n" for i in range(4)))
    run = root / "run"
    assert main(["score", str(data), "--out", str(run), "--long-model", str(tiny_model_dir), "--methods", "length",
                 "--no-progress"]) == 0
    return run


def one_error_line(capsys, command: str) -> str:
    """The message of the single ``gateau COMMAND: error: ...`` line on stderr (asserts there is nothing else)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gateau {command}: error: "), err
    return err[0][len(f"gateau {command}: error: "):]


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"gateau {version('gateau')}\n"


@pytest.mark.parametrize("argv, command, fragment", [
    (["select", "{run}", "--ratio", "2"], "select", "--ratio must be in (0, 1], got 2.0"),
    (["select", "{run}", "--ratio", "0.5", "--method", "nope"], "select", "unknown method 'nope'"),
    (["select", "{run}", "--ratio", "0.5", "--method", "length", "--alpha", "0.5"], "select",
     "--alpha does not apply to method 'length'"),
    (["inspect", "{run}", "s9", "--out", "{tmp}/x.png"], "inspect", "no sample with id 's9' in"),
    (["report", "{run}", "--ratio", "0.5", "--out", "{tmp}/r.html", "--also=--bogus"], "report",
     "--also unrecognized arguments: --bogus"),
    (["eval", "longbench", "{tmp}"], "eval", "holds no DATASET.jsonl prediction files"),  # an EvalError
])
def test_user_mistakes_are_one_line(length_run, tmp_path, capsys, argv, command, fragment):
    argv = [a.format(run=length_run, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert fragment in one_error_line(capsys, command)


def test_an_os_error_naming_a_file_is_one_line(length_run, tmp_path, monkeypatch, capsys):
    """A read-only run: opening RUN/.lock fails with PermissionError (root, who runs the tests here, is never
    refused, so the refusal is injected where the store opens the lock)."""
    from gateau.store import RunStore

    lock = length_run / ".lock"

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(lock))

    monkeypatch.setattr(RunStore, "lock", refuse)
    data = json.loads((length_run / "config.json").read_text())["data"]["path"]
    assert main(["score", data, "--out", str(length_run), "--methods", "length", "--no-progress"]) == 2
    assert one_error_line(capsys, "score") == f"{lock}: Permission denied"


@pytest.mark.parametrize("bug", [KeyError("column"), TypeError("bad call"), ValueError("not a user's mistake"),
                                 OSError("no file named")])
def test_a_bug_keeps_its_traceback(length_run, monkeypatch, bug):
    """The old main turned every KeyError and ValueError into one line, hiding bugs; now only GateauErrors and
    OSErrors that name a file are."""
    import gateau.select

    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(gateau.select, "select", broken)
    with pytest.raises(type(bug)) as raised:
        main(["select", str(length_run), "--ratio", "0.5", "--method", "length"])
    assert raised.value is bug


def test_user_errors_stay_value_errors_for_api_callers():
    """UsageError is a GateauError and a ValueError, so `except ValueError` code written against the API works."""
    from gateau.config import SelectConfig
    from gateau.methods import method_options

    for make in (lambda: SelectConfig(ratio=2.0), lambda: method_options("gateau", alpha=2.0),
                 lambda: method_options("nope")):
        with pytest.raises(ValueError) as raised:
            make()
        assert isinstance(raised.value, GateauError)


def test_every_command_registers_through_one_pattern():
    """Each command module adds its parsers with a handler; none is looked up by name."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        nested = [a for a in command._actions if a.dest.endswith("_command")]
        leaves = list(nested[0].choices.values()) if nested else [command]
        assert all(callable(leaf.get_default("handler")) for leaf in leaves), name
