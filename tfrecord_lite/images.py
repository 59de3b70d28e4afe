"""Images, read by content: sniff, pass 3-channel JPEG through, convert the rest.

* A baseline or progressive JPEG with 3 components is stored byte for byte.
* Anything else Pillow reads (PNG of any mode, gray or CMYK JPEG, GIF's first frame,
  BMP, WebP, TIFF, ...) is converted to RGB and re-encoded as JPEG.
* With ``decode_check`` every stored image is decoded once, so a truncated or corrupt
  file fails its item instead of failing a training job later (or, for JPEG data, is
  stored with a warning under lenient validation).

EXIF orientation is not applied: TensorFlow's decoders ignore it, and boxes are
relative to the stored pixels. Pillow's decompression-bomb limit stays on, and is
enforced from the header, before any pixel is decoded: an image with more pixels
than ``PIL.Image.MAX_IMAGE_PIXELS`` fails its item (reason "too large").

The decode check of a JPEG (stored as is or converted) runs in libjpeg-turbo through
``simplejpeg`` (a dependency), before any full decode: the JPEG is decoded at 1/8
scale, luma only (CMYK as it is), which reads every byte of every scan without a
full-size pixel buffer, and the first warning libjpeg gives decides:

=====================================================  ==========================  =========
libjpeg-turbo message (jerror.h)                       code                        verdict
=====================================================  ==========================  =========
Corrupt JPEG data: premature end of data segment       JWRN_HIT_MARKER             truncated
Premature end of JPEG file                             JWRN_JPEG_EOF               truncated
Corrupt JPEG data: bad Huffman code                    JWRN_HUFF_BAD_CODE          corrupt
Corrupt JPEG data: bad arithmetic code                 JWRN_ARITH_BAD_CODE         corrupt
Corrupt JPEG data: found marker 0x.. instead of RSTn   JWRN_MUST_RESYNC            corrupt
Invalid SOS parameters for sequential JPEG             JWRN_NOT_SEQUENTIAL         corrupt
Inconsistent progression sequence for component ...    JWRN_BOGUS_PROGRESSION      corrupt
any error, any other message                           JERR_...                    corrupt
Corrupt JPEG data: N extraneous bytes before marker    JWRN_EXTRANEOUS_DATA        no loss
Warning: unknown JFIF revision number                  JWRN_JFIF_MAJOR             no loss
Unknown Adobe color transform code                     JWRN_ADOBE_XFORM            no loss
Corrupt JPEG data: bad ICC marker                      JWRN_BOGUS_ICC              no loss
=====================================================  ==========================  =========

The first four "no loss" warnings lose no pixels. libjpeg stops at the first warning,
so one of them could hide damage further on: extraneous bytes before the end-of-image
marker come after every scan was decoded, so the check ends there; any other is looked
past by checking again a copy of the file whose header keeps only what the pixels are
decoded from (DQT, DHT, DAC, DRI, SOF; no APPn, COM or garbage between segments), with
the scans as they are. Garbage left between two scans in that copy is damage
("corrupt"): the scans after it cannot be checked.

With ``corrupt_data="fail"`` (validation "strict") damage fails the image with
libjpeg's message; with "warn" (lenient) the image is stored and the message is
returned in ``StoredImage.warnings``. Without the decode check a JPEG stored as is
must still end with an end-of-image marker. 12-bit, lossless and hierarchical JPEGs
are left to Pillow, which decodes them in full or refuses them.

PNG files are decoded by ``png_decoder`` (``png.py``: the ``fast-png`` extra where it is
installed) or by Pillow, to the same pixels, so the stored JPEG is byte-identical either
way. Pillow opens every file first and decodes anything that decoder leaves; any file it
doubts goes to Pillow, which decides the item's error. A PNG whose image data ends,
cleanly, before the last row fails as truncated (strict), or is stored with a warning,
its missing rows black (lenient): TensorFlow's ``decode_png`` refuses such a file.

Memory is bounded for any image under the pixel limit: 16-bit, 32-bit and float
pixels are converted to 8 bits a block of rows at a time (no whole-image float64 copy),
a source image is freed once converted, and images of ``_LARGE_PIXELS`` or more are
decoded under a process-wide budget of ``DECODE_BUDGET_PIXELS`` (the default pixel
limit): threads never hold two images near the limit at once. An image counts by what
its format takes to decode (``decode_weight``: a JPEG 2000 or WebP pixel costs more), and
one that alone would pass the budget fails before it is decoded, or, a JPEG 2000 image
with ``max_side``, is decoded at a reduced resolution. Pillow's image blocks are
made larger than glibc's mmap threshold, so freed pixels go back to the system.

Pillow is imported when this module is (simplejpeg and numpy on first use), so
``import tfrecord_lite`` does not import this module.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image

from . import png
from .accelerators import chosen
from .errors import ImageError, reason
from .looks import IMAGE_MAGIC
from .storage import open_input


def _simplejpeg() -> Any:
    """The JPEG check's library (``accelerators``), imported on first use: it imports
    numpy (tens of milliseconds), which a job without the decode check never needs, and
    every worker process starts afresh."""
    if chosen().jpeg_check.backend != "simplejpeg":
        raise ImageError("the JPEG decode check needs simplejpeg (pip install simplejpeg); "
                         "or store without the check")
    import simplejpeg

    return simplejpeg


MAGIC = IMAGE_MAGIC  # (first bytes, at offset, format): how an image file is recognised
# JPEG start-of-frame markers TensorFlow and browsers decode: baseline, extended, progressive.
_PASSTHROUGH_SOF = {0xC0, 0xC1, 0xC2}
_ALL_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# What the decode check accepts: 8-bit Huffman (baseline, extended, progressive) and
# arithmetic (sequential, progressive) JPEG.
_CHECKED_SOF = {0xC0, 0xC1, 0xC2, 0xC9, 0xCA}
_PROGRESSIVE_SOF = {0xC2, 0xCA}
_NO_LENGTH = {0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8}
_U16 = struct.Struct(">H")
# The largest side libjpeg-turbo decodes or encodes (JPEG_MAX_DIMENSION).
_JPEG_MAX_SIDE = 65500
CORRUPT_DATA = ("fail", "warn")
# libjpeg-turbo's warnings (jerror.h), by their message text: see the module docstring.
_EXTRANEOUS = re.compile(r"Corrupt JPEG data: \d+ extraneous bytes before marker 0x([0-9a-f]{2})")
_BENIGN_WARNINGS = (
    "Warning: unknown JFIF revision number",  # JWRN_JFIF_MAJOR
    "Unknown Adobe color transform code",  # JWRN_ADOBE_XFORM
    "Corrupt JPEG data: bad ICC marker",  # JWRN_BOGUS_ICC
)
_TRUNCATED_WARNINGS = (
    "Corrupt JPEG data: premature end of data segment",  # JWRN_HIT_MARKER
    "Premature end of JPEG file",  # JWRN_JPEG_EOF
)
# Rows converted at a time from 16-bit or float pixels to 8 bits.
_ROWS_PER_BLOCK = 256
# Images at least this large are decoded under the process-wide budget below.
_LARGE_PIXELS = 1 << 22
# At most this many pixels of large images are being decoded at once in a process:
# the default pixel limit, so one image at the limit is decoded alone.
DECODE_BUDGET_PIXELS = 89_478_485
# What a pixel of the budget stands for: the peak bytes a pixel takes while decoded and
# converted to RGB, for the costliest of the formats counted one for one (a progressive
# CMYK JPEG, whose coefficients libjpeg holds). Measured on 9400x9400 images of each
# format (docs/reliability.md lists the peaks); a JPEG 2000 or WebP image costs more,
# and counts as more pixels (``decode_weight``).
_BUDGET_PIXEL_BYTES = 13
# Formats measured at or under a budget pixel's bytes a pixel (MPO: JPEG frames).
_MEASURED = frozenset({"JPEG", "MPO", "PNG", "GIF", "BMP", "TIFF", "AVIF", "QOI", "DDS",
                       "PPM", "PCX", "IM", "TGA", "SGI"})
# openjpeg holds 4 bytes a sample of a JPEG 2000 image as it decodes, beside the image
# Pillow makes (4 a pixel) and its RGB copy (4): measured, 19 a pixel for RGB and 24 for
# RGBA, counted as 21.5 and 26.
_JPEG2000_BYTES = (4.5, 8)  # a sample's, and a pixel's beside them
# WebP goes through libwebp's animation decoder: two RGBA canvases, then Pillow's image
# and its RGB copy.
_WEBP_BYTES = 16.5
# A format not measured counts as twice its pixels: the bound holds, at the price of
# refusing some images of such formats near the pixel limit.
_UNMEASURED_WEIGHT = 2.0


class _PixelBudget:
    """A semaphore weighted by pixel count, shared by every thread of the process.

    A large image waits until the pixels of the large images being decoded plus its
    own fit the budget; an image alone always proceeds, even one above the budget.
    """

    def __init__(self, pixels: int) -> None:
        self.pixels = pixels
        self.in_use = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        if pixels < _LARGE_PIXELS:
            yield
            return
        with self._cond:
            while self.in_use and self.in_use + pixels > self.pixels:
                self._cond.wait()
            self.in_use += pixels
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= pixels
                self._cond.notify_all()


_budget = _PixelBudget(DECODE_BUDGET_PIXELS)

# Pillow holds a large image in blocks of 16 MiB by default. glibc's malloc serves
# blocks that size from its heap once its mmap threshold has risen (up to 32 MiB), and
# the heap keeps freed memory: a job of large images then grows by hundreds of MB.
# Blocks above that threshold are mapped and unmapped, so freed pixels go back to the
# system. Left alone when set through Pillow's own PILLOW_BLOCK_SIZE variable.
_PILLOW_BLOCK_BYTES = 64 << 20
if "PILLOW_BLOCK_SIZE" not in os.environ and Image.core.get_block_size() < _PILLOW_BLOCK_BYTES:
    Image.core.set_block_size(_PILLOW_BLOCK_BYTES)


@dataclass(frozen=True)
class ImageOptions:
    """How images are stored.

    Attributes:
        quality: JPEG quality for re-encoded images (1-100).
        max_side: downscale so that the longer side is at most this many pixels.
        decode_check: decode every stored image once to prove it decodes.
        corrupt_data: what the decode check does with a JPEG whose pixels do not all
            decode, and any decode with a PNG whose image data ends before its last
            row: "fail" the image, or "warn" (store it, with a warning in
            ``StoredImage.warnings``).
    """

    quality: int = 95
    max_side: int | None = None
    decode_check: bool = True
    corrupt_data: str = "fail"

    def __post_init__(self) -> None:
        if self.corrupt_data not in CORRUPT_DATA:
            raise ValueError(f"corrupt_data must be one of {', '.join(CORRUPT_DATA)}, "
                             f"got {self.corrupt_data!r}")


@dataclass(frozen=True)
class JpegInfo:
    width: int
    height: int
    components: int
    precision: int
    sof: int
    adobe_transform: int | None
    frame_end: int  # offset just past the frame header: scan data and EOI come after


@dataclass(frozen=True)
class StoredImage:
    """The bytes to store and what they are; ``source_width`` x ``source_height`` is the
    image file's size (0: the stored size), larger when ``max_side`` downscaled it."""

    data: bytes
    width: int
    height: int
    format: str = "JPEG"
    colorspace: str = "RGB"
    channels: int = 3
    warnings: tuple[str, ...] = ()
    source_width: int = 0
    source_height: int = 0

    @property
    def source_size(self) -> tuple[int, int]:
        """``(width, height)`` of the image file."""
        return (self.source_width or self.width, self.source_height or self.height)


