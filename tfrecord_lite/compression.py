"""Opening TFRecord files: plain, GZIP or ZLIB, as TensorFlow's ``TFRecordOptions``.

A GZIP or ZLIB file compresses the whole stream of records, not each record. Both are
made by zlib itself (GZIP is zlib's gzip wrapper: no file name, mtime 0), so equal
input gives equal bytes.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from typing import IO, Any, Callable, Optional, Union, cast

from .crc32c import crc32c, mask
from .errors import (
    CompressionMismatchError,
    CorruptRecordError,
    RecordError,
    TruncatedRecordError,
)
from .storage import open_read

_CRC = struct.Struct("<I")

PathLike = Union[str, "os.PathLike[str]"]
Compression = Optional[str]

COMPRESSION_LEVEL = 6
_BUFFER = 1 << 20
_WBITS = {"zlib": zlib.MAX_WBITS, "gzip": 16 + zlib.MAX_WBITS}
_GZIP_TRAILER = struct.Struct("<II")  # CRC-32, length mod 2**32
_ADLER = struct.Struct(">I")


class _DeflateWriter(io.RawIOBase):
    """A write-only file object that compresses into a raw file, then closes it."""

    def __init__(self, raw: IO[bytes], wbits: int, level: int) -> None:
        self._raw = raw
        self._zobj = zlib.compressobj(level, zlib.DEFLATED, wbits)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._raw.write(self._zobj.compress(data))
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.write(self._zobj.flush())
            finally:
                self._raw.close()
                super().close()


_MAX_HEADER = 1 << 16  # a gzip header (file name, comment, extra field) longer than this is damage
_ZLIB_FDICT = 0x20
_GZIP_FLAGS = ((4, "extra"), (8, "name"), (16, "comment"), (2, "hcrc"))


def _member_header(buf: bytes, first: bool) -> tuple[str, int | None]:
    """The wrapper ("gzip" or "zlib") of the member starting ``buf`` and its header's
    length (None: ``buf`` holds only part of it).

    Raises:
        CorruptRecordError: ``buf`` starts neither a gzip nor a zlib stream.
    """
    if len(buf) < 2:
        return "gzip", None
    if buf[:2] == b"\x1f\x8b":
        if len(buf) < 10:
            return "gzip", None
        if buf[2] != 8:
            raise CorruptRecordError(f"the gzip stream is damaged (compression method "
                                     f"{buf[2]} in its header, expected 8: deflate)")
        flags, pos = buf[3], 10
        for bit, part in _GZIP_FLAGS:
            if not flags & bit:
                continue
            if part == "extra":
                if len(buf) < pos + 2:
                    return "gzip", None
                pos += 2 + (buf[pos] | buf[pos + 1] << 8)
            elif part == "hcrc":
                pos += 2
            else:  # a zero-terminated string
                stop = buf.find(b"\0", pos)
                if stop < 0:
                    return "gzip", None
                pos = stop + 1
        return "gzip", (pos if len(buf) >= pos else None)
    cmf, flg = buf[0], buf[1]
    if cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0:
        if flg & _ZLIB_FDICT:
            raise CorruptRecordError("the zlib stream needs a preset dictionary, which "
                                     "TFRecord files never use (the stream is damaged)")
        return "zlib", 2
    where = "the file" if first else "the data after the end of the compressed stream"
    raise CorruptRecordError(f"the compressed stream is damaged: {where} starts neither a "
                             f"gzip nor a zlib stream ({buf[:4]!r})")


def _salvage(zobj: Any, data: bytes) -> bytes:
    """What inflates from ``data`` before the point where it is damaged, in small steps
    (zlib returns nothing at all from a call that meets damage)."""
    parts = []
    try:
        while data and not zobj.eof:
            parts.append(zobj.decompress(data, 256))
            data = zobj.unconsumed_tail
    except zlib.error:
        pass
    return b"".join(parts)


class _InflateReader(io.RawIOBase):
    """A read-only file object that inflates gzip or zlib members from a raw file.

    The wrappers are read here, and the deflate data by zlib: so every byte that
    inflated before a damaged spot or a damaged trailer is delivered first, and the
    damage is raised after it (as :class:`CorruptRecordError`, a cut stream as
    :class:`TruncatedRecordError`, without a record: the record reader adds the record
    index and offset). A damaged or cut trailer of the last member is raised with
    ``at_end`` and the offset where the data ended: all of it came out whole.
    Concatenated members and zero padding after a member are read as gzip readers do.
    """

    def __init__(self, raw: IO[bytes], expect: str) -> None:
        self._raw = raw
        self._expect = expect  # the first member's wrapper: "gzip" or "zlib"
        self._input = b""  # compressed bytes read but not yet inflated
        self._zobj: Any = None  # the current member's inflater; None between members
        self._kind = "gzip"
        self._check = 0  # running CRC-32 (gzip) or Adler-32 (zlib) of the member's data
        self._size = 0
        self._members = 0
        self._delivered = 0  # uncompressed bytes given out, over every member
        self._pending = memoryview(b"")
        self._error: RecordError | None = None
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._error is not None:
                raise self._error
            if self._done:
                return 0
            self._fill()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _fill(self) -> None:
        """Inflate the next piece into ``_pending``; damage found after some output is
        kept in ``_error`` and raised once that output is read."""
        if self._zobj is None and not self._start_member():
            self._done = True
            return
        zobj = self._zobj
        src = zobj.unconsumed_tail
        if not src:
            src, self._input = self._input or self._raw.read(_BUFFER), b""
        backup = zobj.copy()
        try:
            out = zobj.decompress(src, _BUFFER)
        except zlib.error as exc:
            out = _salvage(backup, src)
            self._error = CorruptRecordError(f"the {self._kind} stream is damaged ({exc})")
        else:
            if not out and not src and not zobj.eof:
                raise TruncatedRecordError(f"the {self._kind} stream is cut short (it ends "
                                           "before its end marker) or damaged")
        self._pending = memoryview(out)
        self._delivered += len(out)
        if self._error is None:
            self._size += len(out)
            self._check = (zlib.crc32 if self._kind == "gzip" else zlib.adler32)(out,
                                                                                 self._check)
            if zobj.eof:
                self._input = zobj.unused_data
                self._zobj = None
                try:
                    self._end_member()
                except RecordError as exc:
                    self._error = exc

    def _read_more(self) -> bool:
        more = self._raw.read(_BUFFER)
        self._input += more
        return bool(more)

    def _start_member(self) -> bool:
        """Read a member's header; False at the clean end of the stream."""
        first = self._members == 0
        while True:
            if not first:
                self._input = self._input.lstrip(b"\0")  # zero padding after a member
            if self._input:
                try:
                    kind, length = _member_header(self._input, first)
                except CorruptRecordError:
                    if first and len(self._input) >= 12 and _is_plain(self._input):
                        raise mismatch(self._expect, "none") from None
                    raise
                if first and kind != self._expect and length is not None:
                    raise mismatch(self._expect, kind)
                if length is not None:
                    break
                if len(self._input) > _MAX_HEADER:
                    raise CorruptRecordError(f"the gzip stream is damaged (a header of "
                                             f"more than {_MAX_HEADER} bytes)")
            if not self._read_more():
                if not self._input and not first:
                    return False
                raise TruncatedRecordError(
                    "the compressed stream is cut short (it ends inside a header)"
                    if self._input else "the compressed stream is empty (no header)")
        self._input = self._input[length:]
        self._kind = kind
        self._zobj = zlib.decompressobj(-zlib.MAX_WBITS)
        self._check = 0 if kind == "gzip" else 1
        self._size = 0
        return True

    def _end_member(self) -> None:
        """Read and check a member's trailer (CRC-32 and length, or Adler-32)."""
        need = 8 if self._kind == "gzip" else 4
        while len(self._input) < need:
            if not self._read_more():
                raise TruncatedRecordError(f"the {self._kind} stream is cut short (it ends "
                                           "inside its trailer)", **self._end())
        trailer, self._input = self._input[:need], self._input[need:]
        self._members += 1
        problem = None
        if self._kind == "zlib":
            if _ADLER.unpack(trailer)[0] != self._check:
                problem = "its Adler-32 checksum does not match the data"
        else:
            crc, size = _GZIP_TRAILER.unpack(trailer)
            if crc != self._check:
                problem = "the CRC-32 in its trailer does not match the data"
            elif size != self._size & 0xFFFFFFFF:
                problem = f"its trailer gives {size} bytes, the data holds {self._size}"
        if problem is not None:
            raise CorruptRecordError(f"the {self._kind} stream is damaged ({problem})",
                                     **(self._end() if self._last_member() else {}))

    def _end(self) -> dict[str, Any]:
        """The place of a fault after all the data came out: where the data ended."""
        return {"offset": self._delivered, "uncompressed": True, "at_end": True}

    def _last_member(self) -> bool:
        """Whether only zero padding, if anything, follows the member just ended."""
        while True:
            self._input = self._input.lstrip(b"\0")
            if self._input:
                return False
            if not self._read_more():
                return True

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
            super().close()


