"""PNG decoders: Pillow's, and the ``fast-png`` extra's, with Pillow's pixels and verdicts.

``FastPng`` decodes the usual photos (8-bit L, LA, RGB, RGBA, not interlaced) that Pillow
has opened, in two steps that let other threads run: libdeflate inflates the image data,
checksum checked, and numba's compiled loop (``_png_kernel``) undoes the row filters.
Anything else, or anything it doubts, it leaves to Pillow, so the stored bytes are the
same either way (except a few deflate streams that break the format's limits, which
libdeflate reads and zlib refuses). ``default()`` is the decoder ``accelerators`` chose.
Image data that ends cleanly before the last row is reported (``ShortImageData``,
``short_image_data``), where Pillow would silently fill black rows.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import struct
import threading
import zlib
from typing import Any, Callable, Protocol

from PIL import Image

from .accelerators import chosen

logger = logging.getLogger(__name__)

MAX_PIXELS = 1 << 24
"""Larger PNGs go to Pillow: this path holds the rows twice besides Pillow's image."""
MIN_PIXELS = 1 << 14
"""Smaller PNGs (under 128x128) go to Pillow: the gain there is small, and a job of small
images then never loads numba."""

_CHUNK = struct.Struct(">I4s")
_IHDR = struct.Struct(">IIBBBBB")
# Pillow's mode -> bytes per pixel, for the modes this path decodes.
_BYTES_PER_PIXEL = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
# PNG colour type -> samples per pixel.
_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: (first column, first row, column step, row step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))

Kernel = Callable[..., int]


class ShortImageData(ValueError):
    """The image data's zlib stream ends, whole and checked, before the last row."""


class Decoder(Protocol):
    """Decodes a PNG file that Pillow has opened, or leaves it to Pillow."""

    def decode(self, im: Any, data: bytes) -> Any:
        """A new Pillow image of ``im``'s pixels, or None for Pillow to decode ``im``.

        Raises:
            ShortImageData: the image data ends before the last row.
        """

    def ready(self) -> bool:
        """Prepare the decoder (or wait for the thread preparing it); True if PNG files
        now take it."""


class _PillowOnly:
    """The portable decoder: every PNG is left to Pillow."""

    def decode(self, im: Any, data: bytes) -> Any:
        return None

    def ready(self) -> bool:
        return False


PILLOW: Decoder = _PillowOnly()


def _load_loop() -> Kernel:
    """numba's compiled loop, from its cache (after checking it) or compiled afresh.

    Raises:
        RuntimeError: why the loop cannot be used in this process.
    """
    import numba

    if getattr(numba.config, "DISABLE_JIT", 0):
        raise RuntimeError("NUMBA_DISABLE_JIT is set: the loop would run as plain Python, "
                           "slower than Pillow")
    from . import _png_kernel

    damaged = _png_kernel.check_cache()
    if damaged:
        raise RuntimeError(f"{damaged}; the next process compiles the loop afresh")
    if not _png_kernel.CACHED:
        logger.warning("numba finds no folder it can write its cache to: the PNG decoder's "
                       "loop is compiled in each process; NUMBA_CACHE_DIR can name one")
    kernel: Kernel = _png_kernel.unfilter
    if not _loop_passes(kernel):  # before its cache is vouched for
        raise RuntimeError("the compiled loop fails on a 1x1 image")
    _png_kernel.record_cache()
    return kernel


def _loop_passes(kernel: Kernel) -> bool:
    rows = _inflate(zlib.compress(b"\x04\x01\x02\x03"), 4)
    return rows is not None and _unfiltered(kernel, rows, 1, 3, 3) is not None


