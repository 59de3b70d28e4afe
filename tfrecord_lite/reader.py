"""Reading TFRecord files back: records as bytes, or as item dicts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from . import compression as _compression
from .crc32c import CrcFn, crc32c
from .errors import RecordError, TruncatedRecordError
from .example import decode_example
from .framing import iter_records


def read_records(path: str | os.PathLike[str], compression: str | None = None,
                 verify: bool = True, crc_fn: CrcFn = crc32c) -> Iterator[bytes]:
    """Yield the data of each record of one TFRecord file.

    Args:
        path: the file.
        compression: "none", "gzip" or "zlib"; None detects it from the file's first bytes.
        verify: check the length and data CRC of every record.
    Raises:
        CorruptRecordError: a CRC does not match (names file, record index, offset).
        TruncatedRecordError: the file ends inside a record, or a compressed stream
            ends early.
        FileNotFoundError: no such file.
    """
    name = os.fspath(path)
    comp = _compression.detect(name) if compression is None else _compression.normalize(compression)
    with _compression.open_file(name, "r", comp) as f:
        try:
            yield from iter_records(f, verify=verify, path=name, crc_fn=crc_fn)
        except RecordError:
            raise
        except (EOFError, OSError) as exc:  # gzip / zlib stream cut or damaged
            raise TruncatedRecordError(
                f"{comp} stream is damaged or cut short: {exc}", path=name) from exc
        except Exception as exc:
            import zlib

            if isinstance(exc, zlib.error):
                raise TruncatedRecordError(f"{comp} stream is damaged: {exc}", path=name) from exc
            raise


def read_examples(path: str | os.PathLike[str], compression: str | None = None,
                  verify: bool = True) -> Iterator[dict[str, Any]]:
    """Yield each record of a file decoded as a nested item dict (see ``decode_example``)."""
    for data in read_records(path, compression, verify):
        yield decode_example(data)
