"""wire.Example, the in-place reader of Example bytes, held to the protobuf parser: on
Examples built field by field (packed and unpacked lists, lists in pieces, repeated
keys, oneofs replaced, merged messages, unknown fields and groups) and on mutations of
them, both accept the same bytes, and give every feature the same kind and values."""

from __future__ import annotations

import math
import os
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfrecord_lite import encode_example
from tfrecord_lite.decode import parse_example
from tfrecord_lite.errors import ExampleDecodeError
from tfrecord_lite.example import ImageFields
from tfrecord_lite.schema import BYTES, FLOAT, INT64
from tfrecord_lite.wire import Example, _decode_varints

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
_ONEOF = {"bytes_list": BYTES, "float_list": FLOAT, "int64_list": INT64}


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def ld(number: int, body: bytes) -> bytes:
    return tag(number, 2) + varint(len(body)) + body


# -- building Examples field by field ------------------------------------------------------

def _int64_list(values: list[int], packed: list[bool]) -> bytes:
    """An Int64List of ``values``, cut into pieces: packed or one field per value."""
    out = b""
    for i, value in enumerate(values):
        if packed[i % len(packed)]:
            out += ld(1, varint(value))
        else:
            out += tag(1, 0) + varint(value)
    return out


def _float_list(values: list[float], packed: list[bool]) -> bytes:
    out = b""
    for i, value in enumerate(values):
        raw = struct.pack("<f", value)
        out += ld(1, raw) if packed[i % len(packed)] else tag(1, 5) + raw
    return out


def _bytes_list(values: list[bytes]) -> bytes:
    return b"".join(ld(1, v) for v in values)


_UNKNOWN = st.sampled_from([
    tag(7, 0) + varint(300), tag(9, 1) + b"\x00" * 8, tag(11, 5) + b"\x01\x02\x03\x04",
    ld(12, b"xyz"), tag(13, 3) + tag(1, 0) + b"\x05" + tag(13, 4),
    tag(14, 3) + tag(15, 3) + tag(15, 4) + tag(14, 4),
])
_INT64S = st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=6)
_FLOATS = st.lists(st.floats(width=32, allow_nan=True), max_size=6)
_BYTES = st.lists(st.binary(max_size=8), max_size=6)
_PACKING = st.lists(st.booleans(), min_size=1, max_size=3)


@st.composite
def features(draw: Any) -> bytes:
    """A Feature message: one or more list fields (a oneof given twice, or replaced),
    unknown fields between them."""
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        number = draw(st.sampled_from([1, 2, 3]))
        if number == 3:
            body = _int64_list(draw(_INT64S), draw(_PACKING))
        elif number == 2:
            body = _float_list(draw(_FLOATS), draw(_PACKING))
        else:
            body = _bytes_list(draw(_BYTES))
        if draw(st.booleans()):
            body += draw(_UNKNOWN)
        out += ld(number, body)
        if draw(st.integers(0, 4)) == 0:
            out += draw(_UNKNOWN)
    return out


_KEYS = st.sampled_from(["image/id", "image/object/bbox/xmin", "a", "", "b/c", "é"])


@st.composite
def examples(draw: Any) -> bytes:
    """An Example: entries (a key given twice, a value given in two parts), in one or
    two Features messages, with unknown fields."""
    features_messages = []
    for _ in range(draw(st.integers(1, 2))):
        entries = b""
        for _ in range(draw(st.integers(0, 4))):
            entry = b""
            if draw(st.integers(0, 5)):
                entry += ld(1, draw(_KEYS).encode())
            for _ in range(draw(st.integers(0, 2))):
                entry += ld(2, draw(features()))
            if draw(st.integers(0, 5)) == 0:
                entry += draw(_UNKNOWN)
            entries += ld(1, entry)
        features_messages.append(entries)
    out = b"".join(ld(1, f) for f in features_messages)
    if draw(st.integers(0, 4)) == 0:
        out = draw(_UNKNOWN) + out
    return out


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        if buf:
            buf[pos % len(buf)] = value
    return bytes(buf[:cut] if cut is not None else buf)


_MUTATED = st.builds(_mutate, examples(),
                     st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                              max_size=3),
                     st.one_of(st.none(), st.integers(0, 400)))


def _same(ours: Any, theirs: list[Any], kind: str) -> bool:
    if kind == FLOAT:  # (protobuf hands floats out as doubles: NaN payloads may differ)
        return bool(np.array_equal(np.asarray(ours, np.float64), np.asarray(theirs, np.float64),
                                   equal_nan=True))
    return list(ours) == list(theirs)


