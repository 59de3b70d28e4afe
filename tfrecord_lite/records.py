"""The TFRecord file layer, writing half: ``TFRecordWriter`` writes one file.

``reader`` is the reading half. Neither knows about items, shards or jobs.
"""

from __future__ import annotations

import os
from typing import IO

from . import compression as _compression
from .crc32c import CrcFn, crc32c
from .framing import RecordFramer


class TFRecordWriter:
    """Writes records to one TFRecord file, plain or compressed as a whole stream.

    Use as a context manager::

        with TFRecordWriter("data.tfrecord", compression="gzip") as w:
            w.write(example_bytes)

    Args:
        path: the file to write (truncated if it exists).
        compression: None / "none", "gzip" or "zlib" (TensorFlow's names work too).
        crc_fn: the CRC32C function (tests swap it).
    """

    def __init__(self, path: str | os.PathLike[str], compression: str | None = None,
                 crc_fn: CrcFn = crc32c) -> None:
        self.path = os.fspath(path)
        self.compression = _compression.normalize(compression)
        self._file: IO[bytes] = _compression.open_file(self.path, "w", self.compression)
        self._framer = RecordFramer(self._file, crc_fn)
        # write(data: bytes) -> int frames and writes one record, returning the framed
        # size; bound directly to the framer to keep per-record overhead minimal.
        self.write = self._framer.write

    def flush(self) -> None:
        """Push every record written so far to the operating system."""
        self._framer.flush()
        self._file.flush()

    def close(self) -> None:
        """Flush and close; idempotent."""
        if not self._file.closed:
            try:
                self._framer.flush()
            finally:
                self._file.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