class FastPng:
    """libdeflate and numba's loop: the ``fast-png`` extra.

    Args:
        min_pixels, max_pixels: the sizes this path takes (others go to Pillow).
        load: returns the compiled loop, or raises why it cannot be had; the first
            thread to meet a PNG calls it.
    """

    def __init__(self, *, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS,
                 load: Callable[[], Kernel] = _load_loop) -> None:
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self._load = load
        self._lock = threading.Lock()  # held by the thread preparing the loop
        self._ready = threading.Event()  # set once the loop is loaded, or known unusable
        self._kernel: Kernel | None = None
        self.why_not: str | None = None
        """Why PNG files go to Pillow after all (a warning was logged), or None."""

    def _prepare(self) -> None:
        try:
            kernel = self._load()
            if not _loop_passes(kernel):
                raise RuntimeError("the compiled loop fails on a 1x1 image")
            self._kernel = kernel
        except Exception as exc:  # a broken install must not fail the job
            cache = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
            self.why_not = (f"{exc}" if isinstance(exc, RuntimeError) else
                            f"numba failed: {exc} (if its cache is damaged, delete the "
                            f"_png_kernel.* files in {cache}, in NUMBA_CACHE_DIR or in "
                            "numba's folder under the user's cache, such as ~/.cache/numba)")
            logger.warning("PNG files are decoded by Pillow alone: %s", self.why_not)
        self._ready.set()

    def _loop(self, wait: bool = False) -> Kernel | None:
        """The compiled loop, or None while it is unusable or being prepared by another
        thread (unless ``wait``): those threads decode with Pillow, to the same bytes.
        A job waits for its threads, so a freshly compiled loop always reaches numba's
        cache."""
        if not self._ready.is_set():
            if self._lock.acquire(blocking=False):
                try:
                    if not self._ready.is_set():
                        self._prepare()
                finally:
                    self._lock.release()
            elif wait:
                self._ready.wait()
        return self._kernel

    def ready(self) -> bool:
        return self._loop(wait=True) is not None

    def decode(self, im: Any, data: bytes) -> Any:
        mode = im.mode
        width, height = im.size
        if (im.format != "PNG" or mode not in _BYTES_PER_PIXEL or len(im.tile) != 1
                or im.info.get("interlace") or getattr(im, "n_frames", 1) != 1
                or not self.min_pixels <= width * height <= self.max_pixels):
            return None
        codec, box, offset, rawmode = tuple(im.tile[0])[:4]
        if codec != "zip" or tuple(box) != (0, 0, width, height) or rawmode != mode:
            return None
        kernel = self._loop()
        if kernel is None:
            return None
        compressed = _image_data(data, offset, until_iend=True)
        if compressed is None:
            return None
        bpp = _BYTES_PER_PIXEL[mode]
        stride = width * bpp
        rows = _inflate(compressed, height * (stride + 1))
        del compressed
        if rows is None:
            return None
        if len(rows) < height * (stride + 1):
            raise ShortImageData(_short(len(rows) // (stride + 1), height))
        pixels = _unfiltered(kernel, rows, height, stride, bpp)
        del rows
        if pixels is None:
            return None
        return Image.frombytes(mode, (width, height), pixels)  # a copy: Pillow owns it


@functools.cache
def default() -> Decoder:
    """The decoder ``accelerators`` chose for this process, made on first use."""
    return FastPng() if chosen().png.backend == "fast-png" else PILLOW


def _short(rows: int, height: int) -> str:
    return f"the image data ends after {rows} of {height} rows"


def _image_data(data: bytes, offset: int, until_iend: bool) -> bytes | None:
    """The IDAT payloads from the chunk whose data starts at ``offset``, joined; None
    if a chunk runs past the end of the file, or (``until_iend``) unless IEND follows
    them directly."""
    pos = offset - 8
    parts = []
    while True:
        if pos + 8 > len(data):
            return None
        length, kind = _CHUNK.unpack_from(data, pos)
        if kind != b"IDAT":
            break
        if pos + 12 + length > len(data):
            return None
        parts.append(memoryview(data)[pos + 8:pos + 8 + length])
        pos += 12 + length
    return b"".join(parts) if parts and (kind == b"IEND" or not until_iend) else None


def _row_bytes(width: int, bits: int) -> int:
    return 1 + (width * bits + 7) // 8 if width else 0


def _first_idat(data: bytes) -> int:
    """Where the first IDAT chunk's data starts in the PNG file ``data``; -1 if nowhere."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = _CHUNK.unpack_from(data, pos)
        if kind == b"IDAT":
            return pos + 8
        pos += 12 + length
    return -1


def short_image_data(data: bytes) -> str | None:
    """Why the PNG file ``data`` lacks rows, if its zlib stream ends, whole, before the
    last row, as zlib reads it; else None. Pillow fills such rows with black without a
    word; ``tf.io.decode_png`` refuses the file.

    Inflates the stream once more, in bounded steps, keeping nothing.
    """
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = _IHDR.unpack_from(data, 16)
    samples = _SAMPLES.get(colour)
    offset = _first_idat(data)
    stream = _image_data(data, offset, until_iend=False) if offset > 0 else None
    if samples is None or stream is None:
        return None
    bits = depth * samples
    if interlace:
        passes = [(-(-(height - y) // dy), -(-(width - x) // dx))
                  for x, y, dx, dy in _ADAM7 if x < width and y < height]
    else:
        passes = [(height, width)]
    size = sum(rows * _row_bytes(columns, bits) for rows, columns in passes)
    inflater = zlib.decompressobj()
    got, pending = 0, stream
    try:
        while pending and not inflater.eof and got < size:
            got += len(inflater.decompress(pending, min(size - got, 1 << 20)))
            pending = inflater.unconsumed_tail
    except zlib.error:
        return None  # damaged: Pillow's own verdict stands
    if not inflater.eof or got >= size:
        return None
    if interlace:
        return f"the image data ends after {got} of {size} bytes"
    return _short(got // _row_bytes(width, bits), height)


def _inflate(compressed: bytes, size: int) -> bytearray | None:
    """The zlib stream ``compressed`` inflated, if it is whole (checksum included) and
    holds at most ``size`` bytes (fewer: the rows end early); else None. No more than
    ``size`` bytes are ever made.

    Bytes after the end of the stream are ignored, as Pillow ignores them. libdeflate
    reads a few streams that zlib refuses (see the module docstring)."""
    import deflate

    try:
        rows: bytearray = deflate.zlib_decompress(compressed, size)
    except deflate.DeflateError:  # damaged, or more than ``size`` bytes: Pillow decides
        return None
    return rows


def _unfiltered(kernel: Callable[..., int], rows: Any, height: int, stride: int,
                bpp: int) -> Any:
    """The pixels of ``rows`` (``height`` rows of a filter byte and ``stride`` bytes, all
    there) as a uint8 array, or None if a row's filter type is unknown."""
    import numpy as np

    pixels = np.empty(height * stride, dtype=np.uint8)
    if kernel(np.frombuffer(rows, dtype=np.uint8), height, stride, bpp, pixels) != -1:
        return None
    return pixels


def open_and_decode(data: bytes, decoder: Decoder | None = None) -> Any:
    """``data`` decoded by ``decoder`` (by default ``default()``) after Pillow opened it,
    or None: for tests and benchmarks."""
    return (decoder or default()).decode(Image.open(io.BytesIO(data)), data)