def assert_agrees(data: bytes) -> None:
    try:
        message = parse_example(data)
    except ExampleDecodeError:
        with pytest.raises(ExampleDecodeError):
            Example(data)
        return
    ours = Example(data)
    theirs = message.features.feature
    assert set(ours.features) == set(theirs)
    for key in theirs:
        oneof = theirs[key].WhichOneof("kind")
        feature = ours.features[key]
        assert feature.kind == (_ONEOF[oneof] if oneof else None), key
        if oneof is None:
            assert feature.count == 0
            continue
        values = list(getattr(theirs[key], oneof).value)
        assert feature.count == len(values), key
        if feature.kind == BYTES:
            assert list(ours.bytes_values(key)) == values
        else:
            chunks = list(ours.numbers(key, size=3))
            got = np.concatenate(chunks) if chunks else np.zeros(0)
            assert all(c.size == 3 for c in chunks[:-1])
            assert _same(got, values, feature.kind), key
        first = ours.first(key)
        assert (first is None) == (not values)
        if values and feature.kind != FLOAT:
            assert first == values[0]
        elif values:
            assert first == values[0] or (math.isnan(first) and math.isnan(values[0]))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(examples())
def test_agrees_with_protobuf_on_examples_built_field_by_field(data: bytes) -> None:
    assert_agrees(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_MUTATED, st.binary(max_size=200)))
def test_agrees_with_protobuf_on_mutated_and_random_bytes(data: bytes) -> None:
    assert_agrees(data)


@pytest.mark.parametrize("data", [
    tag(13, 3) + b"\x00\x05" + tag(13, 4) + ld(1, b""),   # field 0 inside a skipped group
    ld(1, ld(1, ld(1, b"k") + ld(2, b"") + tag(7, 0) + b"\x01")),  # an entry with an
    ld(1, ld(1, ld(1, b"k") + tag(9, 3) + tag(9, 4))),             # unknown field: dropped
    ld(1, ld(1, ld(1, b"k") + ld(2, ld(3, ld(1, b"\x01"))))              # a key given twice:
    + ld(1, ld(1, b"k") + ld(2, ld(2, ld(1, b"\x00" * 4))))),         # the last entry
    ld(1, ld(1, ld(1, b"k") + ld(2, ld(3, ld(1, b"\x01")) + ld(2, b"")   # a oneof replaced,
                                       + ld(3, tag(1, 0) + b"\x05")))),  # then given again
    ld(1, ld(1, ld(1, b"k") + ld(2, ld(3, ld(1, b"\x01"))) + ld(2, ld(3, ld(1, b"\x02"))))),
])
def test_agrees_with_protobuf_on_its_merging_rules(data: bytes) -> None:
    parse_example(data)  # (protobuf accepts each)
    assert_agrees(data)


@pytest.mark.parametrize("data", [
    ld(1, ld(1, ld(1, b"\xff") + ld(2, b""))),                     # a key that is not UTF-8
    ld(1, ld(1, ld(1, b"\xed\xa0\x80"))),                           # a surrogate
    ld(1, ld(1, ld(1, b"k") + ld(2, ld(3, ld(1, b"\x80"))))),       # a varint cut short
    ld(1, ld(1, ld(1, b"k") + ld(2, ld(3, ld(1, b"\x80" * 10 + b"\x01"))))),  # 11 bytes
    ld(1, ld(1, ld(1, b"k") + ld(2, ld(2, ld(1, b"\x00" * 5))))),   # floats: 5 bytes
    ld(1, ld(1, ld(1, b"k") + ld(2, ld(3, b"")))) + b"\x0a\x05ab",  # a length past the end
    tag(3, 4),                                                      # an end group alone
    tag(3, 3) + tag(4, 4),                                          # a group ended wrongly
    tag(0, 0) + b"\x00",                                            # field number 0
    tag(1, 7),                                                      # wire type 7
])
def test_refuses_what_protobuf_refuses(data: bytes) -> None:
    with pytest.raises(ExampleDecodeError):
        parse_example(data)
    with pytest.raises(ExampleDecodeError, match="not a tf.train.Example"):
        Example(data)


def test_a_real_record_reads_as_protobuf_reads_it() -> None:
    data = encode_example({"filename": "f.jpg", "id": 7, "class": {"label": 1, "text": "x"},
                           "object": {"bbox": {"xmin": [0.1, 0.2], "label": [2, 300],
                                               "text": ["a", "b"]}}},
                          ImageFields(b"\xff\xd8\xff" + b"j" * 40, 4, 5))
    assert_agrees(data)
    assert Example(data, {"image/object/bbox/label"}).features.keys() == {
        "image/object/bbox/label"}


def test_long_packed_lists_come_in_chunks_of_bounded_size() -> None:
    values = [(i * 2654435761) % (1 << 40) - (1 << 39) for i in range(5000)]
    data = ld(1, ld(1, ld(1, b"k") + ld(2, ld(3, ld(1, b"".join(map(varint, values)))))))
    ours = Example(data)
    assert ours.features["k"].count == 5000
    chunks = list(ours.numbers("k", size=1024))
    assert [c.size for c in chunks] == [1024] * 4 + [904]
    assert np.concatenate(chunks).tolist() == values


def test_varints_of_every_length_decode() -> None:
    values = [0, 1, 127, 128, 300, (1 << 35) + 5, (1 << 63) - 1, -1, -(1 << 63)]
    raw = np.frombuffer(b"".join(map(varint, values)), np.uint8)
    assert _decode_varints(raw).tolist() == values
