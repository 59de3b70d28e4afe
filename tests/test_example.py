from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfrecord_lite import ExampleDecodeError, ExampleError, decode_example, encode_example
from tfrecord_lite.decode import parse_example
from tfrecord_lite.example import ImageFields
from tfrecord_lite.proto import example_pb2
from tfrecord_lite.schema import FIELDS, OPTIONAL_KEYS, RECORD_FIELDS, SCALAR_KEYS

IMAGE = ImageFields(b"\xff\xd8fake-jpeg", 48, 64)


def _full_item() -> dict[str, Any]:
    from conftest import detection_item

    return detection_item("/data/birds/0001.jpg", 7)


def _features(data: bytes) -> Any:
    return example_pb2.Example.FromString(data).features.feature


def test_every_key_of_the_spec_is_written() -> None:
    feats = _features(encode_example(_full_item(), IMAGE))
    expected = {f.key for f in FIELDS if not f.optional} | {
        "image/source_id", "image/key/sha256", "image/object/class/label",
        "image/object/class/text"}
    assert set(feats) == expected
    assert set(RECORD_FIELDS) == expected | set(OPTIONAL_KEYS)


def test_the_mask_keys_are_written_only_when_the_item_gives_them() -> None:
    item = _full_item()
    item["object"]["mask"] = [b"png 0", b"png 1"]
    item["segmentation"] = {"class": {"encoded": b"png ids", "format": "png"}}
    feats = _features(encode_example(item, IMAGE))
    assert set(OPTIONAL_KEYS) == {"image/object/mask", "image/segmentation/class/encoded",
                                  "image/segmentation/class/format"}
    assert set(feats) == set(RECORD_FIELDS)
    assert feats["image/object/mask"].bytes_list.value == [b"png 0", b"png 1"]
    assert feats["image/segmentation/class/encoded"].bytes_list.value == [b"png ids"]
    assert feats["image/segmentation/class/format"].bytes_list.value == [b"png"]
    item["object"]["mask"] = []  # given, empty: an image without objects
    del item["segmentation"]
    feats = _features(encode_example(item, IMAGE))
    assert "image/object/mask" in feats and not feats["image/object/mask"].bytes_list.value
    assert "image/segmentation/class/encoded" not in feats


def test_values_and_kinds() -> None:
    feats = _features(encode_example(_full_item(), IMAGE))
    assert feats["image/id"].bytes_list.value == [b"7"]
    assert feats["image/source_id"].bytes_list.value == [b"7"]
    assert feats["image/encoded"].bytes_list.value == [IMAGE.encoded]
    assert feats["image/key/sha256"].bytes_list.value == [
        hashlib.sha256(IMAGE.encoded).hexdigest().encode()]  # type: ignore[arg-type]
    assert feats["image/height"].int64_list.value == [48]
    assert feats["image/width"].int64_list.value == [64]
    assert feats["image/format"].bytes_list.value == [b"JPEG"]
    assert feats["image/colorspace"].bytes_list.value == [b"RGB"]
    assert feats["image/channels"].int64_list.value == [3]
    assert feats["image/extra"].bytes_list.value == [b'{"split": "test"}']
    assert feats["image/class/label"].int64_list.value == [1]
    assert list(feats["image/class/conf"].float_list.value) == pytest.approx([0.9])
    assert list(feats["image/object/bbox/xmin"].float_list.value) == pytest.approx([0.1, 0.5])
    assert feats["image/object/bbox/label"].int64_list.value == [1, 2]
    assert feats["image/object/class/label"].int64_list.value == [1, 2]
    assert feats["image/object/class/text"].bytes_list.value == [b"bird", b"cat"]
    assert feats["image/object/is_crowd"].int64_list.value == [0, 1]
    assert feats["image/object/parts/v"].int64_list.value == [2, 1]
    assert feats["image/object/id"].bytes_list.value == [b"a", b"b"]


def test_minimal_item_has_every_scalar_and_empty_lists() -> None:
    item = {"filename": "x.jpg", "id": "0", "class": {"label": "1"}}
    feats = _features(encode_example(item, IMAGE))
    for key in SCALAR_KEYS:
        assert key in feats, key
    assert feats["image/class/label"].int64_list.value == [1]  # the string "1" -> int 1
    assert feats["image/object/count"].int64_list.value == [0]
    assert feats["image/class/text"].bytes_list.value == [b""]
    assert feats["image/extra"].bytes_list.value == [b""]
    for key in ("image/object/bbox/xmin", "image/object/parts/v", "image/object/id"):
        assert key in feats and feats[key].WhichOneof("kind") is not None
    assert list(feats["image/object/bbox/xmin"].float_list.value) == []


