"""The model card of a `gateau train` output folder: ``OUT/README.md``, Hugging Face model-card style.

YAML front matter (``base_model`` when the base is a hub id, ``library_name``, ``pipeline_tag``, ``tags``), then:
the base model, each data file with its sha256, the selection (method and settings from the selection's sidecar
and its records' ``gateau`` objects, and the run they came from), the recipe, the final loss, and the provenance
chain back to the scoring run. Everything is read from the provenance dict (`gateau.provenance`) and the config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..models import DEFAULT_MODEL
from ..provenance import MODEL_PROVENANCE_FILE, chain_lines
from .recipe import TrainConfig

CARD_FILE = "README.md"
DEFAULT_BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The hub model the embedded default is (its Q4_1 GGUF, dequantised)."""

RECIPE_KEYS = ("preset", "epochs", "max_steps", "lr", "adam_beta1", "adam_beta2", "weight_decay", "lr_scheduler",
               "warmup_ratio", "batch_size", "grad_accum", "world_size", "max_length", "packing", "loss_weighting",
               "template", "short_setting", "short_count", "lora_r", "train_last_layers", "bf16", "seed")


def hub_base_model(model: str) -> str | None:
    """The hub id of the base model, or None when it is a local folder or file (the hub rejects those)."""
    if model == DEFAULT_MODEL:
        return DEFAULT_BASE
    if Path(model).exists() or model.endswith(".gguf") or model.count("/") != 1:
        return None
    return model


def render_model_card(config: TrainConfig, provenance: dict[str, Any]) -> str:
    """The text of ``README.md`` for a finished run (``provenance``: what `gateau.provenance` records)."""
    base = hub_base_model(config.model)
    front = {"library_name": "transformers", "pipeline_tag": "text-generation",
             "tags": ["gateau", "trl", "sft", "long-context"]}
    if base:
        front = {"base_model": base, **front}
    lines = ["---"] + [f"{k}: {json.dumps(v)}" for k, v in front.items()] + ["---", ""]
    name = Path(config.out).name
    lines += [f"# {name}", "",
              f"Fine-tuned from `{config.model}`" + (f" (`{base}`)" if base and base != config.model else "")
              + " with `gateau train` (TRL `SFTTrainer`, loss on the assistant turns) on a long-context selection "
              "made by [gateau](https://arxiv.org/abs/2410.15633).", ""]
    lines += ["## Training data", "", "| role | file | sha256 | records |", "|---|---|---|---|"]
    data_stats = provenance.get("data_stats", {})
    for entry in provenance.get("data", []):
        used = data_stats.get(entry["role"], {})
        records = f"{used.get('kept', '?')} kept of {used.get('read', '?')} read" if used else ""
        lines.append(f"| {entry['role']} | `{entry.get('path') or entry['source']}` | "
                     f"{'`' + entry['sha256'] + '`' if entry.get('sha256') else 'not a local file'} | {records} |")
    lines += [""] + _selection_lines(provenance)
    lines += ["## Recipe", "", "| setting | value |", "|---|---|"]
    settings = config.to_dict()
    lines += [f"| {key} | {settings[key]} |" for key in RECIPE_KEYS]
    lines += [f"| effective batch | {config.effective_batch} |", ""]
    result = provenance.get("result", {})
    lines += ["## Result", "",
              f"- final training loss: {_fmt(result.get('final_loss'))} (first: {_fmt(result.get('first_loss'))})",
              f"- optimizer steps: {result.get('steps')}, epochs: {_fmt(result.get('epochs'), 2)}, tokens trained: "
              f"{result.get('tokens_trained')}", ""]
    lines += ["## Provenance", "",
              f"The chain back to the scoring run (also in `{MODEL_PROVENANCE_FILE}`; the full settings in "
              "`train_config.json`):", ""] + chain_lines(provenance) + [""]
    return "\n".join(lines)


def _selection_lines(provenance: dict[str, Any]) -> list[str]:
    long = next((e for e in provenance.get("data", []) if e["role"] == "long"), None)
    if long is None:
        return []
    lines = ["## Selection", ""]
    meta, objects = long.get("selection"), long.get("gateau_objects")
    if meta:
        sel, run = meta.get("selection", {}), meta.get("run", {})
        amount = f"ratio {sel['ratio']}" if sel.get("ratio") is not None else f"count {sel.get('count')}"
        lines += [f"- method `{sel.get('method')}`, {amount}: {sel.get('selected')} of {sel.get('samples')} samples "
                  f"({sel.get('ranked')} ranked)",
                  f"- options: `{json.dumps(sel.get('options') or {}, sort_keys=True)}`",
                  f"- run `{run.get('path')}`, settings fingerprint `{run.get('fingerprint')}`",
                  f"- scoring settings: `{json.dumps(run.get('measure') or {}, sort_keys=True, default=str)}`"]
        if not meta.get("matches"):
            lines.append("- **the data file differs from the one the selection sidecar describes** (edited after "
                         "`gateau select`)")
    else:
        lines.append("- no selection sidecar (`FILE.jsonl.meta.json`) next to the data file")
    if objects:
        methods = ", ".join(f"`{m}` x {n}" for m, n in sorted(objects["methods"].items()))
        lines.append(f"- the records' `gateau` objects: {objects['with_gateau']} of {objects['records']} records "
                     f"({methods}), scores {_fmt(objects['score_min'])} to {_fmt(objects['score_max'])}, ranks "
                     f"{objects['rank_min']} to {objects['rank_max']}")
    return lines + [""]


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"