def sniff(data: bytes) -> str | None:
    """The image format from the first bytes, or None."""
    for magic, offset, name in MAGIC:
        if data[offset:offset + len(magic)] == magic:
            if name == "WEBP" and data[:4] != b"RIFF":
                continue
            return name
    return None


def _segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """``(marker, start, end)`` of each marker segment of a JPEG after its SOI, up to and
    including the first start of scan (``end``: the end of its header). Garbage and fill
    bytes between segments are skipped, as libjpeg skips them; the walk stops early where
    the markers cannot be followed (a bad length, the data cut)."""
    n = len(data)
    pos = 2
    while pos + 4 <= n:
        if data[pos] != 0xFF or data[pos + 1] in (0x00, 0xFF):
            pos = _next_marker(data, pos + 1)  # garbage (or fill bytes) between segments
            if pos < 0:
                return
            continue
        marker = data[pos + 1]
        if marker in _NO_LENGTH:
            yield marker, pos, pos + 2
            pos += 2
            continue
        (length,) = _U16.unpack_from(data, pos + 2)
        if marker == 0xDA:  # the scans follow: the walk ends here
            yield marker, pos, pos + 2 + length
            return
        if length < 2:
            return
        yield marker, pos, pos + 2 + length
        pos += 2 + length


def jpeg_info(data: bytes) -> JpegInfo | None:
    """Parse a JPEG's markers up to its start-of-frame; None when not a JPEG or none
    is found."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    adobe: int | None = None
    for marker, start, end in _segments(data):
        segment = start + 4
        if marker == 0xEE and data[segment:segment + 5] == b"Adobe" and end - start >= 14:
            adobe = data[segment + 11]
        elif marker in _ALL_SOF:
            if segment + 6 > len(data):
                return None
            precision = data[segment]
            height, width = struct.unpack_from(">HH", data, segment + 1)
            return JpegInfo(width, height, data[segment + 5], precision, marker, adobe, end)
        elif marker == 0xDA:  # scan data before any frame header
            return None
    return None


def decode_weight(fmt: str | None, mode: str) -> float:
    """How many budget pixels one pixel of an image of this format and mode counts as:
    its peak bytes a pixel against ``_BUDGET_PIXEL_BYTES`` (at least 1)."""
    if fmt == "JPEG2000":
        sample, pixel = _JPEG2000_BYTES
        cost: float = sample * Image.getmodebands(mode) + pixel
    elif fmt == "WEBP":
        cost = _WEBP_BYTES
    elif fmt in _MEASURED:
        return 1.0
    else:
        return _UNMEASURED_WEIGHT
    return max(1.0, cost / _BUDGET_PIXEL_BYTES)


def _decode_cost(im: Any, pixels: int, where: str, reduced: bool = False) -> int:
    """The budget pixels decoding ``im`` (``pixels`` of it) takes.

    Raises:
        ImageError: more than ``DECODE_BUDGET_PIXELS``: decoding it would take more
            memory than one image may ("too large"), whatever else runs.
    """
    weight = decode_weight(im.format, im.mode)
    cost = math.ceil(pixels * weight)
    if cost <= DECODE_BUDGET_PIXELS:
        return cost
    need = cost * _BUDGET_PIXEL_BYTES / 1e9
    bound = DECODE_BUDGET_PIXELS * _BUDGET_PIXEL_BYTES / 1e9
    if im.format == "JPEG2000" and not reduced:
        remedy = ("max_side (--max-side) at most half its size stores it smaller, decoded "
                  "at a reduced resolution")
    else:
        remedy = "convert it to PNG or JPEG, or downscale it, first"
    raise ImageError(f"{where}: a {im.width}x{im.height} {im.format} image ({im.mode}) takes "
                     f"about {need:.2f} GB to decode, more than the {bound:.2f} GB one image "
                     f"may take (it counts as {weight:.2f} pixels a pixel against the "
                     f"{DECODE_BUDGET_PIXELS:,}-pixel budget); {remedy}", "too large")


def _jpeg2000_levels(data: bytes) -> int:
    """The resolution levels a JPEG 2000 codestream can be decoded at below its full
    size: the decomposition levels of its main COD marker (0 when not found)."""
    start = data.find(b"\xff\x4f\xff\x51")  # SOC, SIZ: the codestream (JP2 box or raw)
    cod = data.find(b"\xff\x52", start, start + (1 << 16)) if start >= 0 else -1
    # COD: marker, Lcod (2), Scod (1), SGcod (4), then SPcod's decomposition levels.
    return data[cod + 9] if cod >= 0 and cod + 9 < len(data) else 0


def _jpeg2000_reduce(im: Any, data: bytes, target: tuple[int, int]) -> int:
    """Have openjpeg decode a JPEG 2000 image at 1/2, 1/4, ... of its size, no smaller
    than ``target`` (as ``draft`` has libjpeg do); the pixels it will decode."""
    reduce = 0
    while reduce < _jpeg2000_levels(data) and all(
            (side + (1 << reduce)) >> (reduce + 1) >= want for side, want in zip(im.size, target)):
        reduce += 1
    if not reduce:
        return int(im.width * im.height)
    im.reduce = reduce  # Jpeg2KImageFile: decoded at 1 / 2**reduce on load
    power = 1 << reduce
    return ((im.width + (power >> 1)) // power) * ((im.height + (power >> 1)) // power)


def _check_pixels(width: int, height: int, where: str) -> None:
    """Refuse a size beyond Pillow's decompression-bomb limit, before decoding a byte."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise ImageError(
            f"{where}: {width}x{height} pixels exceeds the decompression-bomb limit "
            f"of {limit:,} pixels (PIL.Image.MAX_IMAGE_PIXELS)", "too large")
    if width <= 0 or height <= 0:
        raise ImageError(f"{where}: image claims an empty size {width}x{height}", "corrupt")


