"""Random and mutated bytes into the readers: records, Examples, compressed streams,
wrongly typed features, images and ``.idx`` files.

Only the library's own exceptions (and the documented FileNotFoundError / IndexError)
may come out: no crash, hang, MemoryError, TypeError, zlib.error, struct.error, ...
A short run in the test suite (a few seconds); `make fuzz` runs 100,000 cases of each
(FUZZ_EXAMPLES); the cases that write files run a fifth of that.
"""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfrecord_lite import (
    CorruptRecordError,
    ImageError,
    TFRecordLiteError,
    TruncatedRecordError,
    decode_example,
    encode_example,
    iterate,
    masked_crc32c,
    read_record_at,
    read_records,
    stats,
    verify_files,
)
from tfrecord_lite.example import ImageFields
from tfrecord_lite.framing import DEFAULT_MAX_RECORD_SIZE, encode_record, iter_records
from tfrecord_lite.proto import example_pb2
from tfrecord_lite.reader import decode_image
from tfrecord_lite.schema import RECORD_FIELDS

from conftest import make_image_bytes

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
_SEED_RECORD = encode_example({"filename": "f.jpg", "id": 7, "class": {"label": 1},
                               "object": {"bbox": {"xmin": [0.1], "label": [2],
                                                   "text": ["x"]}}},
                              ImageFields(b"\xff\xd8\xff" + b"j" * 40, 4, 5))
_SEED_FILE = encode_record(_SEED_RECORD) + encode_record(b"second")


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[:cut] if cut is not None else buf)


_edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400),
                 st.builds(_mutate, st.just(_SEED_FILE), _edits,
                           st.one_of(st.none(), st.integers(0, len(_SEED_FILE))))),
       st.booleans())
def test_reader_raises_only_its_own_errors(data: bytes, verify: bool) -> None:
    try:
        for _ in iter_records(io.BytesIO(data), verify=verify):
            pass
    except TFRecordLiteError:
        pass


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400),
                 st.builds(_mutate, st.just(_SEED_RECORD), _edits,
                           st.one_of(st.none(), st.integers(0, len(_SEED_RECORD))))))
def test_example_decoder_raises_only_its_own_errors(data: bytes) -> None:
    try:
        decode_example(data)
    except TFRecordLiteError:
        pass


@pytest.mark.parametrize("verify", [True, False])
def test_a_huge_claimed_length_is_not_allocated(verify: bool) -> None:
    # A header claiming 2**62 bytes, with a valid CRC: only what is there is read.
    header = struct.pack("<Q", 1 << 62)
    header += struct.pack("<I", masked_crc32c(header))
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecordError, match="over the 268,435,456-byte limit"):
            list(iter_records(io.BytesIO(header + b"x" * 100_000), verify=verify))
        # With the limit lifted, a stream of unknown size is read in bounded pieces.
        with pytest.raises(TruncatedRecordError, match="expected 4611686018427387908 bytes"):
            list(iter_records(io.BytesIO(header + b"x" * 100_000), verify=verify,
                              max_record_size=1 << 63))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


# -- through files: hostile lengths, compressed damage, typed features, .idx files ----------

