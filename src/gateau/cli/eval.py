"""``gateau eval COMMAND`` (one sub-command per registered evaluation) and ``gateau judge-samples``.

Flags → settings → evaluation. Each evaluation in the registry (``eval/registry.py``) becomes one sub-command:
its help from the class, its options from the ``flag`` fields of its settings dataclass (``eval/flags.py``),
plus the shared model options and, where it uses one, the judge options. One handler builds the settings, makes
the judge and runs the evaluation.

Building the parser imports the evaluation modules (standard library at top level; torch, transformers and the
data wheels only when an evaluation runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from ..eval.flags import add_flags, is_flag, names
from ..eval.generate import ModelSettings
from ..eval.judge import JudgeOptions
from ..hub import REVISION_HELP, TRUST_REMOTE_CODE_HELP
from ..errors import UsageError
from .config_file import SettingsFile, add_config_flags, file_settings, overlay, plain, yaml_text

_MODEL_HELP = "model to evaluate: a folder, a hub id, a .gguf file or 'default' (embedded SmolLM2-135M-Instruct)"
_DEFAULTS = ModelSettings()


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The shared options of the evaluated model and its generation (``ModelSettings``, ``--overwrite``)."""
    g = p.add_argument_group("model and generation")
    g.add_argument("--device", default=_DEFAULTS.device, help="auto, cpu, cuda, cuda:N (default auto)")
    g.add_argument("--dtype", default=_DEFAULTS.dtype,
                   help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
    g.add_argument("--attn-impl", default=_DEFAULTS.attn_impl, help="sdpa (default), eager, flash_attention_2")
    g.add_argument("--backend", choices=["hf", "vllm"], default=_DEFAULTS.backend,
                   help="hf: transformers generate with left padding and the KV cache (default); vllm: optional, "
                   "CUDA, pip install vllm")
    g.add_argument("--token-budget", type=int, default=_DEFAULTS.token_budget,
                   help=f"padded tokens (prompt + new) per generation batch (default {_DEFAULTS.token_budget})")
    g.add_argument("--max-batch", type=int, default=_DEFAULTS.max_batch,
                   help=f"prompts per generation batch at most (default {_DEFAULTS.max_batch})")
    g.add_argument("--revision", help=REVISION_HELP)
    g.add_argument("--trust-remote-code", action="store_true", help=TRUST_REMOTE_CODE_HELP)
    g.add_argument("--overwrite", action="store_true", help="discard answers already stored in --out")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


# The shared model options -> their key in an evaluation's settings file (the fields of `ModelSettings`).
_MODEL_KEYS = {"model": "model.model", "device": "model.device", "dtype": "model.dtype",
               "attn_impl": "model.attn_impl", "backend": "model.backend", "token_budget": "model.token_budget",
               "max_batch": "model.max_batch", "revision": "model.revision",
               "trust_remote_code": "model.trust_remote_code", "no_progress": "model.progress",
               "overwrite": "overwrite"}


# The judge options -> their key in the ``judge`` section of a settings file (the fields of `JudgeOptions`).
_JUDGE_KEYS = {"judge_model": "judge.model", "judge_url": "judge.url", "judge_times": "judge.times",
               "judge_temperature": "judge.temperature", "judge_max_tokens": "judge.max_tokens",
               "judge_cache": "judge.cache", "judge_workers": "judge.workers", "judge_revision": "judge.revision",
               "judge_trust_remote_code": "judge.trust_remote_code"}
_JUDGE = JudgeOptions()


def settings_file(settings_type: type, *, judge: bool = False) -> SettingsFile:
    """An evaluation's settings file: the keys of its settings dataclass (``model`` = `ModelSettings`), and with
    ``judge`` a ``judge`` section (`JudgeOptions`)."""
    flags = {f.name: f.name for f in dataclasses.fields(settings_type) if is_flag(f)}
    if not judge:
        return SettingsFile(settings_type, {**flags, **_MODEL_KEYS})
    return SettingsFile(settings_type, {**flags, **_MODEL_KEYS, **_JUDGE_KEYS}, sections={"judge": JudgeOptions})


def add_judge_options(p: argparse.ArgumentParser, *, required: bool = False, in_file: bool = False) -> None:
    """The judge options (`JudgeOptions`). ``in_file``: the command's settings file may name the judge, so a
    required judge model is checked after the file is read (`resolve_settings`), not by argparse."""
    g = p.add_argument_group("judge" + (" (required)" if required else " (optional)"))
    g.add_argument("--judge-model", required=required and not in_file,
                   help="with --judge-url: the model name the endpoint serves (e.g. gpt-4-0613); alone: a local "
                   "HF judge model (folder, hub id or 'default')")
    g.add_argument("--judge-url", help="base URL of an OpenAI-compatible endpoint (e.g. https://api.openai.com/v1, "
                   "a vLLM server); key from $OPENAI_API_KEY")
    g.add_argument("--judge-times", type=int, default=_JUDGE.times,
                   help=f"judgments per answer, averaged (default {_JUDGE.times}, as in the paper)")
    g.add_argument("--judge-temperature", type=float, default=_JUDGE.temperature,
                   help=f"judge temperature (default {_JUDGE.temperature:g})")
    g.add_argument("--judge-max-tokens", type=int, default=_JUDGE.max_tokens,
                   help=f"judge reply limit in tokens (default {_JUDGE.max_tokens})")
    g.add_argument("--judge-cache", help="JSONL cache of judge replies (default: OUT/judge_cache.jsonl)")
    g.add_argument("--judge-workers", type=int, default=_JUDGE.workers,
                   help=f"requests in flight at once to --judge-url (default {_JUDGE.workers}; 1 = one after the "
                   "other)")
    g.add_argument("--judge-revision", help="a local HF judge model (--judge-model alone): " + REVISION_HELP)
    g.add_argument("--judge-trust-remote-code", action="store_true",
                   help="a local HF judge model (--judge-model alone): " + TRUST_REMOTE_CODE_HELP)


def register(subparsers: Any) -> None:
    """Add ``eval`` (one sub-command per registered evaluation) and ``judge-samples`` to the ``gateau`` parser."""
    from ..eval.registry import evaluations

    found = evaluations()
    ev = subparsers.add_parser("eval", help="evaluate a model: " + ", ".join(found),
                               description="Evaluate a (trained) model. Every evaluation stores each answer as it "
                               "is generated (re-running resumes) and writes JSON + CSV + a readable table.")
    sub = ev.add_subparsers(dest="eval_command", required=True)
    for command, evaluation in found.items():
        p = sub.add_parser(command, help=evaluation.help, description=evaluation.description)
        if evaluation.model_argument:
            p.add_argument("model", help=_MODEL_HELP)
        add_flags(p, evaluation.settings_type)
        evaluation.add_options(p)
        add_model_options(p)
        judged = evaluation.judge != "none"
        if judged:
            add_judge_options(p, required=evaluation.judge == "required", in_file=True)
        add_config_flags(p, settings_file(evaluation.settings_type, judge=judged),
                         keys=f"its settings ({evaluation.settings_type.__name__}: the flags' names, model: "
                         "the model options" + (", judge: the judge options without judge-" if judged else "") + ")")
        p.set_defaults(handler=_handler(evaluation))

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
    js.add_argument("--aspects", type=names, help="comma-separated subset of coherence, necessity, "
                    "helpfulness, faithfulness, complexity (default all)")
    js.add_argument("--splitter", help="the instruction is the user turn's text after the last splitter "
                    "(default: the run's, else a blank line)")
    js.add_argument("--max-context-chars", type=int, default=None, help="cut contexts to this many characters "
                    "(from the middle) before judging (default: whole)")
    js.add_argument("--device", default="auto", help="device of a local judge model")
    js.add_argument("--dtype", default="auto", help="dtype of a local judge model")
    js.add_argument("--no-progress", action="store_true")
    add_judge_options(js, required=True)
    js.set_defaults(handler=cmd_judge_samples)


def _handler(evaluation: Any) -> Callable[[argparse.Namespace], int]:
    return lambda args: run_evaluation(evaluation, args)


def resolve_settings(evaluation: Any, args: argparse.Namespace) -> tuple[Any, JudgeOptions | None]:
    """``evaluation``'s settings and its judge options (None for an evaluation without a judge) from the parsed
    flags over ``--config``'s file (when given)."""
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(evaluation.settings_type) if is_flag(f)}
    settings = evaluation.settings_type(**flags, model=_model_settings(args), overwrite=args.overwrite)
    from_file = file_settings(args) or {}
    judge_section = from_file.pop("judge", {})
    settings = overlay(settings, from_file) if from_file else settings
    if evaluation.judge == "none":
        return settings, None
    return settings, overlay(_judge_options(args), judge_section)


