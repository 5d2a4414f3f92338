"""Dataset-level combination, ranking and export of a scored run; torch-free (no model is ever loaded here)."""

from .choose import DataMismatchError, Selection, export_jsonl, select, verify_data
from .rank import GENERIC_COMPONENTS, Ranking, rank_table, table_columns

__all__ = ["GENERIC_COMPONENTS", "DataMismatchError", "Ranking", "Selection", "export_jsonl", "rank_table", "select",
           "table_columns", "verify_data"]
