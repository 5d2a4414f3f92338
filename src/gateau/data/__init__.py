"""Input records -> `Sample`s: file formats (`read`), record shapes and per-sample statuses (`samples`)."""

from .read import EXPECTED_SHAPES_HELP, DataError, iter_records
from .content import content_hash
from .samples import SHAPES, FieldMap, Sample, detect_shape, load_records_by_id, load_samples, record_to_sample

__all__ = ["EXPECTED_SHAPES_HELP", "SHAPES", "DataError", "FieldMap", "Sample", "content_hash", "detect_shape",
           "iter_records", "load_records_by_id", "load_samples", "record_to_sample"]
