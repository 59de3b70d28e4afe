"""The fast encoder (tfrecord_lite/example.py writes the protobuf wire format itself)
against the plain way: an ``Example`` built with the protobuf API from the schema table,
then ``SerializeToString(deterministic=True)``. Byte for byte, on fixed items covering
every key and on random ones."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfrecord_lite import encode_example
from tfrecord_lite.coerce import as_bytes, as_float, as_int
from tfrecord_lite.example import ImageFields
from tfrecord_lite.proto import example_pb2
from tfrecord_lite.schema import ALIASES, BYTES, FIELDS, FLOAT, OBJECT_LISTS, SHA256

from conftest import DEMO, detection_item

_CONVERT = {BYTES: as_bytes, FLOAT: as_float, "int64": as_int}
_FLOAT32_MAX = 3.4028234663852886e38


def _at(item: Mapping[str, Any], path: str) -> Any:
    node: Any = item
    for part in path.split("/"):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _as_values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _float32(value: float) -> float:
    """What a float becomes in a FloatList: beyond float32, infinity (as the C API)."""
    if math.isfinite(value) and abs(value) > _FLOAT32_MAX:
        return math.copysign(math.inf, value)
    return value


def reference_serialize(item: Mapping[str, Any], image: ImageFields | None = None) -> bytes:
    """The record of ``item`` the plain way, from the schema table and the protobuf API."""
    example = example_pb2.Example()
    features = example.features.feature
    count = max((len(_as_values(_at(item, path))) for path in OBJECT_LISTS), default=0)
    for field in FIELDS:
        name = field.path.rsplit("/", 1)[-1]
        if image is not None and "/" not in field.path and name in ImageFields._fields:
            value = getattr(image, name)
        else:
            value = _at(item, field.path)
        if field.optional and value is None:
            continue  # the mask keys: written only when given
        if field.is_list:
            values = _as_values(value)
        elif value is None and name == "encoded":
            continue  # no image stored: no image/encoded
        elif value is None:
            values = [count if name == "count" else field.default]
        else:
            values = [value]
        values = [_CONVERT[field.kind](v) for v in values]
        feature = features[field.key]
        if field.kind == BYTES:
            feature.bytes_list.value.extend(values)
            feature.bytes_list.SetInParent()
        elif field.kind == FLOAT:
            feature.float_list.value.extend(_float32(v) for v in values)
            feature.float_list.SetInParent()
        else:
            feature.int64_list.value.extend(values)
            feature.int64_list.SetInParent()
    for alias, source in ALIASES.items():
        features["image/" + alias].CopyFrom(features["image/" + source])
    stored = image.encoded if image is not None else item.get("encoded")
    digest = b"" if stored is None else hashlib.sha256(as_bytes(stored)).hexdigest().encode()
    features[SHA256.key].bytes_list.value.append(digest)
    return example.SerializeToString(deterministic=True)


IMAGE = ImageFields(b"\xff\xd8 a JPEG's bytes \xff\xd9", 48, 64)


def _golden_items() -> list[tuple[str, dict[str, Any], ImageFields | None]]:
    """Items covering every key, the defaults, the lenient values and the odd ones."""
    demo = json.loads((DEMO / "dataset.json").read_text())
    full = detection_item("/data/birds/0001.jpg", 7)
    given = {"filename": "given.png", "id": "g", "encoded": b"\x89PNG...", "height": 2,
             "width": 3, "format": "PNG", "colorspace": "RGBA", "channels": 4}
    return [
        ("full", full, IMAGE),
        ("full, images not stored", full, ImageFields(None, 48, 64)),
        ("minimal, label as text", {"filename": "x.jpg", "id": "0", "class": {"label": "1"}},
         IMAGE),
        ("encoded given", given, None),
        ("header only", {"filename": "a.jpg", "id": 1, "height": 5, "width": 6}, None),
        ("unicode and big numbers", {
            "filename": "vögel/ñandú.jpg", "id": "鳥", "extra": "{\"ü\": 1}",
            "class": {"label": -(1 << 63), "text": "Ñandú 🐦", "conf": 1e39},
            "object": {"count": (1 << 63) - 1, "area": [1e-40, -0.0], "id": ["a", 2],
                       "bbox": {"xmin": [0.25], "label": [True], "text": ["x"]},
                       "parts": {"x": [0.5, 1], "v": [0, 2], "score": [float("nan")]}}},
         IMAGE),
        ("objects without count", {"filename": "f", "id": "f", "object": {
            "is_crowd": [0, 1, 0], "bbox": {"xmin": [0.1, 0.2]}}}, IMAGE),
        ("masks and a label image", {**full, "object": {**full["object"], "mask": [
            b"\x89PNG mask 0", b"\x89PNG mask 1"]}, "segmentation": {"class": {
                "encoded": b"\x89PNG ids", "format": "png"}}}, IMAGE),
        ("masks of objects without count", {"filename": "f", "id": "m", "object": {
            "mask": [b"a", b"b", b"c"]}}, IMAGE),
        ("an empty list of masks", {"filename": "f", "id": "e", "object": {"mask": []}},
         IMAGE),
        *[(f"demo {item['id']}", item, IMAGE) for item in demo],
    ]


@pytest.mark.parametrize(("item", "image"), [(i, m) for _, i, m in _golden_items()],
                         ids=[name for name, _, _ in _golden_items()])
def test_golden_items_are_byte_identical_to_the_plain_serializer(
        item: dict[str, Any], image: ImageFields | None) -> None:
    assert encode_example(item, image) == reference_serialize(item, image)


def test_the_reference_is_not_the_encoder_itself() -> None:
    # The two differ where the reference is told something else: it would catch a change.
    item = detection_item("/data/birds/0001.jpg", 7)
    changed = {**item, "class": {**item["class"], "label": 2}}
    assert encode_example(item, IMAGE) != reference_serialize(changed, IMAGE)


_text = st.text(max_size=12)
_float = st.one_of(st.floats(allow_nan=False), st.integers(-(10**6), 10**6))
_int = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)


@settings(max_examples=300, deadline=None)
@given(
    ident=st.one_of(st.integers(min_value=0, max_value=10**12), _text),
    extra=st.one_of(st.none(), _text),
    klass=st.fixed_dictionaries({}, optional={"label": _int, "text": _text, "conf": _float}),
    lists=st.fixed_dictionaries({}, optional={
        "object/area": st.lists(_float, max_size=5),
        "object/id": st.lists(_text, max_size=5),
        "object/is_crowd": st.lists(st.integers(0, 1), max_size=5),
        "object/bbox/xmin": st.lists(_float, max_size=5),
        "object/bbox/ymax": st.lists(_float, max_size=5),
        "object/bbox/label": st.lists(_int, max_size=5),
        "object/bbox/text": st.lists(_text, max_size=5),
        "object/parts/x": st.lists(_float, max_size=8),
        "object/parts/v": st.lists(st.integers(0, 2), max_size=8),
        "object/mask": st.lists(st.binary(max_size=40), max_size=5),
        "segmentation/class/encoded": st.binary(max_size=40),
        "segmentation/class/format": st.sampled_from(["png", "PNG"]),
    }),
    count=st.one_of(st.none(), st.integers(0, 10)),
    image=st.one_of(st.none(), st.builds(
        ImageFields, st.one_of(st.none(), st.binary(max_size=200)), st.integers(1, 10**5),
        st.integers(1, 10**5), st.sampled_from(["JPEG", "PNG"]), st.sampled_from(["RGB", "L"]),
        st.integers(1, 4))),
)
def test_random_items_are_byte_identical_to_the_plain_serializer(
        ident: Any, extra: str | None, klass: dict[str, Any], lists: dict[str, list[Any]],
        count: int | None, image: ImageFields | None) -> None:
    item: dict[str, Any] = {"filename": "f.jpg", "id": ident}
    if extra is not None:
        item["extra"] = extra
    if klass:
        item["class"] = klass
    for path, values in lists.items():
        node = item
        *parents, name = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[name] = values
    if count is not None:
        item.setdefault("object", {})["count"] = count
    if image is None:  # the image's fields from the item itself
        item.update(height=7, width=9)
    assert encode_example(item, image) == reference_serialize(item, image)