def _open(data: bytes, where: str) -> Any:
    if not data:
        raise ImageError(f"{where}: empty file", "empty")
    fmt = sniff(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{where}: {reason(exc)}", "too large") from exc
    except Exception as exc:  # Pillow raises many kinds for a bad header
        if fmt is None:
            raise ImageError(
                f"{where}: not an image (Pillow cannot identify it; starts with {data[:8]!r})",
                "not an image") from exc
        raise ImageError(f"{where}: corrupt {fmt} header: {_message(exc)}") from exc


def _message(exc: Exception) -> str:
    """Pillow's message, without the address of the in-memory file it names (so that the
    failures file of a rerun is the same)."""
    return reason(exc)


def _load(im: Any, where: str) -> None:
    try:
        im.load()
    except Exception as exc:  # truncated data, broken chunks, decoder errors
        message = _message(exc)
        if "truncated" in message:
            raise ImageError(f"{where}: truncated {im.format} file ({message})",
                             "truncated") from exc
        raise ImageError(f"{where}: {im.format} does not decode: {message}") from exc


def _libjpeg_message(data: bytes, info: JpegInfo) -> str | None:
    """libjpeg-turbo's first warning or error decoding the JPEG at 1/8 scale; None if none.

    Luma only (CMYK as it is): every byte of every scan is still read, at a fraction of
    the cost of a full decode, and no full-size pixel buffer is allocated.
    """
    colorspace = "CMYK" if info.components == 4 else "GRAY"
    try:
        _simplejpeg().decode_jpeg(data, colorspace, min_height=info.height // 8,
                                  min_width=info.width // 8, strict=True)
    except ValueError as exc:  # simplejpeg raises ValueError with libjpeg's message
        return str(exc) or "libjpeg error"
    return None


def _benign(message: str) -> int | None:
    """For a warning that loses no pixels, the marker it came before (-1: not about a
    marker); None for any other message (see the table in the module docstring)."""
    extraneous = _EXTRANEOUS.match(message)
    if extraneous is not None:
        return int(extraneous[1], 16)
    return -1 if message.startswith(_BENIGN_WARNINGS) else None


def _scan_core(data: bytes) -> bytes | None:
    """The JPEG with only what libjpeg decodes pixels from before the first scan.

    Keeps the tables, restart interval and frame header (DQT, DHT, DAC, DRI, SOF and
    any marker not known to be metadata), then everything from the first start of scan
    as it is; drops APPn and COM segments and any garbage between segments. None when
    the markers cannot be walked.
    """
    parts = [b"\xff\xd8"]
    for marker, start, end in _segments(data):
        if marker == 0xDA:
            parts.append(data[start:])
            return b"".join(parts)
        if marker not in _NO_LENGTH and not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            parts.append(data[start:end])
    return None


def _next_marker(data: bytes, pos: int) -> int:
    """Offset of the next 0xFF that starts a marker (not followed by 0x00 or 0xFF)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return -1
        if data[pos + 1] not in (0x00, 0xFF):
            return pos
        pos += 1


def jpeg_damage(data: bytes, info: JpegInfo) -> tuple[str, str] | None:
    """Whether libjpeg-turbo decodes every pixel of the JPEG: None, or ``(message,
    reason)`` with libjpeg's message and "truncated" or "corrupt".

    A warning that loses no pixels is no damage. Because libjpeg stops at the first
    warning, a harmless one in the header is looked past by checking a copy without
    the header's metadata and garbage (see the module docstring).
    """
    message = _libjpeg_message(data, info)
    if message is None:
        return None
    marker = _benign(message)
    if marker is None:
        return message, _reason(message)
    if marker == 0xD9:  # after the last scan: every pixel was decoded
        return None
    core = _scan_core(data)
    if core is None:
        return message, "corrupt"
    second = _libjpeg_message(core, info)
    if second is None:
        return None
    marker = _benign(second)
    if marker is None:
        return second, _reason(second)
    if marker == 0xD9:
        return None
    # Garbage between two scans: the scans after it cannot be checked past it.
    return f"{second} (between two scans)", "corrupt"


def _reason(message: str) -> str:
    return "truncated" if message.startswith(_TRUNCATED_WARNINGS) else "corrupt"


def _checked_by_libjpeg(info: JpegInfo) -> bool:
    """Whether the libjpeg check applies: 8-bit, Huffman or arithmetic, 1, 3 or 4
    components (others are left to Pillow, which decodes them in full or refuses)."""
    return info.precision == 8 and info.sof in _CHECKED_SOF and info.components in (1, 3, 4)


def _check_jpeg(data: bytes, info: JpegInfo, options: ImageOptions,
                where: str) -> tuple[str, ...]:
    """Run the decode check; raise for damage, or return it as a warning ("warn")."""
    damage = jpeg_damage(data, info)
    if damage is None:
        return ()
    message, reason = damage
    text = f"{where}: {reason} JPEG data, not every pixel decodes ({message})"
    if options.corrupt_data == "fail":
        raise ImageError(text, reason)
    return (f"{text}; stored anyway (validation is not strict)",)


def _draft_eighth_luma(im: Any) -> None:
    """Have Pillow decode a JPEG at 1/8 scale, luma only (every scan is still read)."""
    im.draft("L", (max(1, im.width // 8), max(1, im.height // 8)))


def decoded_size(data: bytes) -> tuple[int, int]:
    """Decode an image once (a JPEG at 1/8 scale, luma only); its full ``(width, height)``.

    A JPEG gets the decode check of ``prepare`` (strict): damage raises ImageError
    with libjpeg's message.

    Raises:
        ImageError: a JPEG whose pixels do not all decode.
        Exception: whatever Pillow raises for another file that does not decode.
    """
    info = jpeg_info(data)
    if info is not None and _checked_by_libjpeg(info):
        damage = jpeg_damage(data, info)
        if damage is not None:
            raise ImageError(f"{damage[1]} JPEG data, not every pixel decodes ({damage[0]})",
                             damage[1])
        return info.width, info.height
    with Image.open(io.BytesIO(data)) as im:
        size: tuple[int, int] = im.size
        if im.format == "JPEG":
            _draft_eighth_luma(im)
        with _budget.hold(_decode_cost(im, im.width * im.height, "image/encoded")):
            im.load()
    return size


_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _to_gray8(im: Any) -> Any:
    """A 16-bit, 32-bit or float image as 8-bit "L": scaled by 1/257 when any value is
    above 255, else clipped; rounded half up.

    Row block by row block, so no full-size float64 copy is made (the arithmetic per
    block is the float64 one, so the bytes are those of a whole-image conversion).
    """
    import numpy as np

    width, height = im.size
    peak = None
    for top in range(0, height, _ROWS_PER_BLOCK):
        block = np.asarray(im.crop((0, top, width, min(height, top + _ROWS_PER_BLOCK))))
        if block.size:
            block_max = block.max()
            peak = block_max if peak is None else np.maximum(peak, block_max)  # NaN stays
    scale = peak is not None and float(peak) > 255
    out = np.empty((height, width), dtype=np.uint8)
    for top in range(0, height, _ROWS_PER_BLOCK):
        bottom = min(height, top + _ROWS_PER_BLOCK)
        arr = np.asarray(im.crop((0, top, width, bottom)), dtype=np.float64)
        if scale:
            arr = arr / 257.0
        out[top:bottom] = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(out)  # 2-D uint8: "L"


def _to_rgb(im: Any) -> Any:
    """The image as RGB; a new image frees ``im``'s pixels (closes it) once made."""
    if im.mode == "RGB":
        return im
    if im.mode in _HIGH_DEPTH:
        gray = _to_gray8(im)
        im.close()
        return gray.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")  # alpha is dropped, as tf.io.decode_png(channels=3) does
        im.close()
        im = rgba
    rgb = im.convert("RGB")
    im.close()
    return rgb


def _fit(width: int, height: int, max_side: int | None) -> tuple[int, int] | None:
    if not max_side or max(width, height) <= max_side:
        return None
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode_jpeg(im: Any, quality: int, where: str) -> StoredImage:
    buf = io.BytesIO()
    try:
        im.save(buf, "JPEG", quality=quality)
    except (OSError, ValueError) as exc:  # the item's failure, not the shard's
        raise ImageError(f"{where}: cannot be stored as JPEG: {_message(exc)}") from exc
    return StoredImage(buf.getvalue(), im.width, im.height)


def prepare(data: bytes, options: ImageOptions = ImageOptions(),
            where: str = "image", png_decoder: png.Decoder | None = None) -> StoredImage:
    """Turn the bytes of an image file into the JPEG bytes to store.

    Args:
        data: the file's bytes.
        options: quality, downscaling and the decode check.
        where: how to name the image in errors (its path).
        png_decoder: what decodes PNG files Pillow has opened (``png.default()``, the
            one ``accelerators`` chose, unless given); the stored bytes are the same.
    Raises:
        ImageError: empty, not an image, truncated, corrupt or too large.
    """
    if not data:
        raise ImageError(f"{where}: empty file", "empty")
    info = jpeg_info(data)
    warned: tuple[str, ...] = ()
    if info is not None:
        _check_pixels(info.width, info.height, where)
        if max(info.width, info.height) > _JPEG_MAX_SIDE:  # libjpeg would call it corrupt
            raise ImageError(f"{where}: {info.width}x{info.height} pixels: libjpeg (and so "
                             f"TensorFlow) decodes at most {_JPEG_MAX_SIDE:,} a side",
                             "too large")
        if options.decode_check and _checked_by_libjpeg(info):
            # Before any full decode: a frame header that claims more than the data
            # holds fails here, without a full-size buffer. A progressive JPEG needs
            # its coefficients in memory (2 bytes a sample), so it counts as large.
            progressive = info.sof in _PROGRESSIVE_SOF
            with _budget.hold(info.width * info.height if progressive else 0):
                warned = _check_jpeg(data, info, options, where)
    if (info is not None and info.components == 3 and info.precision == 8
            and info.sof in _PASSTHROUGH_SOF):
        target = _fit(info.width, info.height, options.max_side)
        if target is None:
            if not options.decode_check and data.rfind(b"\xff\xd9") < info.frame_end:
                # Even unchecked, a cut file is caught: it lacks the end-of-image marker
                # (which cannot occur inside entropy-coded data).
                raise ImageError(f"{where}: truncated JPEG file (no end-of-image marker)",
                                 "truncated")
            return StoredImage(data, info.width, info.height, warnings=warned)
    stored = _convert(data, options, where, png_decoder or png.default())
    return replace(stored, warnings=warned + stored.warnings) if warned else stored


def _convert(data: bytes, options: ImageOptions, where: str,
             png_decoder: png.Decoder) -> StoredImage:
    """Decode, convert to RGB, downscale and encode as JPEG, within the pixel budget."""
    im = _open(data, where)
    _check_pixels(im.width, im.height, where)
    source_width, source_height = im.size
    target = _fit(im.width, im.height, options.max_side)
    width, height = target or im.size
    if max(width, height) > _JPEG_MAX_SIDE:
        raise ImageError(f"{where}: {width}x{height} pixels cannot be stored as JPEG (at most "
                         f"{_JPEG_MAX_SIDE:,} a side; max_side downscales)", "too large")
    pixels = im.width * im.height
    if target is not None and im.format == "JPEG":
        im.draft("RGB", target)
        pixels = im.width * im.height  # the scaled size libjpeg decodes to
    elif target is not None and im.format == "JPEG2000":
        pixels = _jpeg2000_reduce(im, data, target)
    with _budget.hold(_decode_cost(im, pixels, where, reduced=pixels < im.width * im.height)):
        try:
            decoded = png_decoder.decode(im, data)  # None unless a PNG that path takes
            short = None
        except png.ShortImageData as exc:
            decoded, short = None, str(exc)
        if decoded is None:
            _load(im, where)  # always: converting needs the pixels
            if short is None and im.format == "PNG" and _maybe_short(im):
                short = png.short_image_data(data)
        else:
            im.close()
            im = decoded
        warned: tuple[str, ...] = ()
        if short is not None:  # Pillow has filled the missing rows with black
            text = f"{where}: truncated PNG file ({short})"
            if options.corrupt_data == "fail":
                raise ImageError(text, "truncated")
            warned = (f"{text}; stored anyway, the missing rows black (validation is not "
                      "strict)",)
        stored = _finish(_to_rgb(im), target, options, where)
        return replace(stored, warnings=warned, source_width=source_width,
                       source_height=source_height)


def _maybe_short(im: Any) -> bool:
    """Whether the PNG Pillow decoded may lack rows (a zlib stream that ended early):
    interlaced, or its last row still all zeros, as Pillow leaves missing rows."""
    if im.info.get("interlace"):
        return True
    last_row = im.crop((0, im.height - 1, im.width, im.height))
    return not last_row.tobytes().strip(b"\0")


def _finish(rgb: Any, target: tuple[int, int] | None, options: ImageOptions,
            where: str) -> StoredImage:
    if target is not None:
        small = rgb.resize(target, Image.Resampling.LANCZOS)
        rgb.close()
        rgb = small
    return _encode_jpeg(rgb, options.quality, where)


def read_size_from_file(path: str, root: str | None = None) -> tuple[int, int, str]:
    """``(width, height, format)`` of an image file (a path or a URL), reading its header.

    Args:
        path: the file; with ``root``, read from there and never outside it
            (``storage.open_input``).
    Raises:
        ImageError: empty, not an image, or too large.
        OSError: outside the root (``EXDEV``), missing, unreadable, or not a regular file
            (a FIFO is never waited on).
    """
    with open_input(path, root) as f:  # opened once: what is checked is what is read
        head = f.read(1 << 18)
        if not head:
            raise ImageError(f"{path}: empty file", "empty")
        info = jpeg_info(head)
        if info is not None:
            _check_pixels(info.width, info.height, path)
            return info.width, info.height, "JPEG"
        f.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(f) as im:
                    size = im.width, im.height, im.format or ""
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"{path}: {reason(exc)}", "too large") from exc
        except Exception as exc:
            raise ImageError(f"{path}: not an image Pillow can read ({reason(exc)})",
                             "not an image") from exc
    _check_pixels(size[0], size[1], path)
    return size
