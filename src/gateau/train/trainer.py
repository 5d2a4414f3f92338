"""Build TRL's `SFTTrainer` for a resolved `TrainConfig`, run it (resumable), save the model, log and summary.

Everything runs inside TRL + accelerate (no hand-written loop): this module adds the ``sequence`` loss weighting
(`GateauSFTTrainer`), a JSONL log callback, checkpoint discovery for ``--resume``, and the outputs.

Outputs in ``OUT``: the fine-tuned model as a HuggingFace folder (``config.json``, ``model.safetensors``,
``generation_config.json``, tokenizer files; LoRA runs also keep ``adapter/``), ``train_config.json`` (the resolved
settings), ``train_log.jsonl`` (one line per logging step: ``step``, ``loss``, ``lr``, ``tokens_seen``, ``epoch``,
``grad_norm``, ``elapsed_s``), ``train_summary.json``, ``loss.png``, ``checkpoint-N/`` folders, the model card
``README.md`` and ``gateau_provenance.json`` (the data files with their sha256 and the selection and run behind
them, see `gateau.provenance`); with ``--report-to tensorboard`` also ``runs/`` (TensorBoard event files). With
``--push-to-hub REPO`` the folder (checkpoints left out) is uploaded at the end.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
from torch.utils.data import Sampler
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import SFTConfig, SFTTrainer

from ..provenance import MODEL_PROVENANCE_FILE, data_entry, write_model_provenance
from .data import short_source
from .frozen_prefix import FrozenPrefixCache
from .hub import check_can_push, push_folder
from .longce import SHORT_DROP_COLUMN, LongCESettings, longce_weights, short_token_nll
from .loss import count_sequences, label_token_nll, sequence_weighted_loss
from .model_card import CARD_FILE, render_model_card
from .prepare import TrainingSet, build_training_set
from .recipe import ConfigError, TrainConfig, resume_mismatches
from .runtime import check_runtime, is_main_process
from .tracking import check_tracker, report_to

CONFIG_FILE = "train_config.json"
LOG_FILE = "train_log.jsonl"
SUMMARY_FILE = "train_summary.json"
PLOT_FILE = "loss.png"
CHECKPOINT_PREFIX = "checkpoint-"
TENSORBOARD_DIR = "runs"
_RUN_FILES = (CONFIG_FILE, LOG_FILE, SUMMARY_FILE, PLOT_FILE, MODEL_PROVENANCE_FILE, CARD_FILE)


class SeededLengthGroupedSampler(Sampler[int]):
    """Length-grouped order drawn from (seed, epoch) alone, so a resumed run and any split of the same effective
    batch over devices and accumulation steps see the same sequence order.

    transformers' `LengthGroupedSampler` draws from the global RNG, whose state differs after a resume. Here the
    order is `get_length_grouped_indices` (shuffle, cut into mega-batches, sort each by length, longest first) with
    ``group`` = the effective batch, from a generator seeded with ``seed + epoch``.
    """

    def __init__(self, lengths: list[int], group: int, seed: int):
        self.lengths, self.group, self.seed, self.epoch = lengths, group, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        from transformers.trainer_pt_utils import get_length_grouped_indices

        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.group, generator=generator))


class GateauSFTTrainer(SFTTrainer):
    """`SFTTrainer` with a choice of loss weighting, ``token`` (TRL's own loss) or ``sequence`` (see `loss`), and
    seeded length-grouped batches (``group_by_length``, for unpacked batches of more than one sequence).

    For ``sequence`` the trainer's count of items per optimizer step (``num_items_in_batch``, normally label tokens
    over the accumulated batch, summed across processes) becomes the count of sequences, so accumulation and data
    parallelism divide by the same number as one large batch would.

    With ``longce`` (`gateau.train.longce`), every token loss is first multiplied by its LongCE weight, from one
    no-gradient forward of the batch's short rows; the batches then carry each sequence's short-row span.
    """

    def __init__(self, *args, loss_weighting: str = "token", group_by_length: bool = False,
                 longce: LongCESettings | None = None, **kwargs):
        if loss_weighting not in ("token", "sequence"):
            raise ConfigError(f"unknown loss weighting {loss_weighting!r}")
        self.loss_weighting = loss_weighting
        self.group_by_length = group_by_length
        self.longce = longce
        super().__init__(*args, **kwargs)
        if longce is not None:
            self.data_collator = ShortDropCollator(self.data_collator)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if self.longce is not None and SHORT_DROP_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, SHORT_DROP_COLUMN]

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if not self.group_by_length:
            return super()._get_train_sampler(train_dataset)
        group = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        seed = self.args.seed if self.args.data_seed is None else self.args.data_seed
        return SeededLengthGroupedSampler([len(ids) for ids in dataset["input_ids"]], group, seed)

    def _positions(self, batch: dict[str, Any]) -> torch.Tensor | None:
        return batch.get("position_ids") if self.padding_free else None

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        if self.loss_weighting == "token":
            return super()._get_num_items_in_batch(batch_samples, device)
        if not batch_samples or "labels" not in batch_samples[0]:
            return None
        n = torch.tensor(sum(count_sequences(b["labels"], self._positions(b)) for b in batch_samples),
                         device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            n = self.accelerator.gather(n).sum()
        return n

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        drops = inputs.pop(SHORT_DROP_COLUMN, None)
        if self.loss_weighting == "token" and not self.args.use_cpu and self.longce is None:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        if self.args.use_cpu:  # TRL's fused head would score every position here
            token_nll, outputs = label_token_nll(model, inputs)
        else:
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True)
            token_nll = -outputs.log_probs
        if self.longce is not None and drops is not None:
            short_nll, has_short = short_token_nll(model, inputs["input_ids"], inputs["labels"],
                                                   inputs.get("attention_mask"), drops)
            token_nll = token_nll * longce_weights(token_nll, short_nll, has_short, self.longce.cap)
        if self.loss_weighting == "sequence":
            loss = sequence_weighted_loss(token_nll, inputs["labels"], self._positions(inputs), num_items_in_batch)
        else:  # TRL's token loss: summed over label tokens / label tokens of the accumulated batch
            denom = num_items_in_batch if num_items_in_batch is not None else (inputs["labels"][:, 1:] != -100).sum()
            loss = token_nll.sum() / torch.as_tensor(denom, dtype=token_nll.dtype, device=token_nll.device).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # DDP averages the gradients
        if self.aux_loss_enabled and getattr(outputs, "aux_loss", None) is not None:
            steps = self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss / steps
        return (loss, outputs) if return_outputs else loss


class ShortDropCollator:
    """TRL's collator plus the LongCE short-row spans of the examples as ``short_drop``, a (B, 2) int tensor (the
    rows are right-padded, so the spans keep their positions)."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        drops = torch.tensor([example.pop(SHORT_DROP_COLUMN) for example in examples], dtype=torch.long)
        batch = self.inner(examples)
        batch[SHORT_DROP_COLUMN] = drops
        return batch


