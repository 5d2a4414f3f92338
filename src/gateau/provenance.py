"""The provenance chain: run -> selection -> trained model -> evaluations, each pointing to the one before.

- ``gateau select --out FILE.jsonl`` writes ``FILE.jsonl.meta.json`` beside it (`write_selection_meta`): the
  file's sha256 and record count, the selection settings (method, options, ratio/count) and the run it ranked
  (absolute path, settings fingerprint, sha256 of its ``config.json``, the measurement settings, the data scored).
  A sidecar keeps the records byte-for-byte as before; its sha256 tells whether the file is still the one described.
  The run keeps the other direction: one line per export in ``RUN/exports.jsonl`` (`record_export`), which
  `gateau report` lists.
- ``gateau train`` writes ``OUT/gateau_provenance.json`` (`model_provenance`): the base model, each data file with
  its sha256 and, for a selection, its sidecar and a summary of the records' ``gateau`` objects; the recipe; the
  final loss. The model card (``OUT/README.md``) shows the same.
- ``gateau eval`` results carry the evaluated model's provenance (`read_model_provenance`) in their summary.

Torch-free; reads and writes small JSON files only.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from .util.atomic import atomic_write

SELECTION_META_SUFFIX = ".meta.json"
RUN_EXPORTS_FILE = "exports.jsonl"
MODEL_PROVENANCE_FILE = "gateau_provenance.json"
SELECTION_KIND = "gateau.selection"
MODEL_KIND = "gateau.model"
_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def selection_meta_path(selection_file: str | Path) -> Path:
    """Where the sidecar of a selection file lives: ``FILE.jsonl`` -> ``FILE.jsonl.meta.json``."""
    return Path(f"{selection_file}{SELECTION_META_SUFFIX}")


def write_selection_meta(selection_file: str | Path, *, run: str | Path, run_config: dict[str, Any],
                         selection: dict[str, Any], records: int, data: str) -> Path:
    """Write the sidecar of ``selection_file`` (already written, complete); returns its path.

    ``run_config``: the run's ``config.json`` as read; ``selection``: method, options, ratio, count;
    ``data``: the records file the selection was exported from.
    """
    run_dir = Path(run).resolve()
    meta = {
        "kind": SELECTION_KIND,
        "file": Path(selection_file).name,
        "sha256": file_sha256(selection_file),
        "records": records,
        "selection": selection,
        "run": {"path": str(run_dir), "fingerprint": run_config.get("fingerprint"),
                "config_sha256": file_sha256(run_dir / "config.json"),
                "measure": run_config.get("measure", {}), "n_records": run_config.get("n_records")},
        "data": {"path": str(Path(data).resolve()) if Path(data).is_file() else data,
                 "sha256": file_sha256(data) if Path(data).is_file() else None},
    }
    path = selection_meta_path(selection_file)
    atomic_write(path, json.dumps(meta, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def record_export(run: str | Path, meta_path: Path) -> bool:
    """Append the export described by the sidecar ``meta_path`` to ``RUN/exports.jsonl`` (file, sha256, records,
    selection settings); False when the run directory cannot be written (a read-only run: the sidecar alone then
    holds the link)."""
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    line = {"file": str(Path(str(meta_path)[: -len(SELECTION_META_SUFFIX)]).resolve()), "sha256": meta["sha256"],
            "records": meta["records"], "selection": meta["selection"]}
    try:
        with open(Path(run) / RUN_EXPORTS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
    except OSError:
        return False
    return True


def run_exports(run: str | Path) -> list[dict[str, Any]]:
    """The exports recorded in ``RUN/exports.jsonl``, each with ``state``: "matches" (the file is still the one
    exported), "changed" or "missing"; an unreadable line is skipped."""
    path = Path(run) / RUN_EXPORTS_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        file = Path(entry.get("file", ""))
        state = "missing" if not file.is_file() else "matches" if file_sha256(file) == entry.get("sha256") else \
            "changed"
        out.append({**entry, "state": state})
    return out


def read_selection_meta(selection_file: str | Path, sha256: str | None = None) -> dict[str, Any] | None:
    """The sidecar of ``selection_file`` with ``matches`` added (its sha256 equals the file's, or ``sha256`` when
    given), or None when there is none or it is not a selection sidecar."""
    path = selection_meta_path(selection_file)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(meta, dict) or meta.get("kind") != SELECTION_KIND:
        return None
    actual = sha256 or file_sha256(selection_file)
    return {**meta, "matches": meta.get("sha256") == actual}


def gateau_objects_summary(path: str | Path) -> dict[str, Any] | None:
    """What the ``gateau`` objects of a JSONL selection say: records, how many carry one, methods (with counts),
    score range and rank range; None when the file is not JSONL or no record carries a ``gateau`` object."""
    if Path(path).suffix.lower() != ".jsonl" or not Path(path).is_file():
        return None
    methods: Counter = Counter()
    scores: list[float] = []
    ranks: list[int] = []
    records = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            records += 1
            try:
                obj = json.loads(line).get("gateau")
            except (json.JSONDecodeError, AttributeError):
                continue
            if not isinstance(obj, dict):
                continue
            methods[str(obj.get("method"))] += 1
            if isinstance(obj.get("score"), (int, float)):
                scores.append(float(obj["score"]))
            if isinstance(obj.get("rank"), int):
                ranks.append(obj["rank"])
    if not methods:
        return None
    return {"records": records, "with_gateau": sum(methods.values()), "methods": dict(methods),
            "score_min": min(scores) if scores else None, "score_max": max(scores) if scores else None,
            "rank_min": min(ranks) if ranks else None, "rank_max": max(ranks) if ranks else None}


def data_entry(role: str, source: str | Path, file: str | Path | None = None) -> dict[str, Any]:
    """One training data source: ``role`` (long / short), ``source`` as given, the ``file`` read (default: the
    source) with its sha256 (None for a hub dataset name), and for a selection its sidecar and ``gateau`` objects."""
    file = Path(file if file is not None else source)
    if not file.is_file():
        return {"role": role, "source": str(source), "path": None, "sha256": None, "selection": None,
                "gateau_objects": None}
    sha = file_sha256(file)
    return {"role": role, "source": str(source), "path": str(file.resolve()), "sha256": sha,
            "selection": read_selection_meta(file, sha), "gateau_objects": gateau_objects_summary(file)}


def write_model_provenance(out: str | Path, provenance: dict[str, Any]) -> Path:
    """Write ``OUT/gateau_provenance.json``; returns its path."""
    path = Path(out) / MODEL_PROVENANCE_FILE
    atomic_write(path, json.dumps({"kind": MODEL_KIND, **provenance}, indent=2, ensure_ascii=False,
                                  default=str) + "\n")
    return path


def read_model_provenance(model: str | Path) -> dict[str, Any] | None:
    """The provenance of a model folder made by `gateau train` (with its path), or None for any other model (a hub
    id, a GGUF file, a folder without the file)."""
    path = Path(model) / MODEL_PROVENANCE_FILE
    if not path.is_file():
        return None
    try:
        prov = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(prov, dict) or prov.get("kind") != MODEL_KIND:
        return None
    return {"model_path": str(Path(model).resolve()), **prov}


def chain_lines(provenance: dict[str, Any]) -> list[str]:
    """The chain of a model's provenance, newest first, one link per line (Markdown list items)."""
    lines = []
    if provenance.get("model_path"):
        lines.append(f"- model `{provenance['model_path']}`")
    lines.append(f"- trained from base model `{provenance.get('base_model')}` with `gateau train` "
                 f"(final loss {_number(provenance.get('result', {}).get('final_loss'))})")
    for entry in provenance.get("data", []):
        sha = entry.get("sha256")
        lines.append(f"- on {entry['role']} data `{entry.get('path') or entry['source']}`"
                     + (f" (sha256 `{sha}`)" if sha else " (not a local file: no hash)"))
        meta = entry.get("selection")
        if meta:
            sel = meta.get("selection", {})
            amount = f"ratio {sel['ratio']}" if sel.get("ratio") is not None else f"count {sel.get('count')}"
            state = "matches the file" if meta.get("matches") else "DOES NOT match the file (edited since export)"
            lines.append(f"  - selected by `gateau select` (method `{sel.get('method')}`, {amount}, options "
                         f"{json.dumps(sel.get('options') or {}, sort_keys=True)}); its sidecar {state}")
            run = meta.get("run", {})
            lines.append(f"  - from run `{run.get('path')}` (settings fingerprint `{run.get('fingerprint')}`, "
                         f"config.json sha256 `{run.get('config_sha256')}`)")
            data = meta.get("data", {})
            lines.append(f"  - which scored `{data.get('path')}`"
                         + (f" (sha256 `{data['sha256']}`)" if data.get("sha256") else ""))
        elif entry.get("role") == "long" and entry.get("sha256"):
            lines.append("  - no selection sidecar (`FILE.jsonl.meta.json`): the chain stops here")
    return lines


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"
