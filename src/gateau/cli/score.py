"""``gateau score DATA --out RUN``: flags -> `ScoreConfig` -> `run_score` -> the summary (resumable)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import Field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from ..config import NEUTRAL_RESPONSE, DataConfig, ExecutionConfig, MeasureConfig, ModelConfig, ScoreConfig
from . import signals
from .config_file import SettingsFile, add_config_flags, file_settings, overlay, settings_text
from .options import add_field_flags, add_record_fields, default_of, field_values, record_fields


# The flags generated from config fields, in the order `gateau score --help` lists them.
_MODEL_FLAGS = ("long_model",)
_MODE_FLAGS = ("short_model", "short_window")  # pair mode or window mode: one of them
_MEASURE_FLAGS = ("short_rope_theta", "reward_model", "embed_model", "max_length", "template", "segment_len",
                  "last_segment", "max_segments", "seed", "cam_top")
_CALIBRATION_FLAGS = ("neutral_response",)
_DATA_FLAGS = ("limit", "split", "subset", "streaming")
_DEVICE_FLAGS = ("device", "dtype", "attn_impl")
_HUB_FLAGS = ("revision", "trust_remote_code")
_EXECUTION_FLAGS = ("executor", "workers", "gpus_per_worker", "ray_address", "shard", "token_budget", "pack",
                    "chunk_size")
CONFIG_FLAGS = (_MODEL_FLAGS + _MODE_FLAGS + _MEASURE_FLAGS + _CALIBRATION_FLAGS + _DATA_FLAGS + _DEVICE_FLAGS
                + _HUB_FLAGS + _EXECUTION_FLAGS)


def _fields(*names: str) -> list[Field]:
    """The config fields called ``names`` (each name is a field of exactly one `ScoreConfig` section)."""
    found = {f.name: f for section in (DataConfig, ModelConfig, MeasureConfig, ExecutionConfig)
             for f in dataclass_fields(section)}
    return [found[name] for name in names]


def register(subparsers: Any) -> None:
    """Add the ``score`` command; the settings' flags, help and defaults come from `gateau.config`'s fields."""
    from ..methods import METHODS

    p = subparsers.add_parser("score", help="measure raw per-sample scores into RUN (resumable)",
                              description="Measure the chosen methods on every sample of DATA and store them in "
                              "RUN/scores.parquet. Re-running the same command resumes an interrupted run.",
                              epilog="methods: " + "; ".join(f"{name}: {cls.help}" for name, cls in METHODS.items()))
    add_score_arguments(p)
    p.set_defaults(handler=run)


def add_score_arguments(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    """DATA and every flag of ``score`` (shared with ``plan``, which plans a score command as it is)."""
    from ..methods import METHODS

    p.add_argument("data", help="JSON/JSONL/Parquet file or HuggingFace dataset name/path")
    p.add_argument("--out", required=out_required, default=None if out_required else "-", help="run directory")
    p.add_argument("--methods", help=f"comma-separated: {', '.join(METHODS)} (default "
                   f"{','.join(default_of(MeasureConfig, 'methods'))}); length and random run no model (only the long "
                   "model's tokenizer is loaded), car runs the --reward-model and --embed-model instead of the long "
                   "model")
    add_field_flags(p, _fields(*_MODEL_FLAGS))
    add_field_flags(p.add_mutually_exclusive_group(), _fields(*_MODE_FLAGS))
    add_field_flags(p, _fields(*_MEASURE_FLAGS))
    p.add_argument("--calibrate-attention", action="store_true", help="CAM: also measure the attention profile of "
                   f"a content-free response ({NEUTRAL_RESPONSE!r}) on the same context, one extra attention pass "
                   "per sample, so `gateau select --attn-calibration divide|subtract` can calibrate the profile")
    add_field_flags(p, _fields(*_CALIBRATION_FLAGS))
    add_field_flags(p, _fields(*_DATA_FLAGS))
    add_field_flags(p, _fields(*_DEVICE_FLAGS))
    add_field_flags(p.add_argument_group("hub models (every model this run loads: A, B, --reward-model, "
                                         "--embed-model)"), _fields(*_HUB_FLAGS))
    add_field_flags(p.add_argument_group("execution (never changes a number)"), _fields(*_EXECUTION_FLAGS))
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --out")
    p.add_argument("--repair", action="store_true", help="set damaged chunks of the run aside (*.damaged) and score "
                   "their samples again; write a damaged config.json again from this command's settings and "
                   "consolidate a damaged scores.parquet again")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_config_flags(p, SCORE_FILE, keys="ScoreConfig (data, models, measure, execution; a run's RUN/config.json "
                     "itself is read as its settings)", printed="JSON")
    add_record_fields(p)


# Record-field flags -> `FieldMap` field names.
_RECORD_FLAGS = {"shape": "shape", "id_field": "id_field", "context_field": "context",
                 "instruction_field": "instruction", "response_field": "response", "splitter": "splitter"}


def _score_file() -> SettingsFile:
    """`gateau score`'s settings file: the keys of `ScoreConfig` (``RUN/config.json``); which flag sets which."""
    sections = {f.name: name for name, section in (("data", DataConfig), ("models", ModelConfig),
                                                   ("measure", MeasureConfig), ("execution", ExecutionConfig))
                for f in dataclass_fields(section)}
    flags = {name: f"{sections[name]}.{name}" for name in CONFIG_FLAGS}
    flags.update({flag: f"data.fields.{name}" for flag, name in _RECORD_FLAGS.items()},
                 data="data.path", out="out", overwrite="overwrite", repair="repair", methods="measure.methods",
                 no_progress="execution.progress", calibrate_attention="measure.neutral_response")
    return SettingsFile(ScoreConfig, flags, omit=("cascade_phase",), record="config")


SCORE_FILE = _score_file()


def config_from_args(args: argparse.Namespace) -> ScoreConfig:
    """The flags (over ``--config``'s file when given) -> `ScoreConfig`; a setting given nowhere keeps the
    config's default."""
    values = field_values(args, CONFIG_FLAGS)
    values["neutral_response"] = values["neutral_response"] or (NEUTRAL_RESPONSE if args.calibrate_attention else None)
    config = ScoreConfig.from_flat(args.data, args.out, overwrite=args.overwrite, repair=args.repair,
                                   fields=record_fields(args), methods=args.methods,
                                   progress=False if args.no_progress else None, **values)
    settings = file_settings(args)
    return config if settings is None else overlay(config, settings)


def stored_samples(out: str) -> int:
    """Samples stored so far in the run directory ``out`` (0 before the first chunk)."""
    from ..store import RunStore

    rows = RunStore(out).stored_rows() if (Path(out) / "shards").is_dir() else None
    return 0 if rows is None else rows.num_rows


def run(args: argparse.Namespace) -> int:
    """Score, print the summary; on SIGINT/SIGTERM say how many samples are stored and exit 130/143."""
    config = config_from_args(args)
    if args.print_config:
        sys.stdout.write(settings_text(config))
        return 0
    from ..pipeline.run import run_score

    try:
        summary = run_score(config)
    except KeyboardInterrupt:
        with signals.finishing():
            print(f"\ninterrupted: {stored_samples(config.out)} samples stored in {config.out}; run the same "
                  "command to resume", file=sys.stderr)
        return signals.exit_code()
    print("\n".join(summary.lines()))
    if config.execution.shard is not None:
        print(f"shard {config.execution.shard} done; when every shard is done, run the same command without --shard "
              "to score what is missing and write scores.parquet")
        return 0
    print(f"scores: {Path(args.out) / 'scores.parquet'}")
    return 0
