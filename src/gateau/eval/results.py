"""One results writer for every evaluation: a resumable per-item log, and JSON + CSV + a readable table.

``ItemLog`` is an append-only JSONL file (``DIR/NAME.items.jsonl``). Its first line holds the settings that
determine the items (model, prompts, generation settings); every further line is one finished item with a unique
``key``. Each line is flushed and fsynced as it is written, so a run killed at any moment loses at most the item
in progress, and a re-run with the same settings skips the items already there. A log written with other
settings is refused (``SettingsMismatch``) unless the caller asks to overwrite it.

``write_outputs`` writes ``NAME.json`` (summary + rows), ``NAME.csv`` (rows) and ``NAME.md`` (the table a person
reads, also printed by the CLI).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from gateau.errors import GateauError
from gateau.util.settings_hash import settings_hash


class EvalError(GateauError, ValueError):
    """Bad input to an evaluation (missing files, malformed records, unknown names): shown to the user as is."""


class SettingsMismatch(EvalError):
    """An existing item log was written with other settings."""


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


class ItemLog:
    """Append-only per-item JSONL log with a settings header (see the module docstring).

    ``settings`` must be JSON-serialisable; items are dicts, stored with their ``key``.
    """

    def __init__(self, path: str | Path, settings: dict[str, Any], *, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.settings = json.loads(_dump(settings))
        self._items: dict[str, dict[str, Any]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and overwrite:
            self.path.unlink()
        if self.path.exists():
            self._load()
        else:
            self._append({"settings": self.settings, "settings_hash": settings_hash(self.settings)})

    def _load(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        if not lines:
            self._append({"settings": self.settings, "settings_hash": settings_hash(self.settings)})
            return
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError as exc:
            raise EvalError(f"{self.path}: the first line is not the settings header ({exc}); remove the file "
                            "or pass --overwrite") from exc
        if header.get("settings_hash") != settings_hash(self.settings):
            old = header.get("settings", {})
            changed = sorted(k for k in set(old) | set(self.settings) if old.get(k) != self.settings.get(k))
            raise SettingsMismatch(f"{self.path} was written with other settings (changed: {', '.join(changed)}); "
                                   "use another --out directory or pass --overwrite to start again")
        for number, line in enumerate(lines[1:], start=2):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # a line cut short by a kill: that item is simply redone
                    self._truncate_last_line()
                    break
                raise EvalError(f"{self.path}:{number}: malformed line; remove the file or pass --overwrite")
            self._items[str(item["key"])] = item

    def _truncate_last_line(self) -> None:
        data = self.path.read_bytes()
        keep = data[: data.rstrip(b"\n").rfind(b"\n") + 1]
        self.path.write_bytes(keep)

    def _append(self, obj: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(_dump(obj) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def __contains__(self, key: object) -> bool:
        return str(key) in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored item of ``key``, or None."""
        return self._items.get(str(key))

    def add(self, key: str, item: dict[str, Any]) -> dict[str, Any]:
        """Store one finished item (durably) and return it as stored."""
        record = json.loads(_dump({"key": str(key), **item}))
        self._append(record)
        self._items[str(key)] = record
        return record

    def items(self) -> list[dict[str, Any]]:
        """Stored items in the order they were written."""
        return list(self._items.values())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.2f}"
    return str(value).replace("\n", " ").replace("|", "\\|")


def format_table(header: Sequence[str], body: Iterable[Sequence[Any]]) -> str:
    """A Markdown pipe table; floats with 2 decimals, None as an empty cell."""
    rows = [[_cell(h) for h in header]] + [[_cell(v) for v in row] for row in body]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the non-None values, None when there are none."""
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def pivot(rows: Sequence[dict[str, Any]], row_key: str, col_key: str, value: str, *,
          row_label: str | None = None, with_mean: bool = True) -> tuple[list[str], list[list[Any]]]:
    """Table of mean ``value`` by ``row_key`` (lines) × ``col_key`` (columns), in first-seen order.

    With ``with_mean``, a last column holds each line's mean over its cells and a last line each column's mean.
    """
    row_names = list(dict.fromkeys(r[row_key] for r in rows))
    col_names = list(dict.fromkeys(r[col_key] for r in rows))
    cells: dict[tuple[Any, Any], list[float | None]] = {}
    for r in rows:
        cells.setdefault((r[row_key], r[col_key]), []).append(r[value])
    grid = [[mean(cells.get((rn, cn), [])) for cn in col_names] for rn in row_names]
    header = [row_label or row_key] + [str(c) for c in col_names]
    body: list[list[Any]] = []
    for rn, line in zip(row_names, grid):
        body.append([rn] + line + ([mean(line)] if with_mean else []))
    if with_mean:
        header.append("mean")
        columns = [[line[j] for line in grid] for j in range(len(col_names))]
        body.append(["mean"] + [mean(c) for c in columns] + [mean(v for line in grid for v in line)])
    return header, body


def write_outputs(out_dir: str | Path, name: str, rows: Sequence[dict[str, Any]], *,
                  columns: Sequence[str] | None = None, summary: dict[str, Any] | None = None,
                  table: str | None = None) -> dict[str, Path]:
    """Write ``NAME.csv`` (``rows`` with ``columns``, default: the keys of the first row), ``NAME.json``
    (``{"summary": ..., "rows": ...}``) and, when ``table`` is given, ``NAME.md``. Returns the paths by kind.
    When ``summary["model"]`` is a folder made by `gateau train`, the JSON summary also holds its provenance
    (``model_provenance``: data, selection and run behind the model, see `gateau.provenance`)."""
    from ..provenance import read_model_provenance

    summary = dict(summary or {})
    model_provenance = read_model_provenance(summary["model"]) if isinstance(summary.get("model"), str) else None
    if model_provenance is not None:
        summary["model_provenance"] = model_provenance
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cols = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    paths = {"csv": out / f"{name}.csv", "json": out / f"{name}.json"}
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c) for c in cols})
    paths["json"].write_text(_dump_pretty({"summary": summary, "rows": list(rows)}), encoding="utf-8")
    if table is not None:
        paths["md"] = out / f"{name}.md"
        paths["md"].write_text(table + "\n", encoding="utf-8")
    return paths


def _dump_pretty(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n"


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(_dump_pretty(obj), encoding="utf-8")
    return p
