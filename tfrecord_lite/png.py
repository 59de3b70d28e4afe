"""Plain PNG files decoded faster than Pillow does it, to Pillow's pixels and verdicts.

Pillow decodes a 640x480 photo in about 6 ms here: zlib's inflate takes about 40% and
undoing the row filters (mostly Paeth, one byte at a time) the rest. This module does
the same two steps faster, and both let other threads run:

* libdeflate (the ``deflate`` package) inflates the image data into a buffer of exactly
  the image's size: about 3x zlib, checking the whole stream, its Adler-32 checksum
  included;
* a loop compiled once by numba (``_png_kernel.py``, cached on disk) undoes the filters.

Pillow still decides. It opens the file first, which checks the signature, every chunk
before the image data (with its CRC) and the header; only then does this path take:

* 8-bit gray, gray + alpha, RGB or RGBA ("L", "LA", "RGB", "RGBA"), not interlaced,
  not animated, from ``MIN_PIXELS`` (128x128) to ``MAX_PIXELS`` pixels;
* image data (IDAT chunks, as Pillow reads them) followed directly by IEND;
* a zlib stream that inflates, checksum and all, to exactly the rows the header sizes;
* known filter types on every row.

Anything else returns None and Pillow decodes the file as before, errors included. When
this path succeeds Pillow would too, with the same pixels: it reads the same chunks and
stops once it has the rows, and undoing a filter has only one answer (the tests compare
both on every filter type and mode and on damaged files). One known exception: a deflate
stream that breaks the format's limits in ways no encoder does (more than 286 literal or
30 distance codes declared, distance code 30 or 31 used) is read by libdeflate and
refused by zlib, so this path stores what Pillow alone would refuse. zlib-ng, which keeps
zlib's rules, was tried: its interface with a cap on the bytes out cost 15% of the
PNG rate, and its unbounded one lets a small crafted file inflate without limit.

The first thread of a process to meet a PNG compiles the loop (about 2.5 s the first time
after an install, then a read of numba's cache: about 0.3 s, and 125 MB more in the
process, 80 MB of them shared libraries); the process's other threads decode their PNG
files with Pillow meanwhile.

Without numba (not installed, unable to run, or ``TFRECORD_LITE_FAST_PNG=0`` in the
environment) every PNG goes to Pillow, with one warning saying why.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import struct
import threading
import zlib
from typing import Any, Callable

from PIL import Image

logger = logging.getLogger(__name__)

ENV_SWITCH = "TFRECORD_LITE_FAST_PNG"
"""Set to 0 to decode every PNG with Pillow."""
MAX_PIXELS = 1 << 24
"""Larger PNGs go to Pillow: this path holds the rows twice besides Pillow's image."""
MIN_PIXELS = 1 << 14
"""Smaller PNGs go to Pillow: below 128x128 it saves under 0.2 ms an image, and a job of
small images then never loads numba (0.3 s and 125 MB a process)."""

_CHUNK = struct.Struct(">I4s")
# Pillow's mode -> bytes per pixel, for the modes this path decodes.
_BYTES_PER_PIXEL = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


_lock = threading.Lock()  # held by the thread preparing the loop
_ready = threading.Event()  # set once the loop is compiled, or known to be unavailable
_compiled: Callable[..., int] | None = None
_unavailable: str | None = None


