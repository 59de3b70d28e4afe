"""Nested item dict -> serialized ``tf.train.Example`` bytes (the encoder).

The protobuf wire format is written directly, driven by the schema (``schema``): the
keys are written in sorted order, so equal items give equal bytes, the bytes of
``tf.train.Example.SerializeToString(deterministic=True)``; the tests hold it byte for
byte to a plain protobuf serializer. For speed, what is the same in many records is
written once and kept: an entry's head per key and size, the entries of defaults and
small repeated values, and a plan per item shape (which keys its dicts give).
"""

from __future__ import annotations

import enum
import hashlib
import math
import struct
from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar

from .coerce import as_bytes, as_float, as_int, item_label
from .errors import ExampleError
from .schema import (
    ALIASES,
    BYTES,
    FIELDS,
    FLOAT,
    INT64,
    INT64_MAX,
    INT64_MIN,
    OBJECT_LISTS,
    RECORD_FIELDS,
    REQUIRED,
    SHA256,
    Field,
)

_K = TypeVar("_K")
_V = TypeVar("_V")


class _Memo(dict[_K, _V]):
    """A module-level cache that starts over (empties) when it reaches ``limit``
    entries: a dataset's few distinct keys stay cached, and input with endless distinct
    keys (hostile, or keys that vary item by item) cannot grow it without bound.
    Reading is dict's own ``get``; ``put`` stores."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: _K, value: _V) -> _V:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


class ImageFields(NamedTuple):
    """What the image stage learned: the bytes to store (None: not stored) and their shape."""

    encoded: bytes | None
    height: int
    width: int
    format: str = "JPEG"
    colorspace: str = "RGB"
    channels: int = 3


# -- value conversion (the slow path, taken only for values that are not plain) ----------

# -- the protobuf wire format, written directly --------------------------------------------
#
# Example { Features features = 1 }, Features { map<string, Feature> feature = 1 },
# Feature { oneof { BytesList = 1; FloatList = 2; Int64List = 3 } }, each list a
# repeated field 1 (floats and ints packed). Map entries are sorted by key, as
# protobuf's deterministic serialization does; tests compare every byte with it.

_M64 = (1 << 64) - 1
_SMALL = [bytes([i]) for i in range(128)]
_KIND_TAG = {BYTES: b"\x0a", FLOAT: b"\x12", INT64: b"\x1a"}
# Packers of 1 to 64 floats (longer lists get a packer of their own, not kept).
_FLOAT32_CACHE: dict[int, struct.Struct] = {}


def _varint(n: int) -> bytes:
    """Unsigned varint of 0 <= n < 2**64."""
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _int64_varint(v: int) -> bytes:
    if 0 <= v < 128:
        return _SMALL[v]
    if not INT64_MIN <= v <= INT64_MAX:
        raise ValueError(f"{v} does not fit in int64")
    return _varint(v & _M64)


def _pack_float32(values: list[Any]) -> bytes:
    n = len(values)
    packer = _FLOAT32_CACHE.get(n)
    if packer is None:
        packer = struct.Struct(f"<{n}f")
        if n <= 64:
            _FLOAT32_CACHE[n] = packer
    try:
        return packer.pack(*values)
    except OverflowError:  # beyond float32: +-inf, as protobuf's C conversion gives
        return b"".join(_pack_one_float32(v) for v in values)


_F32 = struct.Struct("<f")


def _pack_one_float32(v: float) -> bytes:
    try:
        return _F32.pack(v)
    except OverflowError:
        return _F32.pack(math.copysign(math.inf, v))


def _fail(item: Any, path: str, message: str) -> ExampleError:
    return ExampleError(f"{item_label(item)}: {path}: {message}")


_CONVERT = {INT64: as_int, FLOAT: as_float, BYTES: as_bytes}


def _convert_each(item: Any, field: Field, values: list[Any]) -> list[Any]:
    """The slow path: convert value by value, naming the first bad one."""
    convert = _CONVERT[field.kind]
    out = []
    for i, v in enumerate(values):
        try:
            out.append(convert(v))
        except (TypeError, ValueError) as exc:
            raise _fail(item, f"{field.path}[{i}]" if field.is_list else field.path,
                        str(exc)) from exc
    return out


def _payload(item: Any, field: Field, values: list[Any]) -> bytes:
    """The list's values as they are written: packed numbers, or tagged byte strings."""
    kind = field.kind
    if kind == BYTES:
        pieces = []
        try:
            for v in values:
                if type(v) is not bytes:
                    v = v.encode("utf-8") if type(v) is str else as_bytes(v)
                pieces.append(b"\x0a" + _varint(len(v)) + v)
        except (TypeError, ValueError):  # ValueError: a str with a lone surrogate
            _convert_each(item, field, values)  # raises, naming the value
            raise
        return b"".join(pieces)
    if kind == INT64:
        try:
            return b"".join([_int64_varint(v) for v in values])
        except (TypeError, ValueError):
            return b"".join([_int64_varint(v) for v in _convert_each(item, field, values)])
    try:
        return _pack_float32(values)
    except (struct.error, TypeError, OverflowError):  # Overflow: an int beyond any float
        return _pack_float32(_convert_each(item, field, values))