def _open_read(path: PathLike, buffering: int = -1) -> IO[bytes]:
    """A local file, or a URL (through fsspec), opened for reading bytes."""
    return open_read(os.fspath(path), buffering)


def _open_plain(path: PathLike, mode: str) -> IO[bytes]:
    # Writing: a raw io.FileIO; the record framer batches small records itself and
    # hands large ones straight to the kernel.
    if mode == "r":
        return _open_read(path, _BUFFER)
    return open(path, "wb", buffering=0)  # noqa: SIM115


def _deflate_opener(name: str) -> Callable[[PathLike, str], IO[bytes]]:
    def opener(path: PathLike, mode: str) -> IO[bytes]:
        raw = _open_read(path) if mode == "r" else open(path, "wb")  # noqa: SIM115
        if mode == "w":
            return cast(IO[bytes], io.BufferedWriter(
                _DeflateWriter(raw, _WBITS[name], COMPRESSION_LEVEL), _BUFFER))
        return cast(IO[bytes], io.BufferedReader(_InflateReader(raw, name), _BUFFER))

    return opener


OPENERS: dict[str, Callable[[PathLike, str], IO[bytes]]] = {
    "none": _open_plain,
    "gzip": _deflate_opener("gzip"),
    "zlib": _deflate_opener("zlib"),
}
"""Compression name -> opener(path, "r" | "w"); a URL can be opened for reading."""



