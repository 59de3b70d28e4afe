"""The exceptions raised by tfrecord_lite.

Every exception the library raises on purpose derives from :class:`TFRecordLiteError`;
each leaf also inherits the builtin it resembles, so ``except ValueError`` keeps
working for callers who do not know this package::

    TFRecordLiteError
    ├── RecordError                      (problems in a TFRecord file)
    │   ├── CorruptRecordError           + ValueError   a CRC does not match, a length over
    │   │                                               the limit, a damaged compressed stream
    │   ├── TruncatedRecordError         + EOFError     the file ends inside a record
    │   ├── CompressionMismatchError     + ValueError   the file's compression is not the
    │   │                                               one given
    │   └── RecordDecodeError            + ExampleDecodeError   a record of a file is not an
    │                                                   Example, or its features have the
    │                                                   wrong types
    ├── IndexFileError                   + ValueError   an ``.idx`` file that does not fit
    ├── ExampleError                     + ValueError   an item cannot become an Example
    │   ├── ValidationError                             its annotations fail validation
    │   ├── MaskError                                   a mask or label image cannot be made
    │   └── ExampleDecodeError                          bytes that are not an Example
    ├── DatasetError                     + ValueError   a dataset file cannot be read
    │   └── LabelMapError                               a label map that does not fit the
    │                                                   output folder's
    ├── ResumeError                      + ValueError   an interrupted run cannot be resumed
    │   └── InterruptedRunError                         ... or is there, and would be lost
    ├── OutputBusyError                  + BlockingIOError  another run writes the prefix
    ├── OptionsError                     + ValueError   a job option is out of range
    ├── StorageError                     + ValueError   a URL needs fsspec (or its scheme's package)
    ├── ImageError                       + ValueError   missing, empty, cut or undecodable image
    └── WriteError                                      the output could not be written (disk
                                                        full, ...); chained to the OSError

``WriteError`` is deliberately not an ``OSError``: the library catches ``OSError`` where it
reads and writes files, and its own errors must pass through those handlers unchanged.
``write_errors`` is the one place that turns an ``OSError`` into a ``WriteError``.
"""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Iterator


class TFRecordLiteError(Exception):
    """Root of every error raised by tfrecord_lite."""


def record_place(path: str | None = None, index: int | None = None,
                 offset: int | None = None, *, uncompressed: bool = False,
                 at_end: bool = False) -> str:
    """Where a record is, as messages say it: ``out/train-00000-of-00002, record 3, byte
    offset 2249``. In a compressed file the offset is one of the uncompressed stream, and
    says so; ``at_end``: past the last record (``index`` is then the number of records)."""
    where = []
    if path is not None:
        where.append(str(path))
    if index is not None and at_end:
        where.append(f"after its last record ({index - 1})" if index else "before any record")
    elif index is not None:
        where.append(f"record {index}")
    if offset is not None:
        where.append(f"byte offset {offset}"
                     + (" of the uncompressed stream" if uncompressed else ""))
    return ", ".join(where)


class RecordError(TFRecordLiteError):
    """A problem with the TFRecord container: names the file, record index and offset.

    Attributes:
        reason, path, index, offset: what is wrong, and where (each may be None).
        uncompressed: ``offset`` counts bytes of a file's uncompressed stream.
        at_end: the fault lies after the stream's data, which all came out whole (a
            compressed stream's damaged or cut trailer after its last record): no
            record is lost by it, and ``index`` is the number of records.
    """

    def __init__(self, message: str, *, path: str | None = None, index: int | None = None,
                 offset: int | None = None, uncompressed: bool = False,
                 at_end: bool = False) -> None:
        where = record_place(path, index, offset, uncompressed=uncompressed, at_end=at_end)
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message
        self.path = path
        self.index = index
        self.offset = offset
        self.uncompressed = uncompressed
        self.at_end = at_end


class CorruptRecordError(RecordError, ValueError):
    """A length or data CRC does not match: the file is damaged."""


class TruncatedRecordError(RecordError, EOFError):
    """The file ends in the middle of a record."""


class CompressionMismatchError(RecordError, ValueError):
    """The file is compressed otherwise than the compression given to read it."""


class ExampleError(TFRecordLiteError, ValueError):
    """An item cannot be encoded as an Example (or an Example decoded): names item and key."""


class ValidationError(ExampleError):
    """An item's annotations fail validation (e.g. a box outside [0, 1] in strict mode)."""


