"""One SPEC item -> one serialized Example: read the image, apply the policy, encode.

The policy, per item:

* ``encoded`` given: stored as it is; ``height``, ``width``, ``format``,
  ``colorspace`` and ``channels`` must be given with it.
* ``store_images=False``: no ``image/encoded``; height and width from the item, or
  from the image file's header when missing (the file is not opened when both are
  given).
* otherwise the file is read, checked and, unless a 3-channel JPEG, converted
  (see ``images``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import images
from .errors import ExampleError, ImageError
from .example import ImageFields, encode_example, item_label

GIVEN_WITH_ENCODED = ("height", "width", "format", "colorspace", "channels")


@dataclass(frozen=True)
class ItemOptions:
    """Everything that decides how an item becomes a record."""

    store_images: bool = True
    image: images.ImageOptions = images.ImageOptions()


def _read_file(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: file not found", "missing") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}", "unreadable") from exc
    try:
        size = os.fstat(fd).st_size
        chunks = []
        while True:  # one read for a regular file; more if it grows or is a pipe
            chunk = os.read(fd, max(size, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            size = 1 << 20
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except IsADirectoryError as exc:
        raise ImageError(f"{path}: is a directory, not an image file", "unreadable") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}", "unreadable") from exc
    finally:
        os.close(fd)


def _image_fields(item: Mapping[str, Any], options: ItemOptions) -> ImageFields:
    if item.get("encoded") is not None:
        missing = [k for k in GIVEN_WITH_ENCODED if item.get(k) is None]
        if missing:
            raise ExampleError(
                f"{item_label(item)}: 'encoded' is given, so {', '.join(missing)} must be "
                f"given too ({', '.join(GIVEN_WITH_ENCODED)})")
        if not isinstance(item["encoded"], (bytes, bytearray, memoryview)):
            raise ExampleError(f"{item_label(item)}: encoded: expected bytes, got "
                               f"{type(item['encoded']).__name__}")
        return ImageFields(bytes(item["encoded"]), item["height"], item["width"],
                           item["format"], item["colorspace"], item["channels"])
    path = str(item["filename"])
    if not options.store_images:
        height, width = item.get("height"), item.get("width")
        fmt = item.get("format")
        if height is None or width is None:
            try:
                width, height, fmt = images.read_size_from_file(path)
            except FileNotFoundError as exc:
                raise ImageError(f"{path}: file not found", "missing") from exc
            except OSError as exc:
                raise ImageError(f"{path}: cannot read: {exc}", "unreadable") from exc
        return ImageFields(None, height, width, fmt or "",
                           item.get("colorspace", "RGB"), item.get("channels", 3))
    stored = images.prepare(_read_file(path), options.image, where=path)
    return ImageFields(stored.data, stored.height, stored.width, stored.format,
                       stored.colorspace, stored.channels)


def encode_item(item: Mapping[str, Any], options: ItemOptions = ItemOptions()) -> bytes:
    """Serialize one item, image included.

    Raises:
        ExampleError: a field is missing or has the wrong type.
        ImageError: the image is missing, empty, truncated, corrupt or not an image.
    """
    if not isinstance(item, Mapping):
        raise ExampleError(f"an item must be a dict, got {type(item).__name__}")
    for key in ("filename", "id"):
        if item.get(key) is None:
            raise ExampleError(f"{item_label(item)}: {key}: missing (every item needs "
                               "'filename' and 'id')")
    return encode_example(item, _image_fields(item, options))


def failure_reason(exc: BaseException) -> str:
    """A short category for the summary of failures."""
    if isinstance(exc, ImageError):
        return exc.reason
    if isinstance(exc, ExampleError):
        return "invalid item"
    return type(exc).__name__
