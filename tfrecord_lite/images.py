"""Images, read by content: sniff, pass 3-channel JPEG through, convert the rest.

* A baseline or progressive JPEG with 3 components is stored byte for byte.
* Anything else Pillow reads (PNG of any mode, gray or CMYK JPEG, GIF's first frame,
  BMP, WebP, TIFF, ...) is converted to RGB and re-encoded as JPEG.
* With ``decode_check`` every stored image is decoded once, so a truncated or corrupt
  file fails its item instead of failing a training job later.

EXIF orientation is not applied: TensorFlow's decoders ignore it, and boxes are
relative to the stored pixels. Pillow's decompression-bomb limit stays on, and is
enforced from the header, before any pixel is decoded: an image with more pixels
than ``PIL.Image.MAX_IMAGE_PIXELS`` fails its item (reason "too large").

The decode check of a JPEG that is stored as is runs in libjpeg-turbo through the
optional ``simplejpeg`` package when it is installed (``pip install
tfrecord-lite-writer[jpeg]``): one call that lets other threads run, about 15% less
work than going through Pillow. It is strict (any warning from libjpeg counts), so
the few files it does not pass go to Pillow, which decides: the verdict is Pillow's
either way.

PNG photos are decoded with Wuffs when the optional ``pywuffs`` package is installed
(``pip install tfrecord-lite-writer[png]``): about 2.5x faster than Pillow's decoder,
and it lets other threads run while it works. Only 8-bit RGB and RGBA, non-interlaced
files take that path, with every checksum verified; the pixels are the same as
Pillow's, so the stored JPEG is byte-identical either way. Anything else, or any
error, goes to Pillow, which decides what the item's error is.

Pillow and numpy are imported when this module is, so ``import tfrecord_lite``
does not import this module.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .errors import ImageError

try:  # optional: a faster PNG decoder (the [png] extra)
    from pywuffs import ImageDecoderQuirks, ImageDecoderType, PixelFormat
    from pywuffs.aux import ImageDecoder, ImageDecoderConfig
except ImportError:  # pragma: no cover - exercised where pywuffs is not installed
    _wuffs_config: Any = None
else:
    _wuffs_config = ImageDecoderConfig()
    _wuffs_config.enabled_decoders = [ImageDecoderType.PNG]
    # Not premultiplied: the color of a transparent pixel is kept, as Pillow keeps it.
    _wuffs_config.pixel_format = PixelFormat.BGRA_NONPREMUL
    _wuffs_config.quirks = {ImageDecoderQuirks.IGNORE_CHECKSUM: 0}

try:  # optional: the JPEG decode check without Pillow's Python layer (the [jpeg] extra)
    import simplejpeg
except ImportError:  # pragma: no cover - exercised where simplejpeg is not installed
    simplejpeg = None

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Magic bytes -> format name, checked in order.
MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (_PNG_MAGIC, 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"WEBP", 8, "WEBP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
)
# JPEG start-of-frame markers TensorFlow and browsers decode: baseline, extended, progressive.
_PASSTHROUGH_SOF = {0xC0, 0xC1, 0xC2}
_ALL_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_NO_LENGTH = {0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8}
_U16 = struct.Struct(">H")
_PNG_IHDR = struct.Struct(">IIBBBBB")
_PNG_CHUNK = struct.Struct(">I4s")
_FAST_PNG_MAX_PIXELS = 1 << 24  # larger PNGs go to Pillow: memory matters more than speed


@dataclass(frozen=True)
class ImageOptions:
    """How images are stored.

    Attributes:
        quality: JPEG quality for re-encoded images (1-100).
        max_side: downscale so that the longer side is at most this many pixels.
        decode_check: decode every stored image once to prove it decodes.
    """

    quality: int = 95
    max_side: int | None = None
    decode_check: bool = True


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
    """The bytes to store and what they are."""

    data: bytes
    width: int
    height: int
    format: str = "JPEG"
    colorspace: str = "RGB"
    channels: int = 3


def decoders() -> str:
    """Which decoders this installation uses for the JPEG check and for PNG input."""
    jpeg = (f"simplejpeg {getattr(simplejpeg, '__version__', '')}".rstrip()
            if simplejpeg is not None else "Pillow (the jpeg extra adds simplejpeg)")
    png = "Wuffs" if _wuffs_config is not None else "Pillow (the png extra adds Wuffs)"
    return f"JPEG check: {jpeg}; PNG: {png}"


def sniff(data: bytes) -> str | None:
    """The image format from the first bytes, or None."""
    for magic, offset, name in MAGIC:
        if data[offset:offset + len(magic)] == magic:
            if name == "WEBP" and data[:4] != b"RIFF":
                continue
            return name
    return None


def jpeg_info(data: bytes) -> JpegInfo | None:
    """Parse a JPEG's markers up to its start-of-frame; None when not a JPEG or none
    is found."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    n = len(data)
    pos = 2
    adobe: int | None = None
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _NO_LENGTH:
            pos += 2
            continue
        (length,) = _U16.unpack_from(data, pos + 2)
        if length < 2:
            return None
        segment = pos + 4
        if marker == 0xEE and data[segment:segment + 5] == b"Adobe" and length >= 12:
            adobe = data[segment + 11]
        elif marker in _ALL_SOF:
            if segment + 6 > n:
                return None
            precision = data[segment]
            height, width = struct.unpack_from(">HH", data, segment + 1)
            return JpegInfo(width, height, data[segment + 5], precision, marker, adobe,
                            segment + length - 2)
        elif marker == 0xDA:  # scan data before any frame header
            return None
        pos = segment + length - 2
    return None


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
        raise ImageError(f"{where}: {exc}", "too large") from exc
    except Exception as exc:  # Pillow raises many kinds for a bad header
        if fmt is None:
            raise ImageError(
                f"{where}: not an image (Pillow cannot identify it; starts with {data[:8]!r})",
                "not an image") from exc
        raise ImageError(f"{where}: corrupt {fmt} header: {exc}") from exc


