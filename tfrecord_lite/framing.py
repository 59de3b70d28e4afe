"""The TFRecord container: one record <-> bytes, on any binary file object.

Each record is laid out as::

    uint64 length           little endian
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

This module knows nothing of paths or compression (see ``compression``) and nothing
of Examples (see ``example``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO

from .crc32c import CrcFn, crc32c, mask
from .errors import CorruptRecordError, TruncatedRecordError

HEADER_SIZE = 12
FOOTER_SIZE = 4
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_CHUNK = 16 << 20  # read big records in pieces, so a bogus length cannot allocate it all


def encode_header(length: int, crc_fn: CrcFn = crc32c) -> bytes:
    """The 12 bytes before a record of ``length`` bytes."""
    packed = _LENGTH.pack(length)
    return packed + _CRC.pack(mask(crc_fn(packed)))


def encode_footer(data: bytes, crc_fn: CrcFn = crc32c) -> bytes:
    """The 4 bytes after ``data``: its masked CRC32C."""
    return _CRC.pack(mask(crc_fn(data)))


def encode_record(data: bytes, crc_fn: CrcFn = crc32c) -> bytes:
    """One whole framed record."""
    return encode_header(len(data), crc_fn) + data + encode_footer(data, crc_fn)


class RecordFramer:
    """Writes framed records to a binary file object, as fast as Python allows.

    The 12-byte header depends only on the record's length, so headers are cached
    per length: a stream of equal-sized records pays for one CRC per record.
    """

    __slots__ = ("_write", "_crc", "_headers")

    def __init__(self, fileobj: IO[bytes], crc_fn: CrcFn = crc32c) -> None:
        self._write = fileobj.write
        self._crc = crc_fn
        self._headers: dict[int, bytes] = {}

    def write(self, data: bytes) -> int:
        """Frame and write one record; returns the number of bytes written."""
        n = len(data)
        header = self._headers.get(n)
        if header is None:
            if len(self._headers) >= 4096:
                self._headers.clear()
            header = self._headers[n] = encode_header(n, self._crc)
        c = self._crc(data)
        footer = _CRC.pack((((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF)
        if n < 65536:
            self._write(header + data + footer)
        else:  # avoid copying big records; a buffered file joins the pieces
            self._write(header)
            self._write(data)
            self._write(footer)
        return n + 16


def _read_exact(fileobj: IO[bytes], n: int) -> bytes:
    """Read up to ``n`` bytes, in bounded pieces; fewer only at end of file."""
    if n <= _CHUNK:
        return fileobj.read(n)
    parts = []
    remaining = n
    while remaining:
        part = fileobj.read(min(remaining, _CHUNK))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def iter_records(
    fileobj: IO[bytes],
    *,
    verify: bool = True,
    path: str | None = None,
    crc_fn: CrcFn = crc32c,
) -> Iterator[bytes]:
    """Yield each record's data from a binary file object positioned at a record start.

    Args:
        fileobj: any object with ``read(n)``.
        verify: compare both CRCs of every record.
        path: the file's name, used in error messages.
    Raises:
        TruncatedRecordError: the stream ends inside a record.
        CorruptRecordError: a CRC does not match (only with ``verify``).
    """
    index = 0
    offset = 0
    read = fileobj.read
    unpack_len = _LENGTH.unpack_from
    unpack_crc = _CRC.unpack_from
    while True:
        header = read(HEADER_SIZE)
        if not header:
            return
        if len(header) < HEADER_SIZE:
            raise TruncatedRecordError(
                f"file ends inside a record header ({len(header)} of {HEADER_SIZE} bytes)",
                path=path, index=index, offset=offset,
            )
        (length,) = unpack_len(header)
        if verify and mask(crc_fn(header[:8])) != unpack_crc(header, 8)[0]:
            raise CorruptRecordError(
                "length CRC mismatch (the record header is damaged)",
                path=path, index=index, offset=offset,
            )
        data = _read_exact(fileobj, length)
        footer = read(FOOTER_SIZE) if len(data) == length else b""
        if len(footer) < FOOTER_SIZE:
            raise TruncatedRecordError(
                f"file ends inside a record: expected {length + FOOTER_SIZE} bytes of data "
                f"and CRC after the header, found {len(data) + len(footer)}",
                path=path, index=index, offset=offset,
            )
        if verify and mask(crc_fn(data)) != unpack_crc(footer)[0]:
            raise CorruptRecordError(
                f"data CRC mismatch in a record of {length} bytes (the data is damaged)",
                path=path, index=index, offset=offset,
            )
        yield data
        index += 1
        offset += HEADER_SIZE + length + FOOTER_SIZE
