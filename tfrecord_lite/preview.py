"""Drawing records: boxes with their text and keypoints on the stored image.

Keypoints: visible (v=2) as filled dots, occluded (v=1) as rings; v=0 is not drawn.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import Any

from PIL import Image, ImageDraw

from .errors import ImageError
from .reader import image_decode_errors

COLORS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
          (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def draw(item: dict[str, Any]) -> Image.Image:
    """The record's image (RGB) with its boxes, box texts and keypoints drawn on it.

    Raises:
        ValueError: the record stores no image (written with store_images=False).
        ImageError: the stored image does not decode, or is over Pillow's
            decompression-bomb limit.
    """
    data = item.get("encoded")
    if not isinstance(data, bytes):
        raise ValueError(f"record {item.get('id')!r} stores no image (image/encoded)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data)).convert("RGB")
    except image_decode_errors() as exc:
        raise ImageError(f"record {item.get('id')!r}: image/encoded does not decode: "
                         f"{exc or type(exc).__name__}") from exc
    W, H = image.size  # noqa: N806
    canvas = ImageDraw.Draw(image)
    line = max(2, round(min(W, H) / 200))
    obj = item.get("object") or {}
    bbox = obj.get("bbox") or {}
    labels = bbox.get("label") or []
    texts = bbox.get("text") or []
    for i, box in enumerate(zip(bbox.get("xmin") or [], bbox.get("ymin") or [],
                                bbox.get("xmax") or [], bbox.get("ymax") or [])):
        x0, y0, x1, y1 = box[0] * W, box[1] * H, box[2] * W, box[3] * H
        label = labels[i] if i < len(labels) else i
        color = COLORS[label % len(COLORS)] if isinstance(label, int) else COLORS[0]
        canvas.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)],
                         outline=color, width=line)
        caption = str(texts[i]) if i < len(texts) and texts[i] else str(label)
        left, top = min(x0, x1), max(0.0, min(y0, y1) - 12)
        width = canvas.textlength(caption)
        canvas.rectangle([left, top, left + width + 4, top + 12], fill=color)
        canvas.text((left + 2, top), caption, fill=(0, 0, 0))
    parts = obj.get("parts") or {}
    radius = max(3, line * 2)
    for x, y, v in zip(parts.get("x") or [], parts.get("y") or [], parts.get("v") or []):
        if v <= 0:
            continue
        cx, cy = x * W, y * H
        ring = [cx - radius, cy - radius, cx + radius, cy + radius]
        if v >= 2:
            canvas.ellipse(ring, fill=(0, 255, 0), outline=(0, 0, 0))
        else:
            canvas.ellipse(ring, outline=(255, 165, 0), width=line)
    return image


def contact_sheet(items: list[dict[str, Any]], tile: int = 256) -> Image.Image:
    """The drawn images side by side in a near-square grid of ``tile``-pixel cells."""
    if not items:
        raise ValueError("no records to draw")
    columns = math.ceil(math.sqrt(len(items)))
    rows = math.ceil(len(items) / columns)
    sheet = Image.new("RGB", (columns * tile, rows * tile), (32, 32, 32))
    for n, item in enumerate(items):
        image = draw(item)
        image.thumbnail((tile - 4, tile - 4))
        x = (n % columns) * tile + (tile - image.width) // 2
        y = (n // columns) * tile + (tile - image.height) // 2
        sheet.paste(image, (x, y))
    return sheet
