"""`gateau bench e2e --extra-eval FILE.jsonl`: every stored arm model (and the untrained one) answers a user's own
held-out QA set; QA F1/EM per arm over seeds and the same hierarchical bootstrap, no retraining.

Record format, one JSON object per line: ``context`` (text), ``question`` (text), ``answers`` (a list of accepted
answers, or one string); optional ``id`` (default ``extra-<line>``) and ``source`` (default ``extra``). The prompt
is the benchmark's own (``context``, a blank line, ``Question: question``); the score is LongBench's qa_f1 of the
first line of a greedy answer. Answers are stored per model in ``arms/ARM/seedS/extra/<name>-<sha8>/`` (the file's
name and the first 8 hex digits of its sha256), so a re-run generates only what is missing and an edited file
starts afresh. Writes ``OUT/extra-<name>/results.md`` and ``results.json``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ...errors import NotFoundError, UsageError
from ...hub import NO_HUB_OPTIONS, HubOptions
from ...util.atomic import atomic_write
from .report import ci_lines, comparisons
from .stats import mean_std

UNTRAINED = "untrained"


def read_extra_eval(path: str | Path) -> list[dict[str, Any]]:
    """The records of an --extra-eval file, checked (see the module docstring for the format)."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"--extra-eval {path}: no such file")
    items, seen = [], set()
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"--extra-eval {path} line {line_no}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not JSON ({exc.msg}); give one JSON object per line") from None
        if not isinstance(record, dict):
            raise UsageError(f"{where}: not a JSON object; give {{\"context\", \"question\", \"answers\"}}")
        answers = record.get("answers")
        answers = [answers] if isinstance(answers, str) else answers
        if not isinstance(record.get("context"), str) or not isinstance(record.get("question"), str) or not (
                isinstance(answers, list) and answers and all(isinstance(a, str) for a in answers)):
            raise UsageError(f"{where}: needs \"context\" and \"question\" (text) and \"answers\" (a list of text)")
        item_id = str(record.get("id", f"extra-{line_no}"))
        if item_id in seen:
            raise UsageError(f"{where}: id {item_id!r} repeats; give every record its own id")
        seen.add(item_id)
        items.append({"id": item_id, "source": str(record.get("source", "extra")), "context": record["context"],
                      "question": record["question"], "answers": answers})
    if not items:
        raise UsageError(f"--extra-eval {path}: no records; give one JSON object per line")
    return items


def stored_models(out: Path, untrained_model: str) -> list[tuple[str, int | None, str, Path]]:
    """(arm, seed, model folder or id, where its extra answers go) for the untrained model and every arm model
    stored under ``out/arms`` (a model folder with ``config.json``), sorted."""
    found = [(UNTRAINED, None, untrained_model, out / "arms" / UNTRAINED)]
    for model_dir in sorted((out / "arms").glob("*/seed*/model")):
        seed = model_dir.parent.name[len("seed"):]
        if (model_dir / "config.json").is_file() and seed.isdigit():
            found.append((model_dir.parent.parent.name, int(seed), str(model_dir), model_dir.parent))
    return found


def run_extra_eval(out: str | Path, path: str | Path, untrained_model: str, *, max_new_tokens: int = 32,
                   device: str = "cpu", progress: bool = False, n_boot: int = 2000,
                   train_last_layers: int | None = None, hub: HubOptions = NO_HUB_OPTIONS) -> dict[str, Any]:
    """Evaluate every stored model of the benchmark in ``out`` on ``path`` and write the report; returns it.
    ``train_last_layers``: the arms' recipe, so the layers they share with the untrained model are computed once
    (`shared_prefix`). ``hub``: revision and trust_remote_code of ``untrained_model`` and the arms' models."""
    from .evaluate import evaluate_qa
    from .shared_prefix import store_for

    out, path = Path(out), Path(path)
    items = read_extra_eval(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    name = f"{path.stem}-{digest}"
    rows = []
    models = stored_models(out, untrained_model)
    if len(models) == 1:
        raise NotFoundError(f"{out}: no trained arm model under arms/*/seed*/model; run `gateau bench e2e --out "
                            f"{out}` first")
    store = store_for(untrained_model, train_last_layers, device=device, hub=hub)
    for arm, seed, model, where in models:
        res = evaluate_qa(model, where / "extra" / name, items, max_new_tokens=max_new_tokens, device=device,
                          progress=progress, store=store, hub=hub)
        rows.append({"arm": arm, "seed": seed, **res})
        print(f"gateau bench e2e --extra-eval: {arm} seed {seed}: QA F1 {res['qa_f1']:.2f}", flush=True)
    report = summarize_extra(rows, n_boot=n_boot)
    results = {"file": str(path), "sha256_8": digest, "n_items": len(items), **report, "rows": rows}
    folder = out / f"extra-{path.stem}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "results.json", json.dumps(results, indent=1) + "\n")
    atomic_write(folder / "results.md", "\n".join(_lines(results, n_boot)) + "\n")
    print(f"gateau bench e2e --extra-eval: wrote {folder / 'results.md'} and results.json", flush=True)
    return results


def summarize_extra(rows: list[dict[str, Any]], *, n_boot: int) -> dict[str, Any]:
    """QA F1/EM mean ± std per arm over its seeds, and the report's comparisons (hierarchical bootstrap)."""
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    table = {}
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm]
        table[arm] = {"seeds": [r["seed"] for r in mine],
                      **{m: dict(zip(("mean", "std"), mean_std([r[m] for r in mine]))) for m in ("qa_f1", "qa_em")}}
    return {"arms": table, "ci": comparisons(rows, n_boot)}


def _lines(results: dict[str, Any], n_boot: int) -> list[str]:
    lines = [f"# gateau bench e2e --extra-eval {Path(results['file']).name}", "",
             f"{results['n_items']} items (sha256 {results['sha256_8']}…); every stored arm model, no retraining.",
             "",
             "| arm | seeds | QA F1 | QA EM |", "|---|---|---|---|"]
    for arm, t in results["arms"].items():
        lines.append(f"| {arm} | {len(t['seeds'])} | {t['qa_f1']['mean']:.2f} ± {t['qa_f1']['std']:.2f} | "
                     f"{t['qa_em']['mean']:.2f} ± {t['qa_em']['std']:.2f} |")
    return lines + [""] + ci_lines(results["ci"], n_boot)
