"""Instance masks: one 0/1 mask an object, from any form a dataset gives, stored as PNG.

The forms:

* COCO polygons, ``[[x1, y1, x2, y2, ...], ...]`` in pixels of the original image
  (``polygons.py`` draws them as pycocotools does);
* COCO RLE, ``{"size": [height, width], "counts": [...] or "..."}``, uncompressed (crowd
  annotations) or compressed, or a list of them (joined); its size must be the image's;
* YOLO segmentation polygons, ``[x1, y1, x2, y2, ...]`` normalized to [0, 1];
* a mask image file (single channel: palette, gray, 1-bit or 16-bit; nonzero is 1), of
  the image's size.

Every mask is made at the stored image's size (``Frame``), smaller than the original's
after ``max_side`` downscaling: polygons are drawn there and RLE is sampled there,
nearest-neighbour, without a mask of the original's size; a mask image file is decoded
whole, then resized there. One mask at a time: each is to be encoded before the next.

A record stores each mask as ``maskpng.encode`` writes it: what the TensorFlow Object
Detection API's ``create_coco_tf_record.py --include_masks`` and the Model Garden's
``official/vision/data/create_coco_tf_record.py`` store as ``image/object/mask``, an
8-bit gray PNG whose pixels are 0 and 1, which their decoders read with
``tf.io.decode_png(..., channels=1)``.

numpy and Pillow suffice. pycocotools, COCO's reference, is not a dependency: it would
serve this one kind of input, and the numpy code draws the same masks (the tests
compare them with pycocotools' pixel for pixel), at the stored size directly.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from . import maskpng, polygons, rle
from .errors import MaskError, reason


@dataclass(frozen=True)
class Frame:
    """The image a mask belongs to: ``height`` x ``width`` is the original image's size, in
    whose pixels annotations are given; ``stored_height`` x ``stored_width`` the size the
    image is stored at, and so its masks (the original's unless ``max_side`` shrinks it)."""

    height: int
    width: int
    stored_height: int = 0  # 0: the original's
    stored_width: int = 0

    def __post_init__(self) -> None:
        if self.stored_height == 0 and self.stored_width == 0:
            object.__setattr__(self, "stored_height", self.height)
            object.__setattr__(self, "stored_width", self.width)
        if min(self.height, self.width, self.stored_height, self.stored_width) < 1:
            raise ValueError(f"image sizes must be at least 1x1: {self}")

    @property
    def resized(self) -> bool:
        return (self.stored_height, self.stored_width) != (self.height, self.width)

    def rows(self) -> np.ndarray:
        """The original's row under the centre of each stored row (nearest-neighbour).

        Row ``floor((i + 1/2) * height / stored_height)``, in exact arithmetic: a centre
        that falls on the line between two rows takes the row below it. Pillow's and
        TensorFlow's nearest-neighbour resizing take the same rows but at such ties,
        where their floating point goes either way.
        """
        return _nearest(self.height, self.stored_height)

    def cols(self) -> np.ndarray:
        """The original's column under the centre of each stored column (see ``rows``)."""
        return _nearest(self.width, self.stored_width)


def _nearest(size: int, new_size: int) -> np.ndarray:
    return (np.arange(new_size, dtype=np.int64) * 2 + 1) * size // (2 * new_size)


def resize_nearest(array: np.ndarray, frame: Frame) -> np.ndarray:
    """A 2-D array of the original's size at the stored size, nearest-neighbour."""
    if not frame.resized:
        return array
    return array[frame.rows()[:, np.newaxis], frame.cols()]


def polygon_mask(value: Any, frame: Frame, *, strict: bool = True,
                 where: str = "mask") -> np.ndarray:
    """The mask of COCO polygons (pixels of the original image) at the stored size.

    Args:
        value: ``[[x1, y1, x2, y2, ...], ...]``, the parts of one object.
        frame: the original and stored sizes.
        strict: refuse vertices outside the image; otherwise only those farther out
            than ``polygons.MARGIN`` image sizes, and cut the rest as pycocotools does.
        where: names the mask in errors (e.g. ``"object 3: object/mask"``).
    Raises:
        MaskError: not polygons, fewer than 3 points, a vertex out of range.
    """
    parts = polygons.parse(value, where)
    polygons.check_inside(parts, frame.width, frame.height, where,
                          0.0 if strict else polygons.MARGIN)
    return polygons.rasterize(parts, frame.stored_height, frame.stored_width,
                              frame.stored_width / frame.width,
                              frame.stored_height / frame.height)


def yolo_mask(value: Sequence[float], frame: Frame, *, strict: bool = True,
              where: str = "mask") -> np.ndarray:
    """The mask of a YOLO segmentation polygon ``[x1, y1, x2, y2, ...]`` (normalized to
    [0, 1]), drawn as the COCO polygon of its pixel coordinates (see ``polygon_mask``).

    Raises:
        MaskError: not a polygon, fewer than 3 points, a coordinate outside [0, 1].
    """
    (part,) = polygons.parse([value], where)
    polygons.check_inside([part], 1.0, 1.0, where, 0.0 if strict else polygons.MARGIN,
                          unit="(normalized)",
                          tolerance=(polygons.TOLERANCE / frame.width,
                                     polygons.TOLERANCE / frame.height))
    pixels = part * np.array([frame.width, frame.height], np.float64)
    return polygons.rasterize([pixels], frame.stored_height, frame.stored_width,
                              frame.stored_width / frame.width,
                              frame.stored_height / frame.height)


def rle_counts(value: Any, frame: Frame | None, where: str = "mask") -> np.ndarray:
    """The counts of a COCO RLE dict, checked against the original image's size (without
    a frame: against the RLE's own size).

    Raises:
        MaskError: not an RLE dict, a size that is not the image's, corrupt counts.
    """
    if not isinstance(value, Mapping) or "counts" not in value or "size" not in value:
        raise MaskError(f"{where}: expected an RLE {{'size': [height, width], 'counts': ...}}"
                        f", got {type(value).__name__}", "corrupt rle")
    size = value["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)):
        raise MaskError(f"{where}: RLE size must be [height, width], got {size!r}",
                        "corrupt rle")
    height, width = size
    if frame is None:
        if height < 0 or width < 0:
            raise MaskError(f"{where}: RLE size must be [height, width], got {size!r}",
                            "corrupt rle")
    elif [height, width] != [frame.height, frame.width]:
        raise MaskError(f"{where}: RLE size [{height}, {width}] (height, width) is not the "
                        f"image's [{frame.height}, {frame.width}]", "rle size")
    counts = value["counts"]
    if isinstance(counts, (str, bytes)):
        counts = rle.counts_from_string(counts, where, max_runs=height * width + 1)
    elif not isinstance(counts, (list, tuple)):
        raise MaskError(f"{where}: RLE counts must be a list of numbers or a compressed "
                        f"string, got {type(counts).__name__}", "corrupt rle")
    return rle.checked_counts(counts, height, width, where)


def rle_mask(value: Any, frame: Frame, where: str = "mask") -> np.ndarray:
    """The mask of a COCO RLE dict (or of a list of them, joined) at the stored size.

    Raises:
        MaskError: see ``rle_counts``.
    """
    parts = value if isinstance(value, (list, tuple)) else [value]
    mask: np.ndarray | None = None
    for part in parts:
        counts = rle_counts(part, frame, where)
        if frame.resized:
            one = rle.sample(counts, frame.height, frame.width, frame.rows(), frame.cols())
        else:
            one = rle.decode(counts, frame.height, frame.width)
        mask = one if mask is None else np.bitwise_or(mask, one, out=mask)
    if mask is None:
        raise MaskError(f"{where}: an empty list of RLEs", "corrupt rle")
    return mask


def is_rle(segmentation: Any) -> bool:
    """Whether a COCO ``segmentation`` is an RLE dict or a list of them (else: polygons)."""
    return isinstance(segmentation, Mapping) or (
        isinstance(segmentation, (list, tuple)) and bool(segmentation)
        and all(isinstance(part, Mapping) for part in segmentation))


def coco_mask(segmentation: Any, frame: Frame, *, strict: bool = True,
              where: str = "mask") -> np.ndarray:
    """The mask of a COCO annotation's ``segmentation``, whichever form it has: polygons,
    an RLE (crowd or not), or a list of RLEs.

    Raises:
        MaskError: see ``polygon_mask`` and ``rle_mask``.
    """
    if is_rle(segmentation):
        return rle_mask(segmentation, frame, where)
    return polygon_mask(segmentation, frame, strict=strict, where=where)


def open_image(data: bytes, frame: Frame, where: str, what: str) -> Image.Image:
    """A single-channel image of the original's size, decoded (a mask or label image).

    Raises:
        MaskError: not an image Pillow reads, more than one channel, another size, or
            data that does not decode.
    """
    header = maskpng.png_size(data)  # a PNG's size is checked before Pillow opens it
    if header is not None and header != (frame.height, frame.width):
        raise MaskError(f"{where}: {what} is {header[1]}x{header[0]}, the image "
                        f"{frame.width}x{frame.height}", "size")
    try:
        with warnings.catch_warnings():  # the size is checked here, before decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise MaskError(f"{where}: {what} is larger than the {2 * (Image.MAX_IMAGE_PIXELS or 0):,}"
                        f" pixels Pillow opens; the image is {frame.width}x{frame.height}",
                        "size") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise MaskError(f"{where}: {what} is not an image Pillow reads ({reason(exc)})",
                        "not an image") from exc
    if len(im.getbands()) != 1:
        im.close()
        raise MaskError(f"{where}: {what} has {len(im.getbands())} channels ({im.mode}); it "
                        "must have one (gray, palette or 1-bit)", "channels")
    if im.size != (frame.width, frame.height):
        im.close()
        raise MaskError(f"{where}: {what} is {im.width}x{im.height}, the image "
                        f"{frame.width}x{frame.height}", "size")
    try:
        im.load()
    except Exception as exc:  # Pillow raises many kinds for damaged data
        im.close()
        raise MaskError(f"{where}: {what} does not decode ({reason(exc)})", "not an image") from exc
    return im


def image_mask(data: bytes, frame: Frame, where: str = "mask") -> np.ndarray:
    """The mask of a mask image file (nonzero pixels are 1) at the stored size.

    Raises:
        MaskError: see ``open_image``.
    """
    with open_image(data, frame, where, "the mask image") as im:
        pixels = np.asarray(im)
    return resize_nearest(pixels != 0, frame).astype(np.uint8)
