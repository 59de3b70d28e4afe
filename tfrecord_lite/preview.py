"""Drawing records: masks, boxes with their text and keypoints on the stored image.

Masks (``image/object/mask``) are translucent fills in their box's colour, under the
boxes; a label image (``image/segmentation/class/encoded``) is a translucent fill of
one colour per class id, under those (VOC's 255, boundaries and "ignore", is left
clear). Keypoints: visible (v=2) as filled dots, occluded (v=1) as rings; v=0 is not drawn.
Boxes and captions are drawn on the picture at the size it is shown (a contact sheet
scales each image to its cell first), with a scalable font sized to that picture, so the
text stays legible at 100% zoom.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw, ImageFont

from .decode import decode_value, nest
from .errors import ExampleError, ImageError, MaskError, reason
from .features import Features
from .reader import image_decode_errors
from .schema import BYTES, RECORD_FIELDS

if TYPE_CHECKING:
    import numpy as np

COLORS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
          (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]
FILL_ALPHA = 0.45   # how much of a mask's colour covers the image under it
CELL = 320          # contact sheet: pixels per cell (the image, then its id below it)
CELL_TEXT = 15      # contact sheet: caption size in pixels
_MIN_TEXT = 14      # a single picture: captions at least this many pixels high
_BACKGROUND = (32, 32, 32)
DRAWN_OBJECTS = 2000  # boxes and masks drawn at most; a record's first ones
DRAWN_POINTS = 50_000  # keypoints drawn at most
_FontT = Any        # ImageFont.FreeTypeFont, or the bitmap font of an old Pillow


def _font(size: int) -> _FontT:
    """Pillow's own scalable font at ``size`` pixels (Pillow >= 10.1); older Pillow has
    only its small bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: no size
        return ImageFont.load_default()


def _open(item: dict[str, Any], max_side: int | None = None) -> Image.Image | None:
    """The record's stored image (RGB), or None when it stores none; with ``max_side``,
    scaled down so that its longer side is at most that (a JPEG is decoded at a reduced
    scale first, so a huge one never takes its full size in memory).

    Raises:
        ImageError: the stored image does not decode, or is over Pillow's
            decompression-bomb limit.
    """
    data = item.get("encoded")
    if not isinstance(data, bytes):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if max_side is None or max(image.size) <= max_side:
                return image.convert("RGB")
            scale = max_side / max(image.size)
            target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            if image.format == "JPEG":
                image.draft("RGB", target)  # libjpeg decodes at 1/2, 1/4 or 1/8 scale
            rgb = image.convert("RGB")
            return rgb if rgb.size == target else rgb.resize(target, Image.Resampling.LANCZOS)
    except image_decode_errors() as exc:
        raise ImageError(f"record {item.get('id')!r}: image/encoded does not decode: "
                         f"{reason(exc)}") from exc


def _caption(canvas: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
             color: tuple[int, int, int], font: _FontT, picture_width: int) -> None:
    """``text`` on a filled label of ``color``, its lower left corner at ``xy`` (above
    the point), or its upper left corner there when it would leave the picture."""
    left, _, right, _ = canvas.textbbox((0, 0), text, font=font)
    _, top, _, bottom = canvas.textbbox((0, 0), "Ag", font=font)  # one height for all
    width, height = right - left + 6, bottom - top + 4
    x, y = xy
    y = y - height if y - height >= 0 else y
    x = max(0.0, min(x, picture_width - width))
    canvas.rectangle([x, y, x + width, y + height], fill=color)
    canvas.text((x + 3 - left, y + 2 - top), text, fill=(0, 0, 0), font=font)


def _label_color(label: Any, i: int) -> tuple[int, int, int]:
    """The colour of object ``i`` whose label is ``label`` (its index when none)."""
    return COLORS[label % len(COLORS)] if isinstance(label, int) else COLORS[i % len(COLORS)]


