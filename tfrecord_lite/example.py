"""Nested item dicts <-> serialized ``tf.train.Example`` bytes, driven by one table.

An item is the nested dict of SPEC.md (``{"filename", "id", "class": {...},
"object": {"bbox": {...}, "parts": {...}}}``); its key paths, joined by ``/`` and
prefixed with ``image/``, are the record's feature keys. Every scalar key is present
in every record (readers use ``FixedLenFeature``); list keys may be empty.

Serialization is deterministic (features sorted by key), so equal items give equal
bytes, the same bytes ``tf.train.Example.SerializeToString(deterministic=True)`` gives.
"""

from __future__ import annotations

import hashlib
import logging
import numbers
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError

from .errors import ExampleDecodeError, ExampleError
from .proto import example_pb2

logger = logging.getLogger(__name__)

BYTES = "bytes"
FLOAT = "float"
INT64 = "int64"
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True)
class Field:
    """One feature: its path in the item, its kind, scalar or list, the default."""

    path: str
    kind: str
    is_list: bool = False
    default: Any = None
    text: bool = True  # BYTES only: decode back to str

    @property
    def key(self) -> str:
        return "image/" + self.path


def _scalar(path: str, kind: str, default: Any = None, text: bool = True) -> Field:
    return Field(path, kind, False, default, text)


def _list(path: str, kind: str) -> Field:
    return Field(path, kind, True)


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
)

# Keys the TensorFlow Object Detection API reads, copied from another field.
ALIASES: dict[str, str] = {
    "source_id": "id",
    "object/class/label": "object/bbox/label",
    "object/class/text": "object/bbox/text",
}
SHA256 = _scalar("key/sha256", BYTES, "")

IMAGE_FIELDS = ("encoded", "height", "width", "colorspace", "channels", "format")
REQUIRED = ("filename", "id")
_BY_PATH = {f.path: f for f in FIELDS}
# Every key a record carries, for readers: record key -> Field.
RECORD_FIELDS: dict[str, Field] = {
    **{f.key: f for f in FIELDS},
    **{"image/" + alias: Field(alias, _BY_PATH[src].kind, _BY_PATH[src].is_list)
       for alias, src in ALIASES.items()},
    SHA256.key: SHA256,
}
SCALAR_KEYS = tuple(k for k, f in RECORD_FIELDS.items() if not f.is_list)
# Per-object lists whose length is the object count when "count" is not given.
_OBJECT_LISTS = tuple(f.path for f in FIELDS
                      if f.is_list and not f.path.startswith("object/parts/"))
_KNOWN_TOP = {"filename", "id", "encoded", "height", "width", "colorspace", "channels",
              "format", "extra", "class", "object", "error_msg", "source_id", "key"}
_warned_unknown: set[str] = set()


class ImageFields(NamedTuple):
    """What the image stage learned: the bytes to store (None: not stored) and their shape."""

    encoded: bytes | None
    height: int
    width: int
    format: str = "JPEG"
    colorspace: str = "RGB"
    channels: int = 3


def _lookup(item: Mapping[str, Any], path: str) -> Any:
    node: Any = item
    for part in path.split("/"):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


def item_label(item: Any) -> str:
    """How an item is named in messages: its id, else its filename, else its position."""
    if isinstance(item, Mapping):
        for key in ("id", "filename"):
            if item.get(key) is not None:
                return f"{key} {str(item[key])!r}"
    return "item"


# -- value conversion -------------------------------------------------------------------

def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        result = int(value)
    elif isinstance(value, str):
        result = int(value.strip())  # "1" -> 1; "1.5" raises ValueError
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        result = int(float(value))
    else:
        raise TypeError(f"expected an integer, got {value!r} ({type(value).__name__})")
    if not _INT64_MIN <= result <= _INT64_MAX:
        raise ValueError(f"{result} does not fit in int64")
    return result


def _as_float(value: Any) -> float:
    if isinstance(value, (numbers.Real, str)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, got {value!r} ({type(value).__name__})")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (Mapping, list, tuple, set)):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return str(value).encode("utf-8")


_CONVERT = {INT64: _as_int, FLOAT: _as_float, BYTES: _as_bytes}


def _values(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes, bytearray, Mapping)):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


class _Builder:
    """Fills one Example; errors name the item and the key path."""

    def __init__(self, item: Mapping[str, Any]) -> None:
        self.item = item
        self.example = example_pb2.Example()
        self.features = self.example.features.feature

    def fail(self, path: str, message: str) -> ExampleError:
        return ExampleError(f"{item_label(self.item)}: {path}: {message}")

    def put(self, key: str, path: str, kind: str, values: list[Any]) -> None:
        feature = self.features[key]
        target: Any = (feature.bytes_list if kind == BYTES
                  else feature.float_list if kind == FLOAT else feature.int64_list)
        target.SetInParent()
        if kind == BYTES:
            try:
                target.value.extend([_as_bytes(v) for v in values])
            except TypeError as exc:
                raise self.fail(path, str(exc)) from exc
            return
        try:
            target.value.extend(values)  # fast path: protobuf takes plain ints / floats
            return
        except (TypeError, ValueError):
            del target.value[:]
        convert = _CONVERT[kind]
        converted = []
        for i, v in enumerate(values):
            try:
                converted.append(convert(v))
            except (TypeError, ValueError) as exc:
                where = f"{path}[{i}]" if len(values) > 1 or path in _LIST_PATHS else path
                raise self.fail(where, str(exc).replace("invalid literal for int() with base 10",
                                                        "not an integer")) from exc
        target.value.extend(converted)


