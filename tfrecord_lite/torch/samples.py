"""A decoded record as training arrays (numpy): the image, boxes, labels and masks.

``training_sample(item, path, index, offset)`` takes the item dict of a record (as
``decode_example`` gives it) and returns::

    {"id": "0",
     "image": uint8 [H, W, 3] (or [3, H, W] with channels_first),
     "label": int64 (image/class/label; -1 when the record has none),
     "boxes": float32 [N, 4] (xmin, ymin, xmax, ymax, normalized to [0, 1]),
     "labels": int64 [N] (image/object/bbox/label; -1 where the record has none),
     "masks": uint8 [N, H, W] (image/object/mask, one PNG per object; only if present),
     "segmentation": uint8 [H, W] (image/segmentation/class/encoded; only if present),
     "item": the item itself, less the image and mask bytes}

Errors name the file, the record and the key (``image/object/bbox/ymax``).
"""

from __future__ import annotations

import io
import math
import warnings
from typing import Any

import numpy as np

from ..errors import ImageError, RecordDecodeError, reason, record_place
from ..maskpng import png_size
from ..reader import decode_image, image_decode_errors

_JPEG = b"\xff\xd8\xff"
# JPEG colour spaces that simplejpeg decodes to Pillow's very pixels (CMYK and YCCK it
# converts otherwise: those go to Pillow).
_SAME_PIXELS = ("YCbCr", "Gray")
_BOX_KEYS = ("xmin", "ymin", "xmax", "ymax")
MASKS = ("object", "mask")
SEGMENTATION = ("segmentation", "class", "encoded")
_MASK_MODES = ("L", "P", "1")  # 8-bit gray, palette indices, 1-bit (as 0 and 1)


def _simplejpeg() -> Any:
    try:
        import simplejpeg
    except ImportError:  # an install without it: Pillow decodes every image
        return None
    return simplejpeg


def decode_rgb(data: bytes, where: str) -> np.ndarray:
    """An encoded image as a writable uint8 array of height x width x 3.

    A YCbCr or grayscale JPEG is decoded by libjpeg-turbo through simplejpeg (the same
    pixels as Pillow, about 30% faster); everything else, and any JPEG simplejpeg
    refuses, by Pillow, which also names the damage.

    Args:
        data: the encoded image.
        where: names the record in errors (file, record index, byte offset).

    Raises:
        ImageError: the bytes do not decode, or the image is over Pillow's pixel limit.
    """
    simplejpeg = _simplejpeg() if data[:3] == _JPEG else None
    if simplejpeg is not None:
        from PIL import Image

        try:
            height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
            if colorspace in _SAME_PIXELS and (Image.MAX_IMAGE_PIXELS is None
                                               or height * width <= Image.MAX_IMAGE_PIXELS):
                array: np.ndarray = simplejpeg.decode_jpeg(data, colorspace="RGB")
                return array
        except ValueError:  # CMYK, damage: Pillow decides, and says what is wrong
            pass
    array = decode_image(data, where)
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    return array if array.flags.writeable else array.copy()


def decode_label_image(data: Any, where: str) -> np.ndarray:
    """A single-channel PNG (a mask, or an image of class ids) as a uint8 [H, W] array:
    the stored values themselves, a palette image's indices.

    Raises:
        ImageError: not bytes, not a single-channel 8-bit image, or it does not decode.
    """
    from PIL import Image

    if not isinstance(data, bytes):
        raise ImageError(f"{where}: expected PNG bytes, got {type(data).__name__}")
    try:
        with warnings.catch_warnings():  # the caller checks the size from the header
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                mode, kind = im.mode, im.format
                if mode in _MASK_MODES:
                    im.load()
                    return np.array(im, dtype=np.uint8)
    except image_decode_errors() as exc:
        raise ImageError(f"{where}: does not decode: {reason(exc)}") from exc
    raise ImageError(f"{where}: expected a single-channel 8-bit image, got mode {mode} "
                     f"({kind})")


def _png_shape(data: Any) -> tuple[int, ...] | None:
    """The (height, width) of a PNG's header, None for anything else."""
    return png_size(data) if isinstance(data, bytes) else None


