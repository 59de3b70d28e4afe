"""8-bit gray PNG files of masks and label images, written quickly.

A record stores each object's 0/1 mask as a PNG of the whole image, as the TensorFlow
Object Detection API's and the Model Garden's ``create_coco_tf_record.py`` do, and most
of its rows are zero: an object seldom spans more than a fraction of the image. Pillow's
encoder spends most of its time compressing those zeros. This writer compresses only
the band of rows that holds a nonzero pixel (zlib, Pillow's default level), and writes
the zero rows above and below it from pieces of compressed zeros made once per process
(one for each power of two bytes up to 1 MiB). A zlib stream may be made of such
pieces: each ends on a byte boundary (a sync flush), and the checksum (Adler-32) of a
run of zeros follows from its length. A 0/1 mask's band is compressed with zlib's
run-length strategy (``runs=True``), which finds what the default strategy finds in such
rows, runs of one value, about five times faster and to the same size; a label image's
regions of class ids compress a fifth smaller with the default strategy, which also
matches rows against the rows above.

The file is an ordinary PNG, 8-bit gray, its rows unfiltered: decoders (Pillow, libpng,
``tf.io.decode_png``) give the same pixels as from Pillow's own file, which is a little
smaller. The tests decode both and compare.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from functools import cache

import numpy as np
from PIL import Image

from .errors import MaskError, reason

LEVEL = 6
"""zlib's compression level for the rows that hold nonzero pixels (Pillow's default)."""

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ZLIB_HEADER = b"\x78\x9c"  # deflate, 32 KiB window, the default level
_LAST_BLOCK = zlib.compressobj(LEVEL, zlib.DEFLATED, -15).flush()  # empty and final
_ADLER = 65521
_LARGEST_PIECE = 20  # 1 MiB of zeros


def _deflate(data: bytes, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> bytes:
    """Raw deflate of ``data`` ending on a byte boundary, to be followed by more."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 8, strategy)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


@cache
def _zeros(power: int) -> bytes:
    """Raw deflate of 2**power zero bytes (power <= 20: at most 21 pieces, a few KB)."""
    return _deflate(bytes(1 << power))


def _zero_run(count: int, out: list[bytes]) -> None:
    """Append the deflate of ``count`` zero bytes to ``out``, from the cached pieces."""
    whole, rest = divmod(count, 1 << _LARGEST_PIECE)
    out.extend([_zeros(_LARGEST_PIECE)] * whole)
    for power in range(_LARGEST_PIECE):
        if rest >> power & 1:
            out.append(_zeros(power))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(data, zlib.crc32(kind)))


def encode(array: np.ndarray, runs: bool = False) -> bytes:
    """An 8-bit gray PNG of a 2-D uint8 array (a 0/1 mask, or class ids); ``runs``:
    compress with zlib's run-length strategy (for 0/1 masks: faster, as small).

    Raises:
        ValueError: not a 2-D uint8 array, or an empty one.
    """
    if array.dtype != np.uint8 or array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected a non-empty 2-D uint8 array, got a {array.ndim}-D "
                         f"{array.dtype} one of shape {array.shape}")
    height, width = array.shape
    row_bytes = width + 1  # each row starts with its filter type, 0 (none)
    used = np.flatnonzero(array.any(axis=1))
    top, bottom = (int(used[0]), int(used[-1]) + 1) if used.size else (height, height)
    pieces: list[bytes] = [_ZLIB_HEADER]
    a, b = 1, 0  # Adler-32: the sum of the bytes + 1, and the sum of those sums
    _zero_run(top * row_bytes, pieces)
    b = (b + top * row_bytes * a) % _ADLER  # a run of zeros leaves a alone
    if bottom > top:
        rows = np.zeros((bottom - top, row_bytes), np.uint8)
        rows[:, 1:] = array[top:bottom]
        band = rows.tobytes()
        pieces.append(_deflate(band, zlib.Z_RLE if runs else zlib.Z_DEFAULT_STRATEGY))
        adler = zlib.adler32(band, b << 16 | a)
        a, b = adler & 0xFFFF, adler >> 16
    tail = (height - bottom) * row_bytes
    _zero_run(tail, pieces)
    b = (b + tail * a) % _ADLER
    pieces += [_LAST_BLOCK, struct.pack(">I", b << 16 | a)]
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    return b"".join([_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", b"".join(pieces)),
                     _chunk(b"IEND", b"")])


_OTHER_WRITERS = ("P", "1")  # palette indices, 1-bit (Pillow gives them as 0 and 1)


def png_size(data: bytes) -> tuple[int, int] | None:
    """The (height, width) a PNG's header gives, read without decoding anything; None
    for bytes that do not start as a PNG does. Readers compare it with the image's size
    before decoding, so that a small file of huge dimensions is refused at no cost."""
    if len(data) < 24 or data[:8] != _SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return height, width


def decode(data: bytes, where: str = "mask", strict: bool = True,
           size: tuple[int, int] | None = None) -> np.ndarray:
    """The uint8 pixels of an 8-bit gray PNG (a stored mask or label image); unless
    ``strict``, also a palette PNG's indices and a 1-bit PNG's 0 and 1, as other writers
    may store them (``tf.io.decode_png`` gives those as gray levels instead). With
    ``size`` (height, width), a PNG whose header gives another size is refused before
    anything is decoded.

    Raises:
        MaskError: not a PNG, not 8-bit gray (strict), another size than ``size``
            (reason "size"), or damaged.
    """
    header = png_size(data)
    if header is None:
        raise MaskError(f"{where}: does not decode as PNG (no PNG header)", "not an image")
    if size is not None and header != size:
        raise MaskError(f"{where} is {header[1]}x{header[0]}, the image {size[1]}x{size[0]}",
                        "size")
    try:
        with warnings.catch_warnings():  # a size beyond Pillow's limit is an error here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            im.load()
    except Image.DecompressionBombError:
        raise MaskError(f"{where}: a PNG of {header[1]}x{header[0]} pixels, over the "
                        f"{2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels Pillow decodes",
                        "too large") from None
    except Exception as exc:  # Pillow raises many kinds for damaged data
        raise MaskError(f"{where}: does not decode as PNG ({reason(exc)})", "not an image") from exc
    with im:
        if im.format != "PNG" or (im.mode != "L" and (strict or im.mode not in _OTHER_WRITERS)):
            raise MaskError(f"{where}: expected an 8-bit gray PNG, got {im.format} {im.mode}",
                            "channels")
        return np.asarray(im, dtype=np.uint8)
