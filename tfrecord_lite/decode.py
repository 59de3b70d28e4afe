"""Serialized ``tf.train.Example`` bytes -> the nested item dict (the decoder).

Keys lose their ``image/`` prefix and become nested at each ``/``; the schema's scalar
keys come back as single values, text as ``str``. ``parse_example`` gives the protobuf
message itself, for the readers that check each feature's kind.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from google.protobuf.message import DecodeError

from .errors import ExampleDecodeError
from .proto import example_pb2
from .schema import BYTES, FLOAT, INT64, RECORD_FIELDS, Field


def decode_value(field: Field | None, kind: str, values: list[Any]) -> Any:
    """A feature's values as the item holds them: text as ``str`` (bytes that are not
    UTF-8 stay bytes), floats as ``float``, a scalar key's first value alone."""
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
        nest(out, key, decode_value(RECORD_FIELDS.get(key), kind, values))
    return out


def nest(out: dict[str, Any], key: str, value: Any) -> None:
    """Put a record key's value in the nested item ``out``: without its ``image/``
    prefix, one level per ``/``. A key that is also another key's prefix stays flat
    (keys come in sorted order, so the shorter one is placed first)."""
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
    node[parts[-1]] = value


def iter_flat(item: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(key/path, value)`` for every leaf of a nested dict."""
    for key, value in item.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from iter_flat(value, path)
        else:
            yield path, value
