"""Presets, batch scaling, overrides, shipped configs, the CLI wiring and the multi-process command line."""

from __future__ import annotations

import argparse
import json

import pytest
import yaml

from gateau.train.recipe import (DEEPSPEED_CHOICES, PRESETS, ConfigError, TrainConfig, configs_dir,
                                 resolve_config, resume_mismatches, scaled_batch)

BASE = {"data": "d.jsonl", "out": "o"}


@pytest.mark.parametrize("devices,expected", [(1, (8, 12)), (2, (4, 12)), (3, (2, 16)), (8, (1, 12)), (16, (1, 6))])
def test_paper_batch_keeps_96_sequences_per_step(devices, expected):
    per_device, accum = scaled_batch(PRESETS["paper"], devices)
    assert (per_device, accum) == expected and per_device * accum * devices == 96


def test_paper_preset_values_and_overrides():
    config, notes = resolve_config("paper", dict(BASE), world_size=1, model_window=8192)
    assert (config.lr, config.adam_beta1, config.adam_beta2, config.epochs) == (2e-5, 0.9, 0.95, 2.0)
    assert (config.batch_size, config.grad_accum, config.max_length, config.deepspeed) == (8, 12, 65536, None)
    assert any("beyond the model's context window" in n for n in notes)
    multi, _ = resolve_config("paper", dict(BASE), world_size=8)
    assert multi.deepspeed.endswith("ds_zero3_offload.json") and multi.effective_batch == 96
    mine, _ = resolve_config("paper", dict(BASE, lr=1e-4, batch_size=2, max_length=4096, epochs=None), world_size=8)
    assert (mine.lr, mine.batch_size, mine.grad_accum, mine.max_length, mine.epochs) == (1e-4, 2, 1, 4096, 2.0)
    default, _ = resolve_config("default", dict(BASE), model_window=8192)
    assert (default.max_length, default.batch_size, default.grad_accum) == (8192, 1, 8)
    with pytest.raises(ConfigError, match="--max-length must be at least 2"):
        resolve_config("default", dict(BASE, max_length=1))
    with pytest.raises(ConfigError, match="unknown --preset"):
        resolve_config("fast", dict(BASE))


def test_config_round_trip_and_resume_check():
    config, _ = resolve_config("default", dict(BASE), model_window=2048)
    again = TrainConfig.from_dict(json.loads(config.to_json()))
    assert again == config
    other = TrainConfig.from_dict(dict(json.loads(config.to_json()), lr=1.0, max_steps=5))
    assert resume_mismatches(config, other) == ["lr: 2e-05 -> 1.0"]  # max_steps may change on resume


def test_shipped_configs_are_valid():
    for name in DEEPSPEED_CHOICES:
        path = configs_dir() / f"ds_{name.replace('-', '_')}.json"
        ds = json.loads(path.read_text())
        assert ds["train_micro_batch_size_per_gpu"] == "auto" and ds["gradient_accumulation_steps"] == "auto"
        assert ds["zero_optimization"]["stage"] == (2 if name == "zero2" else 3)
        offload = ds["zero_optimization"].get("offload_param", {}).get("device")
        assert offload == ("cpu" if name == "zero3-offload" else None)
    from accelerate.commands.config.config_args import ClusterConfig

    for name, kind in [("accelerate_multi_gpu.yaml", "MULTI_GPU"), ("accelerate_zero2.yaml", "DEEPSPEED"),
                       ("accelerate_zero3_offload.yaml", "DEEPSPEED")]:
        raw = yaml.safe_load((configs_dir() / name).read_text())
        cluster = ClusterConfig.from_yaml_file(str(configs_dir() / name))
        assert cluster.distributed_type.value == kind == raw["distributed_type"]
        if kind == "DEEPSPEED":
            assert "gradient_accumulation_steps" not in raw["deepspeed_config"]  # left to gateau's settings


def test_train_is_registered_and_round_trips_its_arguments():
    from gateau.cli import build_parser
    from gateau.cli import train as train_cli
    from gateau.train.launch import launch_command, namespace_to_argv

    parser = build_parser()
    argv = ["train", "sel.jsonl", "--out", "o", "--lr", "0.001", "--no-gradient-checkpointing", "--resume",
            "--short-data", "sharegpt", "--short-setting", "limited", "--num-processes", "2", "--packing", "on"]
    args = parser.parse_args(argv)
    assert args.handler is train_cli.run
    rebuilt = namespace_to_argv(train_cli._PARSER, args, drop=("num_processes",))
    assert "--num-processes" not in rebuilt
    again = parser.parse_args(["train", *rebuilt])
    assert {k: v for k, v in vars(again).items() if k != "num_processes"} == \
        {k: v for k, v in vars(args).items() if k != "num_processes"}
    cmd = launch_command(2, rebuilt, cpu=True)
    assert cmd[cmd.index("--num_processes") + 1] == "2" and cmd[-len(rebuilt) - 3:-len(rebuilt)] == \
        ["-m", "gateau", "train"]


def test_flags_without_values_leave_the_preset_in_charge():
    from gateau.cli import train as train_cli

    args = argparse.Namespace(**{f: None for f in train_cli._CONFIG_FLAGS}, device="cpu", attn_impl="auto",
                              packing="auto", bf16="auto", model="default", data="d", out="o", liger=False,
                              no_progress=True, shape=None, id_field="id", context_field="context",
                              instruction_field="instruction", response_field="response", preset="paper")
    args.max_length = 1024
    config, _ = train_cli.config_from_args(args)
    assert (config.lr, config.batch_size, config.grad_accum, config.packing, config.bf16, config.attn_impl) == \
        (2e-5, 8, 12, False, False, "sdpa")


def test_loss_plot_from_a_log(tmp_path):
    from gateau.train.plot import plot_loss, running_mean

    assert running_mean([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3) == [1.0, 1.5, 2.0, 3.0, 4.0, 5.0]
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps({"step": i, "loss": 3.0 / i, "lr": 1e-5, "tokens_seen": 100 * i}) + "\n"
                           for i in range(1, 8)))
    png = plot_loss(log, tmp_path / "loss.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
