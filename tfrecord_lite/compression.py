"""Opening TFRecord files: plain, GZIP or ZLIB, as TensorFlow's ``TFRecordOptions``.

A GZIP or ZLIB file compresses the whole stream of records, not each record. Both are
made by zlib itself (GZIP is zlib's gzip wrapper: no file name, mtime 0), so equal
input gives equal bytes.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import struct
import zlib
from typing import IO, Callable, Optional, Union, cast

from .crc32c import crc32c, mask

_CRC = struct.Struct("<I")

PathLike = Union[str, "os.PathLike[str]"]
Compression = Optional[str]

COMPRESSION_LEVEL = 6
_BUFFER = 1 << 20
_WBITS = {"zlib": zlib.MAX_WBITS, "gzip": 16 + zlib.MAX_WBITS}
_WBITS_AUTO = 32 + zlib.MAX_WBITS  # inflate either wrapper


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


class _InflateReader(io.RawIOBase):
    """A read-only file object that inflates a zlib or gzip stream from a raw file."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._zobj = zlib.decompressobj(_WBITS_AUTO)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        try:
            return self._inflate_into(buffer)
        except zlib.error as exc:  # as a damaged file: an OSError, like EOFError a cut one
            raise OSError(errno.EIO, f"the compressed stream is damaged ({exc})") from exc

    def _inflate_into(self, buffer: bytearray) -> int:
        while not self._pending:
            if self._zobj.eof:
                rest = self._zobj.unused_data
                if not rest:
                    rest = self._raw.read(_BUFFER)
                    if not rest:
                        return 0
                self._zobj = zlib.decompressobj(_WBITS_AUTO)  # next gzip member
                self._pending = self._zobj.decompress(rest, _BUFFER)
                continue
            chunk = self._zobj.unconsumed_tail or self._raw.read(_BUFFER)
            if not chunk:
                raise EOFError("compressed stream ended before its end marker")
            self._pending = self._zobj.decompress(chunk, _BUFFER)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
            super().close()


def _open_read(path: PathLike, buffering: int = -1) -> IO[bytes]:
    """A local file, or a URL (through fsspec), opened for reading bytes."""
    from .storage import open_read  # storage imports this module

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
        return cast(IO[bytes], io.BufferedReader(_InflateReader(raw), _BUFFER))

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


def detect(path: PathLike) -> str:
    """Tell a file's compression from its first bytes: "none", "gzip" or "zlib".

    A plain TFRecord starts with a header whose CRC matches (checked first, so a
    record length that happens to look like a zlib header is not mistaken for one).
    """
    with _open_read(path) as f:
        head = f.read(1024)
    if len(head) >= 12 and _CRC.unpack_from(head, 8)[0] == mask(crc32c(head[:8])):
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


def file_sha256(path: PathLike) -> str:
    """The sha256 of a file's bytes as stored (compressed or not), read in 1 MiB pieces."""
    with _open_read(path) as f:
        return stream_sha256(f)


def stream_sha256(f: IO[bytes]) -> str:
    """The sha256 of what is left to read in a binary file object, in 1 MiB pieces."""
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()