# (key prefix, kind, payload size) -> entry head: a few hundred in a dataset.
_heads: _Memo[tuple[bytes, str, int], bytes] = _Memo(20000)


def _entry_head(prefix: bytes, kind: str, n: int) -> bytes:
    """Everything of a map entry of Features before its ``n``-byte payload.

    The entry is ``{key, Feature{kind_list{payload}}}``; all its lengths follow from
    ``n``, so the head is computed once per key, kind and payload size.
    """
    head = _heads.get((prefix, kind, n))
    if head is None:
        # A BytesList's tagged values are the payload; numbers are one packed field,
        # absent when empty.
        list_head = b"" if kind == BYTES or not n else b"\x0a" + _varint(n)
        feature_head = _KIND_TAG[kind] + _varint(len(list_head) + n) + list_head
        feature_len = len(feature_head) + n
        fsize = _varint(feature_len)
        head = (b"\x0a" + _varint(len(prefix) + len(fsize) + feature_len) + prefix + fsize
                + feature_head)
        _heads.put((prefix, kind, n), head)
    return head


def _entry(prefix: bytes, field: Field, payload: bytes) -> bytes:
    """One map entry of Features, with its own tag and length."""
    return _entry_head(prefix, field.kind, len(payload)) + payload


def _bytes_entry_head(prefix: bytes, n: int) -> bytes:
    """Everything of an entry holding one ``n``-byte value, up to that value."""
    value_head = b"\x0a" + _varint(n)
    return _entry_head(prefix, BYTES, len(value_head) + n) + value_head


_SORTED_KEYS = sorted(RECORD_FIELDS)
_KEY_PREFIX = {key: b"\x0a" + _varint(len(key)) + key.encode() + b"\x12" for key in _SORTED_KEYS}
# Where each field's value lives: 0 the item, 1 class, 2 object, 3 object/bbox, 4 object/parts,
# 5 segmentation/class.
_CONTAINERS = {(): 0, ("class",): 1, ("object",): 2, ("object", "bbox"): 3,
               ("object", "parts"): 4, ("segmentation", "class"): 5}
_CACHEABLE = (int, str)
_UNIQUE = frozenset({"id", "filename", "extra"})
# (key prefix, type, value) -> (entry, payload) of defaults, empty lists and small
# repeated scalars (labels, class texts): a few thousand in a dataset.
_entry_cache: _Memo[tuple[Any, ...], tuple[bytes, bytes]] = _Memo(20000)
_EMPTY: list[Any] = []


def _cached(ckey: tuple[Any, ...], item: Any, prefix: bytes, field: Field,
            values: list[Any]) -> tuple[bytes, bytes]:
    """``(entry, payload)`` of defaults, empty lists and small repeated scalars,
    serialized once."""
    cached = _entry_cache.get(ckey)
    if cached is None:
        payload = _payload(item, field, values)
        cached = _entry_cache.put(ckey, (_entry(prefix, field, payload), payload))
    return cached


def _sha256_payload(stored: bytes | None) -> bytes:
    """The payload of image/key/sha256: the hex digest of the stored image, or empty."""
    digest = hashlib.sha256(stored).hexdigest().encode() if stored is not None else b""
    return b"\x0a" + _varint(len(digest)) + digest


class _Derived(enum.IntEnum):
    """Where a key's value comes from when not from one of the item's dicts (whose
    indexes, 0 and up, are in _CONTAINERS)."""

    COPY = -1  # the feature of another key (an alias such as image/filename)
    SHA256 = -2  # the sha256 of the stored image


_NOT_IMAGE = -1  # a _Step's image_index when the value is not one of ImageFields


class _Step(NamedTuple):
    """One record key, in sorted order: where its value comes from and how it is written."""

    key: str
    prefix: bytes
    field: Field
    where: int  # container index (see _CONTAINERS), or a _Derived
    name: str
    source: str | None  # for copies: the key whose feature is copied
    image_index: int  # position in ImageFields, or _NOT_IMAGE
    is_list: bool
    copied: bool  # another key copies this one's feature


