"""The record's schema: every feature key, its kind (bytes, float, int64), scalar or
list, and its default; one table that the encoder, the decoder, validation and the
readers all read.

An item's key paths (docs/item-format.md), joined by ``/`` and prefixed with
``image/``, are the record's feature keys. Every scalar key is present in every record
(readers use ``FixedLenFeature``); list keys may be empty. The mask keys are the
exception: optional, written only by the records of items that give them (a record
without masks has none of them, and its bytes are what they were before masks existed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BYTES = "bytes"
FLOAT = "float"
INT64 = "int64"
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True)
class Field:
    """One feature: its path in the item, its kind, scalar or list, the default."""

    path: str
    kind: str
    is_list: bool = False
    default: Any = None
    text: bool = True  # BYTES only: decode back to str
    optional: bool = False  # written only when the item gives it

    @property
    def key(self) -> str:
        return "image/" + self.path


def _scalar(path: str, kind: str, default: Any = None, text: bool = True) -> Field:
    return Field(path, kind, False, default, text)


def _list(path: str, kind: str) -> Field:
    return Field(path, kind, True)


def _optional(path: str, is_list: bool = False, text: bool = True) -> Field:
    return Field(path, BYTES, is_list, None, text, optional=True)


# The item fields read from the item (image fields may instead come from ImageFields).
FIELDS: tuple[Field, ...] = (
    _scalar("id", BYTES),
    _scalar("filename", BYTES),
    _scalar("encoded", BYTES, text=False),
    _scalar("height", INT64),
    _scalar("width", INT64),
    _scalar("colorspace", BYTES, "RGB"),
    _scalar("channels", INT64, 3),
    _scalar("format", BYTES, "JPEG"),
    _scalar("extra", BYTES, ""),
    _scalar("class/label", INT64, -1),
    _scalar("class/text", BYTES, ""),
    _scalar("class/conf", FLOAT, 1.0),
    _scalar("object/count", INT64),  # default: the number of objects listed
    _list("object/area", FLOAT),
    _list("object/id", BYTES),
    _list("object/is_crowd", INT64),
    _list("object/difficult", INT64),
    _list("object/truncated", INT64),
    _list("object/bbox/xmin", FLOAT),
    _list("object/bbox/xmax", FLOAT),
    _list("object/bbox/ymin", FLOAT),
    _list("object/bbox/ymax", FLOAT),
    _list("object/bbox/label", INT64),
    _list("object/bbox/text", BYTES),
    _list("object/bbox/score", FLOAT),
    _list("object/bbox/conf", FLOAT),
    _list("object/parts/x", FLOAT),
    _list("object/parts/y", FLOAT),
    _list("object/parts/v", INT64),
    _list("object/parts/score", FLOAT),
    # Masks (item_masks.py makes them): one 0/1 PNG per object, and the label image of
    # class ids with its format ("png").
    _optional("object/mask", is_list=True, text=False),
    _optional("segmentation/class/encoded", text=False),
    _optional("segmentation/class/format"),
)

# Keys the TensorFlow Object Detection API reads, copied from another field.
ALIASES: dict[str, str] = {
    "source_id": "id",
    "object/class/label": "object/bbox/label",
    "object/class/text": "object/bbox/text",
}
SHA256 = _scalar("key/sha256", BYTES, "")

REQUIRED = ("filename", "id")
_BY_PATH = {f.path: f for f in FIELDS}
# Every key a record carries, for readers: record key -> Field.
RECORD_FIELDS: dict[str, Field] = {
    **{f.key: f for f in FIELDS},
    **{"image/" + alias: Field(alias, _BY_PATH[src].kind, _BY_PATH[src].is_list)
       for alias, src in ALIASES.items()},
    SHA256.key: SHA256,
}
# The scalar keys of every record (the optional ones are left out).
SCALAR_KEYS = tuple(k for k, f in RECORD_FIELDS.items() if not f.is_list and not f.optional)
# The keys a record holds only when its item gives them: the masks.
OPTIONAL_KEYS = tuple(k for k, f in RECORD_FIELDS.items() if f.optional)
# Per-object lists whose length is the object count when "count" is not given.
OBJECT_LISTS = tuple(f.path for f in FIELDS
                      if f.is_list and not f.path.startswith("object/parts/"))
# Keys an item may hold that no record key is made from: ``error_msg``, which a failed
# item carries back from the failure list (an item key that the encoder reads to make
# other record keys belongs here too).
ITEM_ONLY = ("error_msg",)
# Every key path an item may hold: the record's keys without ``image/``, and ITEM_ONLY.
# Validation takes the item format's keys from here (``keys``): a key added to the
# table is known everywhere, and any other key is reported as not in the item format.
ITEM_PATHS: tuple[str, ...] = (*(key[len("image/"):] for key in RECORD_FIELDS), *ITEM_ONLY)
# Where an item gives its masks: each object's (a list, one per object, of polygons, RLE,
# a mask image's path or bytes) and the label image (its path or bytes, or the record's
# form {"class": {"encoded": ...}}); item_masks.py turns them into the PNGs stored at
# "object/mask" and "segmentation/class/encoded".
OBJECT_MASK = ("object", "mask")
LABEL_IMAGE = "segmentation"