class BarProgressCallback(ProgressCallback):
    """transformers' progress bar (steps, rate, ETA) with the last loss as its postfix instead of printed dicts."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)


class LinePrinterCallback(TrainerCallback):
    """Without a progress bar: one compact line per logging step."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            print(f"step {state.global_step}/{state.max_steps} loss {float(logs['loss']):.4f} "
                  f"lr {float(logs.get('learning_rate', 0.0)):.3g} tokens {state.num_input_tokens_seen}", flush=True)


class JsonlLogCallback(TrainerCallback):
    """Append one JSON line per logging step to ``path`` (main process only); on resume, drop lines past the
    checkpoint's step so a killed run's tail is not duplicated. Also notes where this session started (time,
    step, tokens) for the throughput of the summary."""

    def __init__(self, path: Path):
        self.path = path
        self.start = time.time()
        self.start_step = 0
        self.start_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.start_step, self.start_tokens = time.time(), state.global_step, state.num_input_tokens_seen
        if not state.is_world_process_zero or not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= state.global_step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        row = {"step": state.global_step, "loss": float(logs["loss"]), "lr": float(logs.get("learning_rate", 0.0)),
               "tokens_seen": int(state.num_input_tokens_seen), "epoch": logs.get("epoch"),
               "grad_norm": None if logs.get("grad_norm") is None else float(logs["grad_norm"]),
               "elapsed_s": round(time.time() - self.start, 3)}
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:  # always leave a checkpoint of the finished run
            control.should_save = True
        return control


