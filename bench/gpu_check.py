"""The GPU check: gateau's CUDA path end to end on random-weight 7B/8B shapes, in one call of at most 8 minutes on
one H100/H200, written as one JSON file and one Markdown table.

    python bench/gpu_check.py --out gpu-check                  # on the GPU machine (random weights: no download)
    python bench/gpu_check.py --tiny --device cpu --out /tmp/g  # dry run: the same steps, tiny shapes, on CPU
    GATEAU_GPU_CHECK_TINY=1 python bench/gpu_check.py ...       # the same as --tiny

Steps, in this order, each a subprocess with its own time cap inside one overall budget (``--budget-s``; a step
that no longer fits is recorded as skipped, one that runs past its limit as timed out):

1. `bench/throughput.py --config longalign-7b-64k --device cuda --lengths 8192,16384,32768,65536 --no-reference`
   with ``--attn-impl flash_attention_2`` (one call per length, so that each finished length is kept);
2. a short `gateau score` on CUDA (window-mode HMG + CAM on a few synthetic long samples) with a random-weight
   model in LongAlign-7B-64k's shape saved to disk, then `gateau select` of half of it;
3. `gateau train --max-steps 2` on CUDA on that selection (LoRA r=8: full fine-tuning of 7B with AdamW needs more
   than 80 GB on one device), with the same model;
4. step 1 with ``--attn-impl sdpa``;
5. `bench/throughput.py --config llama3.1-8b` (GQA) with flash_attention_2 at 8k and 32k.

The table gives, per shape, attention implementation and context length: the fused pass (NLL + attention probe)
and the segment passes against a plain forward over the same tokens (the goals: fused >= 0.85x plain at >= 16k,
segments >= 0.8x), MFU of the plain and fused passes (at ``--peak-tflops``, default 989: H100/H200 SXM dense
bf16), peak memory and whether it fits 80 GB; then the score and train steps' throughput and peak memory.
Weights are random (real shapes): right for speed and memory, meaningless for scores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIN_STEP_S = 15  # a step is started only with at least this much of the budget left
FIT_GB = 80  # the memory of the smallest card this check is meant for (H100 80 GB)
GOAL_FUSED, GOAL_SEGMENTS, GOAL_FROM = 0.85, 0.8, 16384  # fused / plain >= 0.85 at >= 16k, segments / plain >= 0.8


@dataclass(frozen=True)
class Sizes:
    """What a check run uses: the real shapes on a GPU, tiny ones for the CPU dry run."""

    main: str = "longalign-7b-64k"
    gqa: str = "llama3.1-8b"
    lengths: tuple[int, ...] = (8192, 16384, 32768, 65536)
    gqa_lengths: tuple[int, ...] = (8192, 32768)
    score_samples: int = 6
    score_words: int = 1500  # ~2k tokens of context per sample
    train_max_length: int = 4096


TINY = Sizes(main="tiny", gqa="tiny-gqa", lengths=(256,), gqa_lengths=(256,), score_samples=3, score_words=400,
             train_max_length=1024)


@dataclass
class Step:
    """One subprocess of the check: its command, the most seconds it may run, and what happened."""

    name: str
    cmd: list[str]
    cap_s: float
    rc: int | None = None
    seconds: float = 0.0
    status: str = "not run"
    tail: str = ""
    result: dict = field(default_factory=dict)


def throughput_cmd(shape: str, attn: str, lengths: tuple[int, ...], args: argparse.Namespace, out: Path) -> list[str]:
    return [sys.executable, str(HERE / "throughput.py"), "--config", shape, "--device", args.device,
            "--lengths", ",".join(map(str, lengths)), "--no-reference", "--attn-impl", attn, "--repeats", "1",
            "--peak-tflops", str(args.peak_tflops), "--out", str(out)]


def gateau_cmd(*argv: str) -> list[str]:
    return [sys.executable, "-m", "gateau", *argv]


def plan_steps(args: argparse.Namespace, sizes: Sizes, work: Path) -> list[Step]:
    """The steps in priority order (the most important first, so that a short budget still covers them)."""
    model, synth, run = work / "random-model", work / "synth", work / "run"
    selected, trained = work / "selected.jsonl", work / "train"
    build = [sys.executable, str(Path(__file__).resolve()), "--save-random-model", str(model), "--shape", sizes.main,
             "--device", args.device]
    score = gateau_cmd("score", str(synth / "data.jsonl"), "--out", str(run), "--long-model", str(model),
                       "--device", args.device, "--methods", "gateau", "--no-progress", "--overwrite")
    select = gateau_cmd("select", str(run), "--ratio", "0.5", "--out", str(selected))
    train = gateau_cmd("train", str(selected), "--out", str(trained), "--model", str(model), "--max-steps", "2",
                       "--device", args.device, "--lora-r", "8", "--max-length", str(sizes.train_max_length),
                       "--batch-size", "1", "--grad-accum", "1", "--no-progress", "--overwrite")
    synth_cmd = gateau_cmd("bench", "synth", "--out", str(synth), "--n", str(sizes.score_samples), "--words",
                           str(sizes.score_words))
    def throughput(shape: str, attn: str, lengths: tuple[int, ...]) -> list[Step]:
        return [Step(f"throughput {shape} {attn} {n}", throughput_cmd(shape, attn, (n,), args,
                                                                       work / f"tp-{shape}-{attn}-{n}.json"), 120)
                for n in lengths]

    return [*throughput(sizes.main, "flash_attention_2", sizes.lengths),
            Step("random model", build, 120), Step("synthetic data", synth_cmd, 60), Step("gateau score", score, 150),
            Step("gateau select", select, 60), Step("gateau train --max-steps 2", train, 180),
            *throughput(sizes.main, "sdpa", sizes.lengths),
            *throughput(sizes.gqa, "flash_attention_2", sizes.gqa_lengths)]


def run_steps(steps: list[Step], budget_s: float, env: dict[str, str]) -> None:
    """Run each step within min(its cap, what is left of the budget), in order; a step whose prerequisite failed,
    or that would get under `MIN_STEP_S`, is skipped (and says why)."""
    start = time.perf_counter()
    failed: set[str] = set()
    needs = {"gateau score": {"random model", "synthetic data"}, "gateau select": {"gateau score"},
             "gateau train --max-steps 2": {"gateau select", "random model"}}
    for step in steps:
        left = budget_s - (time.perf_counter() - start)
        if needs.get(step.name, set()) & failed:
            step.status = "skipped: " + ", ".join(sorted(needs[step.name] & failed)) + " failed"
            failed.add(step.name)
            continue
        if left < MIN_STEP_S:
            step.status = "skipped: time budget spent"
            failed.add(step.name)
            continue
        limit = min(left, step.cap_s)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(step.cmd, capture_output=True, text=True, env=env, timeout=limit)
            step.rc, output = proc.returncode, (proc.stdout + proc.stderr)
            step.status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        except subprocess.TimeoutExpired as exc:
            step.rc, output = None, str(exc.stdout or "") + str(exc.stderr or "")
            step.status = f"timed out after {limit:.0f} s"
        step.seconds = time.perf_counter() - t0
        step.tail = "\n".join(output.strip().splitlines()[-6:])
        if step.status != "ok":
            failed.add(step.name)
        print(f"[{time.perf_counter() - start:5.0f} s] {step.name}: {step.status} ({step.seconds:.0f} s)", flush=True)


def collect(steps: list[Step], work: Path) -> dict:
    """The results of every step: throughput rows, the score run's history, the train summary."""
    for step in steps:
        if step.name.startswith("throughput") and step.status == "ok":
            out = Path(step.cmd[step.cmd.index("--out") + 1])
            step.result = {"rows": json.loads(out.read_text())}
        elif step.name == "gateau score" and step.status == "ok":
            history = [json.loads(line) for line in (work / "run" / "history.jsonl").read_text().splitlines()]
            step.result = {k: history[-1].get(k) for k in ("total", "statuses", "forward_tokens", "measure_s",
                                                            "wall_s")}
        elif step.name.startswith("gateau train") and step.status == "ok":
            summary = json.loads((work / "train" / "train_summary.json").read_text())
            step.result = {k: summary.get(k) for k in ("steps", "train_seconds", "tokens_trained",
                                                        "tokens_per_second", "peak_memory_mb", "peak_memory_kind",
                                                        "first_loss", "last_loss")}
    return {"steps": [vars(s) for s in steps]}


