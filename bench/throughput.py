"""Throughput and memory of gateau's scorer vs a naive reference that does what the official scripts do.

For each context length, on identical inputs (essay text + a fact question, response of --response tokens):

(a) gateau: window-mode HMG + CAM through `gateau.pipeline.scorer.Scorer` (one fused long-model pass giving NLL and the
    attention profile, one window pass, unpadded length-sorted segment batches, response-only logits);
(b) reference: every full/window row padded to a fixed maximum length (the context length + `PAD_MARGIN`; the
    official scripts pad to 64,000, so the real gap is larger), full-sequence logits with ``labels``, attention from
    eager ``output_attentions=True``, segment rows in padded batches of 8.

Reported per length: tokens/s of necessary work (the unpadded tokens both must process), wall seconds per sample,
peak memory (RSS on CPU, ``torch.cuda.max_memory_allocated`` on CUDA) and the speed ratio (a)/(b); plus gateau's
fused pass vs a plain forward over the same tokens (the cost floor) and the segment passes' tokens/s vs a plain
forward's, the same segment rows packed into unpadded sequences (`--pack`; pays with flash-attention varlen),
the short (window) pass, and on CUDA the MFU of the plain and fused passes against ``--peak-tflops``. Each
measurement runs in its own process so peak memory is its own. The reference is skipped where its attention
tensors would not fit in memory, and the table says so.

    python bench/throughput.py                        # CPU, SmolLM2-135M, 1k/2k/4k/8k
    python bench/throughput.py --config longalign-7b-64k --device cuda --lengths 8192,16384,32768,65536 \
        --no-reference --attn-impl flash_attention_2     # also: --config llama3.1-8b (GQA), --attn-impl sdpa
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REFERENCE_SEGMENT_BATCH = 8
PAD_MARGIN = 512  # rows hold the context + template, instruction and response: at most context length + this


def row_width(length: int) -> int:
    """Longest row of a sample with ``length`` context tokens: gateau's max length and the reference's pad width."""
    return length + PAD_MARGIN


def build_model(config_name: str, device: str, dtype: str, attn_impl: str):
    """(model, tokenizer): the embedded SmolLM2 (``default``), or random weights in a real model's shape."""
    from gateau.models import LoadedModel, load_model, load_tokenizer, resolve_device, resolve_dtype

    if config_name == "default":
        return load_model("default", device=device, dtype=dtype, attn_impl=attn_impl)
    from transformers import LlamaForCausalLM

    dev = resolve_device(device)
    tokenizer = load_tokenizer("default")  # any tokenizer: weights are random
    with torch.device(dev):  # initialised on the device (a 7B model's fp32 init on CPU takes minutes)
        model = LlamaForCausalLM(random_config(config_name, len(tokenizer), attn_impl))
    return LoadedModel(model=model.to(resolve_dtype(dtype, dev)).eval(), tokenizer=tokenizer, spec=config_name,
                       device=dev)


def random_config(config_name: str, tokenizer_size: int, attn_impl: str):
    """A `LlamaConfig` in a real model's shape (``SHAPES``). Its vocabulary is widened to ``tokenizer_size`` when
    smaller (the texts are tokenised by the embedded SmolLM2 tokenizer, 49,152 ids, whose ids past a 32,000-token
    vocabulary would index outside the embedding): +140M parameters (2%) on the Llama-2 shapes, none on Llama-3.1."""
    from transformers import LlamaConfig

    shape = dict(SHAPES[config_name])
    shape["vocab_size"] = max(shape["vocab_size"], tokenizer_size)
    return LlamaConfig(**shape, attn_implementation=attn_impl)


SHAPES = {  # real models' shapes, random weights: right for speed and memory, not for scores
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, max_position_embeddings=65536,
                      rope_theta=10000.0),
    # LongAlign-7B-64k: Llama-2-7B with a 64k window and a widened RoPE base
    "longalign-7b-64k": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                             num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                             max_position_embeddings=65536, rope_theta=2_000_000.0),
    # a GQA model: 8 kv heads for 32 query heads
    "llama3.1-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=128256, max_position_embeddings=131072,
                        rope_theta=500000.0),
    # the dry run of bench/gpu_check.py on CPU: the same code paths in a 2-layer model
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=32000, max_position_embeddings=65536, rope_theta=10000.0),
    "tiny-gqa": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=1, vocab_size=128256, max_position_embeddings=65536, rope_theta=10000.0),
}


