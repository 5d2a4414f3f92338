"""``--revision`` and ``--trust-remote-code`` reach every ``from_pretrained`` of score (A, B, CaR's reward model and
embedder), train and eval: a recorder in place of transformers' loaders keeps the keyword arguments of every call
(naive reference: the flag values). A hub id is served from the tiny local model; a local folder is loaded as it is
on disk, so ``revision`` is not passed for it (``trust_remote_code`` is)."""

from __future__ import annotations

import json
import sys
import types

import pytest
import transformers
from helpers import write_jsonl

from gateau.cli import main
from gateau.hub import HubOptions, hub_kwargs

HUB_ID = "fake-org/tiny-llama"


class Stop(RuntimeError):
    """Raised by a recorder to end a command once the load it watches has been recorded."""


@pytest.fixture
def calls(monkeypatch, tiny_model_dir):
    """Every ``from_pretrained`` of AutoConfig / AutoTokenizer / AutoModelForCausalLM as (class, source, kwargs);
    the hub id ``HUB_ID`` is served from the tiny local model (revision and trust_remote_code left out there)."""
    seen: list[tuple[str, str, dict]] = []
    for cls in (transformers.AutoConfig, transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        real = cls.from_pretrained

        def recorder(source, *args, _real=real, _name=cls.__name__, **kwargs):
            seen.append((_name, str(source), dict(kwargs)))
            if str(source) == HUB_ID:
                source = tiny_model_dir
                kwargs = {k: v for k, v in kwargs.items() if k not in ("revision", "trust_remote_code")}
            return _real(source, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", recorder)
    return seen


def hub_calls(calls, source: str = HUB_ID) -> list[tuple[str, dict]]:
    """(class, the hub keyword arguments given) of each load of ``source`` (None = not given: transformers' own
    nested loads pass both as None)."""
    return [(name, {k: v for k, v in kwargs.items() if k in ("revision", "trust_remote_code") and v is not None})
            for name, src, kwargs in calls if src == source]


def test_hub_kwargs_follow_the_flags_and_leave_local_folders_as_they_are(tmp_path):
    assert hub_kwargs(HUB_ID) == {}  # off by default: transformers is called exactly as before
    assert hub_kwargs(HUB_ID, HubOptions("v1", True)) == {"revision": "v1", "trust_remote_code": True}
    assert hub_kwargs(str(tmp_path), HubOptions("v1", True)) == {"trust_remote_code": True}  # a folder: no revision
    assert hub_kwargs("default", HubOptions("v1")) == {}
    assert hub_kwargs(str(tmp_path / "m.gguf"), HubOptions("v1")) == {}


@pytest.fixture
def data(tmp_path):
    return write_jsonl(tmp_path / "data.jsonl", [{"id": f"s{i}", "context": "word " * (20 + i), "instruction":
                                                  "why?", "response": "because."} for i in range(2)])


def score(data, out, *flags: str) -> dict:
    assert main(["score", str(data), "--out", str(out), "--methods", "ppl", "--max-length", "64",
                 "--no-progress", *flags]) == 0
    return json.loads((out / "config.json").read_text())


@pytest.mark.slow
def test_score_passes_both_to_the_config_tokenizer_and_model_of_a_and_b(calls, data, tmp_path, tiny_model_dir):
    stored = score(data, tmp_path / "run", "--long-model", HUB_ID, "--short-model", HUB_ID, "--revision", "v1",
                   "--trust-remote-code")
    seen = hub_calls(calls)
    want = {"revision": "v1", "trust_remote_code": True}
    assert {name for name, _ in seen} == {"AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"}
    assert len([n for n, _ in seen if n == "AutoModelForCausalLM"]) == 2  # model A and model B
    assert all(kwargs == want for _, kwargs in seen), seen
    assert stored["config"]["models"]["revision"] == "v1" and stored["config"]["models"]["trust_remote_code"]
    assert stored["measure"]["revision"] == "v1"


def score_settings(data, *flags: str) -> tuple[dict, str]:
    """(the run's config.json "config", its fingerprint) of ``gateau score DATA FLAGS``, resolved without scoring
    (the fingerprint reads the long model's config)."""
    from gateau.cli import build_parser
    from gateau.cli.score import config_from_args
    from gateau.pipeline.scorer import measurement_fields
    from gateau.store import fingerprint

    argv = ["score", str(data), "--out", "o", "--methods", "ppl", *flags]
    args = build_parser().parse_args(argv)
    args.argv = argv
    config = config_from_args(args)
    measure = measurement_fields(config)
    return config.to_dict(), fingerprint(measure), measure


def test_revision_enters_the_fingerprint_only_where_it_chooses_weights(calls, data, tiny_model_dir):
    plain_run, plain_fp, plain_measure = score_settings(data, "--long-model", HUB_ID)
    assert all(kwargs == {} for _, kwargs in hub_calls(calls))  # off by default
    assert (plain_run["models"]["revision"], plain_run["models"]["trust_remote_code"]) == (None, False)
    v1, v2 = (score_settings(data, "--long-model", HUB_ID, "--revision", name)[1] for name in ("v1", "v2"))
    assert len({plain_fp, v1, v2}) == 3
    assert "revision" not in plain_measure
    # trust_remote_code lets code run, it does not choose weights: not in the fingerprint
    assert score_settings(data, "--long-model", HUB_ID, "--trust-remote-code")[1] == plain_fp
    # a local folder has no revisions: not passed, the fingerprint is the one without it; trust_remote_code is
    # passed (a saved checkpoint may ship code)
    local = score_settings(data, "--long-model", str(tiny_model_dir))
    local_r = score_settings(data, "--long-model", str(tiny_model_dir), "--revision", "v1", "--trust-remote-code")
    assert local_r[1] == local[1]
    assert local_r[0]["models"]["revision"] == "v1"  # recorded as asked
    folder = hub_calls(calls, str(tiny_model_dir))
    assert folder and all("revision" not in kwargs for _, kwargs in folder)
    assert {"trust_remote_code": True} in [kwargs for _, kwargs in folder]


def test_score_passes_both_to_the_reward_model_and_the_embedder(monkeypatch):
    from gateau.measure.aux_models import AuxModels

    seen: list[tuple[str, dict]] = []

    def record(name, result=None):
        def loader(source, *args, **kwargs):
            seen.append((name, kwargs))
            if result is None:
                raise Stop
            return result
        return loader

    config = types.SimpleNamespace(architectures=["XForSequenceClassification"], num_labels=1)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", record("config", config))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", record("tokenizer", object()))
    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", record("model"))
    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = lambda path, **kwargs: seen.append(("embedder", kwargs)) or (_ for _ in ()).throw(Stop)
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    aux = AuxModels("org/reward", "org/embedder", "cpu", None, 1024, hub=HubOptions("r3", True))
    with pytest.raises(Stop):
        aux.reward  # noqa: B018
    with pytest.raises(Stop):
        aux.embedder  # noqa: B018
    want = {"revision": "r3", "trust_remote_code": True}
    assert [name for name, _ in seen] == ["config", "tokenizer", "model", "embedder"]
    assert all({k: kw[k] for k in want if k in kw} == want for _, kw in seen), seen


@pytest.mark.slow
def test_train_passes_both_to_the_base_model(calls, tmp_path, monkeypatch):
    real = transformers.AutoModelForCausalLM.from_pretrained

    def stop_at_the_model(source, *args, **kwargs):
        real(source, *args, **kwargs)  # recorded
        raise Stop

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", stop_at_the_model)
    data = write_jsonl(tmp_path / "sel.jsonl", [{"context": "c " * 10, "instruction": "q?", "response": "r."}])
    with pytest.raises(Stop):
        main(["train", str(data), "--out", str(tmp_path / "out"), "--model", HUB_ID, "--revision", "t1",
              "--trust-remote-code", "--max-length", "64", "--max-steps", "1", "--device", "cpu", "--no-progress"])
    seen = hub_calls(calls)
    assert {name for name, _ in seen} == {"AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"}
    assert all(kwargs == {"revision": "t1", "trust_remote_code": True} for _, kwargs in seen), seen


def test_train_records_both_in_its_resolved_config(tmp_path, tiny_model_dir):
    from gateau.cli import build_parser
    from gateau.cli.train import config_from_args

    argv = ["train", "d.jsonl", "--out", str(tmp_path / "o"), "--model", str(tiny_model_dir), "--max-length", "64"]
    args = build_parser().parse_args(argv)
    args.argv = argv
    config = config_from_args(args)[0]
    assert (config.revision, config.trust_remote_code) == (None, False)  # off by default
    assert "revision" in config.to_dict() and "trust_remote_code" in config.to_dict()


def test_eval_passes_both_to_the_evaluated_model(calls, tmp_path):
    from gateau.eval.generate import ModelSettings, load_generator

    load_generator(ModelSettings(model=HUB_ID, device="cpu", revision="e1", trust_remote_code=True, progress=False))
    seen = hub_calls(calls)
    assert {name for name, _ in seen} == {"AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"}
    assert all(kwargs == {"revision": "e1", "trust_remote_code": True} for _, kwargs in seen), seen
    # the answers' settings name the revision (it chooses the weights); without it they are as before
    assert ModelSettings(model=HUB_ID, revision="e1").fingerprint()["revision"] == "e1"
    assert ModelSettings(model=HUB_ID).fingerprint() == {"model": HUB_ID, "dtype": "auto", "backend": "hf"}


def test_eval_flags_reach_the_model_settings(tmp_path):
    from gateau.cli import build_parser

    args = build_parser().parse_args(["eval", "passkey", HUB_ID, "--out", "o", "--revision", "e2",
                                      "--trust-remote-code"])
    from gateau.cli.eval import _model_settings

    assert (_model_settings(args).revision, _model_settings(args).trust_remote_code) == ("e2", True)
    args = build_parser().parse_args(["eval", "passkey", HUB_ID, "--out", "o"])
    assert (_model_settings(args).revision, _model_settings(args).trust_remote_code) == (None, False)


@pytest.mark.parametrize("argv", [["eval", "mt-bench", "m", "--out", "o"],
                                  ["judge-samples", "run", "--selected", "s.jsonl", "--out", "o"]])
def test_a_local_judge_model_gets_its_own_revision_and_trust_remote_code(calls, tmp_path, argv):
    """`--judge-model` alone loads a local HF judge: `--judge-revision`/`--judge-trust-remote-code` reach its loads,
    and without them neither is passed (the default branch, no checkpoint code run; the evaluated model's flags are
    not the judge's)."""
    from gateau.cli import build_parser
    from gateau.cli.eval import _judge, _judge_options

    for flags, want in ((["--judge-revision", "j1", "--judge-trust-remote-code"],
                         {"revision": "j1", "trust_remote_code": True}), ([], {})):
        calls.clear()
        args = build_parser().parse_args([*argv, "--judge-model", HUB_ID, "--no-progress", *flags])
        _judge(_judge_options(args), args, str(tmp_path))
        seen = hub_calls(calls)
        assert {name for name, _ in seen} == {"AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"}
        assert all(kwargs == want for _, kwargs in seen), seen


@pytest.mark.parametrize("command", [["score", "d.jsonl"], ["train", "d.jsonl"], ["eval", "needle", "m"],
                                     ["eval", "passkey", "m"], ["bench", "e2e"]])
def test_help_states_both_and_their_defaults(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--revision" in text and "--trust-remote-code" in text
    assert "default branch" in text and "off by default" in text


def test_bench_e2e_passes_both_to_scoring_training_evaluation_and_the_prefix_store(calls, monkeypatch, tmp_path):
    """`gateau bench e2e --revision --trust-remote-code`: the score run's config, every arm's training config, the
    evaluated model's loads and the shared-prefix store's base model all get them."""
    import gateau.pipeline.run
    import gateau.train.trainer
    from gateau.bench.e2e import run as e2e_run
    from gateau.bench.e2e.evaluate import evaluate_qa
    from gateau.bench.e2e.shared_prefix import store_for
    from gateau.cli import build_parser
    from gateau.cli.bench import e2e_config

    argv = ["bench", "e2e", "--quick", "--out", str(tmp_path / "b"), "--model", HUB_ID, "--revision", "e3",
            "--trust-remote-code"]
    args = build_parser().parse_args(argv)
    args.argv = argv
    config = e2e_config(args)
    assert (config.revision, config.trust_remote_code) == ("e3", True)
    seen = {}

    def stop_with(name):
        def record(config, *a, **k):
            seen[name] = config
            raise Stop
        return record

    monkeypatch.setattr(gateau.pipeline.run, "run_score", stop_with("score"))
    monkeypatch.setattr(gateau.train.trainer, "train", stop_with("train"))
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": [{"role": "user", "content": "q"},
                                                             {"role": "assistant", "content": "a"}]}])
    for step in (lambda: e2e_run._score(config, HUB_ID, data, tmp_path / "run"),
                 lambda: e2e_run.train_model(config, HUB_ID, data, tmp_path / "m", 0, short=False)):
        with pytest.raises(Stop):
            step()
    assert (seen["score"].models.revision, seen["score"].models.trust_remote_code) == ("e3", True)
    assert (seen["train"].revision, seen["train"].trust_remote_code) == ("e3", True)
    want = {"revision": "e3", "trust_remote_code": True}
    calls.clear()
    store = store_for(HUB_ID, 1, hub=config.hub)
    assert store is not None and store.layers == 1
    evaluate_qa(HUB_ID, tmp_path / "qa", [{"id": "x", "source": "s", "context": "c", "question": "q",
                                            "answers": ["a"]}], max_new_tokens=2, hub=config.hub, store=store)
    seen_loads = hub_calls(calls)
    assert len(seen_loads) >= 4 and all(kwargs == want for _, kwargs in seen_loads), seen_loads
