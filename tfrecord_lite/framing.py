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

import io
import os
import struct
from collections.abc import Iterator
from typing import IO, Callable

from .crc32c import MASK_DELTA, CrcFn, crc32c, mask
from .errors import CorruptRecordError, RecordError, TruncatedRecordError
from .looks import looks_like

HEADER_SIZE = 12  # uint64 length + uint32 masked CRC of the length
FOOTER_SIZE = 4  # uint32 masked CRC of the data
FRAMED_OVERHEAD = HEADER_SIZE + FOOTER_SIZE
"""Bytes a record takes in a file beyond its data: ``framed size = len(data) + 16``."""
DEFAULT_MAX_RECORD_SIZE = 256 << 20
"""The longest record readers accept by default (256 MiB, like the image file limit).

A length field beyond it is reported as corrupt before a byte of the record is read,
so a damaged or hostile header cannot make a reader allocate more."""
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_CHUNK = 16 << 20  # read big records of unknown-size streams in pieces


def framed_size(length: int) -> int:
    """The bytes a record of ``length`` data bytes takes in a file (header and footer too)."""
    return length + FRAMED_OVERHEAD


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


def _mask_all(crcs: list[int]) -> bytes:
    """The masked CRCs of a batch, packed as little-endian uint32, in one vector step."""
    import numpy as np

    c = np.array(crcs, dtype=np.uint64)
    masked = (((c >> np.uint64(15)) | (c << np.uint64(17))) + np.uint64(MASK_DELTA)) & np.uint64(
        0xFFFFFFFF)
    return masked.astype("<u4").tobytes()


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """os.write until every byte is written."""
    rest = memoryview(data)
    while rest:
        rest = rest[os.write(fd, rest):]


def _writev_all(fd: int, buffers: list[bytes]) -> None:
    """os.writev that retries after a partial write; piece by piece where the platform
    has no ``os.writev`` (Windows)."""
    writev = getattr(os, "writev", None)
    if writev is None:
        for piece in buffers:
            _write_all(fd, piece)
        return
    total = sum(len(b) for b in buffers)
    done = writev(fd, buffers)
    if done != total:
        _write_all(fd, memoryview(b"".join(buffers))[done:])