_LIST_PATHS = frozenset(f.path for f in FIELDS if f.is_list)


def _object_count(item: Mapping[str, Any]) -> int:
    longest = 0
    for path in _OBJECT_LISTS:
        value = _lookup(item, path)
        if value is not None:
            longest = max(longest, len(_values(value)))
    return longest


def _warn_unknown(item: Mapping[str, Any]) -> None:
    for key in item:
        if key not in _KNOWN_TOP and key not in _warned_unknown:
            _warned_unknown.add(key)
            logger.warning("ignoring unknown item field %r (first seen in %s)",
                           key, item_label(item))


def encode_example(item: Mapping[str, Any], image: ImageFields | None = None) -> bytes:
    """Serialize one item as ``tf.train.Example`` bytes.

    Args:
        item: the nested SPEC dict. ``filename`` and ``id`` are required.
        image: the stored image and its shape. Without it the item must carry
            ``encoded``, ``height``, ``width``, ``format``, ``colorspace``, ``channels``
            (or, with ``encoded`` absent, at least ``height`` and ``width``).
    Returns:
        The deterministic serialization of the Example.
    Raises:
        ExampleError: a required field is missing or a value has the wrong type; the
            message names the item id and the key path (``object/bbox/xmin[2]``).
    """
    if not isinstance(item, Mapping):
        raise ExampleError(f"an item must be a dict, got {type(item).__name__}")
    b = _Builder(item)
    for path in REQUIRED:
        if item.get(path) is None:
            raise b.fail(path, "missing (every item needs 'filename' and 'id')")
    _warn_unknown(item)
    image_values: dict[str, Any] = image._asdict() if image is not None else {}
    for field in FIELDS:
        path = field.path
        if path in IMAGE_FIELDS and image is not None:
            value = image_values[path]
            if value is None:  # image not stored
                continue
        else:
            value = _lookup(item, path)
        if value is None:
            if field.is_list:
                value = []
            elif path == "object/count":
                value = _object_count(item)
            elif path == "encoded":
                continue
            elif field.default is None:
                raise b.fail(path, "missing (give it in the item, or let the image be read)")
            else:
                value = field.default
        if field.is_list:
            values = _values(value)
        else:
            if isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray)):
                raise b.fail(path, f"expected a single value, got {type(value).__name__}")
            values = [value]
        b.put(field.key, path, field.kind, values)
    features = b.features
    for alias, source in ALIASES.items():
        features["image/" + alias].CopyFrom(features["image/" + source])
    encoded = features["image/encoded"].bytes_list.value if "image/encoded" in features else ()
    digest = hashlib.sha256(encoded[0]).hexdigest() if encoded else ""
    features[SHA256.key].bytes_list.value.append(digest.encode("ascii"))
    return b.example.SerializeToString(deterministic=True)


# -- decoding ---------------------------------------------------------------------------

def _decode_value(field: Field | None, kind: str, values: list[Any]) -> Any:
    if kind == BYTES and (field is None or field.text):
        out = []
        for v in values:
            try:
                out.append(v.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(v)
        values = out
    if kind == FLOAT:
        values = [float(v) for v in values]
    if field is not None and not field.is_list:
        return values[0] if values else None
    return values


def parse_example(data: bytes) -> Any:
    """Parse Example bytes into the generated protobuf message."""
    example = example_pb2.Example()
    try:
        example.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ExampleDecodeError(f"not a tf.train.Example: {exc}") from exc
    return example


def feature_values(feature: Any) -> tuple[str, list[Any]]:
    """A Feature's kind and its values as a list."""
    kind = feature.WhichOneof("kind")
    if kind == "bytes_list":
        return BYTES, list(feature.bytes_list.value)
    if kind == "float_list":
        return FLOAT, list(feature.float_list.value)
    if kind == "int64_list":
        return INT64, list(feature.int64_list.value)
    return BYTES, []


def decode_example(data: bytes) -> dict[str, Any]:
    """Turn Example bytes back into the nested item dict.

    Keys lose their ``image/`` prefix and become nested at each ``/``; the scalar
    keys of the table come back as single values, text as ``str``, ``encoded`` as
    ``bytes``. Keys this package does not know are kept, as lists.

    Raises:
        ExampleDecodeError: the bytes are not an Example.
    """
    example = parse_example(data)
    out: dict[str, Any] = {}
    for key in sorted(example.features.feature):
        kind, values = feature_values(example.features.feature[key])
        field = RECORD_FIELDS.get(key)
        path = key[len("image/"):] if key.startswith("image/") else key
        parts = path.split("/")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # a key that is also a prefix: keep it flat
                node = out
                parts = [path]
                break
            node = child
        node[parts[-1]] = _decode_value(field, kind, values)
    return out


def iter_flat(item: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(key/path, value)`` for every leaf of a nested dict."""
    for key, value in item.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from iter_flat(value, path)
        else:
            yield path, value