def throughput_rows(report: dict) -> list[dict]:
    """One row per (shape, attention, length) with the ratios the goals are stated in."""
    out = []
    for step in report["steps"]:
        if not step["name"].startswith("throughput"):
            continue
        _, shape, attn, _ = step["name"].split()
        for r in step["result"].get("rows", []):
            row = {"shape": shape, "attn": attn, "length": r["length"]}
            if "error" in r:
                out.append({**row, "error": r["error"]})
                continue
            row.update(fused=r["plain_s"] / r["fused_s"],
                       segments=(r["segment_tok_s"] / r["plain_tok_s"]) if r.get("segment_tok_s") else None,
                       packed=(r["segment_packed_tok_s"] / r["plain_tok_s"]) if r.get("segment_packed_tok_s")
                       else None,
                       segment_rows=r.get("segment_rows"), mfu_plain=r.get("mfu_plain"), mfu_fused=r.get("mfu_fused"),
                       peak_gb=r["peak_mb"] / 1024, tokens_per_s=r["tokens_per_s"])
            row["fits_80gb"] = row["peak_gb"] <= FIT_GB
            row["meets_goals"] = (row["fused"] >= GOAL_FUSED or row["length"] < GOAL_FROM) and \
                (row["segments"] is None or row["segments"] >= GOAL_SEGMENTS)
            out.append(row)
        if not step["result"].get("rows"):
            out.append({"shape": shape, "attn": attn, "length": None, "error": step["status"]})
    return out


