"""LongBench: the official metrics on prediction folders, and predictions with the official prompts.

Metrics are lm-evaluation-harness's copy of LongBench's ``metrics.py`` (``lm_eval.tasks.longbench.metrics``:
qa_f1 en/zh, rouge-L en/zh, classification, retrieval en/zh, count, code similarity), used as they are, with
LongBench's dataset → metric map, prompts and answer budgets (lm-eval's ``_generate_config``, copied from
LongBench's ``config/``). Scoring follows the official ``eval.py``: for trec, triviaqa, samsum and lsht only the
prediction's first line counts; each prediction takes its best score over the reference answers; a dataset's
score is 100 × the mean, rounded to 2 decimals; LongBench-E (``--e``) averages per length bucket 0-4k, 4-8k, 8k+
(``length`` < 4000, < 8000, else). An empty bucket, NaN in the official script, is written as null.

Prediction folders use LongBench's layout: ``PRED_DIR/DATASET.jsonl`` (``DATASET_e.jsonl`` is read as DATASET),
one JSON line per item with ``pred``, ``answers`` (list), ``all_classes`` (list or null) and ``length``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateau.util.jsonl import iter_jsonl

from .flags import flag, names
from .generate import ModelSettings, Prompt, load_generator, render
from .registry import register
from .results import EvalError, ItemLog, format_table, mean, write_json, write_outputs
from .runner import generate_items
from .task import EvalSettings, Evaluation, Item

FIRST_LINE_DATASETS = ("trec", "triviaqa", "samsum", "lsht")
# pred.py feeds these without the chat template ("chat models are better off without build prompts on these")
RAW_PROMPT_DATASETS = ("trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p")
BUCKETS = ("0-4k", "4-8k", "8k+")
# The paper's GPT-4 judge (Appendix C.2): QA datasets rated 1-3, summarization 1-5.
JUDGE_QA_DATASETS = ("narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh", "hotpotqa", "2wikimqa",
                     "musique", "dureader")
JUDGE_SUMMARY_DATASETS = ("gov_report", "qmsum", "multi_news", "vcsum")


def lm_eval_longbench():
    """(lm-evaluation-harness's LongBench ``metrics`` module, its ``_generate_config`` module)."""
    import warnings

    try:
        with warnings.catch_warnings():  # fuzzywuzzy: "Using slow pure-python SequenceMatcher"
            warnings.filterwarnings("ignore", message="Using slow pure-python SequenceMatcher")
            import lm_eval.tasks.longbench._generate_config as config
            from lm_eval.tasks.longbench import metrics
    except ImportError as exc:
        raise EvalError("LongBench metrics need the eval extra: pip install 'lm-eval==0.4.13' jieba fuzzywuzzy "
                        f"rouge ({exc})") from exc
    return metrics, config


def dataset_metrics() -> dict[str, Any]:
    """LongBench dataset name → its official metric function (``f(prediction, ground_truth, all_classes=...)``,
    0–1)."""
    metrics, config = lm_eval_longbench()
    return {name: getattr(metrics, fn) for name, fn in config.dataset2metric.items()}


def dataset_prompts() -> tuple[dict[str, str], dict[str, int]]:
    """LongBench's per-dataset prompt templates (fields ``{context}``, ``{question}``) and answer budgets (tokens)."""
    _, config = lm_eval_longbench()
    return dict(config.dataset2prompt), dict(config.dataset2maxlen)


def base_name(stem: str) -> str:
    """``hotpotqa_e`` → ``hotpotqa`` (LongBench-E files score with their dataset's metric)."""
    return stem.removesuffix("_e")


def first_line(prediction: str) -> str:
    """The official rule for the few-shot datasets: leading newlines dropped, then the first line."""
    return prediction.lstrip("\n").split("\n")[0]


def score_item(dataset: str, prediction: str, answers: Sequence[str], all_classes: Sequence[str] | None) -> float:
    """One prediction's score, 0–1: the best over ``answers`` of the dataset's metric (first-line rule applied)."""
    fn = dataset_metrics()[base_name(dataset)]
    if base_name(dataset) in FIRST_LINE_DATASETS:
        prediction = first_line(prediction)
    return max([0.0] + [float(fn(prediction, gt, all_classes=all_classes)) for gt in answers])


def bucket(length: int) -> str:
    """LongBench-E's length bucket of an item (``length`` in LongBench's words/characters)."""
    return "0-4k" if length < 4000 else "4-8k" if length < 8000 else "8k+"


def aggregate(scores: Sequence[float], lengths: Sequence[int] | None = None) -> float | dict[str, float | None]:
    """100 × mean rounded to 2 (or, with ``lengths``, per LongBench-E bucket; an empty bucket is None)."""
    if lengths is None:
        return round(100 * sum(scores) / len(scores), 2) if scores else None  # type: ignore[return-value]
    out: dict[str, float | None] = {}
    for b in BUCKETS:
        vals = [s for s, n in zip(scores, lengths) if bucket(n) == b]
        out[b] = round(100 * sum(vals) / len(vals), 2) if vals else None
    return out


def read_predictions(path: Path, *, need_length: bool) -> list[dict[str, Any]]:
    """The lines of a LongBench prediction file, checked: ``pred`` (str), ``answers`` (list of str),
    ``all_classes`` (list or null), and ``length`` (int) when ``need_length``."""
    rows = []
    for number, row in iter_jsonl(path, error=EvalError):
        if not isinstance(row, dict) or not isinstance(row.get("pred"), str):
            raise EvalError(f"{path}:{number}: needs a string field `pred`")
        if not isinstance(row.get("answers"), list) or not all(isinstance(a, str) for a in row["answers"]):
            raise EvalError(f"{path}:{number}: needs `answers`, a list of strings")
        if row.get("all_classes") is not None and not isinstance(row["all_classes"], list):
            raise EvalError(f"{path}:{number}: `all_classes` must be a list or null")
        if need_length and not isinstance(row.get("length"), int):
            raise EvalError(f"{path}:{number}: --e needs an integer `length`")
        rows.append(row)
    if not rows:
        raise EvalError(f"{path} has no predictions")
    return rows


def prediction_files(pred_dir: str | Path) -> dict[str, Path]:
    """``DATASET.jsonl`` files of a prediction folder by dataset stem; unknown names are an error."""
    folder = Path(pred_dir)
    if not folder.is_dir():
        raise EvalError(f"{folder} is not a folder of LongBench predictions")
    known = dataset_metrics()
    files = {p.stem: p for p in sorted(folder.glob("*.jsonl"))}
    if not files:
        raise EvalError(f"{folder} holds no DATASET.jsonl prediction files")
    unknown = [s for s in files if base_name(s) not in known]
    if unknown:
        raise EvalError(f"{folder}: {', '.join(f + '.jsonl' for f in unknown)} not LongBench dataset(s); "
                        f"known: {', '.join(known)}")
    return files


def score_pred_dir(pred_dir: str | Path, *, e: bool = False, judge: Any = None) -> dict[str, Any]:
    """Score every prediction file; write ``PRED_DIR/result.json`` (``{dataset: score}``, or buckets with
    ``e``), and ``longbench.csv/.json/.md``. With ``judge``, QA (1–3) and summary (1–5) datasets are also rated
    by the paper's judge prompts into ``result_judge.json`` (QA needs each line's question in ``input``)."""
    folder = Path(pred_dir)
    files = prediction_files(folder)
    result: dict[str, Any] = {}
    rows = []
    judged: dict[str, float | None] = {}
    for stem, path in files.items():
        preds = read_predictions(path, need_length=e)
        scores = [score_item(stem, p["pred"], p["answers"], p.get("all_classes")) for p in preds]
        result[stem] = aggregate(scores, [p["length"] for p in preds] if e else None)
        row: dict[str, Any] = {"dataset": stem, "metric": _metric_name(stem), "n": len(preds)}
        if e:
            row.update(result[stem])
        else:
            row["score"] = result[stem]
        if judge is not None and base_name(stem) in JUDGE_QA_DATASETS + JUDGE_SUMMARY_DATASETS:
            judged[stem] = _judge_dataset(judge, stem, preds, path)
            row["judge"] = judged[stem]
        rows.append(row)
    write_json(folder / "result.json", result)
    columns = ["dataset", "metric", "n"] + (list(BUCKETS) if e else ["score"]) + (["judge"] if judge else [])
    table = format_table(columns, [[r.get(c) for c in columns] for r in rows])
    summary: dict[str, Any] = {"pred_dir": str(folder), "e": e, "result": result}
    paths = {"result": folder / "result.json"}
    if judge is not None:
        write_json(folder / "result_judge.json", judged)
        paths["judge"] = folder / "result_judge.json"
        summary["judge"] = {**judge.describe(), "result": judged, "usage": vars(judge.usage).copy()}
    paths.update(write_outputs(folder / "gateau", "longbench", rows, columns=columns, summary=summary, table=table))
    summary["files"] = {k: str(v) for k, v in paths.items()}
    summary["table"] = table
    return summary


def _metric_name(stem: str) -> str:
    return dataset_metrics()[base_name(stem)].__name__


def _judge_dataset(judge: Any, stem: str, preds: list[dict[str, Any]], path: Path) -> float | None:
    from .judge import JudgeRequest
    from .judge_prompts import LONGBENCH_QA, LONGBENCH_SUMMARY

    requests = []
    for number, p in enumerate(preds, start=1):
        reference = "\n".join(p["answers"])
        if base_name(stem) in JUDGE_QA_DATASETS:
            if not isinstance(p.get("input"), str):
                raise EvalError(f"{path}:{number}: the QA judge needs the question in `input` (predict with "
                                "gateau eval longbench MODEL --data DIR, which stores it)")
            requests.append(JudgeRequest.user(LONGBENCH_QA.format(question=p["input"], reference=reference,
                                                                  response=p["pred"]), low=1, high=3))
        else:
            requests.append(JudgeRequest.user(LONGBENCH_SUMMARY.format(reference=reference, response=p["pred"]),
                                              low=1, high=5))
    verdicts = judge.judge(requests, desc=f"judging {stem}")
    return mean(v.rating for v in verdicts)


@dataclass(frozen=True)
class PredictConfig:
    """Settings of ``gateau eval longbench MODEL --data DIR``: data folder, output prediction folder, datasets
    (None: every known ``DATASET.jsonl`` in ``data``), prompt limit ``max_length`` in tokens (None: the model's
    window minus the dataset's answer budget and 64 tokens of chat template), ``limit`` records per dataset."""

    data: str
    out: str
    model: ModelSettings = field(default_factory=ModelSettings)
    datasets: tuple[str, ...] | None = None
    max_length: int | None = None
    limit: int | None = None
    overwrite: bool = False


def _read_data(path: Path, limit: int | None) -> list[dict[str, Any]]:
    records = []
    for number, rec in iter_jsonl(path, error=EvalError):
        missing = [k for k in ("context", "input", "answers") if not isinstance(rec, dict) or k not in rec]
        if missing:
            raise EvalError(f"{path}:{number}: a LongBench record needs {', '.join(missing)}")
        records.append(rec)
        if limit is not None and len(records) >= limit:
            break
    return records


def truncate_middle(tokenizer: Any, prompt: str, max_length: int) -> str:
    """pred.py's truncation: a prompt over ``max_length`` tokens keeps its first and last ``max_length // 2``."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_length:
        return prompt
    half = max_length // 2
    return (tokenizer.decode(ids[:half], skip_special_tokens=True)
            + tokenizer.decode(ids[-half:], skip_special_tokens=True))


def predict(config: PredictConfig, *, generator: Any = None) -> dict[str, Any]:
    """Answer every record of the chosen datasets (resumable per record, logs in ``OUT/gateau/``) and write the
    predictions in LongBench's layout, ``OUT/DATASET.jsonl`` (``pred``, ``answers``, ``all_classes``, ``length``,
    plus ``input`` and ``_id``)."""
    data = Path(config.data)
    if not data.is_dir():
        raise EvalError(f"--data {data} is not a folder of LongBench DATASET.jsonl files")
    prompts, budgets = dataset_prompts()
    available = {p.stem: p for p in sorted(data.glob("*.jsonl")) if base_name(p.stem) in prompts}
    names = list(config.datasets) if config.datasets else list(available)
    missing = [n for n in names if n not in available]
    if missing:
        raise EvalError(f"no {', '.join(m + '.jsonl' for m in missing)} in {data} (LongBench datasets there: "
                        f"{', '.join(available) or 'none'})")
    if not names:
        raise EvalError(f"{data} holds no LongBench dataset files (e.g. hotpotqa.jsonl)")
    start = time.perf_counter()
    gen = generator or load_generator(config.model)
    tok = gen.tokenizer
    out = Path(config.out)
    counts = {}
    for name in names:
        ds = base_name(name)
        budget = budgets[ds]
        limit = config.max_length or (gen.context_window or 4096) - budget - 64
        settings = {**config.model.fingerprint(), "dataset": name, "max_length": limit, "max_new_tokens": budget}
        log = ItemLog(out / "gateau" / f"{name}.items.jsonl", settings, overwrite=config.overwrite)
        records = _read_data(available[name], config.limit)
        items = []
        for i, rec in enumerate(records):
            key = str(rec.get("_id", i))
            if key in log:
                continue
            text = truncate_middle(tok, prompts[ds].format(context=rec["context"], question=rec["input"]), limit)
            prompt = Prompt(raw=text) if ds in RAW_PROMPT_DATASETS else Prompt.user(text)
            items.append(Item(key, render(tok, prompt), budget, {"index": i}))
        generate_items(gen, log, items, desc=name)
        lines = []
        for i, rec in enumerate(records):
            got = log.get(str(rec.get("_id", i)))
            lines.append({"pred": got["answer"], "answers": rec["answers"], "all_classes": rec.get("all_classes"),
                          "length": rec.get("length"), "input": rec["input"], "_id": rec.get("_id", i)})
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                                           encoding="utf-8")
        counts[name] = len(lines)
    return {"predictions": counts, "out": str(out), "wall_seconds": round(time.perf_counter() - start, 1)}


@dataclass(frozen=True, kw_only=True)
class LongBenchSettings(EvalSettings):
    """Settings of ``gateau eval longbench``: ``target`` is a prediction folder to score, or (with ``data``) a
    model that first predicts into ``out``; ``e``: LongBench-E buckets."""

    out: str | None = flag("prediction folder to write (default: OUT of --data/../pred/MODEL-NAME)", None)
    target: str = flag("a prediction folder, or a model (with --data)", positional=True)
    e: bool = flag("LongBench-E: scores per length bucket 0-4k, 4-8k, 8k+", False)
    data: str | None = flag("folder of LongBench-format data files DATASET.jsonl (makes TARGET a model)", None)
    datasets: tuple[str, ...] | None = flag("comma-separated datasets to predict (default: every known "
                                            "DATASET.jsonl in --data)", None, parse=names)
    max_length: int | None = flag("prompt tokens; longer prompts lose their middle (default: the model's window "
                                  "minus the dataset's answer budget)", None, parse=int)
    limit: int | None = flag("predict only the first N records of each dataset", None, parse=int)

    def prediction_dir(self) -> str:
        """The folder scored: ``target`` itself, or the one ``data`` is predicted into."""
        if self.data is None:
            return self.target
        return self.out or str(Path(self.data).parent / "pred" / Path(self.target.rstrip("/")).name)

    def output_dir(self) -> str | None:
        """The prediction folder written with ``data`` (scoring a folder only adds its result.json)."""
        return None if self.data is None else self.prediction_dir()

    def inputs(self) -> tuple[str | None, ...]:
        return (self.target, self.data)

    def validate(self) -> None:
        if self.data is None and not Path(self.target).is_dir():
            raise EvalError(f"{self.target} is not a prediction folder; to predict with a model, give --data DIR")


@register
class LongBench(Evaluation):
    """LongBench: official metrics on a prediction folder, after predicting it when ``data`` is given. Its
    outputs follow LongBench's layout, so it overrides ``execute`` and uses the runner's ``generate_items``."""

    command = "longbench"
    name = "longbench"
    help = "LongBench metrics on a prediction folder, or predict then score"
    description = ("PRED_DIR: score LongBench prediction files (PRED_DIR/DATASET.jsonl with pred, answers, "
                   "all_classes, length) with LongBench's official metrics and write PRED_DIR/result.json. MODEL "
                   "--data DIR: first predict on LongBench-format data files (DIR/DATASET.jsonl) with the official "
                   "prompts and lengths into --out, then score them.")
    settings_type = LongBenchSettings
    judge = "optional"
    model_argument = False

    @classmethod
    def judge_dir(cls, settings: LongBenchSettings) -> str:
        return str(Path(settings.prediction_dir()) / "gateau")

    @classmethod
    def execute(cls, settings: LongBenchSettings, judge: Any = None, *, generator: Any = None) -> dict[str, Any]:
        settings.validate()
        folder = settings.prediction_dir()
        if settings.data is not None:
            predict(PredictConfig(data=settings.data, out=folder, model=replace(settings.model, model=settings.target),
                                  datasets=settings.datasets, max_length=settings.max_length, limit=settings.limit,
                                  overwrite=settings.overwrite), generator=generator)
        return score_pred_dir(folder, e=settings.e, judge=judge)
