"""Random and mutated bytes into the record reader and the Example decoder.

Only the library's own exceptions may come out: no crash, hang or other exception type.
A short run in the test suite; `make fuzz` runs 100,000 cases of each (FUZZ_EXAMPLES).
"""

from __future__ import annotations

import io
import os
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfrecord_lite import (
    CorruptRecordError,
    TFRecordLiteError,
    TruncatedRecordError,
    decode_example,
    encode_example,
    masked_crc32c,
)
from tfrecord_lite.example import ImageFields
from tfrecord_lite.framing import encode_record, iter_records

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
