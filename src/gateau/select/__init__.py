"""Dataset-level combination, ranking and export of a scored run; torch-free (no model is ever loaded here)."""

from .choose import Selection, export_jsonl, select
from .rank import DATASET_NORMS, PRESETS, Ranking, rank_table, resolve_options, table_columns

__all__ = ["DATASET_NORMS", "PRESETS", "Ranking", "Selection", "export_jsonl", "rank_table", "resolve_options",
           "select", "table_columns"]
