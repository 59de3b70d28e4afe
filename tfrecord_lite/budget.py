"""The memory bound on decoding images: the pixel limit, what each format costs to
decode, and the process-wide pixel budget that large images are decoded under.

An image beyond Pillow's decompression-bomb limit fails from its header
(``check_pixels``). Images of ``_LARGE_PIXELS`` or more are decoded under a budget of
``DECODE_BUDGET_PIXELS`` (the default pixel limit) shared by every thread of the
process (``hold``), so threads never hold two images near the limit at once. An image
counts by what its format takes to decode (``decode_weight``: a JPEG 2000 or WebP pixel
costs more), and one that alone would pass the budget fails before it is decoded
(``decode_cost``). Pillow's image blocks are made larger than glibc's mmap threshold, so
freed pixels go back to the system.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from PIL import Image

from .errors import ImageError

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


class PixelBudget:
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


_shared = PixelBudget(DECODE_BUDGET_PIXELS)


def hold(pixels: int) -> AbstractContextManager[None]:
    """Hold ``pixels`` of the process-wide budget while an image decodes (nothing for a
    small image); see ``PixelBudget``."""
    return _shared.hold(pixels)


# Pillow holds a large image in blocks of 16 MiB by default. glibc's malloc serves
# blocks that size from its heap once its mmap threshold has risen (up to 32 MiB), and
# the heap keeps freed memory: a job of large images then grows by hundreds of MB.
# Blocks above that threshold are mapped and unmapped, so freed pixels go back to the
# system. Left alone when set through Pillow's own PILLOW_BLOCK_SIZE variable.
_PILLOW_BLOCK_BYTES = 64 << 20
if "PILLOW_BLOCK_SIZE" not in os.environ and Image.core.get_block_size() < _PILLOW_BLOCK_BYTES:
    Image.core.set_block_size(_PILLOW_BLOCK_BYTES)


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


def decode_cost(im: Any, pixels: int, where: str, reduced: bool = False) -> int:
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


def check_pixels(width: int, height: int, where: str) -> None:
    """Refuse a size beyond Pillow's decompression-bomb limit, before decoding a byte."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise ImageError(
            f"{where}: {width}x{height} pixels exceeds the decompression-bomb limit "
            f"of {limit:,} pixels (PIL.Image.MAX_IMAGE_PIXELS)", "too large")
    if width <= 0 or height <= 0:
        raise ImageError(f"{where}: image claims an empty size {width}x{height}", "corrupt")