@dataclass
class TrainSummary:
    """What a run did, with its throughput (tokens/s over all processes, wall time of ``trainer.train``)."""

    out: str
    steps: int
    session_steps: int
    epochs: float
    train_seconds: float
    tokens_trained: int
    tokens_per_second: float
    peak_memory_mb: float
    peak_memory_kind: str
    first_loss: float | None
    last_loss: float | None
    resumed_from: str | None
    data: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        loss = (f"loss {self.first_loss:.4f} -> {self.last_loss:.4f}" if self.first_loss is not None
                and self.last_loss is not None else "no loss logged")
        resumed = f" (resumed from {self.resumed_from})" if self.resumed_from else ""
        return [f"trained {self.session_steps} steps to step {self.steps} ({self.epochs:.2f} epochs){resumed} in "
                f"{self.train_seconds:.1f} s: {self.tokens_per_second:.1f} tokens/s, {loss}",
                f"peak memory: {self.peak_memory_mb:.0f} MiB ({self.peak_memory_kind})",
                f"model: {self.out}"]


def latest_checkpoint(out: Path) -> Path | None:
    """The highest-step ``checkpoint-N`` folder of ``out`` that was written completely (has trainer_state.json)."""
    if not out.is_dir():
        return None
    found = []
    for path in out.iterdir():
        step = path.name[len(CHECKPOINT_PREFIX):]
        if path.name.startswith(CHECKPOINT_PREFIX) and step.isdigit() and (path / "trainer_state.json").is_file():
            found.append((int(step), path))
    return max(found)[1] if found else None


def prepare_out(config: TrainConfig, *, resume: bool, overwrite: bool) -> Path | None:
    """Check ``config.out`` against --resume/--overwrite; return the checkpoint to resume from (or None)."""
    out = Path(config.out)
    checkpoint = latest_checkpoint(out)
    existing = checkpoint is not None or any((out / name).exists() for name in _RUN_FILES)
    if resume:
        saved = out / CONFIG_FILE
        if saved.is_file():
            diff = resume_mismatches(TrainConfig.from_dict(json.loads(saved.read_text())), config)
            if diff:
                raise ConfigError(f"--resume: {out} was trained with other settings ({'; '.join(diff)}); "
                                  "use the same settings or a new --out")
        return checkpoint
    if existing and not overwrite:
        raise ConfigError(f"{out} already holds a training run; pass --resume to continue it or --overwrite "
                          "to start over")
    if existing and is_main_process():
        for path in out.iterdir():
            if (path.name.startswith(CHECKPOINT_PREFIX) or path.name == TENSORBOARD_DIR) and path.is_dir():
                shutil.rmtree(path)
        for name in _RUN_FILES:
            (out / name).unlink(missing_ok=True)
    return None


def build_sft_config(config: TrainConfig) -> SFTConfig:
    """TRL/transformers arguments for ``config`` (the sequences arrive tokenised and truncated)."""
    return SFTConfig(
        output_dir=config.out,
        max_length=config.max_length if config.packing else None,  # unpacked sequences are already cut
        packing=config.packing, packing_strategy="bfd", padding_free=config.packing,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs, max_steps=config.max_steps,
        learning_rate=config.lr, adam_beta1=config.adam_beta1, adam_beta2=config.adam_beta2,
        weight_decay=config.weight_decay, lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_ratio,
        optim="adamw_torch", seed=config.seed, data_seed=config.seed,
        bf16=config.bf16, fp16=False, use_cpu=config.device == "cpu",
        activation_checkpointing=config.gradient_checkpointing,
        include_num_input_tokens_seen="all" if config.packing else "non_padding",
        logging_steps=config.logging_steps, logging_first_step=True,
        save_strategy="steps", save_steps=config.save_steps, save_total_limit=config.save_total_limit,
        deepspeed=config.deepspeed, use_liger_kernel=config.liger,
        report_to=report_to(config.report_to), disable_tqdm=not config.progress, dataloader_num_workers=0,
    )