def _pixels(data: Any, height: int, width: int,
            stored: tuple[int, int] | None) -> np.ndarray | None:
    """A stored mask or label image at ``height`` x ``width`` (nearest-neighbour), or None
    when it does not decode or its header's size is not ``stored``, the stored image's
    (``verify`` names such a record)."""
    import numpy as np

    from . import maskpng

    if not isinstance(data, bytes):
        return None
    try:
        pixels = maskpng.decode(data, strict=False, size=stored)
    except MaskError:
        return None
    if pixels.shape != (height, width):
        rows = np.arange(height) * pixels.shape[0] // height
        cols = np.arange(width) * pixels.shape[1] // width
        pixels = pixels[rows[:, np.newaxis], cols]
    return pixels


def stored_size(item: dict[str, Any]) -> tuple[int, int] | None:
    """The (height, width) of the record's stored image, from its header (None when it
    stores none, or none that opens)."""
    data = item.get("encoded")
    if not isinstance(data, bytes):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.height, im.width
    except image_decode_errors():
        return None


def _fill(image: Image.Image, item: dict[str, Any], labels: list[Any]) -> None:
    """Paint the label image, then each object's mask, translucent, on ``image``."""
    obj = item.get("object") or {}
    masks = obj.get("mask") or []
    segmentation = ((item.get("segmentation") or {}).get("class") or {}).get("encoded")
    if not masks and segmentation is None:
        return
    import numpy as np  # only for the records with masks

    width, height = image.size
    rgb = np.asarray(image, dtype=np.float32).copy()

    def paint(where: np.ndarray, color: tuple[int, int, int]) -> None:
        rgb[where] = rgb[where] * (1 - FILL_ALPHA) + np.array(color) * FILL_ALPHA

    stored = stored_size(item)
    ids = _pixels(segmentation, height, width, stored)
    if ids is not None:
        for class_id in np.unique(ids):
            if class_id not in (0, 255):  # the background; boundaries and "ignore"
                paint(ids == class_id, COLORS[int(class_id) % len(COLORS)])
    for i, data in enumerate(masks):
        mask = _pixels(data, height, width, stored)
        if mask is not None:
            paint(mask != 0, _label_color(labels[i] if i < len(labels) else i, i))
    image.paste(Image.fromarray(rgb.round().astype(np.uint8)))


def annotate(image: Image.Image, item: dict[str, Any], text_size: int) -> Image.Image:
    """Draw the record's masks, boxes, box texts and keypoints on ``image`` (RGB, any
    size: the record's coordinates are normalized, its masks resized), captions
    ``text_size`` pixels high."""
    W, H = image.size  # noqa: N806
    obj = item.get("object") or {}
    bbox = obj.get("bbox") or {}
    labels = bbox.get("label") or []
    _fill(image, item, labels)
    canvas = ImageDraw.Draw(image)
    font = _font(text_size)
    line = max(2, round(min(W, H) / 200))
    texts = bbox.get("text") or []
    for i, box in enumerate(zip(bbox.get("xmin") or [], bbox.get("ymin") or [],
                                bbox.get("xmax") or [], bbox.get("ymax") or [])):
        x0, y0, x1, y1 = box[0] * W, box[1] * H, box[2] * W, box[3] * H
        label = labels[i] if i < len(labels) else i
        color = _label_color(label, i)
        left, top = min(x0, x1), min(y0, y1)
        canvas.rectangle([left, top, max(x0, x1), max(y0, y1)], outline=color, width=line)
        caption = str(texts[i]) if i < len(texts) and texts[i] else str(label)
        _caption(canvas, (left, top), caption, color, font, W)
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


