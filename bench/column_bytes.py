"""Bytes per sample that each stored column takes in a run's ``scores.parquet``.

    python bench/column_bytes.py RUN [--columns tok_nll_long,tok_nll_short,seg_attn_neutral,attn_head_neutral]

Reads the Parquet footer only (no data): for every column, the compressed and uncompressed bytes of its column
chunks over all row groups, divided by the number of rows; then the total of ``--columns`` (default: the columns
added for token-level scores and attention calibration) and its share of the file.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

NEW_COLUMNS = "tok_nll_long,tok_nll_short,seg_attn_neutral,attn_head_neutral"


def column_bytes(path: Path) -> tuple[int, dict[str, tuple[int, int]]]:
    """(rows, {top-level column: (compressed bytes, uncompressed bytes)}) from the Parquet footer of ``path``."""
    meta = pq.ParquetFile(path).metadata
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            name = chunk.path_in_schema.split(".")[0]  # list columns: "tok_nll_long.list.element"
            sizes[name][0] += chunk.total_compressed_size
            sizes[name][1] += chunk.total_uncompressed_size
    return meta.num_rows, {k: (v[0], v[1]) for k, v in sizes.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory (or a .parquet file)")
    p.add_argument("--columns", default=NEW_COLUMNS, help="columns to total (comma-separated)")
    args = p.parse_args()
    path = Path(args.run)
    path = path / "scores.parquet" if path.is_dir() else path
    rows, sizes = column_bytes(path)
    print(f"{path}: {rows} rows, {path.stat().st_size} bytes on disk ({path.stat().st_size / rows:.0f} per row)")
    print(f"{'column':<20} {'compressed B/row':>17} {'uncompressed B/row':>19}")
    for name, (comp, raw) in sorted(sizes.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:<20} {comp / rows:>17.1f} {raw / rows:>19.1f}")
    chosen = [c for c in args.columns.split(",") if c]
    comp = sum(sizes.get(c, (0, 0))[0] for c in chosen)
    raw = sum(sizes.get(c, (0, 0))[1] for c in chosen)
    total = sum(v[0] for v in sizes.values())
    print(f"{'+'.join(chosen)}: {comp / rows:.0f} B/row compressed ({comp / total:.0%} of all columns), "
          f"{raw / rows:.0f} B/row uncompressed")


if __name__ == "__main__":
    main()
