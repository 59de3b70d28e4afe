"""Semantic segmentation: an image's label image of class ids, checked and stored as PNG.

A label image gives each pixel's class id. It may be:

* a gray PNG of the ids (8-bit; 1-, 2-, 4- and 16-bit ones are read as their ids too);
* a palette PNG whose indices are the ids, as VOC's ``SegmentationClass`` is, and as
  DeepLab's ``remove_gt_colormap.py`` reads it: the colours are only for display;
* gray or palette BMP, GIF, PGM or TIFF files, read alike. JPEG is refused: its
  compression changes the ids.

Ids must lie in 0..255; VOC's 255 (object boundaries, ignored in training) stays 255.
The label image must have the image's size. With ``max_side`` it is resized to the
stored size nearest-neighbour, so that no id blends into another.

It is stored as ``image/segmentation/class/encoded``, with
``image/segmentation/class/format`` ``png``: an 8-bit gray PNG of the ids, so that
``tf.io.decode_png(data, channels=1)`` gives them exactly. An 8-bit gray PNG that needs
no resizing is stored byte for byte as given; anything else is encoded anew, losslessly.
"""

from __future__ import annotations

import numpy as np

from . import maskpng
from .errors import MaskError
from .masks import Frame, open_image, resize_nearest

FORMAT = "png"
"""The value of ``image/segmentation/class/format``."""

_LOSSLESS = ("PNG", "BMP", "GIF", "PPM", "TIFF")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Gray PNGs of 2 and 4 bits: Pillow spreads their values over 0..255 (as libpng does).
_GRAY_SPREAD = {2: 85, 4: 17}


def label_ids(data: bytes, frame: Frame, where: str = "segmentation") -> np.ndarray:
    """The class ids of a label image file, a uint8 array of the stored size.

    Args:
        data: the label image file's bytes.
        frame: the image's original and stored sizes.
        where: names the label image in errors (e.g. its path).
    Raises:
        MaskError: not an image, a lossy format, more than one channel, another size than
            the image's, damaged data, or an id above 255.
    """
    with open_image(data, frame, where, "the label image") as im:
        if im.format not in _LOSSLESS:
            others = ", ".join(f for f in _LOSSLESS if f != "PNG")
            raise MaskError(f"{where}: the label image is a {im.format} file; a label image "
                            f"must be lossless, a PNG ({others} are taken too): a lossy "
                            "format changes the class ids of its pixels",
                            "lossy label image")
        pixels = np.asarray(im)
    if pixels.dtype == np.bool_:  # 1-bit (Pillow's True may be any nonzero byte)
        ids = pixels.astype(np.uint8)
    elif pixels.dtype == np.uint8:
        ids = pixels // _GRAY_SPREAD.get(_png_gray_bits(data), 1)
    elif pixels.dtype.kind == "f":
        raise MaskError(f"{where}: the label image has floating-point pixels; class ids "
                        "must be whole numbers", "class ids")
    else:  # 16- or 32-bit gray
        low, high = int(pixels.min()), int(pixels.max())
        if low < 0 or high > 255:
            raise MaskError(f"{where}: the label image holds the id {low if low < 0 else high}"
                            "; ids must be 0 to 255 to be stored as an 8-bit PNG", "class ids")
        ids = pixels.astype(np.uint8)
    return np.ascontiguousarray(resize_nearest(ids, frame))


def label_png(data: bytes, frame: Frame, where: str = "segmentation") -> bytes:
    """What to store as ``image/segmentation/class/encoded``: the file itself if it is an
    8-bit gray PNG that needs no resizing (checked to decode), else a PNG of its ids.

    Raises:
        MaskError: see ``label_ids``.
    """
    ids = label_ids(data, frame, where)
    if _png_gray_bits(data) == 8 and not frame.resized:
        return data
    return maskpng.encode(ids)


def _png_gray_bits(data: bytes) -> int:
    """The bit depth of a gray PNG (from its header), 0 for anything else."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 26:
        return 0
    return data[24] if data[25] == 0 else 0