def _pct(x: float | None) -> str:
    return f"{100 * x:.0f}%" if x is not None else "–"


def _ratio(x: float | None) -> str:
    return f"{x:.2f}x" if x is not None else "–"


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [f"# gateau GPU check ({'tiny dry run' if report['tiny'] else 'real shapes'})", "",
             f"device: {env['device']}; torch {env['torch']}, transformers {env['transformers']}, "
             f"flash-attn {env['flash_attn']}; budget {report['budget_s']:.0f} s, took {report['wall_s']:.0f} s", "",
             f"Goals: fused >= {GOAL_FUSED}x plain at >= {GOAL_FROM // 1024}k, segments >= {GOAL_SEGMENTS}x plain, "
             f"peak memory within {FIT_GB} GB. Random weights in real shapes.", "",
             "| shape | attention | context | fused / plain | segments / plain | packed segments / plain "
             "| segment rows | MFU plain | MFU fused | peak GB | fits 80 GB | goals |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["throughput"]:
        if "error" in r:
            reason = r["error"].split(" | ")[-1].replace("|", "/").strip()[:200]
            lines.append(f"| {r['shape']} | {r['attn']} | {r['length'] or '–'} | {reason} |" + " |" * 8)
            continue
        lines.append(f"| {r['shape']} | {r['attn']} | {r['length']} | {_ratio(r['fused'])} | {_ratio(r['segments'])} "
                     f"| {_ratio(r['packed'])} | {r['segment_rows']} | {_pct(r['mfu_plain'])} | {_pct(r['mfu_fused'])} "
                     f"| {r['peak_gb']:.1f} | {'yes' if r['fits_80gb'] else 'no'} | "
                     f"{'met' if r['meets_goals'] else 'missed'} |")
    lines += ["", "| step | status | seconds | result |", "|---|---|---|---|"]
    for s in report["steps"]:
        result = ", ".join(f"{k}={_short(v)}" for k, v in s["result"].items() if k != "rows")
        detail = result or ("" if s["status"] == "ok" else s["tail"].replace("\n", " / ")[-200:])
        lines.append(f"| {s['name']} | {s['status']} | {s['seconds']:.0f} | {detail.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def environment(device: str) -> dict:
    import importlib.util

    import torch
    import transformers

    name = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else \
        f"{device} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    flash = "installed" if importlib.util.find_spec("flash_attn") else "absent"
    return {"device": name, "torch": torch.__version__, "transformers": transformers.__version__, "flash_attn": flash}


def save_random_model(path: Path, shape: str, device: str) -> None:
    """A random-weight model in ``shape`` (bf16 on CUDA, fp32 on CPU) with the embedded tokenizer, saved to
    ``path`` for the CLI steps (score, train)."""
    sys.path.insert(0, str(HERE))
    import torch
    from throughput import random_config
    from transformers import LlamaForCausalLM

    from gateau.models import load_tokenizer, resolve_device, resolve_dtype

    dev = resolve_device(device)
    tokenizer = load_tokenizer("default")
    torch.manual_seed(0)
    with torch.device(dev):
        model = LlamaForCausalLM(random_config(shape, len(tokenizer), "sdpa"))
    model.to(resolve_dtype("auto", dev)).save_pretrained(path)
    tokenizer.save_pretrained(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="gpu-check", help="directory for gpu_check.json, gpu_check.md and the work files")
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", default=os.environ.get("GATEAU_GPU_CHECK_TINY") == "1",
                   help="tiny shapes (the CPU dry run; also GATEAU_GPU_CHECK_TINY=1)")
    p.add_argument("--budget-s", type=float, default=450.0, help="overall time budget in seconds (default 450: the "
                   "whole call stays under 8 minutes with start-up)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="peak dense bf16 TFLOP/s for MFU (989: H100/H200)")
    p.add_argument("--save-random-model", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.save_random_model:
        save_random_model(Path(args.save_random_model), args.shape, args.device)
        return 0
    sizes = TINY if args.tiny else Sizes()
    out = Path(args.out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    steps = plan_steps(args, sizes, work)
    run_steps(steps, args.budget_s, env)
    report = {"tiny": args.tiny, "budget_s": args.budget_s, "environment": environment(args.device),
              **collect(steps, work)}
    report["throughput"] = throughput_rows(report)
    report["wall_s"] = time.perf_counter() - start
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if all(s.status == "ok" for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