def _load(im: Any, where: str) -> None:
    try:
        im.load()
    except Exception as exc:  # truncated data, broken chunks, decoder errors
        message = str(exc) or type(exc).__name__
        if "truncated" in message:
            raise ImageError(f"{where}: truncated {im.format} file ({message})",
                             "truncated") from exc
        raise ImageError(f"{where}: {im.format} does not decode: {message}") from exc


def decodes_fast(data: bytes, info: JpegInfo) -> bool:
    """Whether libjpeg-turbo decodes the JPEG, at 1/8 scale, without a single warning.

    False means "not proven here" (simplejpeg missing, or any complaint at all): the
    caller asks Pillow, which ignores some of libjpeg's warnings. Every file this
    accepts, Pillow accepts too (a test compares both on damaged files).
    """
    if simplejpeg is None:
        return False
    try:
        simplejpeg.decode_jpeg(data, "GRAY", min_height=info.height // 8,
                               min_width=info.width // 8, strict=True)
    except Exception:  # noqa: BLE001 - ValueError mostly; any failure is Pillow's to judge
        return False
    return True


def _draft_eighth_luma(im: Any) -> None:
    """Have Pillow decode a JPEG at 1/8 scale, luma only (every scan is still read)."""
    im.draft("L", (max(1, im.width // 8), max(1, im.height // 8)))


def decoded_size(data: bytes) -> tuple[int, int]:
    """Decode an image once (a JPEG at 1/8 scale, luma only); its full ``(width, height)``.

    Raises whatever the decoder raises for a file that does not decode.
    """
    info = jpeg_info(data)
    if info is not None and decodes_fast(data, info):
        return info.width, info.height
    with Image.open(io.BytesIO(data)) as im:
        size: tuple[int, int] = im.size
        if im.format == "JPEG":
            _draft_eighth_luma(im)
        im.load()
    return size


def _png_has_trns(data: bytes) -> bool:
    """Whether a tRNS chunk comes before the image data (Wuffs blanks such pixels)."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = _PNG_CHUNK.unpack_from(data, pos)
        if kind == b"tRNS":
            return True
        if kind == b"IDAT":
            return False
        pos += 12 + length
    return False


def _decode_png_fast(data: bytes) -> Any:
    """An 8-bit RGB(A) PNG decoded by Wuffs, as an RGB image; None to leave it to Pillow.

    Chunk CRCs and the zlib checksum are verified (Wuffs skips them unless asked); a
    file that fails any check goes to Pillow like any other doubtful file.
    """
    if (_wuffs_config is None or len(data) < 33 or data[:8] != _PNG_MAGIC
            or data[12:16] != b"IHDR"):
        return None
    width, height, depth, color_type, _, _, interlace = _PNG_IHDR.unpack_from(data, 16)
    if depth != 8 or color_type not in (2, 6) or interlace or _png_has_trns(data):
        return None
    # Large ones: their 4-byte pixels and Pillow's copy would both be held at once.
    # Beyond the bomb limit, or a damaged size: Pillow refuses them from the header.
    limit = min(_FAST_PNG_MAX_PIXELS, Image.MAX_IMAGE_PIXELS or _FAST_PNG_MAX_PIXELS)
    if not 0 < width * height <= limit:
        return None
    result = ImageDecoder(_wuffs_config).decode(data)
    pixels = result.pixbuf
    if result.error_message or pixels.shape != (height, width, 4):
        return None
    return Image.frombuffer("RGB", (width, height), pixels, "raw", "BGRX", 0, 1)


def _to_rgb(im: Any) -> Any:
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        arr = np.asarray(im, dtype=np.float64)
        if arr.size and arr.max() > 255:
            arr = arr / 257.0
        gray = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))  # 2-D uint8: "L"
        return gray.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")  # alpha is dropped, as tf.io.decode_png(channels=3) does
    return im.convert("RGB")


def _fit(width: int, height: int, max_side: int | None) -> tuple[int, int] | None:
    if not max_side or max(width, height) <= max_side:
        return None
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode_jpeg(im: Any, quality: int) -> StoredImage:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return StoredImage(buf.getvalue(), im.width, im.height)


def prepare(data: bytes, options: ImageOptions = ImageOptions(),
            where: str = "image") -> StoredImage:
    """Turn the bytes of an image file into the JPEG bytes to store.

    Args:
        data: the file's bytes.
        options: quality, downscaling and the decode check.
        where: how to name the image in errors (its path).
    Raises:
        ImageError: empty, not an image, truncated, corrupt or too large.
    """
    if not data:
        raise ImageError(f"{where}: empty file", "empty")
    info = jpeg_info(data)
    if (info is not None and info.components == 3 and info.precision == 8
            and info.sof in _PASSTHROUGH_SOF):
        _check_pixels(info.width, info.height, where)
        target = _fit(info.width, info.height, options.max_side)
        if target is None:
            if options.decode_check and not decodes_fast(data, info):
                # Decoding at 1/8 scale, luma only, still reads every byte of every
                # scan (so a cut or broken stream fails) at half the cost of a full decode.
                im = _open(data, where)
                _draft_eighth_luma(im)
                _load(im, where)
            elif data.rfind(b"\xff\xd9") < info.frame_end:
                # Even unchecked, a cut file is caught: it lacks the end-of-image marker
                # (which cannot occur inside entropy-coded data).
                raise ImageError(f"{where}: truncated JPEG file (no end-of-image marker)",
                                 "truncated")
            return StoredImage(data, info.width, info.height)
        im = _open(data, where)
        im.draft("RGB", target)
        _load(im, where)
        return _encode_jpeg(_to_rgb(im).resize(target, Image.Resampling.LANCZOS), options.quality)

    rgb = _decode_png_fast(data)
    if rgb is not None:
        target = _fit(rgb.width, rgb.height, options.max_side)
    else:
        im = _open(data, where)
        _check_pixels(im.width, im.height, where)
        target = _fit(im.width, im.height, options.max_side)
        if target is not None and im.format == "JPEG":
            im.draft("RGB", target)
        _load(im, where)  # always: converting needs the pixels
        rgb = _to_rgb(im)
    if target is not None:
        rgb = rgb.resize(target, Image.Resampling.LANCZOS)
    return _encode_jpeg(rgb, options.quality)


def read_size_from_file(path: str) -> tuple[int, int, str]:
    """``(width, height, format)`` of an image file (a path or a URL), reading its header."""
    from .storage import open_read

    with open_read(path) as f:
        head = f.read(1 << 18)
    if not head:
        raise ImageError(f"{path}: empty file", "empty")
    info = jpeg_info(head)
    if info is not None:
        _check_pixels(info.width, info.height, path)
        return info.width, info.height, "JPEG"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_read(path) as f, Image.open(f) as im:
                size = im.width, im.height, im.format or ""
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: {exc}", "too large") from exc
    except Exception as exc:
        raise ImageError(f"{path}: not an image Pillow can read ({exc})", "not an image") from exc
    _check_pixels(size[0], size[1], path)
    return size