def make_samples(tokenizer, length: int, count: int, response_tokens: int) -> list:
    """``count`` samples whose context has ``length`` tokens of essay text, a fact placed at 25% depth."""
    from gateau.data import Sample
    from gateau.bench.synth import essay_dir, essay_paragraphs

    text = "\n\n".join(p for f in sorted(essay_dir().glob("*.txt")) for p in essay_paragraphs(f.read_text()))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    fact = " The keeper of the old mill in Varnholt owns exactly 47 brass keys."
    response = ("The keeper of the old mill in Varnholt owns exactly 47 brass keys, as the text says. " * 20)
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"][:response_tokens]
    out = []
    for k in range(count):
        ctx_ids = ids[k * 997: k * 997 + length]
        ctx = tokenizer.decode(ctx_ids[: length // 4]) + fact + tokenizer.decode(ctx_ids[length // 4:])
        out.append(Sample(index=k, id=str(k), context=ctx, instruction="How many brass keys does the keeper own?",
                          response=tokenizer.decode(response_ids)))
    return out


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def worker_gateau(args: argparse.Namespace) -> dict:
    """Score the samples with gateau's Scorer; also time the fused pass, a plain forward and the segment passes."""
    from gateau.measure.rows import RowRequest
    from gateau.measure.runner import RowRunner
    from gateau.methods.hmg import FULL
    from gateau.config import ScoreConfig
    from gateau.pipeline.scorer import Scorer

    lm = build_model(args.config, args.device, args.dtype, args.attn_impl)
    samples = make_samples(lm.tokenizer, args.length, args.samples, args.response)
    base_mb = peak_memory_mb(lm.device)
    config = ScoreConfig.from_flat(data="-", out="-", methods=args.methods, short_window=args.window,
                                   max_length=row_width(args.length), token_budget=args.token_budget, progress=False,
                                   device=args.device, dtype=args.dtype)
    scorer = Scorer(config, lm)
    warm = make_samples(lm.tokenizer, 256, 1, args.response)
    scorer.score_batch(warm)
    sync(lm.device)
    start_tokens = scorer.forward_tokens
    t0 = time.perf_counter()
    rows = scorer.score_batch(samples)
    sync(lm.device)
    wall = time.perf_counter() - t0
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    necessary = scorer.forward_tokens - start_tokens

    reqs = scorer.plan(samples[0], {})[1]
    runner = scorer.runners["long"]
    full = reqs[FULL]
    ids = torch.tensor([full.ids], device=lm.device)
    timings = {}
    with torch.no_grad():
        for name, fn in (
            ("plain", lambda: lm.model(input_ids=ids, logits_to_keep=1, use_cache=False)),
            ("fused", lambda: runner.run([RowRequest(full.ids, full.response_start, attention=True)])),
            ("nll_only", lambda: runner.run([RowRequest(full.ids, full.response_start)])),
        ):
            fn()
            sync(lm.device)
            t = time.perf_counter()
            for _ in range(args.repeats):
                fn()
            sync(lm.device)
            timings[name] = (time.perf_counter() - t) / args.repeats
        seg_reqs = [r for k, r in reqs.items() if k.kind.startswith("seg")]
        short_reqs = [r for k, r in reqs.items() if k.kind.startswith("window") or k.role == "short"]
        packed = RowRunner(runner.model, runner.pad_id, runner.token_budget, pack=True)
        seg_time = timed(lambda: runner.run(seg_reqs), lm.device) if seg_reqs else None
        seg_packed_time = timed(lambda: packed.run(seg_reqs), lm.device) if seg_reqs else None
        short_time = timed(lambda: runner.run(short_reqs), lm.device) if short_reqs else None
    seg_tokens = sum(len(r.ids) for r in seg_reqs)
    short_tokens = sum(len(r.ids) for r in short_reqs)
    n_full = len(full.ids)
    params = sum(p.numel() for p in lm.model.parameters())
    flops = forward_flops(params, lm.model.config, n_full)
    return {
        "impl": "gateau", "length": args.length, "samples": len(samples), "necessary_tokens": necessary,
        "wall_s": wall, "tokens_per_s": necessary / wall, "s_per_sample": wall / len(samples),
        "peak_mb": peak_memory_mb(lm.device), "extra_mb": peak_memory_mb(lm.device) - base_mb,
        "plain_s": timings["plain"], "fused_s": timings["fused"],
        "nll_only_s": timings["nll_only"], "full_tokens": n_full, "plain_tok_s": n_full / timings["plain"],
        "segment_tokens": seg_tokens, "segment_tok_s": seg_tokens / seg_time if seg_tokens else None,
        "segment_packed_tok_s": seg_tokens / seg_packed_time if seg_tokens else None,
        "short_tokens": short_tokens, "short_tok_s": short_tokens / short_time if short_tokens else None,
        "segment_rows": len(seg_reqs), "methods": args.methods, "attn_impl": args.attn_impl,
        "mfu_plain": flops / timings["plain"] / (args.peak_tflops * 1e12) if lm.device.type == "cuda" else None,
        "mfu_fused": flops / timings["fused"] / (args.peak_tflops * 1e12) if lm.device.type == "cuda" else None,
    }


def timed(fn, device: torch.device) -> float:
    """Wall seconds of one call of ``fn`` (after a synchronise on CUDA)."""
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def forward_flops(params: int, config, n: int) -> float:
    """FLOPs of one causal forward over ``n`` tokens: 2·params·n for the matmuls plus 2·layers·n²·hidden for
    causal attention (scores and values, half the square)."""
    return 2.0 * params * n + 2.0 * config.num_hidden_layers * n * n * config.hidden_size


def reference_attention_bytes(config, max_len: int) -> int:
    """Bytes of the fp32 attention probabilities `output_attentions=True` returns for one padded row (all layers)."""
    return config.num_hidden_layers * config.num_attention_heads * max_len * max_len * 4


def worker_reference(args: argparse.Namespace) -> dict:
    """The official-scripts way: pad to max length, full logits with labels, eager output_attentions."""
    from gateau.config import ScoreConfig
    from gateau.pipeline.scorer import Scorer

    lm = build_model(args.config, args.device, args.dtype, "eager")
    samples = make_samples(lm.tokenizer, args.length, args.samples, args.response)
    base_mb = peak_memory_mb(lm.device)
    config = ScoreConfig.from_flat(data="-", out="-", methods=args.methods, short_window=args.window,
                                   max_length=row_width(args.length), progress=False, device=args.device,
                                   dtype=args.dtype)
    scorer = Scorer(config, lm)  # used only to build the same rows as gateau
    pad = lm.tokenizer.pad_token_id
    max_len = row_width(args.length)
    model = lm.model
    necessary = 0
    sync(lm.device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for sample in samples:
            reqs = scorer.plan(sample, {})[1]
            full_rows = [r for k, r in reqs.items() if not k.kind.startswith("seg")]
            seg_rows = [r for k, r in reqs.items() if k.kind.startswith("seg")]
            necessary += sum(len(r.ids) for r in reqs.values())
            for r in full_rows:  # the long pass (with attention) and the window pass, padded to max_len
                ids, mask, labels = _padded([r], pad, max_len, lm.device)
                out = model(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=r.attention)
                out.loss.item()
                if r.attention:
                    mass = sum(a[0, :, r.response_start: len(r.ids)].float().sum(dim=(0, 1)) for a in out.attentions)
                    mass.cpu()
                del out
            for lo in range(0, len(seg_rows), REFERENCE_SEGMENT_BATCH):
                batch = seg_rows[lo: lo + REFERENCE_SEGMENT_BATCH]
                ids, mask, labels = _padded(batch, pad, max(len(r.ids) for r in batch), lm.device)
                model(input_ids=ids, attention_mask=mask, labels=labels).loss.item()
    sync(lm.device)
    wall = time.perf_counter() - t0
    return {"impl": "reference", "length": args.length, "samples": len(samples), "necessary_tokens": necessary,
            "wall_s": wall, "tokens_per_s": necessary / wall, "s_per_sample": wall / len(samples),
            "peak_mb": peak_memory_mb(lm.device), "extra_mb": peak_memory_mb(lm.device) - base_mb}


def _padded(rows, pad: int, width: int, device):
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r.ids)] = torch.tensor(r.ids)
        mask[b, : len(r.ids)] = 1
        labels[b, r.response_start: len(r.ids)] = torch.tensor(r.ids[r.response_start:])
    return ids.to(device), mask.to(device), labels.to(device)


def run_worker(args: argparse.Namespace, impl: str, length: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, "--length", str(length)]
    for key in ("config", "device", "dtype", "attn_impl", "samples", "response", "window", "repeats", "token_budget",
                "methods", "peak_tflops"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"impl": impl, "length": length, "error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fit_exponent(lengths: list[int], values: list[float]) -> float | None:
    """Slope of log(value) vs log(length): the exponent p in value ∝ length^p."""
    pts = [(x, y) for x, y in zip(lengths, values) if y and y > 0]
    if len(pts) < 2:
        return None
    xs, ys = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(xs, ys, 1)[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="1024,2048,4096,8192")
    p.add_argument("--config", default="default", help="default (embedded SmolLM2) or a random-weight shape: "
                   + ", ".join(SHAPES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--attn-impl", default="sdpa")
    p.add_argument("--samples", type=int, default=1)
    p.add_argument("--response", type=int, default=64, help="response tokens")
    p.add_argument("--window", type=int, default=128, help="window mode W")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--token-budget", type=int, default=16384)
    p.add_argument("--methods", default="gateau", help="scorer methods (default gateau = HMG + CAM)")
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--memory-fraction", type=float, default=0.6,
                   help="skip the reference where its attention tensors exceed this fraction of RAM")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="the device's peak dense bf16 TFLOP/s, for MFU "
                   "(default 989: H100/H200 SXM)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--length", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        torch.manual_seed(0)
        result = (worker_gateau if args.worker == "gateau" else worker_reference)(args)
        print(json.dumps(result))
        return

    lengths = [int(x) for x in args.lengths.split(",")]
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {ram / 2**30:.0f} GiB RAM, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {args.device}, model {args.config}")
    results = []
    for length in lengths:
        results.append(run_worker(args, "gateau", length))
        print(json.dumps(results[-1]), flush=True)
        if args.no_reference:
            continue
        from transformers import AutoConfig
        from gateau.models import embedded_model_dir

        cfg = AutoConfig.from_pretrained(embedded_model_dir()) if args.config == "default" else None
        pad_to = row_width(length)
        need = reference_attention_bytes(cfg, pad_to) if cfg else float("inf")
        if args.device == "cpu" and need > args.memory_fraction * ram:
            results.append({"impl": "reference", "length": length,
                            "error": f"skipped: eager output_attentions at {pad_to} padded tokens needs "
                                     f"~{need / 2**30:.0f} GiB for attention probabilities alone"})
        else:
            results.append(run_worker(args, "reference", length))
        print(json.dumps(results[-1]), flush=True)
    print_table(results, lengths)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


def print_table(results: list[dict], lengths: list[int]) -> None:
    by = {(r["impl"], r["length"]): r for r in results}
    print(f"\nreference pads every full row to the context length + {PAD_MARGIN} tokens\n")
    print("| context | gateau tok/s | gateau s/sample | gateau peak MB | reference tok/s | reference s/sample "
          "| reference peak MB | speed ratio | fused / plain | segments / plain tok/s | packed segments / plain "
          "| short / plain | MFU plain, fused |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in lengths:
        g, r = by.get(("gateau", n), {}), by.get(("reference", n), {})
        if "error" in g:
            print(f"| {n} | {g['error']} |")
            continue
        ref = (f"{r['tokens_per_s']:.0f} | {r['s_per_sample']:.1f} | {r['peak_mb']:.0f} | "
               f"{g['tokens_per_s'] / r['tokens_per_s']:.1f}x") if r and "error" not in r else \
            f"{r.get('error', 'not run')} | | | "
        print(f"| {n} | {g['tokens_per_s']:.0f} | {g['s_per_sample']:.1f} | {g['peak_mb']:.0f} | {ref} | "
              f"{g['fused_s'] / g['plain_s']:.2f} | "
              + (f"{g['segment_tok_s'] / g['plain_tok_s']:.2f} | {g['segment_packed_tok_s'] / g['plain_tok_s']:.2f} |"
                 if g["segment_tok_s"] else "no segments | |")
              + (f" {g['short_tok_s'] / g['plain_tok_s']:.2f} |" if g["short_tok_s"] else " |")
              + (f" {100 * g['mfu_plain']:.0f}%, {100 * g['mfu_fused']:.0f}% |" if g["mfu_plain"] else " |"))
    for impl in ("gateau", "reference"):
        ok = [by[(impl, n)] for n in lengths if (impl, n) in by and "error" not in by[(impl, n)]]
        exp = fit_exponent([r["length"] for r in ok], [r["extra_mb"] for r in ok])
        print(f"{impl}: exponent of peak memory above the loaded model vs length: {exp:.2f}" if exp is not None
              else f"{impl}: too few points for an exponent fit")


if __name__ == "__main__":
    main()