def run_evaluation(evaluation: Any, args: argparse.Namespace) -> int:
    """Build ``evaluation``'s settings from the parsed flags, make the judge, run it and print its table."""
    settings, judge_options = resolve_settings(evaluation, args)
    if args.print_config:
        extra = {} if judge_options is None else {"judge": plain(judge_options)}
        sys.stdout.write(yaml_text({**plain(settings), **extra}))
        return 0
    if evaluation.judge == "required" and not judge_options.model:
        raise UsageError("this evaluation needs a judge: give --judge-model NAME (or judge: {model: NAME} in "
                         "--config's file)")
    settings.validate()
    _check_outputs(settings.output_dir(), settings.inputs(), judge_options)
    judge = None
    if judge_options is not None:
        judge = _judge(judge_options, args, evaluation.judge_dir(settings))
    summary = evaluation.execute(settings, judge)
    _report(summary, evaluation.command, judge)
    line = evaluation.report_line(summary)
    if line:
        print(line)
    return 0


def _check_outputs(out: str | None, inputs: tuple[str | None, ...], judge: JudgeOptions | None) -> None:
    """Refuse (``OutputError``) an ``--out`` folder or ``--judge-cache`` file that is one of ``inputs`` or a local
    judge model, or a run directory or inside one (``gateau.util.outputs``)."""
    from ..util.outputs import check_output_dir, check_output_file

    inputs = (*inputs, judge.model if judge else None)
    if out is not None:
        check_output_dir(out, "--out", inputs=inputs)
    if judge is not None and judge.cache:
        check_output_file(judge.cache, "--judge-cache", inputs=inputs)