def peak_memory(device: str) -> tuple[float, str]:
    """(MiB, what was measured): CUDA max allocated on this process's GPU, else this process's peak RSS."""
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "CUDA max allocated, per GPU"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak RSS of the training process"


def freeze_all_but_last_layers(model: torch.nn.Module, count: int) -> None:
    """Leave ``requires_grad`` on the last ``count`` decoder layers and the decoder's final norm only."""
    decoder = model.get_decoder()
    layers = getattr(decoder, "layers", None)
    if layers is None or not hasattr(decoder, "norm"):
        raise ConfigError(f"--train-last-layers: {type(model).__name__} has no decoder.layers / decoder.norm")
    if count > len(layers):
        raise ConfigError(f"--train-last-layers {count}: the model has {len(layers)} decoder layers")
    model.requires_grad_(False)
    for module in [*layers[len(layers) - count:], decoder.norm]:
        module.requires_grad_(True)


def _lora_config(config: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _say(lines: list[str] | str) -> None:
    if is_main_process():
        print("\n".join(lines) if isinstance(lines, list) else lines, flush=True)


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          prefix_cache: FrozenPrefixCache | None = None) -> TrainSummary:
    """Fine-tune ``config.model`` on ``config.data`` (+ short data) and write the outputs to ``config.out``.
    ``prefix_cache``: with ``train_last_layers``, the frozen layers' output of each sequence is computed once and
    kept there (`frozen_prefix`; several trainings of one base model can share it)."""
    from transformers.utils import logging as hf_logging

    from gateau.models import load_model, load_tokenizer

    from .encode import ConversationEncoder

    check_runtime(config)
    check_tracker(config.report_to)
    check_can_push(config.push_to_hub)
    hf_logging.disable_progress_bar()  # weight loading/saving bars; the training bar is separate
    datasets.disable_progress_bars()  # packing/mapping bars
    out = Path(config.out)
    checkpoint = prepare_out(config, resume=resume, overwrite=overwrite)
    if resume and checkpoint is None:
        _say(f"--resume: no complete checkpoint in {out}; starting from the beginning")
    # fail fast on templates
    ConversationEncoder(load_tokenizer(config.model, config.hub), config.template, config.max_length)
    args = build_sft_config(config)  # before the model: DeepSpeed ZeRO-3 partitions it while loading
    loaded = load_model(config.model, device="cpu", dtype="float32", attn_impl=config.attn_impl,
                            hub=config.hub)
    model, tokenizer = loaded.model, loaded.tokenizer
    if config.train_last_layers:
        freeze_all_but_last_layers(model, config.train_last_layers)
    training_set = build_training_set(config, tokenizer)
    _say(["data:"] + training_set.summary_lines() + ["settings:"] + config.lines())
    data = None
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(config.to_json() + "\n")
        data = _data_entries(config)  # hashed before training reads them
    log = JsonlLogCallback(out / LOG_FILE)
    trainer = GateauSFTTrainer(
        model=model, args=args, train_dataset=training_set.to_dataset(), processing_class=tokenizer,
        peft_config=_lora_config(config) if config.lora_r else None, callbacks=[log],
        loss_weighting=config.loss_weighting, group_by_length=not config.packing and config.batch_size > 1,
        longce=LongCESettings(config.longce_cap, config.longce_window) if config.loss == "longce" else None)
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(BarProgressCallback() if config.progress else LinePrinterCallback())
    frozen = len(model.get_decoder().layers) - config.train_last_layers if config.train_last_layers else 0
    with prefix_cache.installed(model, frozen) if prefix_cache is not None and frozen > 0 else nullcontext():
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.time() - log.start
    _save_model(trainer, config, out)
    summary = _summary(trainer, config, training_set, seconds, log, checkpoint)
    if trainer.is_world_process_zero():
        from .plot import plot_loss

        (out / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=2) + "\n")
        plot_loss(out / LOG_FILE, out / PLOT_FILE, title=f"gateau train: {Path(config.data).name}")
        provenance = _provenance(config, data, summary)
        write_model_provenance(out, provenance)
        (out / CARD_FILE).write_text(render_model_card(config, provenance), encoding="utf-8")
    _say(summary.lines() + [f"log: {out / LOG_FILE}", f"loss curve: {out / PLOT_FILE}",
                            f"model card: {out / CARD_FILE}"])
    if config.push_to_hub and trainer.is_world_process_zero():
        url = push_folder(out, config.push_to_hub, message=f"gateau train: {Path(config.data).name}, "
                          f"{summary.steps} steps, final loss {summary.last_loss}")
        _say(f"pushed to the hub: {url}")
    return summary


