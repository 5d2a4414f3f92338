"""What a record is: file formats (`read`), shapes and turns (`turns`), and the views of a record: the scoring
`Sample` and the judge view (`samples`); the training messages are built on `turns` in `gateau.train.data`."""

from .read import EXPECTED_SHAPES_HELP, DataError, RecordSource, iter_records
from .content import content_hash
from .samples import (FieldMap, Sample, SampleIndex, SampleReader, SampleRef, index_samples, judge_view,
                      load_records_by_id, load_samples, record_id, record_to_sample, recorded_source,
                      source_of)
from .turns import ROLES, SHAPES, Turn, detect_shape, record_turns

__all__ = ["EXPECTED_SHAPES_HELP", "ROLES", "SHAPES", "DataError", "FieldMap", "RecordSource", "Sample",
           "SampleIndex", "SampleReader", "SampleRef", "Turn", "content_hash", "detect_shape", "index_samples",
           "iter_records", "judge_view", "load_records_by_id", "load_samples", "record_id", "record_to_sample",
           "record_turns", "recorded_source", "source_of"]