def _plan() -> list[_Step]:
    steps = []
    by_key = {f.key: f for f in FIELDS}
    copies = {"image/" + alias: "image/" + src for alias, src in ALIASES.items()}
    for key in _SORTED_KEYS:
        if key in by_key:
            field = by_key[key]
            parts = tuple(field.path.split("/"))
            where = _CONTAINERS[parts[:-1]]
            image_index = ImageFields._fields.index(parts[-1]) if (
                where == 0 and parts[-1] in ImageFields._fields) else _NOT_IMAGE
            steps.append(_Step(key, _KEY_PREFIX[key], field, where, parts[-1], None,
                               image_index, field.is_list, key in copies.values()))
        elif key in copies:
            steps.append(_Step(key, _KEY_PREFIX[key], by_key[copies[key]], _Derived.COPY, "",
                               copies[key], _NOT_IMAGE, False, False))
        else:
            steps.append(_Step(key, _KEY_PREFIX[key], SHA256, _Derived.SHA256, "sha256", None,
                               _NOT_IMAGE, False, False))
    return steps


_PLAN = _plan()
assert all(s.source is None or s.source < s.key for s in _PLAN)  # sources come first


def _constant_entry(step: _Step, present: tuple[Any, ...], has_image: bool,
                    payloads: dict[str, bytes]) -> bytes | None:
    """The entry of a key that is equal in every item of this shape, or None.

    A key is constant when its container lacks it (an empty list, or the default),
    or when it copies a constant key. ``payloads`` collects those of constant keys
    that others copy. b"": no entry at all (an absent image).
    """
    if step.where == _Derived.COPY:
        assert step.source is not None
        payload = payloads.get(step.source)
        return None if payload is None else _entry(step.prefix, step.field, payload)
    if step.where == _Derived.SHA256 or (step.image_index != _NOT_IMAGE and has_image):
        return None
    keys = present[step.where]
    if keys is not None and step.name in keys:
        return None
    if step.field.optional:
        return b""  # not given: no entry
    if step.is_list:
        values: list[Any] = []
    elif step.name == "encoded":
        return b""
    elif step.name == "count" or step.field.default is None:
        return None  # counted from the objects, or a "missing" error
    else:
        values = [step.field.default]
    payload = _payload(None, step.field, values)
    if step.copied:
        payloads[step.key] = payload
    return _entry(step.prefix, step.field, payload)


def _compile_plan(present: tuple[Any, ...], has_image: bool) -> list[_Step | bytes]:
    """_PLAN for one shape: runs of constant keys joined into bytes, the rest as steps."""
    plan: list[_Step | bytes] = []
    payloads: dict[str, bytes] = {}
    for step in _PLAN:
        entry = _constant_entry(step, present, has_image, payloads)
        last = plan[-1] if plan else None
        if entry is None:
            plan.append(step)
        elif isinstance(last, bytes):
            plan[-1] = last + entry
        else:
            plan.append(entry)
    return plan


# An item's shape (which keys each of its dicts has) -> its plan. Items of a dataset
# share a few shapes.
_shape_plans: _Memo[tuple[Any, ...], list[_Step | bytes]] = _Memo(1024)


def _plan_for(containers: tuple[Any, ...], has_image: bool) -> list[_Step | bytes]:
    """The plan of an item's shape: constant runs of bytes, and the steps of the keys
    it gives. Another Mapping than dict is walked key by key (its keys may vary)."""
    for c in containers:
        if c is not None and type(c) is not dict:
            return list(_PLAN)
    shape = (has_image, *[None if c is None else tuple(c) for c in containers])
    plan = _shape_plans.get(shape)
    if plan is None:
        plan = _shape_plans.put(shape, _compile_plan(shape[1:], has_image))
    return plan


_SCALAR_TYPES = frozenset({str, int, float, bytes, bool})
_OBJECT_NAMES = tuple((f.path.split("/")[-2] == "bbox", f.path.rsplit("/", 1)[-1], f)
                      for f in FIELDS if f.path in OBJECT_LISTS)


def _sub(item: Mapping[str, Any], parent: Any, name: str, where: str) -> Any:
    if parent is None:
        return None
    try:
        return parent.get(name)
    except AttributeError:
        raise _fail(item, where, f"expected a dict, got {type(parent).__name__}") from None


def _as_list(item: Any, field: Field, value: Any) -> list[Any]:
    if type(value) is list:
        return value
    if isinstance(value, (str, bytes, bytearray)):
        return [value]
    if isinstance(value, Mapping):
        raise _fail(item, field.path, "expected a list of values, got a dict")
    try:
        return list(value)
    except TypeError:
        return [value]  # a single value where a list is expected: the original's way


