"""The CAM cascade replayed on a complete run, for the benchmark: what `gateau score --cam-top F` stores, built from
the rows of a run that measured CAM on every sample.

A real cascade computes the same numbers (phase 1 runs the complete run's full and window rows in the same
batches; phase 2's segment rows differ from the complete run's only by float rounding in differently padded
batches; tests/test_cascade.py checks that the replay and a real cascade rank alike), so one complete run gives
the selection of every F.
"""

from __future__ import annotations

import pyarrow as pa

from ...methods.cam import CASCADE_COLUMN, CASCADE_TOP
from ...pipeline.cascade import hmg_top, rest_row


def replay(table: pa.Table, cam_top: float) -> tuple[pa.Table, list[str]]:
    """(the table a cascade of fraction ``cam_top`` would store, its top ids best first) from a complete run's
    ``table``. Samples without a final ok row keep their row and no cascade mark, as in a real cascade."""
    rows = table.to_pylist()
    top = hmg_top([r["id"] for r in rows], [r["status"] for r in rows], [r["nll_short"] for r in rows],
                  [r["nll_long"] for r in rows], cam_top)
    chosen = set(top)
    out = []
    for row in rows:
        if row["id"] in chosen:
            out.append({**row, CASCADE_COLUMN: CASCADE_TOP})
        elif row["status"] == "ok":
            out.append(rest_row(row, cam_top))
        else:
            out.append({**row, CASCADE_COLUMN: None})
    schema = table.schema.append(pa.field(CASCADE_COLUMN, pa.string()))
    return pa.Table.from_pylist(out, schema=schema), top
