"""An item's masks as its record stores them: each object's 0/1 PNG, and the label image.

An item gives (docs/item-format.md):

* ``object/mask``: a list of one mask per object, in object order, each one of
  COCO polygons ``[[x1, y1, x2, y2, ...], ...]`` (pixels of the image file), a COCO RLE
  ``{"size": [height, width], "counts": [...] or "..."}`` (or a list of them, joined),
  or a mask image: its path (text; relative paths are found as ``filename`` is) or its
  bytes (as a record read back gives them);
* ``segmentation``: the label image of class ids: its path, its bytes, or the record's
  own form ``{"class": {"encoded": <bytes>}}``.

``make`` returns a copy of the item holding instead what the record stores: the PNG of
each object's mask, made at the stored image's size (``masks.Frame``) and encoded at
once, one object at a time, and the label image as ``labels.label_png`` stores it
(``segmentation/class/encoded``, with ``segmentation/class/format`` ``png``).

A mask that cannot be made (fewer than 3 points, a vertex outside the image, an RLE of
another size, a mask image of another size) fails the item when validation is strict,
naming the object; otherwise it is written empty (all 0), with a warning, so that the
masks stay in object order; vertices outside the image are cut, with a warning. A mask
or label image file that cannot be read, and a label image that cannot be stored, fail
the item in every mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import labels, maskpng, masks, polygons
from .coerce import item_label
from .errors import ImageError, MaskError
from .masks import Frame
from .schema import LABEL_IMAGE, OBJECT_MASK

Reader = Callable[[str], bytes]
"""Reads a mask or label image file named in an item: its bytes (raises ImageError)."""

_EMPTY_MASK_NOTE = "an empty mask is written in its place (validation is not strict)"


def make(item: Mapping[str, Any], frame: Frame | None, read: Reader, *, strict: bool = True,
         warnings: list[str] | None = None) -> dict[str, Any]:
    """A shallow copy of ``item`` whose masks are what its record stores.

    Args:
        item: the item, giving ``object/mask`` or ``segmentation`` (see the module).
        frame: the image file's size and the stored size. None: the masks are checked
            as far as that can be done without the image's size (their forms, that the
            files can be read), and the copy holds empty bytes in their places.
        read: reads a mask or label image file named by its path.
        strict: fail the item for a mask that cannot be made, instead of writing an
            empty mask with a warning.
        warnings: where the warnings go (each names the item and the object).
    Returns:
        The copy: ``object/mask`` a list of PNG bytes, ``segmentation`` the dict
        ``{"class": {"encoded": <PNG bytes>, "format": "png"}}``.
    Raises:
        MaskError: a mask that cannot be made (strict), a label image that cannot be
            stored; the message names the item, the object and the key path.
        ImageError: a mask or label image file that cannot be read.
    """
    label = item_label(item)
    out = dict(item)
    group, name = OBJECT_MASK
    obj = item.get(group)
    if isinstance(obj, Mapping) and obj.get(name) is not None:
        pngs = []
        for i, value in enumerate(_per_object(obj[name])):
            where = f"{label}: object {i}: object/mask"
            mask = _object_mask(value, frame, read, where, strict, warnings)
            pngs.append(b"" if mask is None else maskpng.encode(mask, runs=True))
            del mask
        out[group] = {**obj, name: pngs}
    given = item.get(LABEL_IMAGE)
    if given is not None:
        data, where = _label_image(given, read, f"{label}: {LABEL_IMAGE}")
        encoded = b"" if frame is None else labels.label_png(data, frame, where)
        out[LABEL_IMAGE] = {"class": {"encoded": encoded, "format": labels.FORMAT}}
    return out


def _per_object(value: Any) -> list[Any]:
    """``object/mask`` as the list of one mask per object (a single mask: one object)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _object_mask(value: Any, frame: Frame | None, read: Reader, where: str, strict: bool,
                 warnings: list[str] | None) -> np.ndarray | None:
    """One object's mask at the stored size (None without a frame); a mask that cannot
    be made is an empty one, with a warning, unless ``strict``.

    Raises:
        MaskError: (strict) the mask cannot be made.
        ImageError: a mask image file that cannot be read.
    """
    try:
        return _draw(value, frame, read, where, strict=True)
    except MaskError as exc:
        if strict:
            raise
        if exc.reason == "out of range":
            try:
                mask = _draw(value, frame, read, where, strict=False)
                _warn(warnings, f"{exc}; the part outside the image is cut (validation is "
                      "not strict)")
                return mask
            except MaskError as far:
                exc = far
        _warn(warnings, f"{exc}; {_EMPTY_MASK_NOTE}")
        if frame is None:
            return None
        return np.zeros((frame.stored_height, frame.stored_width), np.uint8)


def _warn(warnings: list[str] | None, message: str) -> None:
    if warnings is not None:
        warnings.append(message)


def _draw(value: Any, frame: Frame | None, read: Reader, where: str,
          strict: bool) -> np.ndarray | None:
    """The mask of one object's value, whichever form it has (see the module)."""
    if isinstance(value, str):
        data = _read(read, value, where)
        return None if frame is None else masks.image_mask(data, frame, f"{where} ({value})")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return None if frame is None else masks.image_mask(bytes(value), frame, where)
    if value is None:
        raise MaskError(f"{where}: no mask given (when one object has a mask, every object "
                        "needs one)", "no mask")
    if (isinstance(value, (list, tuple)) and value
            and all(_is_number(v) for v in value)):
        raise MaskError(f"{where}: a flat list of numbers; a polygon goes inside the "
                        "object's list of polygons, [[x1, y1, x2, y2, ...]] (object/mask "
                        "holds one mask per object)", "not a polygon")
    if not isinstance(value, (list, tuple, Mapping)):
        raise MaskError(f"{where}: expected polygons [[x1, y1, ...], ...], an RLE "
                        "{'size': [height, width], 'counts': ...}, or a mask image's path "
                        f"or bytes; got {type(value).__name__}", "not a polygon")
    if frame is None:  # the forms only
        if masks.is_rle(value):
            for part in value if isinstance(value, (list, tuple)) else [value]:
                masks.rle_counts(part, None, where)
        else:
            polygons.parse(value, where)
        return None
    return masks.coco_mask(value, frame, strict=strict, where=where)


def _read(read: Reader, path: str, where: str) -> bytes:
    try:
        return read(path)
    except ImageError as exc:
        raise ImageError(f"{where}: {exc}", exc.reason) from exc


def _label_image(value: Any, read: Reader, where: str) -> tuple[bytes, str]:
    """The label image file's bytes, and how errors name it.

    Raises:
        MaskError: not a path, bytes or the record's form.
        ImageError: the file cannot be read.
    """
    if isinstance(value, str):
        return _read(read, value, where), f"{where} ({value})"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), where
    if isinstance(value, Mapping):
        group = value.get("class")
        encoded = group.get("encoded") if isinstance(group, Mapping) else None
        if isinstance(encoded, (bytes, bytearray, memoryview)):
            return bytes(encoded), f"{where}/class/encoded"
    raise MaskError(f"{where}: expected the label image's path or bytes (or a record's "
                    "{'class': {'encoded': <PNG bytes>}}), got "
                    f"{type(value).__name__}", "not an image")
