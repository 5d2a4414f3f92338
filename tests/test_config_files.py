"""``--config FILE`` of select, train, every ``eval`` sub-command and ``bench e2e``: a run from a file equals the
same run from flags, flags given on the command line override the file (even with their default value), and
unknown keys or wrong types are one line (exit 2) naming the key. Configs are resolved without running models,
except select, whose two selection files are compared."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import write_jsonl

from gateau.cli import build_parser, main
from gateau.cli.config_file import plain
from gateau.eval.registry import evaluations


def parsed(argv: list[str]):
    """``argv`` parsed as `gateau.cli.main` parses it (with ``args.argv``, which ``--config`` reads)."""
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    return args


def write_settings(path, settings: dict):
    """``settings`` as YAML or JSON by ``path``'s suffix."""
    path.write_text(yaml.safe_dump(settings) if path.suffix == ".yaml" else json.dumps(settings))
    return path


def one_error_line(capsys, command: str, path) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gateau {command}: error: {path}: "), err
    return err[0]


# -- score: wrong types (equality and unknown keys: tests/test_cli_config_file.py) ---------------------------------

@pytest.mark.parametrize("settings, fragment", [
    ({"execution": {"chunk_size": "big"}}, "execution.chunk_size must be int, got \"big\""),
    ({"measure": {"methods": "gateau"}}, "measure.methods must be a list of str, got \"gateau\""),
    ({"models": {"trust_remote_code": "yes"}}, "models.trust_remote_code must be bool, got \"yes\""),
    ({"models": []}, "models must be a mapping"),
])
def test_score_wrong_types_are_one_line_naming_the_key(tmp_path, settings, fragment, capsys):
    path = write_settings(tmp_path / "bad.yaml", settings)
    assert main(["score", "d.jsonl", "--out", str(tmp_path / "run"), "--config", str(path)]) == 2
    assert fragment in one_error_line(capsys, "score", path)
    assert not (tmp_path / "run").exists()


