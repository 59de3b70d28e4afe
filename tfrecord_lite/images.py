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

The decode check of a JPEG (stored as is or converted) runs in libjpeg-turbo before
any full decode (``jpeg_check``, which holds the table of libjpeg's messages and
verdicts). With ``corrupt_data="fail"`` (validation "strict") damage fails the image
with libjpeg's message; with "warn" (lenient) the image is stored and the message is
returned in ``StoredImage.warnings``. Without the decode check a JPEG stored as is
must still end with an end-of-image marker. 12-bit, lossless and hierarchical JPEGs
are left to Pillow, which decodes them in full or refuses them.

PNG files are decoded by ``png_decoder`` (``png.py``: the ``fast-png`` extra where it is
installed) or by Pillow, to the same pixels, so the stored JPEG is byte-identical either
way. Pillow opens every file first and decodes anything that decoder leaves; any file it
doubts goes to Pillow, which decides the item's error. A PNG whose image data ends,
cleanly, before the last row fails as truncated (strict), or is stored with a warning,
its missing rows black (lenient): TensorFlow's ``decode_png`` refuses such a file.

Memory is bounded for any image under the pixel limit: images are decoded under the
process-wide pixel budget (``budget``), one that alone would pass it fails before it is
decoded, or, a JPEG 2000 image with ``max_side``, is decoded at a reduced resolution;
conversion to 8-bit RGB works a block of rows at a time and frees the source (``rgb``).

Pillow is imported when this module is (simplejpeg and numpy on first use), so
``import tfrecord_lite`` does not import this module.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image

from . import budget, png
from .budget import check_pixels, decode_cost
from .errors import ImageError, reason
from .jpeg import JpegInfo, jpeg_info
from .jpeg_check import checked_by_libjpeg, jpeg_damage
from .looks import IMAGE_MAGIC
from .rgb import to_rgb
from .storage import open_input

MAGIC = IMAGE_MAGIC  # (first bytes, at offset, format): how an image file is recognised
# JPEG start-of-frame markers TensorFlow and browsers decode: baseline, extended, progressive.
_PASSTHROUGH_SOF = {0xC0, 0xC1, 0xC2}
_PROGRESSIVE_SOF = {0xC2, 0xCA}
# The largest side libjpeg-turbo decodes or encodes (JPEG_MAX_DIMENSION).
_JPEG_MAX_SIDE = 65500
CORRUPT_DATA = ("fail", "warn")


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
    if info is not None and checked_by_libjpeg(info):
        damage = jpeg_damage(data, info)
        if damage is not None:
            raise ImageError(f"{damage[1]} JPEG data, not every pixel decodes ({damage[0]})",
                             damage[1])
        return info.width, info.height
    with Image.open(io.BytesIO(data)) as im:
        size: tuple[int, int] = im.size
        if im.format == "JPEG":
            _draft_eighth_luma(im)
        with budget.hold(decode_cost(im, im.width * im.height, "image/encoded")):
            im.load()
    return size


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
        check_pixels(info.width, info.height, where)
        if max(info.width, info.height) > _JPEG_MAX_SIDE:  # libjpeg would call it corrupt
            raise ImageError(f"{where}: {info.width}x{info.height} pixels: libjpeg (and so "
                             f"TensorFlow) decodes at most {_JPEG_MAX_SIDE:,} a side",
                             "too large")
        if options.decode_check and checked_by_libjpeg(info):
            # Before any full decode: a frame header that claims more than the data
            # holds fails here, without a full-size buffer. A progressive JPEG needs
            # its coefficients in memory (2 bytes a sample), so it counts as large.
            progressive = info.sof in _PROGRESSIVE_SOF
            with budget.hold(info.width * info.height if progressive else 0):
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
    check_pixels(im.width, im.height, where)
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
    with budget.hold(decode_cost(im, pixels, where, reduced=pixels < im.width * im.height)):
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
        stored = _finish(to_rgb(im), target, options, where)
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
            check_pixels(info.width, info.height, path)
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
    check_pixels(size[0], size[1], path)
    return size
