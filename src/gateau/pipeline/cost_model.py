"""Estimates of a planned run's wall time and peak memory per device, from its batches (`TokenPlan.batches`).

CPU: a throughput model measured on the development machine by ``bench/plan_throughput.py`` for the embedded
SmolLM2-135M (fp32), stored in ``throughput_cpu.json`` beside this module: seconds per forward pass =
``tokens × (a + b × width) + c`` (a: per-token cost, b: the attention term that grows with the row width, c: a
fixed cost per pass), fitted separately for plain rows and rows with the attention probe. For another model the
per-token terms are scaled by its FLOPs per token over the embedded model's (an extrapolation).

GPU: the model's forward FLOPs per token (2 × non-embedding parameters + the causal attention term 2 × layers ×
hidden × width) at a stated MFU of a stated peak (default 40% of an H100's 989 bf16 TFLOP/s, dense). Not measured:
an estimate whose assumptions are printed with it.

Memory: weights (parameters × bytes of the dtype) + the largest pass's activations (tokens × (4 × hidden +
2 × intermediate) values, one layer at a time: no KV cache is kept) + the fp32 log-softmax over response positions
in chunks of `LOGSOFTMAX_CHUNK_ROWS` rows × vocabulary, plus the attention probe's fp32 scores (256 query rows × width
× heads). An estimate, not a measurement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THROUGHPUT_FILE = Path(__file__).with_name("throughput_cpu.json")
DEFAULT_MFU = 0.4
DEFAULT_PEAK_TFLOPS = 989.0  # H100 SXM, bf16 dense
LOGSOFTMAX_CHUNK_ROWS = 1024  # gateau.measure.nll's chunk of response positions
PROBE_QUERY_ROWS = 256  # gateau.measure.runner's attention_chunk_rows


@dataclass(frozen=True)
class ModelShape:
    """What the estimates need of a model, read from its config: sizes, and parameters without embeddings."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    vocab: int
    params: int  # all parameters (weights memory)
    body_params: int  # parameters a token's forward multiplies through (no embedding table, no LM head)

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        d, ffn, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
        heads = config.num_attention_heads
        kv = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or d // heads
        per_layer = d * heads * head_dim * 2 + d * kv * head_dim * 2 + 3 * d * ffn
        embed = config.vocab_size * d
        tied = getattr(config, "tie_word_embeddings", False)
        return cls(d, ffn, n, heads, config.vocab_size, n * per_layer + embed * (1 if tied else 2), n * per_layer)

    def flops_per_token(self, width: int) -> float:
        """Forward FLOPs per token of a row ``width`` tokens long (matmuls + causal attention, mean position)."""
        return 2.0 * self.body_params + 2.0 * self.layers * self.hidden * width


def model_shape(spec: str) -> ModelShape:
    """The shape of model ``spec`` from its config alone (no weights)."""
    from transformers import AutoConfig

    from ..models import _source

    source, kwargs = _source(spec)
    return ModelShape.from_config(AutoConfig.from_pretrained(source, **kwargs))


def load_cpu_model(path: Path = THROUGHPUT_FILE) -> dict[str, Any]:
    """The fitted CPU throughput model (see the module docstring)."""
    return json.loads(path.read_text())


def cpu_seconds(batches: list[tuple[int, int, int, bool]], shape: ModelShape, fit: dict[str, Any]) -> float:
    """Estimated CPU seconds of ``batches`` [(rows, width, tokens, attention)] under the fitted model ``fit``,
    scaled by FLOPs per token when ``shape`` is not the model it was fitted on."""
    ref = ModelShape(**fit["shape"])
    total = 0.0
    for _, width, tokens, attention in batches:
        coef = fit["attention" if attention else "plain"]
        scale = shape.flops_per_token(width) / ref.flops_per_token(width)
        total += tokens * (coef["a"] + coef["b"] * width) * scale + coef["c"]
    return total


def gpu_seconds(batches: list[tuple[int, int, int, bool]], shape: ModelShape, mfu: float = DEFAULT_MFU,
                peak_tflops: float = DEFAULT_PEAK_TFLOPS) -> float:
    """Estimated GPU seconds of ``batches`` at ``mfu`` of ``peak_tflops`` (forward FLOPs only)."""
    flops = sum(tokens * shape.flops_per_token(width) for _, width, tokens, _ in batches)
    return flops / (mfu * peak_tflops * 1e12)


def peak_memory_bytes(batches: list[tuple[int, int, int, bool]], shape: ModelShape, dtype_bytes: int) -> int:
    """Estimated peak memory of one device: weights + the largest pass's activations + one chunk of the fp32
    log-softmax (at most `LOGSOFTMAX_CHUNK_ROWS` response positions, logits and log-probs) + the probe."""
    if not batches:
        return shape.params * dtype_bytes
    tokens = max(t for _, _, t, _ in batches)
    act = tokens * (4 * shape.hidden + 2 * shape.intermediate) * dtype_bytes
    logits = min(tokens, LOGSOFTMAX_CHUNK_ROWS) * shape.vocab * 4 * 2
    widest_probe = max((w for _, w, _, attention in batches if attention), default=0)
    probe = PROBE_QUERY_ROWS * widest_probe * shape.heads * 4 * 2
    return shape.params * dtype_bytes + act + logits + probe