def _data_entries(config: TrainConfig) -> list[dict[str, Any]]:
    """The training data files with their sha256 and selection provenance (`gateau.provenance.data_entry`)."""
    entries = [data_entry("long", config.data)]
    if config.short_data:
        entries.append(data_entry("short", config.short_data, short_source(config.short_data)))
    return entries


def _provenance(config: TrainConfig, data: list[dict[str, Any]], summary: TrainSummary) -> dict[str, Any]:
    """What ``gateau_provenance.json`` records: base model, data, settings and the result of the run."""
    return {"base_model": config.model, "data": data,
            "data_stats": {name: {"read": s["read"], "kept": s["kept"]} for name, s in summary.data.items()},
            "train_config": config.to_dict(),
            "result": {"final_loss": summary.last_loss, "first_loss": summary.first_loss, "steps": summary.steps,
                       "epochs": summary.epochs, "tokens_trained": summary.tokens_trained}}


def _save_model(trainer: GateauSFTTrainer, config: TrainConfig, out: Path) -> None:
    """Write the model folder: the full weights, or for LoRA the adapter in ``out/adapter`` plus the base model with
    the adapter merged in (rebuilt from disk on the main process, so it also works when DeepSpeed shards the
    trained model)."""
    if not config.lora_r:
        trainer.save_model(str(out))
        return
    adapter = out / "adapter"
    trainer.save_model(str(adapter))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        from peft import PeftModel

        from gateau.models import load_model

        base = load_model(config.model, device="cpu", dtype="float32", attn_impl=config.attn_impl,
                            hub=config.hub)
        merged = PeftModel.from_pretrained(base.model, str(adapter)).merge_and_unload()
        merged.save_pretrained(str(out))
        base.tokenizer.save_pretrained(str(out))


def _summary(trainer: GateauSFTTrainer, config: TrainConfig, training_set: TrainingSet, seconds: float,
             log: JsonlLogCallback, checkpoint: Path | None) -> TrainSummary:
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    mem, kind = peak_memory(config.device)
    data = {name: {k: v for k, v in asdict(s).items() if k != "skips"} | {"skipped": dict(s.skips.counts)}
            for name, s in training_set.stats.items()}
    tokens = trainer.state.num_input_tokens_seen - log.start_tokens
    return TrainSummary(out=str(config.out), steps=trainer.state.global_step,
                        session_steps=trainer.state.global_step - log.start_step,
                        epochs=float(trainer.state.epoch or 0),
                        train_seconds=round(seconds, 3), tokens_trained=int(tokens),
                        tokens_per_second=round(tokens / seconds, 2) if seconds > 0 else 0.0,
                        peak_memory_mb=round(mem, 1), peak_memory_kind=kind,
                        first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
                        resumed_from=str(checkpoint) if checkpoint else None, data=data)