def _numba_missing() -> str | None:
    """Why the fast path is off, without importing numba; None when it is on."""
    switch = os.environ.get(ENV_SWITCH, "")
    if switch.strip().lower() in ("0", "false", "no", "off"):
        return f"{ENV_SWITCH}={switch}"
    for module in ("numba", "deflate"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


def backend() -> str:
    """Which decoder PNG files get, for ``--version``."""
    why = _unavailable or _numba_missing()
    return f"Pillow ({why})" if why else "libdeflate + numba, Pillow for the rest"


def _prepare() -> None:
    """Import the loop and compile it (about 2.5 s the first time, then a read of numba's
    cache: about 0.3 s in all), on a tiny image; then switch the path on or off."""
    global _compiled, _unavailable
    why = _numba_missing()
    kernel = None
    if why is None:
        try:
            import numba

            if getattr(numba.config, "DISABLE_JIT", 0):
                why = "NUMBA_DISABLE_JIT is set: the loop would run as Python, 250x slower"
            else:
                from ._png_kernel import CACHED, unfilter

                if not CACHED:
                    logger.warning("numba finds no folder it can write its cache to: the PNG "
                                   "decoder's loop is compiled in each process (about 2.5 s); "
                                   "NUMBA_CACHE_DIR can name one")
                rows = _inflate(zlib.compress(b"\x04\x01\x02\x03"), 4)
                if rows is None or _unfiltered(unfilter, rows, 1, 3, 3) is None:
                    raise RuntimeError("the compiled loop fails on a 1x1 image")
                kernel = unfilter
        except Exception as exc:  # a broken install must not fail the job
            cache = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
            why = (f"numba failed: {exc} (if its cache is damaged, delete the _png_kernel.* "
                   f"files in {cache}, in NUMBA_CACHE_DIR or in numba's folder under the "
                   "user's cache, such as ~/.cache/numba)")
        if why is not None:
            logger.warning("PNG files are decoded by Pillow alone: %s", why)
    _compiled, _unavailable = kernel, why
    _ready.set()


def _kernel(wait: bool = False) -> Callable[..., int] | None:
    """The compiled loop, or None while it is off or being prepared by another thread.

    The first thread to ask prepares it (``_prepare``) before going on; threads that ask
    meanwhile get None, unless ``wait``, and decode their PNG files with Pillow (the
    stored bytes are the same either way). A job waits for its threads, so the compiled
    loop always reaches numba's cache, and the next job reads it.
    """
    if not _ready.is_set():
        if _lock.acquire(blocking=False):
            try:
                if not _ready.is_set():
                    _prepare()
            finally:
                _lock.release()
        elif wait:
            _ready.wait()
    return _compiled


def ready() -> bool:
    """Prepare the fast path, or wait for the thread preparing it. True if PNG files
    now take it."""
    _kernel(wait=True)
    return _compiled is not None


def _image_data(data: bytes, offset: int) -> bytes | None:
    """The IDAT payloads from the chunk whose data starts at ``offset``, joined; None
    unless IEND follows them directly and every chunk lies within the file."""
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
    return b"".join(parts) if kind == b"IEND" and parts else None


def decode(im: Any, data: bytes) -> Any:
    """The pixels of ``im``, the PNG file ``data`` as Pillow opened it (not loaded).

    Returns:
        A new Pillow image of ``im``'s mode and size, or None for Pillow to decode
        ``im`` (see the module docstring for when).
    """
    mode = im.mode
    width, height = im.size
    if (im.format != "PNG" or mode not in _BYTES_PER_PIXEL or len(im.tile) != 1
            or im.info.get("interlace") or getattr(im, "n_frames", 1) != 1
            or not MIN_PIXELS <= width * height <= MAX_PIXELS):
        return None
    codec, box, offset, rawmode = tuple(im.tile[0])[:4]
    if codec != "zip" or tuple(box) != (0, 0, width, height) or rawmode != mode:
        return None
    kernel = _kernel()
    if kernel is None:
        return None
    compressed = _image_data(data, offset)
    if compressed is None:
        return None
    bpp = _BYTES_PER_PIXEL[mode]
    stride = width * bpp
    rows = _inflate(compressed, height * (stride + 1))
    del compressed
    if rows is None:
        return None
    pixels = _unfiltered(kernel, rows, height, stride, bpp)
    del rows
    if pixels is None:
        return None
    return Image.frombytes(mode, (width, height), pixels)  # a copy: Pillow owns it


def _inflate(compressed: bytes, size: int) -> bytearray | None:
    """The zlib stream ``compressed`` inflated, if it is whole (checksum included) and
    holds exactly ``size`` bytes; else None. No more than ``size`` bytes are ever made.

    Bytes after the end of the stream are ignored, as Pillow ignores them. libdeflate
    reads a few streams that zlib refuses (see the module docstring)."""
    import deflate

    try:
        rows: bytearray = deflate.zlib_decompress(compressed, size)
    except deflate.DeflateError:  # damaged, or more than ``size`` bytes: Pillow decides
        return None
    return rows if len(rows) == size else None


def _unfiltered(kernel: Callable[..., int], rows: Any, height: int, stride: int,
                bpp: int) -> Any:
    """The pixels of ``rows`` (``height`` rows of a filter byte and ``stride`` bytes, all
    there) as a uint8 array, or None if a row's filter type is unknown."""
    import numpy as np

    pixels = np.empty(height * stride, dtype=np.uint8)
    if kernel(np.frombuffer(rows, dtype=np.uint8), height, stride, bpp, pixels) != -1:
        return None
    return pixels


def open_and_decode(data: bytes) -> Any:
    """``data`` decoded by this path (opened by Pillow first), or None: for tests and
    benchmarks."""
    return decode(Image.open(io.BytesIO(data)), data)