class RecordFramer:
    """Writes framed records to a binary file object, as fast as Python allows.

    * Small records are framed in batches: their CRCs are masked together (numpy) and
      the batch is joined into one piece.
    * Large records are not copied: their header, data and footer are queued as they
      are.
    * What is queued reaches the file in one ``os.writev`` (when the file object is a
      raw ``io.FileIO``) once it passes ``batch_bytes``: few system calls, and few
      waits to take the GIL back after them when other threads are busy. Where ``os``
      has no ``writev`` (Windows), the pieces are written one after the other.
    * The 12-byte header depends only on the record's length, so headers are cached
      per length.

    Records are in the file only after ``flush()`` (``close()`` of the writers calls it).
    """

    LARGE = 16384
    MAX_BUFFERS = 900  # below the system's IOV_MAX (1024 on Linux)

    def __init__(self, fileobj: IO[bytes], crc_fn: CrcFn = crc32c,
                 batch_bytes: int = 1 << 20) -> None:
        self._file = fileobj
        self._fd = fileobj.fileno() if isinstance(fileobj, io.FileIO) else None
        self._crc = crc_fn
        self._headers: dict[int, bytes] = {}
        self._pieces: list[bytes] = []  # small records: header, data, header, data, ...
        self._crcs: list[int] = []
        self._queue: list[bytes] = []  # what goes out in the next writev, in order
        self._queued = 0
        self._batch_bytes = batch_bytes
        self.write = self._make_write(batch_bytes)

    def _header(self, n: int) -> bytes:
        if len(self._headers) >= 4096:
            self._headers.clear()
        header = self._headers[n] = encode_header(n, self._crc)
        return header

    def _make_write(self, batch_bytes: int) -> Callable[[bytes], int]:
        # A closure over locals: this is the per-record hot path, and local lookups
        # are much cheaper than attribute lookups.
        headers_get = self._headers.get
        new_header = self._header
        append = self._pieces.append
        crc_append = self._crcs.append
        crc = self._crc
        large = self.LARGE
        overhead = FRAMED_OVERHEAD
        queue_small = self._queue_small
        write_large = self._write_large
        type_of, bytes_type = type, bytes
        pending = 0

        def write(data: bytes) -> int:
            """Frame one record and queue or write it; returns its framed size."""
            nonlocal pending
            if type_of(data) is not bytes_type:
                data = bytes(data)  # queued, not written yet: a caller may reuse its buffer
            n = len(data)
            header = headers_get(n) or new_header(n)
            if n < large:
                append(header)
                append(data)
                crc_append(crc(data))
                pending += n
                if pending >= batch_bytes:
                    queue_small()
                    pending = 0
            else:
                write_large(header, data)
            return n + overhead

        return write

    def _write_large(self, header: bytes, data: bytes) -> None:
        c = self._crc(data)
        footer = _CRC.pack((((c >> 15) | (c << 17)) + MASK_DELTA) & 0xFFFFFFFF)
        self._queue_small()
        self._queue += (header, data, footer)
        self._queued += len(data) + FRAMED_OVERHEAD
        if self._queued >= self._batch_bytes or len(self._queue) >= self.MAX_BUFFERS:
            self._write_queue()

    def _queue_small(self) -> None:
        """Frame the pending small records into one piece at the end of the queue."""
        if not self._crcs:
            return
        footers = _mask_all(self._crcs) if len(self._crcs) > 8 else b"".join(
            _CRC.pack(mask(c)) for c in self._crcs)
        pieces = self._pieces
        out: list[bytes] = [b""] * (3 * len(self._crcs))
        out[0::3] = pieces[0::2]  # headers
        out[1::3] = pieces[1::2]  # data
        out[2::3] = [footers[i:i + 4] for i in range(0, len(footers), 4)]
        blob = b"".join(out)
        self._pieces.clear()
        self._crcs.clear()
        self._queue.append(blob)
        self._queued += len(blob)
        if self._queued >= self._batch_bytes:
            self._write_queue()

    def _write_queue(self) -> None:
        queue = self._queue
        if not queue:
            return
        if self._fd is not None:
            _writev_all(self._fd, queue)
        else:
            for piece in queue:
                self._file.write(piece)
        queue.clear()
        self._queued = 0

    def flush(self) -> None:
        """Hand every record written so far to the file object."""
        self._queue_small()
        self._write_queue()


def _not_a_tfrecord(header: bytes, index: int) -> str | None:
    """For a first record whose header is wrong: that the file is not a TFRecord file,
    and what it looks like instead (None when it looks like nothing else)."""
    what = looks_like(header) if index == 0 else None
    if what is None or what == "a TFRecord file":
        return None
    message = (f"not a TFRecord file: it looks like {what} (a TFRecord file starts with "
               "its first record's length and that length's CRC)")
    if what.endswith("-compressed data"):
        name = what.split("-")[0].lower()
        message += (f"; if it holds TFRecord data, read it as {what.split('-')[0]} "
                    f"(--compression {name}; compression=\"{name}\"), or let the "
                    "compression be detected")
    return message


def _read_exact(fileobj: IO[bytes], n: int, known: bool) -> bytes:
    """Read up to ``n`` bytes; fewer only at end of file.

    ``known``: the file is known to hold them (its size was checked), so they are read
    at once. Otherwise (a compressed stream) they are read in pieces into a growing
    buffer, so a record that is not there costs no more than what the stream holds.
    """
    if known or n <= _CHUNK:
        return fileobj.read(n)
    buffer = io.BytesIO()
    remaining = n
    while remaining:
        part = fileobj.read(min(remaining, _CHUNK))
        if not part:
            break
        buffer.write(part)
        remaining -= len(part)
        del part
    return buffer.getvalue()  # the buffer itself, not a copy


