"""The records of one shard as a training reader meets them: each record's data, or a
mark where a record is damaged, after which reading goes on where it can.

Every record is read through the package's reader (``framing.iter_framed``: both CRCs,
the length limit, the end of the file). A record whose data CRC fails has an intact
header, so the next record is found after it; when the header itself is damaged, the
file is cut short, or a compressed stream is damaged, the rest of the shard cannot be
found and the mark is the shard's last. A compressed stream whose trailer is damaged or
cut after its last record has lost no record: its mark says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Union

from .. import compression as _compression
from ..errors import CorruptRecordError, RecordError
from ..framing import (
    DEFAULT_MAX_RECORD_SIZE,
    FOOTER_SIZE,
    HEADER_SIZE,
    encode_header,
    framed_size,
    iter_framed,
)

Record = tuple[int, int, bytes]
"""``(index, offset, data)`` of a record, as ``reader.read_framed`` gives it."""


@dataclass(frozen=True)
class Damage:
    """A damaged record, in a record's place.

    Attributes:
        error: what reading it raised (names the file, record index and offset).
        rest_lost: no record after it can be found (damaged header, cut file, damaged
            compressed stream).
        record_lost: a record is lost; False for a fault of a compressed stream after
            its last record (``error.at_end``), which is the shard's last mark.
    """

    error: RecordError
    rest_lost: bool
    record_lost: bool = True


def _skip(f: IO[bytes], count: int) -> int:
    """Move a file opened for reading ``count`` bytes on in its (uncompressed) stream;
    the bytes it holds there (fewer at its end)."""
    if f.seekable():
        start = f.tell()
        end = f.seek(0, os.SEEK_END)
        return f.seek(min(start + count, end)) - start
    remaining = count
    while remaining:
        chunk = f.read(min(remaining, 1 << 20))
        if not chunk:
            break
        remaining -= len(chunk)
    return count - remaining


def _framed_from(path: str, compression: str, index: int, offset: int,
                 max_record_size: int) -> Iterator[Record]:
    """The records of ``path`` from record ``index`` at ``offset`` on, every record
    checked; errors name the record's place in the whole file."""
    with _compression.open_file(path, "r", compression) as f:
        if offset:
            _skip(f, offset)
        yield from iter_framed(f, verify=True, path=path, max_record_size=max_record_size,
                               first=(index, offset), uncompressed=compression != "none")


def _after(path: str, compression: str, error: RecordError, max_record_size: int
           ) -> int | None:
    """Where the record after a damaged one starts, if its header is intact and the
    stream holds all of it (only the data is damaged); None when nothing after it can be
    found (a damaged header, or a compressed stream that fails inside the record)."""
    if not isinstance(error, CorruptRecordError) or error.offset is None:
        return None
    try:
        with _compression.open_file(path, "r", compression) as f:
            _skip(f, error.offset)
            header = f.read(HEADER_SIZE)
            if len(header) < HEADER_SIZE:
                return None
            length = int.from_bytes(header[:8], "little")
            if length > max_record_size or encode_header(length) != header:
                return None
            rest = length + FOOTER_SIZE
            if _skip(f, rest) != rest:
                return None
    except (RecordError, OSError):
        return None
    return error.offset + framed_size(length)


def records(path: Union[str, os.PathLike[str]], compression: str | None = None,
            max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> Iterator[Record | Damage]:
    """Each record of one shard as ``(index, offset, data)``, or a :class:`Damage` in
    the place of a damaged one, reading on after it where the file allows.

    Args:
        path: the shard (a local path or a URL).
        compression: "none", "gzip", "zlib", or None to detect it.
        max_record_size: the longest record accepted.
    Raises:
        FileNotFoundError: no such file (and what opening a file raises).
    """
    name = os.fspath(path)
    comp = (_compression.detect(name) if compression is None
            else _compression.normalize(compression))
    index, offset = 0, 0
    while True:
        try:
            for record in _framed_from(name, comp, index, offset, max_record_size):
                yield record
                index, offset = record[0] + 1, record[1] + framed_size(len(record[2]))
            return
        except RecordError as exc:
            if exc.at_end:
                yield Damage(exc, rest_lost=True, record_lost=False)
                return
            after = _after(name, comp, exc, max_record_size)
            yield Damage(exc, after is None)
            if after is None or exc.index is None:
                return
            index, offset = exc.index + 1, after