def test_missing_class_label_is_minus_one_not_zero() -> None:
    feats = _features(encode_example({"filename": "x", "id": 1}, IMAGE))
    assert feats["image/class/label"].int64_list.value == [-1]


def test_count_defaults_to_number_of_boxes() -> None:
    item = _full_item()
    del item["object"]["count"]
    assert _features(encode_example(item, IMAGE))["image/object/count"].int64_list.value == [2]


def test_extra_is_read_from_the_item_not_the_class() -> None:
    item = {"filename": "x", "id": 1, "extra": "top", "class": {"label": 0, "extra": "wrong"}}
    assert _features(encode_example(item, IMAGE))["image/extra"].bytes_list.value == [b"top"]


@pytest.mark.parametrize("path, value, message", [
    ("class/label", "one", "class/label: not an integer"),
    ("class/label", 1.5, "class/label: expected an integer"),
    ("class/label", [1, 2], "class/label: expected a single value"),
    ("object/bbox/xmin", [0.1, "left"], "object/bbox/xmin[1]"),
    ("object/bbox/label", [1, None], "object/bbox/label[1]"),
    ("object/parts/v", [2, 1.5], "object/parts/v[1]"),
    ("class/conf", {"a": 1}, "class/conf"),
    ("object/bbox/text", [["nested"]], "object/bbox/text"),
])
def test_wrong_types_name_item_and_key_path(path: str, value: Any, message: str) -> None:
    item = _full_item()
    node = item
    parts = path.split("/")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    with pytest.raises(ExampleError) as info:
        encode_example(item, IMAGE)
    assert "id '7'" in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize("missing", ["filename", "id"])
def test_required_fields(missing: str) -> None:
    item = _full_item()
    del item[missing]
    with pytest.raises(ExampleError, match=f"{missing}: missing"):
        encode_example(item, IMAGE)


def test_lenient_numbers() -> None:
    import numpy as np

    item = {"filename": "x", "id": np.int64(3), "class": {"label": np.int32(2), "conf": "0.5"},
            "object": {"bbox": {"xmin": np.array([0.25], dtype=np.float32), "label": ["4"]},
                       "is_crowd": [True]}}
    decoded = decode_example(encode_example(item, IMAGE))
    assert decoded["id"] == "3"
    assert decoded["class"]["label"] == 2 and decoded["class"]["conf"] == 0.5
    assert decoded["object"]["bbox"]["xmin"] == [0.25]
    assert decoded["object"]["bbox"]["label"] == [4]
    assert decoded["object"]["is_crowd"] == [1]


@pytest.mark.parametrize("path, value, message", [
    ("object/bbox/xmin", [0.1, 10**400],
     "object/bbox/xmin[1]: an integer of about 401 digits is too large for a float"),
    ("class/conf", -(10**400), "class/conf: an integer of about 401 digits is too large"),
    ("class/label", 10**400, "class/label: an integer of about 401 digits does not fit in"),
    ("id", "a\ud800b", "id: 'a\\ud800b' cannot be written as UTF-8: a lone surrogate "
                        "'\\ud800' at position 1"),
    ("filename", "\udcff.jpg", "filename: '\\udcff.jpg' cannot be written as UTF-8"),
    ("object/bbox/text", ["ok", "x\udfff"], "object/bbox/text[1]: 'x\\udfff' cannot be"),
    ("class/label", "9" * 5000, "class/label: not an integer: '99999"),
], ids=["huge-int-in-list", "huge-int-float", "huge-int-int64", "surrogate-id",
        "surrogate-filename", "surrogate-in-list", "5000-digit-text"])
def test_values_no_record_can_hold_name_item_and_key_path(path: str, value: Any,
                                                          message: str) -> None:
    # These used to escape as OverflowError ("int too large to convert to float") or
    # UnicodeEncodeError, naming neither the item nor the key.
    item = _full_item()
    node = item
    *parents, last = path.split("/")
    for part in parents:
        node = node[part]
    node[last] = value
    with pytest.raises(ExampleError) as info:
        encode_example(item, IMAGE)
    text = str(info.value)
    assert text.startswith("id ") and message in text, text
    assert len(text) < 200


def test_int64_range() -> None:
    with pytest.raises(ExampleError, match="int64"):
        encode_example({"filename": "x", "id": 1, "class": {"label": 1 << 63}}, IMAGE)


def test_image_fields_from_the_item() -> None:
    item = {"filename": "x", "id": 1, "encoded": b"PNGDATA", "height": 2, "width": 3,
            "format": "PNG", "colorspace": "RGB", "channels": 3}
    decoded = decode_example(encode_example(item))
    assert decoded["encoded"] == b"PNGDATA" and decoded["format"] == "PNG"
    assert (decoded["height"], decoded["width"]) == (2, 3)