# -- select: the same selection file ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scored_run(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("select-config")
    records = [{"id": f"s{i}", "context": " ".join(f"w{(i * 7 + j) % 23}" for j in range(20 + 6 * i)),
                "instruction": "which word?", "response": f"w{i} and w{i + 1}."} for i in range(6)]
    data = write_jsonl(root / "data.jsonl", records)
    assert main(["score", str(data), "--out", str(root / "run"), "--long-model", str(tiny_model_dir),
                 "--methods", "gateau", "--max-length", "256", "--segment-len", "16", "--no-progress"]) == 0
    return root / "run"


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_select_from_a_file_writes_the_selection_the_flags_write(scored_run, tmp_path, suffix, capsys):
    flags_out, file_out = tmp_path / "flags.jsonl", tmp_path / "file.jsonl"
    assert main(["select", str(scored_run), "--count", "3", "--alpha", "0.6", "--attn-sink-tokens", "4",
                 "--out", str(flags_out)]) == 0
    settings = write_settings(tmp_path / f"select{suffix}", {"method": "gateau", "count": 3, "out": str(file_out),
                                                             "options": {"alpha": 0.6, "attn_sink_tokens": 4}})
    assert main(["select", str(scored_run), "--config", str(settings)]) == 0
    assert file_out.read_bytes() == flags_out.read_bytes()
    # the printed settings (every option resolved) read back give the same selection again
    capsys.readouterr()
    assert main(["select", str(scored_run), "--config", str(settings), "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["options"]["alpha"] == 0.6 and printed["count"] == 3 and printed["ratio"] is None
    again = tmp_path / "again.jsonl"
    assert main(["select", str(scored_run), "--config", str(write_settings(tmp_path / "printed.yaml",
                                                                          {**printed, "out": str(again)}))]) == 0
    assert again.read_bytes() == flags_out.read_bytes()


def test_select_flags_override_the_file_and_the_amount_is_one_setting(scored_run, tmp_path):
    from gateau.cli.select import settings_from_args

    settings = write_settings(tmp_path / "select.yaml", {"ratio": 0.5, "method": "ppl", "options": {"alpha": 0.6}})
    # --method given with its default value still overrides the file; --count replaces the file's ratio
    resolved = settings_from_args(parsed(["select", str(scored_run), "--config", str(settings), "--method",
                                          "gateau", "--count", "2", "--alpha", "0.9"]))
    assert (resolved.method, resolved.ratio, resolved.count, resolved.options) == ("gateau", None, 2, {"alpha": 0.9})
    assert settings_from_args(parsed(["select", str(scored_run), "--config", str(settings)])).ratio == 0.5


@pytest.mark.parametrize("settings, fragment", [
    ({"ratio": 0.5, "top": 3}, "unknown key 'top'; valid keys: method, preset, ratio, count, options, out, "),
    ({"ratio": 0.5, "options": {"alfa": 0.6}}, "unknown key 'options.alfa'; valid keys of options: "),
    ({"ratio": "half"}, "ratio must be float or null, got \"half\""),
    ({"ratio": 0.5, "options": {"alpha": "high"}}, "options.alpha must be float or null, got \"high\""),
    ({"ratio": 0.5, "count": 2}, "give exactly one of --ratio and --count"),
])
def test_select_bad_files_are_one_line(scored_run, tmp_path, settings, fragment, capsys):
    path = write_settings(tmp_path / "bad.yaml", settings)
    out = tmp_path / "sel.jsonl"
    assert main(["select", str(scored_run), "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gateau select: error: ") and fragment in err[0], err
    assert not out.exists()


# -- train: the same resolved TrainConfig ------------------------------------------------------------------------

def train_config(argv: list[str]):
    from gateau.cli.train import config_from_args

    return config_from_args(parsed(argv))[0]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_train_from_a_file_resolves_the_config_the_flags_resolve(tmp_path, tiny_model_dir, suffix):
    data = write_jsonl(tmp_path / "sel.jsonl", [{"context": "c", "instruction": "q?", "response": "r."}])
    common = ["train", str(data), "--out", str(tmp_path / "out"), "--device", "cpu"]
    from_flags = train_config([*common, "--model", str(tiny_model_dir), "--max-length", "128", "--lr", "1e-4",
                               "--batch-size", "2", "--grad-accum", "3", "--max-steps", "1", "--seed", "7",
                               "--id-field", "uid", "--loss-weighting", "sequence", "--no-progress",
                               "--revision", "v2", "--trust-remote-code", "--preset", "paper"])
    settings = write_settings(tmp_path / f"train{suffix}", {
        "model": str(tiny_model_dir), "preset": "paper", "max_length": 128, "lr": 1e-4, "batch_size": 2,
        "grad_accum": 3, "max_steps": 1, "seed": 7, "fields": {"id_field": "uid"}, "loss_weighting": "sequence",
        "progress": False, "revision": "v2", "trust_remote_code": True})
    from_file = train_config([*common, "--config", str(settings)])
    assert from_file == from_flags
    assert (from_file.lr, from_file.fields.id_field, from_file.revision, from_file.preset) == (1e-4, "uid", "v2",
                                                                                                 "paper")
    # --print-config writes every resolved key but world_size; read back, the same config
    printed = plain(from_flags)
    assert "world_size" in printed
    del printed["world_size"]
    assert train_config([*common, "--config", str(write_settings(tmp_path / "printed.yaml", printed))]) == from_flags


def test_train_flags_override_the_file(tmp_path, tiny_model_dir):
    settings = write_settings(tmp_path / "train.yaml", {"model": str(tiny_model_dir), "max_length": 128,
                                                        "lr": 1e-3, "preset": "paper", "fields": {"context": "doc"}})
    config = train_config(["train", "d.jsonl", "--out", str(tmp_path / "o"), "--config", str(settings),
                           "--lr", "3e-4", "--preset", "default", "--response-field", "answer"])
    assert (config.lr, config.preset, config.max_length) == (3e-4, "default", 128)
    assert (config.fields.context, config.fields.response) == ("doc", "answer")


@pytest.mark.parametrize("settings, fragment", [
    ({"learning_rate": 1e-4}, "unknown key 'learning_rate'; valid keys: fields, data, out, model, revision, "),
    ({"world_size": 2}, "unknown key 'world_size'"),
    ({"fields": {"answer": "a"}}, "unknown key 'fields.answer'; valid keys of fields: shape, id_field, "),
    ({"lr": "fast"}, "lr must be float, got \"fast\""),
    ({"max_steps": 1.5}, "max_steps must be int, got 1.5"),
])
def test_train_bad_files_are_one_line(tmp_path, settings, fragment, capsys):
    path = write_settings(tmp_path / "bad.yaml", settings)
    assert main(["train", "d.jsonl", "--out", str(tmp_path / "o"), "--config", str(path)]) == 2
    assert fragment in one_error_line(capsys, "train", path)
    assert not (tmp_path / "o").exists()


# -- eval: the same resolved settings, every sub-command ---------------------------------------------------------

# The arguments each evaluation needs on the command line (positional arguments and required flags).
_EVAL_ARGS = {"lm-eval": ["default", "--tasks", "arc_easy"], "longbench": ["preds"],
              "longbench-chat": ["default", "--cases", "c.jsonl", "--few-shots", "f.jsonl", "--judge-model", "j"],
              "mt-bench": ["default", "--judge-model", "j"], "needle": ["default"], "passkey": ["default"],
              "ruler": ["default", "--lengths", "512"]}


def eval_settings(command: str, argv: list[str]):
    return eval_resolved(command, argv)[0]


def eval_resolved(command: str, argv: list[str]):
    """An evaluation's (settings, judge options) from its command line."""
    from gateau.cli.eval import resolve_settings

    return resolve_settings(evaluations()[command], parsed(["eval", command, *argv]))


def test_every_eval_command_is_in_the_table():
    assert sorted(_EVAL_ARGS) == sorted(evaluations())


@pytest.mark.parametrize("command", sorted(_EVAL_ARGS))
def test_eval_from_a_file_resolves_the_settings_the_flags_resolve(tmp_path, command, capsys):
    needed = [*_EVAL_ARGS[command], "--out", str(tmp_path / "out")]
    model_flags = ["--dtype", "float32", "--max-batch", "3", "--token-budget", "4096", "--revision", "r1",
                   "--trust-remote-code", "--no-progress", "--overwrite"]
    from_flags = eval_settings(command, [*needed, *model_flags])
    model = from_flags.model
    assert (model.revision, model.trust_remote_code, model.max_batch) == ("r1", True, 3)
    assert main(["eval", command, *needed, *model_flags, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["revision"] == "r1" and printed["overwrite"] is True
    settings = write_settings(tmp_path / "eval.json", printed)
    assert eval_settings(command, [*needed, "--config", str(settings)]) == from_flags
    # only the model options in the file: the same settings
    only_model = write_settings(tmp_path / "model.yaml", {"overwrite": True, "model": {
        "dtype": "float32", "max_batch": 3, "token_budget": 4096, "revision": "r1", "trust_remote_code": True,
        "progress": False}})
    assert eval_settings(command, [*needed, "--config", str(only_model)]) == from_flags


def test_eval_flags_override_the_file_even_at_their_default(tmp_path):
    settings = write_settings(tmp_path / "needle.yaml", {"depths": [10, 90], "max_new_tokens": 16,
                                                         "model": {"dtype": "float32", "max_batch": 2}})
    resolved = eval_settings("needle", ["default", "--out", "o", "--config", str(settings), "--dtype", "auto",
                                        "--max-new-tokens", "32"])
    assert resolved.depths == (10.0, 90.0) and resolved.max_new_tokens == 32
    assert (resolved.model.dtype, resolved.model.max_batch) == ("auto", 2)


_JUDGE_FLAGS = ["--judge-model", "gpt-j", "--judge-url", "http://127.0.0.1:9/v1", "--judge-times", "3",
                "--judge-temperature", "0.5", "--judge-max-tokens", "256", "--judge-workers", "4",
                "--judge-revision", "j1"]


def test_the_judge_options_come_from_the_files_judge_section_as_from_the_flags(tmp_path, capsys):
    needed = ["default", "--out", str(tmp_path / "out")]
    settings, judge = eval_resolved("mt-bench", [*needed, *_JUDGE_FLAGS, "--judge-cache", "c.jsonl"])
    assert (judge.model, judge.url, judge.times, judge.temperature, judge.max_tokens, judge.workers, judge.cache,
            judge.revision, judge.trust_remote_code) == ("gpt-j", "http://127.0.0.1:9/v1", 3, 0.5, 256, 4,
                                                         "c.jsonl", "j1", False)
    assert main(["eval", "mt-bench", *needed, *_JUDGE_FLAGS, "--judge-cache", "c.jsonl", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["judge"] == {"model": "gpt-j", "url": "http://127.0.0.1:9/v1", "times": 3, "temperature": 0.5,
                                "max_tokens": 256, "cache": "c.jsonl", "workers": 4, "revision": "j1",
                                "trust_remote_code": False}
    path = write_settings(tmp_path / "mt.yaml", printed)
    # no --judge-model on the command line: the file's judge satisfies the required judge
    assert eval_resolved("mt-bench", [*needed, "--config", str(path)]) == (settings, judge)
    # a flag given overrides the file's judge key, even at its default value
    _, overridden = eval_resolved("mt-bench", [*needed, "--config", str(path), "--judge-times", "2",
                                               "--judge-model", "other"])
    assert (overridden.times, overridden.model, overridden.workers) == (2, "other", 4)


def test_a_required_judge_named_nowhere_is_a_one_line_error(tmp_path, capsys):
    path = write_settings(tmp_path / "mt.yaml", {"judge": {"times": 1}})
    assert main(["eval", "mt-bench", "default", "--out", str(tmp_path / "o"), "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give --judge-model NAME (or judge: {model: NAME} in --config's file)" in err[0], err
    assert not (tmp_path / "o").exists()


def test_a_judge_section_is_checked_and_only_where_a_judge_is_used(tmp_path, capsys):
    bad = write_settings(tmp_path / "bad.yaml", {"judge": {"modle": "x"}})
    assert main(["eval", "mt-bench", "default", "--out", str(tmp_path / "o"), "--config", str(bad)]) == 2
    assert "unknown key 'judge.modle'; valid keys of judge: model, url, times, " in one_error_line(capsys, "eval",
                                                                                                  bad)
    passkey = write_settings(tmp_path / "passkey.yaml", {"judge": {"model": "x"}})  # passkey uses no judge
    assert main(["eval", "passkey", "default", "--out", str(tmp_path / "o"), "--config", str(passkey)]) == 2
    assert "unknown key 'judge'; valid keys: model, " in one_error_line(capsys, "eval", passkey)


@pytest.mark.parametrize("settings, fragment", [
    ({"model": {"revison": "x"}}, "unknown key 'model.revison'; valid keys of model: model, device, dtype, "),
    ({"lenghts": [512]}, "unknown key 'lenghts'; valid keys: model, judge, out, overwrite, lengths, "),
    ({"max_new_tokens": "many"}, "max_new_tokens must be int, got \"many\""),
    ({"depths": ["deep"]}, "depths must be a list of float, got [\"deep\"]"),
])
def test_eval_bad_files_are_one_line(tmp_path, settings, fragment, capsys):
    path = write_settings(tmp_path / "bad.yaml", settings)
    assert main(["eval", "needle", "default", "--out", str(tmp_path / "o"), "--config", str(path)]) == 2
    assert fragment in one_error_line(capsys, "eval", path)


# -- bench e2e: the same resolved E2EConfig -----------------------------------------------------------------------

def e2e(argv: list[str]):
    from gateau.cli.bench import e2e_config

    return e2e_config(parsed(["bench", "e2e", *argv]))


@pytest.mark.parametrize("quick", [False, True])
def test_bench_e2e_from_a_file_resolves_the_config_the_flags_resolve(tmp_path, quick, capsys):
    flags = [*(["--quick"] if quick else []), "--n", "30", "--seeds", "3,4", "--arms", "gateau,random",
             "--lr", "1e-3", "--train-last-layers", "2", "--no-progress"]
    from_flags = e2e(["--out", "b", *flags])
    settings = {"pool": {"n": 30}, "seeds": [3, 4], "arms": ["gateau", "random"], "lr": 1e-3,
                "train_last_layers": 2, "progress": False, **({"quick": True} if quick else {})}
    assert e2e(["--out", "b", "--config", str(write_settings(tmp_path / "e2e.yaml", settings))]) == from_flags
    assert main(["bench", "e2e", "--out", "b", *flags, "--print-config"]) == 0
    printed = write_settings(tmp_path / "printed.json", yaml.safe_load(capsys.readouterr().out))
    assert e2e(["--out", "b", "--config", str(printed)]) == from_flags


def test_bench_e2e_flags_override_the_file(tmp_path):
    settings = write_settings(tmp_path / "e2e.yaml", {"pool": {"n": 40, "n_eval": 9}, "device": "cuda",
                                                      "max_steps": 5})
    config = e2e(["--out", "b", "--config", str(settings), "--device", "cpu", "--n", "12"])
    assert (config.pool.n, config.pool.n_eval, config.device, config.max_steps) == (12, 9, "cpu", 5)


@pytest.mark.parametrize("settings, fragment", [
    ({"pool": {"size": 3}}, "unknown key 'pool.size'; valid keys of pool: "),
    ({"seeds": "0,1"}, "seeds must be a list of int, got \"0,1\""),
])
def test_bench_e2e_bad_files_are_one_line(tmp_path, settings, fragment, capsys):
    path = write_settings(tmp_path / "bad.yaml", settings)
    assert main(["bench", "e2e", "--out", str(tmp_path / "b"), "--config", str(path)]) == 2
    assert fragment in one_error_line(capsys, "bench", path)


# -- the example recipes ship with the repository and resolve --------------------------------------------------------

def test_the_example_recipes_are_valid_settings_files(tmp_path):
    from pathlib import Path

    from gateau.cli.config_file import read_settings

    recipes = Path(__file__).resolve().parent.parent / "examples" / "recipes"
    files = {p.stem: p for p in recipes.glob("*.yaml")}
    assert {"score", "select", "train", "eval-needle", "eval-mt-bench", "bench-e2e"} <= set(files)
    for stem, path in files.items():
        command = stem.split("-", 1) if stem.startswith("eval-") else stem.split("-")
        args = parsed([*command, *{"score": ["d.jsonl", "--out", "o"], "select": ["run"],
                                   "train": ["d.jsonl", "--out", "o"], "eval-needle": ["default", "--out", "o"],
                                   "eval-mt-bench": ["default", "--out", "o"], "bench-e2e": ["--out", "o"]}[stem], "--config", str(path)])
        assert read_settings(str(path), args.settings_file), stem
    from gateau.cli.eval import resolve_settings

    _, judge = resolve_settings(evaluations()["mt-bench"], parsed(["eval", "mt-bench", "default", "--out", "o",
                                                                   "--config", str(files["eval-mt-bench"])]))
    assert (judge.model, judge.url, judge.workers) == ("gpt-4-0613", "https://api.openai.com/v1", 8)


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_train_from_a_file_gives_the_weights_and_loss_the_flags_give(tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file
    from train_fixtures import long_records

    data = write_jsonl(tmp_path / "sel.jsonl", long_records(4))
    flags = ["--model", str(tiny_model_dir), "--max-length", "256", "--max-steps", "1", "--lr", "1e-3",
             "--batch-size", "2", "--grad-accum", "1", "--save-steps", "100", "--device", "cpu", "--no-progress"]
    assert main(["train", str(data), "--out", str(tmp_path / "flags"), *flags]) == 0
    settings = write_settings(tmp_path / "train.yaml", {
        "model": str(tiny_model_dir), "max_length": 256, "max_steps": 1, "lr": 1e-3, "batch_size": 2,
        "grad_accum": 1, "save_steps": 100, "device": "cpu", "progress": False})
    assert main(["train", str(data), "--out", str(tmp_path / "file"), "--config", str(settings)]) == 0

    def stored(name: str):
        out = tmp_path / name
        config = json.loads((out / "train_config.json").read_text())
        assert config.pop("out") == str(out)
        log = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]
        return config, log, load_file(str(out / "model.safetensors"))

    (config_a, loss_a, weights_a), (config_b, loss_b, weights_b) = stored("flags"), stored("file")
    assert config_a == config_b and loss_a == loss_b and loss_a
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
