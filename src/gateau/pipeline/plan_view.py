"""What `gateau plan` prints: the token plan with its time and memory estimates, as text or as one JSON object."""

from __future__ import annotations

from typing import Any

from ..config import ScoreConfig
from .cost_model import (DEFAULT_MFU, DEFAULT_PEAK_TFLOPS, cpu_seconds, gpu_seconds, load_cpu_model, model_shape,
                         peak_memory_bytes)
from .token_plan import TokenPlan

GIB = 2 ** 30


def plan_report(plan: TokenPlan, config: ScoreConfig, mfu: float = DEFAULT_MFU,
                peak_tflops: float = DEFAULT_PEAK_TFLOPS) -> dict[str, Any]:
    """The plan as a dict (``total_tokens`` at the top level) plus ``estimate``: CPU seconds from the fitted model,
    GPU seconds at ``mfu`` of ``peak_tflops``, and peak memory per device, each with its assumptions."""
    out = plan.to_dict()
    models = {"long": config.models.long_model, **({"short": config.models.short_model}
                                                     if config.models.short_model else {})}
    fit = load_cpu_model()
    estimate: dict[str, Any] = {"assumptions": (
        "estimates, not measurements: CPU from a throughput model fitted on the development machine for the "
        f"embedded model ({fit['measured']}, load average {fit['machine']['load_average_1m']:.1f}), "
        "scaled by FLOPs per token for other models; GPU from forward FLOPs per token at "
        f"{mfu:.0%} MFU of {peak_tflops:g} TFLOP/s; memory = weights + the largest pass's activations, "
        "log-softmax chunk and attention probe; no out-of-memory splits")}
    cpu_s = gpu_s = 0.0
    memory: dict[str, dict[str, float]] = {}
    for role, spec in models.items():
        batches = plan.batches.get(role, [])
        if not batches:
            continue
        shape = model_shape(spec)
        cpu_s += cpu_seconds(batches, shape, fit)
        gpu_s += gpu_seconds(batches, shape, mfu, peak_tflops)
        memory[role] = {"cpu_fp32_gib": peak_memory_bytes(batches, shape, 4) / GIB,
                        "gpu_bf16_gib": peak_memory_bytes(batches, shape, 2) / GIB}
    estimate.update(cpu_seconds=cpu_s, gpu_seconds=gpu_s, mfu=mfu, peak_tflops=peak_tflops, peak_memory=memory)
    out["estimate"] = estimate
    return out


def plan_lines(report: dict[str, Any]) -> list[str]:
    """The text form of `plan_report`."""
    st = ", ".join(f"{k}={v}" for k, v in sorted(report["statuses"].items()))
    lines = [f"samples: {report['samples']} ({st})", "", "pass kind       rows     tokens  longest row"]
    for kind, p in report["passes"].items():
        tokens = f"{p['tokens']:10d}" if kind not in ("reward", "embedding") else f"{'n/a':>10}"
        lines.append(f"{kind:<13} {p['rows']:6d} {tokens}  {p['longest']:11d}")
    if any(k in report["passes"] for k in ("reward", "embedding")):
        lines.append("(reward and embedding rows run CaR's own models: not causal-LM tokens, not in the total)")
    lines.append(f"{'total':<13} {report['total_rows']:6d} {report['total_tokens']:10d}  {report['longest_row']:11d}")
    if report.get("cascade"):
        c = report["cascade"]
        lines += ["", f"cascade (--cam-top {c['cam_top']:g}): phase 1 (every row but the segment rows, every sample) "
                  f"{c['phase1_tokens']} tokens exactly; phase 2 (the segment rows of the top {c['top_samples']} "
                  f"samples by hmg, known only after phase 1) {c['phase2_tokens_min']}-{c['phase2_tokens_max']} tokens "
                  "(bounds over every top set); the table and total include the upper bound"]
    lines += ["", "method        rows     tokens  (rows each method asks for, unpadded; shared rows count in each)"]
    for name, p in report["methods"].items():
        lines.append(f"{name:<13} {p['rows']:6d} {p['tokens']:10d}")
    est = report["estimate"]
    lines += ["", f"estimated wall time: CPU {_duration(est['cpu_seconds'])}; one GPU {_duration(est['gpu_seconds'])} "
              f"(at {est['mfu']:.0%} MFU of {est['peak_tflops']:g} TFLOP/s)"]
    for role, mem in est["peak_memory"].items():
        lines.append(f"estimated peak memory ({role} model): {mem['cpu_fp32_gib']:.2f} GiB on CPU (fp32), "
                     f"{mem['gpu_bf16_gib']:.2f} GiB per GPU (bf16)")
    lines.append(f"({est['assumptions']})")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