def normalize(compression: Compression) -> str:
    """Map None / "" / "NONE" / "GZIP" / "ZLIB" (TensorFlow's spellings too) to a table key."""
    name = (compression or "none").lower()
    if name not in OPENERS:
        raise ValueError(
            f"unknown compression {compression!r}: use one of {', '.join(OPENERS)}"
        )
    return name


def mismatch(given: str, found: str) -> CompressionMismatchError:
    """The error for a file read as ``given`` compression that is ``found`` ("none",
    "gzip", "zlib"); TensorFlow's readers refuse such a file too."""
    what, how = (("not compressed (a plain TFRecord file)", "plain") if found == "none"
                 else (f"{found.upper()}-compressed", found.upper()))
    return CompressionMismatchError(
        f"the file is {what}, not {given.upper()} as given: read it as {how} (--compression "
        f'{found}; compression="{found}"), or let the compression be detected')


def _is_plain(head: bytes) -> bool:
    """Whether ``head`` starts with a TFRecord header whose CRC matches."""
    return len(head) >= 12 and _CRC.unpack_from(head, 8)[0] == mask(crc32c(head[:8]))


def detect(path: PathLike) -> str:
    """Tell a file's compression from its first bytes: "none", "gzip" or "zlib".

    A plain TFRecord starts with a header whose CRC matches (checked first, so a
    record length that happens to look like a zlib header is not mistaken for one).
    """
    with _open_read(path) as f:
        head = f.read(1024)
    if _is_plain(head):
        return "none"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        try:
            zlib.decompressobj().decompress(head, 1)
            return "zlib"
        except zlib.error:
            pass
    return "none"


def open_file(path: PathLike, mode: str = "r", compression: Compression = None) -> IO[bytes]:
    """Open ``path`` for reading ("r") or writing ("w") with the given compression."""
    if mode not in ("r", "w"):
        raise ValueError(f"mode must be 'r' or 'w', not {mode!r}")
    return OPENERS[normalize(compression)](path, mode)
