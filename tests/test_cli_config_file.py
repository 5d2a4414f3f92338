"""`gateau score --config FILE`: the settings from a file (flags override it) give the same run as the flags."""

from __future__ import annotations

import json

import pytest
import yaml

from gateau.cli import main


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("config-file") / "data.jsonl"
    path.write_text("".join(json.dumps({"uid": f"s{i}", "context": "word " * (5 + i), "instruction": "why?",
                                        "response": "because."}) + "\n" for i in range(3)))
    return path


def stored_config(run) -> dict:
    """RUN/config.json without the run directory's own path: the resolved settings and their fingerprint."""
    payload = json.loads((run / "config.json").read_text())
    assert payload["config"].pop("out") == str(run)
    return payload


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_run_from_a_file_equals_the_run_from_flags(tmp_path, data, tiny_model_dir, suffix, capsys):
    flags = ["--long-model", str(tiny_model_dir), "--methods", "length", "--max-length", "64", "--segment-len", "8",
             "--short-window", "16", "--chunk-size", "2", "--token-budget", "512", "--no-progress",
             "--id-field", "uid"]
    assert main(["score", str(data), "--out", str(tmp_path / "flags"), *flags]) == 0
    settings = {"data": {"fields": {"id_field": "uid"}},
                "models": {"long_model": str(tiny_model_dir), "short_window": 16},
                "measure": {"methods": ["length"], "max_length": 64, "segment_len": 8},
                "execution": {"chunk_size": 2, "token_budget": 999, "progress": False}}
    path = tmp_path / f"settings{suffix}"
    path.write_text(yaml.safe_dump(settings) if suffix == ".yaml" else json.dumps(settings))
    # --token-budget on the command line overrides the file's 999
    assert main(["score", str(data), "--out", str(tmp_path / "file"), "--config", str(path),
                 "--token-budget", "512"]) == 0
    assert stored_config(tmp_path / "file") == stored_config(tmp_path / "flags")
    capsys.readouterr()
    # --print-config writes the resolved settings; read back, they give the same run again
    assert main(["score", str(data), "--out", str(tmp_path / "again"), *flags, "--print-config"]) == 0
    printed = tmp_path / "printed.json"
    printed.write_text(capsys.readouterr().out)
    assert not (tmp_path / "again").exists()
    assert main(["score", str(data), "--out", str(tmp_path / "again"), "--config", str(printed)]) == 0
    assert stored_config(tmp_path / "again") == stored_config(tmp_path / "flags")


@pytest.mark.parametrize("settings, fragment", [
    ({"measure": {"segment_length": 8}}, "unknown key 'measure.segment_length'; valid keys of measure: methods, "),
    ({"model": {}}, "unknown key 'model'; valid keys: data, models, measure, execution, out, overwrite, repair"),
    ({"data": {"fields": {"idfield": "x"}}}, "unknown key 'data.fields.idfield'; valid keys of data.fields: shape, "),
])
def test_unknown_keys_are_one_line_naming_them(tmp_path, data, settings, fragment, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(settings))
    assert main(["score", str(data), "--out", str(tmp_path / "run"), "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gateau score: error: {path}: "), err
    assert fragment in err[0]
    assert not (tmp_path / "run").exists()


def test_a_runs_own_config_json_is_a_settings_file(tmp_path, data, tiny_model_dir):
    """`--config RUN/config.json` (the record a run keeps, its settings under "config" beside the fingerprint)
    gives that run's settings: scoring again into a new folder stores the same config; `plan` reads it too."""
    flags = ["--long-model", str(tiny_model_dir), "--methods", "length", "--max-length", "64", "--chunk-size", "2",
             "--no-progress", "--id-field", "uid"]
    assert main(["score", str(data), "--out", str(tmp_path / "first"), *flags]) == 0
    recorded = tmp_path / "first" / "config.json"
    assert main(["score", str(data), "--out", str(tmp_path / "again"), "--config", str(recorded)]) == 0
    assert stored_config(tmp_path / "again") == stored_config(tmp_path / "first")
    assert main(["plan", str(data), "--config", str(recorded), "--json"]) == 0
