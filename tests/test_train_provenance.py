"""The provenance chain on a tiny real run: score -> select (sidecar) -> train (model card, gateau_provenance.json,
TensorBoard events, push to a fake hub on 127.0.0.1) -> eval results pointing back to the model."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from local_http import LocalServer, send_json
from train_fixtures import context_text, gateau_cmd

from gateau.cli import main
from gateau.provenance import read_model_provenance
from gateau.train.recipe import ConfigError, TrainConfig
from gateau.train.trainer import train


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def records(n: int = 8) -> list[dict]:
    return [{"id": f"r{i}", "context": context_text(i, 30 + 6 * i), "instruction": "What is the secret number?",
             "response": f"The secret number is {1000 + 37 * i}."} for i in range(n)]


@pytest.fixture(scope="module")
def selection(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("provenance")
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records()))
    run = root / "run"
    assert main(["score", str(data), "--out", str(run), "--long-model", str(tiny_model_dir), "--methods", "hmg",
                 "--max-length", "256", "--short-window", "16", "--device", "cpu", "--no-progress"]) == 0
    sel = root / "sel.jsonl"
    assert main(["select", str(run), "--method", "hmg", "--ratio", "0.5", "--out", str(sel)]) == 0
    return {"root": root, "data": data, "run": run, "sel": sel}


def test_select_writes_a_sidecar_and_keeps_the_records(selection):
    sel, run = selection["sel"], selection["run"]
    meta = json.loads(Path(f"{sel}.meta.json").read_text())
    config = json.loads((run / "config.json").read_text())
    lines = sel.read_text().splitlines()
    assert meta["kind"] == "gateau.selection" and meta["file"] == "sel.jsonl" and meta["records"] == len(lines) == 4
    assert meta["sha256"] == sha256(sel)
    assert meta["run"]["path"] == str(run.resolve()) and meta["run"]["fingerprint"] == config["fingerprint"]
    assert meta["run"]["config_sha256"] == sha256(run / "config.json") and meta["run"]["measure"] == config["measure"]
    assert meta["data"] == {"path": str(selection["data"].resolve()), "sha256": sha256(selection["data"])}
    assert meta["selection"]["method"] == "hmg" and meta["selection"]["ratio"] == 0.5
    assert meta["selection"]["count"] is None and meta["selection"]["selected"] == 4
    by_id = {r["id"]: r for r in records()}
    for line in lines:  # the record format is unchanged: the input record plus the same gateau object
        record = json.loads(line)
        gateau = record.pop("gateau")
        assert record == by_id[record["id"]] and set(gateau) == {"score", "rank", "method", "components"}


@pytest.fixture(scope="module")
def trained(selection, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "model"
    from train_fixtures import save_tiny_model

    base = save_tiny_model(tmp_path_factory.mktemp("base") / "tiny")
    train(TrainConfig(data=str(selection["sel"]), out=str(out), model=str(base), max_length=512, max_steps=3,
                      batch_size=2, grad_accum=1, gradient_checkpointing=False, progress=False, save_steps=1000,
                      report_to="tensorboard"))
    return out


def test_train_records_the_chain(trained, selection):
    prov = json.loads((trained / "gateau_provenance.json").read_text())
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    (long,) = prov["data"]
    assert long["role"] == "long" and long["path"] == str(selection["sel"].resolve())
    assert long["sha256"] == sha256(selection["sel"])
    meta = json.loads(Path(f"{selection['sel']}.meta.json").read_text())
    assert long["selection"] == {**meta, "matches": True}
    assert long["gateau_objects"]["methods"] == {"hmg": 4} and long["gateau_objects"]["records"] == 4
    assert prov["result"]["final_loss"] == log[-1]["loss"] and prov["result"]["steps"] == 3
    assert prov["train_config"] == json.loads((trained / "train_config.json").read_text())
    assert read_model_provenance(trained) == {"model_path": str(trained.resolve()), **prov}
    assert read_model_provenance(selection["root"]) is None  # not a trained model folder


def test_the_model_card_shows_data_selection_recipe_loss_and_chain(trained, selection):
    text = (trained / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["library_name"] == "transformers" and "gateau" in front["tags"]
    assert "base_model" not in front  # a local folder is no hub id
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    run_config = json.loads((selection["run"] / "config.json").read_text())
    for needle in (sha256(selection["sel"]), run_config["fingerprint"], str(selection["run"].resolve()),
                   sha256(selection["data"]), f"final training loss: {log[-1]['loss']:.4f}", "method `hmg`, ratio 0.5",
                   "| lr | 2e-05 |", "| max_steps | 3 |", "its sidecar matches the file"):
        assert needle in text, needle


def test_tensorboard_event_files_hold_the_logged_losses(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = list((trained / "runs").rglob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert [e.step for e in acc.Scalars("train/loss")] == [row["step"] for row in log]
    assert [e.value for e in acc.Scalars("train/loss")] == pytest.approx([row["loss"] for row in log], rel=1e-6)


def test_an_edited_selection_is_flagged(selection, tmp_path):
    from gateau.provenance import data_entry

    copy = tmp_path / "sel.jsonl"
    copy.write_text(selection["sel"].read_text() + selection["sel"].read_text().splitlines()[0] + "\n")
    Path(f"{copy}.meta.json").write_text(Path(f"{selection['sel']}.meta.json").read_text())
    entry = data_entry("long", copy)
    assert entry["selection"]["matches"] is False and entry["sha256"] == sha256(copy)
    assert data_entry("long", "some/hub-dataset")["sha256"] is None


def test_eval_results_carry_the_model_provenance(trained, tmp_path):
    out = tmp_path / "needle"
    assert main(["eval", "needle", str(trained), "--out", str(out), "--lengths", "400", "--depths", "50",
                 "--max-new-tokens", "2", "--device", "cpu", "--no-progress"]) == 0
    summary = json.loads((out / "needle.json").read_text())["summary"]
    assert summary["model_provenance"] == read_model_provenance(trained)


def test_unknown_tracker_package_and_offline_push_are_one_line_errors(selection, tmp_path, capsys):
    from gateau.train.tracking import check_tracker

    with pytest.raises(ConfigError, match=r"--report-to wandb needs the `wandb` package: pip install wandb"):
        check_tracker("wandb")
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # set by conftest before huggingface_hub was imported
    assert main(["train", str(selection["sel"]), "--out", str(tmp_path / "o"), "--max-length", "512",
                 "--push-to-hub", "me/model", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "gateau train: error: --push-to-hub me/model: HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it, "
        "or train without --push-to-hub and upload later with `hf upload REPO OUT`"]
    assert not (tmp_path / "o").exists()
    assert main(["train", str(selection["sel"]), "--out", str(tmp_path / "o"), "--max-length", "512",
                 "--push-to-hub", "no-slash"]) == 2
    assert "--push-to-hub must be a repository id like user/name" in capsys.readouterr().err


class FakeHub:
    """The Hub endpoints `create_repo` + `upload_folder` use, on 127.0.0.1: repo creation, the model card's YAML
    check (the front matter must parse as a mapping), preupload (every file a regular git blob) and the NDJSON
    commit, whose files are kept in ``files`` (path -> bytes). Other paths answer 404."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.validated: list[dict] = []
        self.created: list[dict] = []
        self.commits: list[dict] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # http.server's method name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/api/repos/create":
                    hub.created.append(json.loads(body))
                    repo = hub.created[-1]
                    send_json(self, {"url": f"{hub.url}/{repo.get('organization')}/{repo['name']}"})
                elif self.path == "/api/validate-yaml":
                    content = json.loads(body)["content"]
                    hub.validated.append(yaml.safe_load(content.split("---\n")[1]))
                    send_json(self, {"errors": [], "warnings": []})
                elif "/preupload/" in self.path:
                    files = json.loads(body)["files"]
                    send_json(self, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                          for f in files]})
                elif "/commit/" in self.path:
                    for line in body.decode().splitlines():
                        op = json.loads(line)
                        if op["key"] == "header":
                            hub.commits.append(op["value"])
                        elif op["key"] == "file":
                            hub.files[op["value"]["path"]] = base64.b64decode(op["value"]["content"])
                    send_json(self, {"commitUrl": f"{hub.url}/me/model/commit/abc", "commitOid": "a" * 40})
                else:
                    self.send_error(404)

            def do_GET(self):  # http.server's method name
                self.send_error(404)

        self.server = LocalServer(Handler)
        self.url = self.server.base_url

    def close(self) -> None:
        self.server.close()