def iter_framed(
    fileobj: IO[bytes],
    *,
    verify: bool = True,
    path: str | None = None,
    crc_fn: CrcFn = crc32c,
    max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
    size: int | None = None,
    first: tuple[int, int] = (0, 0),
    uncompressed: bool = False,
) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(index, offset, data)`` of each record of a binary file object positioned
    at a record start; ``offset`` counts from the start of the (uncompressed) stream.

    Args:
        fileobj: any object with ``read(n)``.
        verify: compare both CRCs of every record.
        path: the file's name, used in error messages.
        max_record_size: the longest record accepted; a longer length field is corrupt.
        size: the bytes the file holds from here, when known (a plain local file): a
            record that would end past it is reported without reading it.
        first: ``(index, offset)`` of the record ``fileobj`` is positioned at.
        uncompressed: ``fileobj`` is a decompressed stream: errors say their offsets
            are in the uncompressed stream.
    Raises:
        TruncatedRecordError: the stream ends inside a record.
        CorruptRecordError: a CRC does not match (only with ``verify``), a length over
            ``max_record_size``, or a damaged compressed stream.
        RecordError: what the stream below raises without a record (a damaged or cut
            compressed stream) is raised again naming the record index and offset; a
            fault after all the stream's data (``at_end``) keeps ``at_end`` when the
            data ended where a record would start, so that no record is lost by it.
    """
    index, offset = first
    read = fileobj.read
    unpack_len = _LENGTH.unpack_from
    unpack_crc = _CRC.unpack_from
    known = size is not None
    end = offset + size if size is not None else -1
    try:
        while True:
            header = read(HEADER_SIZE)
            if not header:
                return
            if len(header) < HEADER_SIZE:
                raise TruncatedRecordError(
                    _not_a_tfrecord(header, index) or
                    f"file ends inside a record header ({len(header)} of {HEADER_SIZE} bytes)",
                    path=path, index=index, offset=offset, uncompressed=uncompressed,
                )
            (length,) = unpack_len(header)
            if verify and mask(crc_fn(header[:8])) != unpack_crc(header, 8)[0]:
                raise CorruptRecordError(
                    _not_a_tfrecord(header, index) or
                    "length CRC mismatch (the record header is damaged)",
                    path=path, index=index, offset=offset, uncompressed=uncompressed,
                )
            if length > max_record_size:
                raise CorruptRecordError(
                    _not_a_tfrecord(header, index) or
                    f"the header claims a record of {length:,} bytes, over the "
                    f"{max_record_size:,}-byte limit (max_record_size; the header is "
                    "damaged, or raise the limit)",
                    path=path, index=index, offset=offset, uncompressed=uncompressed,
                )
            if known and offset + FRAMED_OVERHEAD + length > end:
                raise TruncatedRecordError(
                    f"file ends inside a record: expected {length + FOOTER_SIZE} bytes of "
                    f"data and CRC after the header, the file holds "
                    f"{max(0, end - offset - HEADER_SIZE)}",
                    path=path, index=index, offset=offset, uncompressed=uncompressed,
                )
            data = _read_exact(fileobj, length, known)
            footer = read(FOOTER_SIZE) if len(data) == length else b""
            if len(footer) < FOOTER_SIZE:
                raise TruncatedRecordError(
                    f"file ends inside a record: expected {length + FOOTER_SIZE} bytes of "
                    f"data and CRC after the header, found {len(data) + len(footer)}",
                    path=path, index=index, offset=offset, uncompressed=uncompressed,
                )
            if verify and mask(crc_fn(data)) != unpack_crc(footer)[0]:
                raise CorruptRecordError(
                    f"data CRC mismatch in a record of {length} bytes (the data is damaged)",
                    path=path, index=index, offset=offset, uncompressed=uncompressed,
                )
            yield index, offset, data
            index += 1
            offset += FRAMED_OVERHEAD + length
    except RecordError as exc:
        if exc.index is not None:  # raised above, with its place
            raise
        # From the stream below (a damaged or cut compressed stream): add the place. A
        # fault after the data is one after the last record only if the data ended where
        # record `index` would start; else that record is cut.
        raise type(exc)(exc.reason, path=path if path is not None else exc.path,
                        index=index, offset=offset, uncompressed=uncompressed,
                        at_end=exc.at_end and exc.offset == offset) from exc


def iter_records(
    fileobj: IO[bytes],
    *,
    verify: bool = True,
    path: str | None = None,
    crc_fn: CrcFn = crc32c,
    max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
    size: int | None = None,
) -> Iterator[bytes]:
    """Yield each record's data from a binary file object positioned at a record start.

    The same as :func:`iter_framed` (see there for the arguments and errors), without
    the index and offset.
    """
    for _, _, data in iter_framed(fileobj, verify=verify, path=path, crc_fn=crc_fn,
                                  max_record_size=max_record_size, size=size):
        yield data