def _leaf(item: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = item
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _without(item: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``item`` without the leaf at ``path`` (the groups on the way copied,
    and dropped when they become empty)."""
    head, *rest = path
    out = dict(item)
    if not rest:
        out.pop(head, None)
        return out
    child = out.get(head)
    if isinstance(child, dict):
        child = _without(child, tuple(rest))
        if child:
            out[head] = child
        else:
            del out[head]
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def training_sample(item: dict[str, Any], path: str, index: int, offset: int,
                    channels_first: bool = False, *,
                    uncompressed: bool = False) -> dict[str, Any]:
    """The training arrays of a decoded record (see the module docstring).

    Args:
        item: the record as ``decode_example`` gives it.
        path, index, offset: where the record is, for error messages.
        channels_first: the image as [3, H, W] instead of [H, W, 3].
        uncompressed: ``offset`` is one of a compressed file's uncompressed stream.
    Raises:
        RecordDecodeError: no image, box lists of different lengths, masks that do not
            fit the image or the boxes (names file, record and key).
        ImageError: the image or a mask does not decode (names file, record and key).
    """
    where = record_place(path, index, offset, uncompressed=uncompressed)

    def fail(message: str) -> RecordDecodeError:
        return RecordDecodeError(message, path=path, index=index, offset=offset,
                                 uncompressed=uncompressed)

    encoded = item.get("encoded")
    if not isinstance(encoded, bytes) or not encoded:
        raise fail("no image: image/encoded is missing or empty (the shards were written "
                   "without --store_images?); read with decode_images=False")
    image = decode_rgb(encoded, where)
    height, width = image.shape[:2]

    bbox = _leaf(item, ("object", "bbox")) or {}
    columns = [bbox.get(k) or [] for k in _BOX_KEYS]
    count = len(columns[0])
    for key, column in zip(_BOX_KEYS, columns):
        if len(column) != count:
            raise fail(f"image/object/bbox/{key} holds {len(column)} values, "
                       f"image/object/bbox/xmin {count}: one per box expected")
    parts = _leaf(item, ("object", "parts")) or {}
    for key, column in [*(("bbox/" + k, c) for k, c in zip(_BOX_KEYS, columns)),
                        *(("parts/" + k, parts.get(k) or []) for k in ("x", "y"))]:
        if not all(math.isfinite(v) for v in column):
            raise fail(f"image/object/{key} holds a value that is not a finite number "
                       "(NaN or infinite)")
    labels = bbox.get("label")
    if labels is None:
        labels = [-1] * count
    elif len(labels) != count:
        raise fail(f"image/object/bbox/label holds {len(labels)} values for {count} boxes")
    class_label = _leaf(item, ("class", "label"))
    sample: dict[str, Any] = {
        "id": item.get("id"),
        "image": np.ascontiguousarray(image.transpose(2, 0, 1)) if channels_first else image,
        "label": np.int64(-1 if class_label is None else class_label),
        "boxes": np.array(columns, dtype=np.float32).T.reshape(count, 4),
        "labels": np.array(labels, dtype=np.int64).reshape(count),
    }
    rest = _without(item, ("encoded",))

    masks = _leaf(item, MASKS)
    if masks is not None:
        arrays = []
        for i, data in enumerate(_as_list(masks)):
            shape = _png_shape(data)  # from the header: refused before decoding
            if shape is None or shape == (height, width):
                mask = decode_label_image(data, f"{where}: image/object/mask[{i}]")
                shape = mask.shape
            if shape != (height, width):
                raise fail(f"image/object/mask[{i}] is {shape[1]}x{shape[0]}, "
                           f"the image {width}x{height}")
            arrays.append(mask)
        if count and len(arrays) != count:
            raise fail(f"image/object/mask holds {len(arrays)} masks for {count} boxes")
        sample["masks"] = (np.stack(arrays) if arrays
                           else np.zeros((0, height, width), dtype=np.uint8))
        rest = _without(rest, MASKS)

    segmentation = _leaf(item, SEGMENTATION)
    if segmentation is not None:
        values = _as_list(segmentation)
        if len(values) != 1:
            raise fail(f"image/segmentation/class/encoded holds {len(values)} images, "
                       "expected 1")
        shape = _png_shape(values[0])
        if shape is None or shape == (height, width):
            labels_image = decode_label_image(values[0],
                                              f"{where}: image/segmentation/class/encoded")
            shape = labels_image.shape
        if shape != (height, width):
            raise fail(f"image/segmentation/class/encoded is {shape[1]}x{shape[0]}, the "
                       f"image {width}x{height}")
        sample["segmentation"] = labels_image
        rest = _without(rest, SEGMENTATION)

    sample["item"] = rest
    return sample
