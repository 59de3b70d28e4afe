"""Decoded images as 8-bit RGB, in bounded memory.

16-bit, 32-bit and float pixels are converted to 8 bits a block of rows at a time (no
whole-image float64 copy), and a source image is freed once converted. Alpha is
dropped, as ``tf.io.decode_png(channels=3)`` drops it. numpy is imported on first use.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

# Rows converted at a time from 16-bit or float pixels to 8 bits.
_ROWS_PER_BLOCK = 256
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


def to_rgb(im: Any) -> Any:
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