def _model_settings(args: argparse.Namespace) -> ModelSettings:
    return ModelSettings(model=getattr(args, "model", _DEFAULTS.model), device=args.device, dtype=args.dtype,
                         attn_impl=args.attn_impl, backend=args.backend, token_budget=args.token_budget,
                         max_batch=args.max_batch, progress=not args.no_progress, revision=args.revision,
                         trust_remote_code=args.trust_remote_code)


def _judge_options(args: argparse.Namespace) -> JudgeOptions:
    """The ``--judge-*`` flags as `JudgeOptions`."""
    return JudgeOptions(**{key.split(".")[1]: getattr(args, dest) for dest, key in _JUDGE_KEYS.items()})


def _judge(options: JudgeOptions, args: argparse.Namespace, out: str):
    from pathlib import Path

    return options.make(default_cache=str(Path(out) / "judge_cache.jsonl") if out else None,
                        progress=not args.no_progress, device=getattr(args, "device", "auto"),
                        dtype=getattr(args, "dtype", "auto"))


def _report(summary: dict[str, Any], name: str, judge: Any = None) -> None:
    print(summary.get("table", ""))
    for kind, path in summary.get("files", {}).items():
        print(f"{name} {kind}: {path}")
    if judge is not None:
        print(judge.usage.line())


def _error(command: str, exc: Exception) -> int:
    print(f"gateau {command}: error: {exc}", file=sys.stderr)
    return 2


def cmd_judge_samples(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..config import DataConfig
    from ..eval.judge_samples import JudgeSamplesConfig, data_of_run, run_judge_samples

    data = DataConfig(path=args.data) if args.data else (data_of_run(args.run) if args.run else None)
    if data is None:
        return _error("judge-samples", ValueError("give the scored data file with --data, or a RUN directory"))
    if args.splitter is not None:
        data = replace(data, fields=replace(data.fields, splitter=args.splitter))
    config = JudgeSamplesConfig(selected=tuple(args.selected), data=data, out=args.out,
                                per_group=args.per_group, seed=args.seed, aspects=args.aspects,
                                max_context_chars=args.max_context_chars)
    config.validate()
    judge_options = _judge_options(args)
    _check_outputs(args.out, (*args.selected, args.data, args.run), judge_options)
    judge = _judge(judge_options, args, args.out)
    summary = run_judge_samples(config, judge)
    _report(summary, "judge-samples", judge)
    return 0
