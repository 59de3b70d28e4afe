"""tfrecord_lite: write and read TFRecord files of image Examples, without TensorFlow.

Heavy modules (Pillow, numpy, tqdm) are imported only when a job needs them, so
``import tfrecord_lite`` stays fast: the job's names (``create``, ``write_dataset``, ...)
load the local runner (``local``, which needs Pillow) on first use.
"""

from __future__ import annotations

# isort: off
from . import _startup  # noqa: F401  (first: Ctrl-C while the command starts is quiet)
# isort: on

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .crc32c import BACKEND as CRC_BACKEND
from .crc32c import masked_crc32c
from .dataset import JsonLines, open_dataset
from .decode import decode_example
from .errors import (
    CompressionMismatchError,
    CorruptRecordError,
    DatasetError,
    ExampleDecodeError,
    ExampleError,
    ImageError,
    IndexFileError,
    InterruptedRunError,
    MaskError,
    OptionsError,
    OutputBusyError,
    RecordDecodeError,
    RecordError,
    ResumeError,
    TFRecordLiteError,
    TruncatedRecordError,
    ValidationError,
    WriteError,
)
from .example import encode_example
from .options import JobOptions
from .reader import iterate, read_examples, read_index, read_record_at, read_records, write_index
from .records import TFRecordWriter
from .stats import stats
from .verify import verify_files

if TYPE_CHECKING:
    from .dryrun import ValidationReport, validate_dataset
    from .local import JobSummary, create, write_dataset

# Names of the local runner and the dry run, imported on first use (they import Pillow).
_LAZY = {"JobSummary": "local", "create": "local", "write_dataset": "local",
         "ValidationReport": "dryrun", "validate_dataset": "dryrun"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CRC_BACKEND",
    "CompressionMismatchError",
    "CorruptRecordError",
    "DatasetError",
    "ExampleDecodeError",
    "ExampleError",
    "ImageError",
    "IndexFileError",
    "InterruptedRunError",
    "JobOptions",
    "JobSummary",
    "JsonLines",
    "MaskError",
    "OptionsError",
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