class MaskError(ExampleError):
    """A mask (or a semantic label image) cannot be made from what an object gives.

    The message names where (the caller's ``where``, e.g. the object's index and key
    path) and what is wrong. ``reason`` is a short category for summaries: "not a
    polygon", "too few points", "out of range", "rle size", "corrupt rle", "not an
    image", "channels", "size", "class ids".
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DatasetError(TFRecordLiteError, ValueError):
    """A dataset file is missing, unreadable or not a list of items."""


class LabelMapError(DatasetError):
    """A conversion's label map differs from the one its output folder holds for the
    shards of another prefix."""


class ResumeError(TFRecordLiteError, ValueError):
    """An interrupted run cannot be resumed with these arguments (they differ from its own)."""


class ExampleDecodeError(ExampleError):
    """Bytes that do not parse as a ``tf.train.Example``."""


class RecordDecodeError(RecordError, ExampleDecodeError):
    """A record of a file is not a ``tf.train.Example``, or its features do not have the
    types this package reads (``image/width`` as bytes, ``image/object`` both a value
    and a group, ...): names the file, record index and offset."""


class IndexFileError(TFRecordLiteError, ValueError):
    """An index (``FILE.idx``) cannot be read or used: a malformed line, an entry outside
    its TFRecord file, or an index asked of a compressed file. Names the file and line."""


class ImageError(TFRecordLiteError, ValueError):
    """An image is missing, empty, truncated, not an image or does not decode.

    ``reason`` is a short category for summaries: "missing", "unreadable", "empty",
    "not an image", "truncated", "corrupt", "too large".
    """

    def __init__(self, message: str, reason: str = "corrupt") -> None:
        super().__init__(message)
        self.reason = reason


class WriteError(TFRecordLiteError):
    """The output could not be written; no file under a final shard name was left partial.

    Raised by ``write_errors``, chained to the ``OSError`` that caused it.
    """


def write_error(what: str, exc: OSError, hint: str = "") -> WriteError:
    """The ``WriteError`` for an ``OSError``: ``"{what}: {why}{hint}"``, with "(disk
    full?)" added when the disk is full. Raise it ``from exc``."""
    full = " (disk full?)" if exc.errno == errno.ENOSPC else ""
    return WriteError(f"{what}: {exc.strerror or exc}{full}{hint}")


@contextlib.contextmanager
def write_errors(what: str, hint: str = "") -> Iterator[None]:
    """Turn an ``OSError`` raised in the block into a ``WriteError`` (see ``write_error``).

    An error of this package raised in the block (``OutputBusyError`` is an ``OSError``
    too) propagates unchanged.

    Args:
        what: what could not be done, e.g. ``"cannot write shard out/train-00000-of-00002"``.
        hint: appended to the message, e.g. what was left behind.
    Raises:
        WriteError: chained to the ``OSError``.
    """
    try:
        yield
    except TFRecordLiteError:
        raise
    except OSError as exc:
        raise write_error(what, exc, hint) from exc


class InterruptedRunError(ResumeError):
    """The output directory holds an interrupted run of the prefix with complete shards,
    and the job was asked neither to resume it nor to start over."""

    def __init__(self, message: str, *, name: str, directory: str, complete: int,
                 total: int) -> None:
        super().__init__(message)
        self.name = name
        self.directory = directory
        self.complete = complete
        self.total = total


class OutputBusyError(TFRecordLiteError, BlockingIOError):
    """Another run is writing the same prefix in the same directory (its lock is held)."""


class OptionsError(TFRecordLiteError, ValueError):
    """A job option (or argument) is out of range: raised before any file is touched."""


class StorageError(TFRecordLiteError, ValueError):
    """A URL cannot be used: fsspec (or the package for its scheme) is not installed."""


# A Python object's repr inside a message: Pillow names the file object it was given
# (``<_io.BufferedReader name=6>``, ``<_io.BytesIO object at 0x7f...>``).
_OBJECT_REPR = re.compile(r" ?<[\w.]+ (?:name=[^>]*|object at 0x[0-9a-fA-F]+)>")


def reason(exc: BaseException) -> str:
    """An exception's message as people read it: without the reprs of the Python objects
    it names (``cannot identify image file <_io.BytesIO object at 0x7f...>`` ->
    ``cannot identify image file``); an exception without a message gives its type's
    name."""
    return _OBJECT_REPR.sub("", str(exc)).strip() or type(exc).__name__