FILE_EXAMPLES = max(20, EXAMPLES // 5)
_file_settings = settings(max_examples=FILE_EXAMPLES, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _compress(data: bytes, compression: str) -> bytes:
    if compression == "none":
        return data
    wbits = 16 + zlib.MAX_WBITS if compression == "gzip" else zlib.MAX_WBITS
    z = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return z.compress(data) + z.flush()


def _only_library_errors(fn: Any, *allowed: type[BaseException]) -> None:
    try:
        fn()
    except (TFRecordLiteError, *allowed):
        pass


@_file_settings
@given(st.integers(0, (1 << 64) - 1), st.booleans(), st.booleans(),
       st.sampled_from(["none", "gzip", "zlib"]), st.integers(0, 3000),
       st.sampled_from([DEFAULT_MAX_RECORD_SIZE, 1100, 1 << 62]))
def test_hostile_lengths(scratch: Path, length: int, good_crc: bool, verify: bool,
                         compression: str, tail: int, limit: int) -> None:
    head = struct.pack("<Q", length)
    head += struct.pack("<I", masked_crc32c(head) ^ (0 if good_crc else 1))
    path = scratch / f"len.{compression}"
    path.write_bytes(_compress(_SEED_FILE + head + bytes(tail), compression))
    got: list[bytes] = []

    def read() -> None:
        for record in read_records(path, verify=verify, max_record_size=limit):
            got.append(record)

    _only_library_errors(read)
    assert got[:2] == [_SEED_RECORD, b"second"][:len(got[:2])]
    report = verify_files([path], decode_images=False, max_record_size=limit)
    assert report.records >= 1


_SEED_EXAMPLES = [encode_example({"filename": f"{i}.jpg", "id": i, "class": {"label": i},
                                  "object": {"bbox": {"xmin": [0.1], "xmax": [0.5],
                                                      "ymin": [0.2], "ymax": [0.6],
                                                      "label": [i]}}},
                                 ImageFields(b"\xff\xd8\xff" + bytes([i]) * 300, 4, 5))
                  for i in range(40)]
_SEED_PLAIN = b"".join(encode_record(r) for r in _SEED_EXAMPLES)
_SEED_COMPRESSED = {c: _compress(_SEED_PLAIN, c) for c in ("gzip", "zlib")}


@_file_settings
@given(st.sampled_from(["gzip", "zlib"]), _edits,
       st.one_of(st.none(), st.integers(0, 20_000)))
def test_compressed_damage(scratch: Path, compression: str, edits: list[tuple[int, int]],
                           cut: int | None) -> None:
    path = scratch / f"damaged.{compression}"
    path.write_bytes(_mutate(_SEED_COMPRESSED[compression], edits, cut))
    got: list[bytes] = []

    def read() -> None:
        for record in read_records(path, compression=compression):
            got.append(record)

    _only_library_errors(read)
    assert got == _SEED_EXAMPLES[:len(got)]  # damage never passes as a record
    _only_library_errors(lambda: stats([path], compression=compression))
    verify_files([path], decode_images=False, compression=compression)


_KEYS = sorted(RECORD_FIELDS) + ["image/object", "image/class", "image/object/bbox",
                                 "image/class/label/x", "image/key", "image/width/x"]
_VALUES = {
    "bytes_list": st.lists(st.binary(max_size=20), max_size=3),
    "float_list": st.lists(st.floats(width=32), max_size=3),
    "int64_list": st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=3),
}


@st.composite
def _confused_example(draw: Any) -> bytes:
    ex = example_pb2.Example()
    for key in draw(st.lists(st.sampled_from(_KEYS), max_size=8, unique=True)):
        kind = draw(st.sampled_from(sorted(_VALUES)))
        getattr(ex.features.feature[key], kind).value.extend(draw(_VALUES[kind]))
    return ex.SerializeToString()


@_file_settings
@given(st.lists(_confused_example(), min_size=1, max_size=3))
def test_typed_feature_confusion(scratch: Path, records: list[bytes]) -> None:
    path = scratch / "typed.tfrecord"
    path.write_bytes(b"".join(encode_record(r) for r in records))
    _only_library_errors(lambda: stats([path]))
    _only_library_errors(lambda: list(iterate(path, decode_images=True)))
    verify_files([path], decode_images=True)


_IMAGES = [make_image_bytes(kind) for kind in ("jpeg-rgb", "png-rgb", "gif", "bmp", "webp")]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_IMAGES), _edits, st.one_of(st.none(), st.integers(0, 3000)))
def test_image_decoding_raises_only_image_error(image: bytes, edits: list[tuple[int, int]],
                                                cut: int | None) -> None:
    try:
        decode_image(_mutate(image, edits, cut), "fuzz")
    except ImageError:
        pass


_IDX_LINE = st.one_of(
    st.tuples(st.integers(-(1 << 70), 1 << 70), st.integers(-(1 << 70), 1 << 70)).map(
        lambda t: f"{t[0]} {t[1]}"),
    st.tuples(st.integers(-20, 200), st.integers(-20, 200)).map(lambda t: f"{t[0]} {t[1]}"),
    st.text(max_size=12),
)


@_file_settings
@given(st.lists(_IDX_LINE, max_size=5), st.integers(-6, 6))
def test_hostile_index_files(scratch: Path, lines: list[str], i: int) -> None:
    path = scratch / "indexed.tfrecord"
    path.write_bytes(_SEED_FILE)
    Path(f"{path}.idx").write_text("\n".join(lines) + "\n", encoding="utf-8",
                                   errors="surrogatepass")
    _only_library_errors(lambda: read_record_at(path, i), IndexError)