def test_no_encoded_when_not_stored() -> None:
    feats = _features(encode_example({"filename": "x", "id": 1}, ImageFields(None, 5, 6)))
    assert "image/encoded" not in feats
    assert feats["image/key/sha256"].bytes_list.value == [b""]


def test_decode_round_trip_shape() -> None:
    item = _full_item()
    decoded = decode_example(encode_example(item, IMAGE))
    assert decoded["filename"] == item["filename"] and decoded["id"] == "7"
    assert decoded["class"]["text"] == "bird"
    assert decoded["object"]["bbox"]["text"] == ["bird", "cat"]
    assert decoded["object"]["parts"]["v"] == [2, 1]
    assert decoded["object"]["count"] == 2
    assert decoded["key"]["sha256"] == hashlib.sha256(IMAGE.encoded).hexdigest()  # type: ignore[arg-type]
    for got, want in zip(decoded["object"]["bbox"]["ymax"], item["object"]["bbox"]["ymax"]):
        assert math.isclose(got, want, rel_tol=1e-6)


def test_deterministic_and_sorted() -> None:
    item = _full_item()
    a = encode_example(item, IMAGE)
    shuffled = dict(reversed(list(item.items())))
    assert encode_example(shuffled, IMAGE) == a
    keys = list(example_pb2.Example.FromString(a).features.feature)
    parsed = example_pb2.Example.FromString(a)
    assert parsed.SerializeToString(deterministic=True) == a
    assert len(keys) == len(set(keys))


def test_decode_garbage() -> None:
    with pytest.raises(ExampleDecodeError):
        decode_example(b"\xff\xff\xff\xff")
    with pytest.raises(ExampleError):  # the parent class catches it too
        parse_example(b"\x0a\x05abc")


_floats = st.floats(width=32, allow_nan=False)
_texts = st.text(max_size=10)


@settings(max_examples=150, deadline=None)
@given(
    ident=st.one_of(st.integers(), _texts),
    label=st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    text=_texts,
    boxes=st.lists(st.tuples(_floats, _floats, st.integers(0, 1000), _texts), max_size=5),
    parts=st.lists(st.tuples(_floats, st.integers(0, 2)), max_size=6),
)
def test_round_trip_property(ident: Any, label: int, text: str,
                             boxes: list[tuple[float, float, int, str]],
                             parts: list[tuple[float, int]]) -> None:
    item = {
        "filename": "f.jpg", "id": ident, "class": {"label": label, "text": text},
        "object": {"bbox": {"xmin": [b[0] for b in boxes], "ymax": [b[1] for b in boxes],
                            "label": [b[2] for b in boxes], "text": [b[3] for b in boxes]},
                   "parts": {"x": [p[0] for p in parts], "v": [p[1] for p in parts]}},
    }
    data = encode_example(item, IMAGE)
    back = decode_example(data)
    assert back["id"] == str(ident)
    assert back["class"] == {"label": label, "text": text, "conf": 1.0}
    assert back["object"]["count"] == len(boxes)
    assert back["object"]["bbox"]["xmin"] == [b[0] for b in boxes]
    assert back["object"]["bbox"]["label"] == [b[2] for b in boxes]
    assert back["object"]["bbox"]["text"] == [b[3] for b in boxes]
    assert back["object"]["parts"]["v"] == [p[1] for p in parts]
    # Re-encoding the decoded item gives the same bytes.
    assert encode_example(back) == data


_any_float = st.one_of(st.floats(), st.integers(-(10**6), 10**6))
_any_int = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)


@settings(max_examples=300, deadline=None)
@given(
    ident=st.one_of(st.integers(), st.text(max_size=30)),
    extra=st.text(max_size=300),
    conf=_any_float,
    floats=st.lists(_any_float, max_size=40),
    ints=st.lists(_any_int, max_size=40),
    texts=st.lists(st.text(max_size=20), max_size=10),
    encoded=st.one_of(st.none(), st.binary(max_size=3000)),
    count=st.one_of(st.none(), _any_int),
)
def test_bytes_equal_protobuf_deterministic_serialization(
        ident: Any, extra: str, conf: float, floats: list[float], ints: list[int],
        texts: list[str], encoded: bytes | None, count: int | None) -> None:
    """The direct wire encoder against protobuf's own canonical serialization."""
    item: dict[str, Any] = {
        "filename": "f", "id": ident, "extra": extra, "class": {"conf": conf},
        "object": {"area": floats, "bbox": {"label": ints, "text": texts}},
    }
    if count is not None:
        item["object"]["count"] = count
    image = ImageFields(encoded, 1, 2)
    data = encode_example(item, image)
    assert parse_example(data).SerializeToString(deterministic=True) == data

    # And the same features built with the protobuf API give the same bytes.
    ex = example_pb2.Example()
    f = ex.features.feature
    for key, field in RECORD_FIELDS.items():
        if (key == "image/encoded" and encoded is None) or field.optional:
            continue
        f[key].SetInParent()
        getattr(f[key], {"bytes": "bytes_list", "float": "float_list",
                         "int64": "int64_list"}[field.kind]).SetInParent()
    parsed = parse_example(data).features.feature
    for key in parsed:
        kind = parsed[key].WhichOneof("kind")
        getattr(f[key], kind).value.extend(getattr(parsed[key], kind).value)
    assert ex.SerializeToString(deterministic=True) == data
    import numpy as np

    with np.errstate(over="ignore"):
        expected = np.array(floats, dtype=np.float64).astype(np.float32)
    got = np.array(parsed["image/object/area"].float_list.value, dtype=np.float32)
    np.testing.assert_array_equal(got, expected)  # NaN == NaN here
    assert list(parsed["image/object/bbox/label"].int64_list.value) == ints
    assert list(parsed["image/object/bbox/text"].bytes_list.value) == [
        t.encode() for t in texts]