@pytest.mark.slow  # run by name in make test (Makefile SLOW_TESTS)
def test_push_to_hub_uploads_the_folder_to_a_fake_endpoint(selection, tmp_path):
    import subprocess

    from train_fixtures import cli_env, save_tiny_model

    hub = FakeHub()
    base = save_tiny_model(tmp_path / "base")
    out = tmp_path / "pushed"
    env = {k: v for k, v in cli_env().items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=hub.url, HF_TOKEN="hf_fake", HF_HUB_DISABLE_XET="1")
    try:
        proc = subprocess.run(gateau_cmd("train", str(selection["sel"]), "--out", str(out), "--model", str(base),
                                         "--max-steps", "1", "--max-length", "512", "--device", "cpu",
                                         "--no-gradient-checkpointing", "--no-progress", "--push-to-hub", "me/model"),
                              env=env, capture_output=True, text=True, timeout=300)
    finally:
        hub.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"pushed to the hub: {hub.url}/me/model/commit/abc" in proc.stdout
    assert hub.created and hub.created[0]["name"] == "model" and hub.created[0].get("organization") == "me"
    expected = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()
                and not p.relative_to(out).parts[0].startswith("checkpoint-")}
    assert hub.validated and hub.validated[0]["library_name"] == "transformers"
    assert set(hub.files) == expected and "README.md" in expected and "model.safetensors" in expected
    assert all(hub.files[name] == (out / name).read_bytes() for name in expected)
    assert os.path.isdir(out / "checkpoint-1")  # kept locally, not uploaded


def test_the_run_lists_its_exports_and_the_report_shows_them(selection, tmp_path):
    from gateau.provenance import run_exports

    (export,) = [e for e in run_exports(selection["run"]) if e["file"] == str(selection["sel"].resolve())]
    assert export["sha256"] == sha256(selection["sel"]) and export["records"] == 4 and export["state"] == "matches"
    assert export["selection"]["method"] == "hmg" and export["selection"]["ratio"] == 0.5
    page = tmp_path / "report.html"
    assert main(["report", str(selection["run"]), "--method", "hmg", "--ratio", "0.5", "--out", str(page)]) == 0
    html = page.read_text()
    assert "selections exported from this run" in html and str(selection["sel"].resolve()) in html
    assert sha256(selection["sel"]) in html
    other = tmp_path / "other.jsonl"
    assert main(["select", str(selection["run"]), "--method", "hmg", "--count", "2", "--out", str(other)]) == 0
    other.write_text(other.read_text().splitlines()[0] + "\n")
    states = {e["file"]: e["state"] for e in run_exports(selection["run"])}
    assert states[str(other.resolve())] == "changed" and states[str(selection["sel"].resolve())] == "matches"
    other.unlink()
    assert {e["file"]: e["state"] for e in run_exports(selection["run"])}[str(other.resolve())] == "missing"