def _object_count(item: Any, obj: Any, bbox: Any) -> int:
    longest = 0
    for in_bbox, name, field in _OBJECT_NAMES:
        container = bbox if in_bbox else obj
        value = container.get(name) if container is not None else None
        if value is not None:
            n = len(value) if type(value) is list else len(_as_list(item, field, value))
            if n > longest:
                longest = n
    return longest


def encode_example(item: Mapping[str, Any], image: ImageFields | None = None) -> bytes:
    """Serialize one item as ``tf.train.Example`` bytes.

    Args:
        item: the nested dict (docs/item-format.md). ``filename`` and ``id`` are required.
            Masks are written as given, so must be the PNG bytes to store:
            ``object/mask`` a list of them, ``segmentation/class/encoded`` one, with
            ``segmentation/class/format``; ``items.encode_item`` makes them from the
            item's polygons, RLE and mask images (``item_masks``).
        image: the stored image and its shape. Without it the item must carry
            ``encoded``, ``height``, ``width``, ``format``, ``colorspace``, ``channels``
            (or, with ``encoded`` absent, at least ``height`` and ``width``).
    Returns:
        The deterministic serialization of the Example: exactly the bytes of
        ``tf.train.Example.SerializeToString(deterministic=True)`` for the same features.
    Raises:
        ExampleError: a required field is missing or a value has the wrong type; the
            message names the item id and the key path (``object/bbox/xmin[2]``).
    """
    if not isinstance(item, Mapping):
        raise ExampleError(f"an item must be a dict, got {type(item).__name__}")
    for path in REQUIRED:
        if item.get(path) is None:
            raise _fail(item, path, "missing (every item needs 'filename' and 'id')")
    obj = _sub(item, item, "object", "object")
    bbox = _sub(item, obj, "bbox", "object")
    segmentation = _sub(item, item, "segmentation", "segmentation")
    containers = (item, _sub(item, item, "class", "class"), obj, bbox,
                  _sub(item, obj, "parts", "object"),
                  _sub(item, segmentation, "class", "segmentation"))
    plan = _plan_for(containers, image is not None)
    heads_get = _heads.get
    copied: dict[str, bytes] = {}
    body: list[bytes] = []
    size = 0
    for step in plan:
        if isinstance(step, bytes):  # the entries of keys this item's shape leaves at default
            body.append(step)
            size += len(step)
            continue
        key, prefix, field, where, name, source, image_index, is_list, is_copied = step
        if where >= 0:  # from one of the item's dicts
            if image_index != _NOT_IMAGE and image is not None:
                value = image[image_index]
                if value is None:  # the image is not stored
                    continue
                if image_index == 0 and type(value) is bytes:
                    head = _bytes_entry_head(prefix, len(value))  # no copy of the image
                    body += (head, value)
                    size += len(head) + len(value)
                    continue
            else:
                container = containers[where]
                if container is None:
                    value = None
                else:
                    try:
                        value = container.get(name)
                    except AttributeError:
                        raise _fail(item, field.path.rsplit("/", 1)[0], "expected a dict, got "
                                    f"{type(container).__name__}") from None
                if value is None and field.optional:
                    continue
            if is_list:
                values = _EMPTY if value is None else _as_list(item, field, value)
            elif value is None:
                if name == "encoded":
                    continue
                if name == "count":
                    value = _object_count(item, obj, bbox)
                elif field.default is None:
                    raise _fail(item, field.path,
                                "missing (give it in the item, or let the image be read)")
                else:
                    value = field.default
                values = [value]
            elif type(value) in _SCALAR_TYPES or not isinstance(
                    value, (list, tuple, dict, set, Mapping)):
                values = [value]
            else:
                raise _fail(item, field.path,
                            f"expected a single value, got {type(value).__name__}")
            if not values or (len(values) == 1 and type(values[0]) in _CACHEABLE
                              and name not in _UNIQUE):
                # Defaults, empty lists and small repeated scalars: serialized once.
                ckey = (prefix, type(values[0]), values[0]) if values else (prefix,)
                entry, payload = _cached(ckey, item, prefix, field, values)
            else:
                payload = _payload(item, field, values)
                entry = (heads_get((prefix, field.kind, len(payload)))
                         or _entry_head(prefix, field.kind, len(payload))) + payload
            if is_copied:
                copied[key] = payload
        elif where == _Derived.COPY:
            assert source is not None
            entry = _entry(prefix, field, copied[source])
        else:  # _Derived.SHA256
            stored = image.encoded if image is not None else item.get("encoded")
            entry = _entry(prefix, field,
                           _sha256_payload(None if stored is None else as_bytes(stored)))
        body.append(entry)
        size += len(entry)
    return b"".join([b"\x0a", _varint(size), *body])