def test_float32_overflow_becomes_infinity_as_in_protobuf() -> None:
    item = {"filename": "f", "id": 1, "object": {"area": [1e39, -1e39, 3.4028235e38]}}
    area = _features(encode_example(item, IMAGE))["image/object/area"].float_list.value
    ref = example_pb2.Example()
    ref.features.feature["x"].float_list.value.extend([1e39, -1e39, 3.4028235e38])
    assert list(area) == list(ref.features.feature["x"].float_list.value)
    assert area[0] == math.inf and area[1] == -math.inf


def test_wrong_container_types() -> None:
    with pytest.raises(ExampleError, match="class: expected a dict, got int"):
        encode_example({"filename": "f", "id": 1, "class": 3}, IMAGE)
    with pytest.raises(ExampleError, match="object/area: expected a list of values"):
        encode_example({"filename": "f", "id": 1, "object": {"area": {"a": 1}}}, IMAGE)


# Values of the wrong type or shape: converted leniently, or an error naming the key.
_ODD = st.sampled_from([True, "7", "x", 2.5, b"raw", None, (1, 2), {"a": 1}, float("nan")])


def _value_for(field: Any, draw: Any) -> Any:
    odd = draw(st.integers(0, 7)) == 0
    if field.is_list:
        kind = {"float": st.floats(-2, 2, width=32), "int64": st.integers(-5, 300),
                "bytes": st.text(max_size=5)}[field.kind]
        values = draw(st.lists(st.one_of(kind, _ODD) if odd else kind, max_size=4))
        return tuple(values) if odd and draw(st.booleans()) else values
    if odd:
        return draw(st.one_of(_ODD, st.lists(st.integers(0, 3), max_size=2)))
    return draw({"float": st.floats(-2, 2, width=32), "int64": st.integers(0, 300),
                 "bytes": st.text(max_size=8)}[field.kind])


@st.composite
def _items_of_any_shape(draw: Any) -> tuple[dict[str, Any], ImageFields | None]:
    """Items with any subset of the keys, in any order, some set to None."""
    item: dict[str, Any] = {}
    paths = [f.path for f in FIELDS if f.path not in ("id", "filename")]
    for path in draw(st.permutations(paths)):
        if not draw(st.booleans()):
            continue
        field = next(f for f in FIELDS if f.path == path)
        value = None if draw(st.integers(0, 5)) == 0 else _value_for(field, draw)
        *parents, name = path.split("/")
        container = item
        for parent in parents:
            container = container.setdefault(parent, {})
        container[name] = value
    for key in draw(st.permutations(["id", "filename"])):
        item[key] = draw(st.text(min_size=1, max_size=5))
    image = draw(st.sampled_from([None, IMAGE, ImageFields(None, 3, 4),
                                  ImageFields(b"\x89PNG", 5, 6, "PNG", "RGBA", 4)]))
    return item, image


def _outcome(item: dict[str, Any], image: ImageFields | None) -> bytes | str:
    try:
        return encode_example(item, image)
    except ExampleError as exc:
        return str(exc)


@settings(max_examples=400, deadline=None)
@given(cases=st.lists(_items_of_any_shape(), min_size=1, max_size=4))
def test_per_shape_plans_write_what_the_key_by_key_path_writes(
        cases: list[tuple[dict[str, Any], ImageFields | None]]) -> None:
    # encode_example joins the keys an item's shape leaves at their defaults into
    # constant runs, one plan per shape, and walks the other keys; the plain walk over
    # every key is the reference.
    import tfrecord_lite.example as example

    for item, image in cases + cases[::-1]:  # shapes alternate, plans are reused
        fast = _outcome(item, image)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(example, "_plan_for", lambda containers, has_image: example._PLAN)
            reference = _outcome(item, image)
        assert fast == reference
