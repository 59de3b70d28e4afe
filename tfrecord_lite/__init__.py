"""tfrecord_lite: write and read TFRecord files of image Examples, without TensorFlow.

Heavy modules (Pillow, numpy, tqdm) are imported only when a job needs them, so
``import tfrecord_lite`` stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .crc32c import BACKEND as CRC_BACKEND
from .crc32c import masked_crc32c
from .dataset import JsonLines, open_dataset
from .errors import (
    CorruptRecordError,
    DatasetError,
    ExampleDecodeError,
    ExampleError,
    ImageError,
    IndexFileError,
    InterruptedRunError,
    OutputBusyError,
    RecordDecodeError,
    RecordError,
    ResumeError,
    TFRecordLiteError,
    TruncatedRecordError,
    ValidationError,
    WriteError,
)
from .example import decode_example, encode_example
from .reader import iterate, read_examples, read_index, read_record_at, read_records, write_index
from .verify import stats, verify_files
from .writer import (
    JobSummary,
    TFRecordWriter,
    ValidationReport,
    create,
    validate_dataset,
    write_dataset,
)

__all__ = [
    "CRC_BACKEND",
    "CorruptRecordError",
    "DatasetError",
    "ExampleDecodeError",
    "ExampleError",
    "ImageError",
    "IndexFileError",
    "InterruptedRunError",
    "JobSummary",
    "JsonLines",
    "OutputBusyError",
    "RecordDecodeError",
    "RecordError",
    "ResumeError",
    "TFRecordLiteError",
    "TFRecordWriter",
    "TruncatedRecordError",
    "ValidationError",
    "ValidationReport",
    "WriteError",
    "__version__",
    "create",
    "decode_example",
    "encode_example",
    "iterate",
    "masked_crc32c",
    "open_dataset",
    "read_examples",
    "read_index",
    "read_record_at",
    "read_records",
    "stats",
    "validate_dataset",
    "verify_files",
    "write_dataset",
    "write_index",
]

