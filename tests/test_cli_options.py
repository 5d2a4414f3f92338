"""Flags generated from the typed configs: each default and help is written once, in the dataclass field."""

from __future__ import annotations

from dataclasses import fields

from gateau.cli import build_parser
from gateau.cli.score import CONFIG_FLAGS, config_from_args
from gateau.config import DataConfig, ExecutionConfig, MeasureConfig, ModelConfig, ScoreConfig


def score_actions() -> dict[str, object]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {a.dest: a for a in sub.choices["score"]._actions}


def test_no_flags_give_the_configs_defaults():
    args = build_parser().parse_args(["score", "d.jsonl", "--out", "r"])
    assert config_from_args(args) == ScoreConfig(data=DataConfig("d.jsonl"), out="r")


def test_every_documented_config_field_is_a_flag_with_its_help_and_choices():
    actions = score_actions()
    documented = [f for section in (DataConfig, ModelConfig, MeasureConfig, ExecutionConfig) for f in fields(section)
                  if "help" in f.metadata]
    assert sorted(f.name for f in documented) == sorted(CONFIG_FLAGS)
    for f in documented:
        action = actions[f.name]
        assert action.option_strings == ["--" + f.name.replace("_", "-")]
        assert action.default is None  # not given: the dataclass default applies
        assert action.help == f.metadata["help"].replace("{default}", str(f.default))
        assert tuple(action.choices or ()) == tuple(f.metadata.get("choices", ()))


def test_each_flag_sets_its_field():
    """One non-default value per flag lands in the config field of the same name."""
    values = {"long_model": "m", "short_window": "64", "short_rope_theta": "2.5", "reward_model": "rm",
              "embed_model": "em", "max_length": "512", "template": "chat", "segment_len": "32",
              "last_segment": "keep", "max_segments": "4", "seed": "7", "neutral_response": "fine.", "limit": "3",
              "device": "cpu", "dtype": "float32", "attn_impl": "eager", "executor": "ray", "workers": "3",
              "gpus_per_worker": "0.5", "ray_address": "auto", "token_budget": "999", "pack": "on",
              "chunk_size": "5"}
    argv = ["score", "d.jsonl", "--out", "r"]
    for name, value in values.items():
        argv += ["--" + name.replace("_", "-"), value]
    config = config_from_args(build_parser().parse_args(argv))
    got = {**vars(config.data), **vars(config.models), **vars(config.measure), **vars(config.execution)}
    for name, value in values.items():
        assert str(got[name]) == value, name
    pair = config_from_args(build_parser().parse_args(["score", "d", "--out", "r", "--short-model", "a"]))
    assert pair.models.short_model == "a" and pair.models.window is None