def draw(item: dict[str, Any], max_side: int | None = None) -> Image.Image:
    """The record's image (RGB) with its boxes, box texts and keypoints drawn on it, the
    captions sized to the image (about 1/40 of its longer side, at least 14 px).

    Args:
        max_side: an image whose longer side is longer is drawn scaled down to it
            (None: at its full size).
    Raises:
        ExampleError: (a ValueError) the record stores no image (written with
            store_images=False).
    """
    image = _open(item, max_side)
    if image is None:
        raise ExampleError(f"record {item.get('id')!r} stores no image (image/encoded)")
    return annotate(image, item, max(_MIN_TEXT, round(max(image.size) / 40)))


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` scaled, up or down, to the largest size within ``width`` x ``height``."""
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def contact_sheet(items: list[dict[str, Any]], cell: int = CELL) -> Image.Image:
    """The records in a near-square grid of ``cell``-pixel cells: each image scaled to
    its cell, then its boxes and keypoints drawn on it, and its id below. A record
    without a stored image gets a cell saying so."""
    if not items:
        raise ValueError("no records to draw")
    columns = math.ceil(math.sqrt(len(items)))
    rows = math.ceil(len(items) / columns)
    sheet = Image.new("RGB", (columns * cell, rows * cell), _BACKGROUND)
    canvas = ImageDraw.Draw(sheet)
    font = _font(CELL_TEXT)
    footer = CELL_TEXT + 8
    for n, item in enumerate(items):
        left, top = (n % columns) * cell, (n // columns) * cell
        image = _open(item, cell)
        if image is None:
            canvas.text((left + 8, top + cell // 2), "no image stored", fill=(200, 200, 200),
                        font=font)
        else:
            image = _fit(image, cell - 8, cell - 8 - footer)
            annotate(image, item, CELL_TEXT)
            sheet.paste(image, (left + (cell - image.width) // 2,
                                top + 4 + (cell - 8 - footer - image.height) // 2))
        canvas.text((left + 6, top + cell - footer), f"id {item.get('id')}",
                    fill=(235, 235, 235), font=font)
    return sheet


# (record key, how many of its values are drawn: None for a scalar)
_DRAWN: tuple[tuple[str, int | None], ...] = (
    ("image/id", None), ("image/encoded", None), ("image/width", None),
    ("image/height", None), ("image/segmentation/class/encoded", None),
    *((f"image/object/bbox/{name}", DRAWN_OBJECTS)
      for name in ("xmin", "ymin", "xmax", "ymax", "label", "text")),
    ("image/object/mask", DRAWN_OBJECTS),
    *((f"image/object/parts/{name}", DRAWN_POINTS) for name in ("x", "y", "v")),
)
DRAWN_KEYS = frozenset(key for key, _ in _DRAWN)


def drawable(feats: Features) -> tuple[dict[str, Any], list[str]]:
    """What ``draw`` needs of a record, as the item ``decode_example`` would give it, but
    of its first ``DRAWN_OBJECTS`` boxes and masks and first ``DRAWN_POINTS`` keypoints
    only; and a note for each list cut short (a record of millions of boxes is drawn in
    bounded time and memory)."""
    item: dict[str, Any] = {}
    for key, limit in _DRAWN:
        if key not in feats or feats.kind(key) is None:
            continue
        kind = feats.kind(key) or BYTES
        values: list[Any]
        if limit is None:
            first = feats.first(key)
            values = [] if first is None else [first]
        elif kind == BYTES:
            values = list(feats.bytes_values(key, limit))
        else:
            chunk = next(feats.numbers(key, limit), None)
            values = [] if chunk is None else chunk.tolist()
        nest(item, key, decode_value(RECORD_FIELDS[key], kind, values))
    notes = []
    boxes = min(feats.count(k) if k in feats else 0 for k in (
        "image/object/bbox/xmin", "image/object/bbox/ymin", "image/object/bbox/xmax",
        "image/object/bbox/ymax"))
    for what, n, limit in (("boxes", boxes, DRAWN_OBJECTS),
                           ("masks", feats.count("image/object/mask")
                            if "image/object/mask" in feats else 0, DRAWN_OBJECTS),
                           ("keypoints", feats.count("image/object/parts/x")
                            if "image/object/parts/x" in feats else 0, DRAWN_POINTS)):
        if n > limit:
            notes.append(f"drew the first {limit:,} of {n:,} {what}")
    return item, notes
