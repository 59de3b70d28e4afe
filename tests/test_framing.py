from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfrecord_lite import (
    CorruptRecordError,
    RecordError,
    TFRecordWriter,
    TruncatedRecordError,
    read_records,
)
from tfrecord_lite.compression import detect
from tfrecord_lite.framing import RecordFramer, encode_record, iter_records

FOO_RECORD = base64.b64decode("AwAAAAAAAACwmUkOZm9vYYq+/g==")


def test_known_record() -> None:
    assert encode_record(b"foo") == FOO_RECORD


def test_writer_known_bytes(tmp_path: Path) -> None:
    path = tmp_path / "foo.tfrecord"
    with TFRecordWriter(path) as w:
        w.write(b"foo")
    assert path.read_bytes() == FOO_RECORD
    assert list(read_records(path)) == [b"foo"]


def test_framer_caches_headers_correctly() -> None:
    buf = io.BytesIO()
    framer = RecordFramer(buf)
    records = [b"abc", b"xyz", b"", b"q" * 70000, b"abc", b"long" * 20000]
    for r in records:
        framer.write(r)
    framer.flush()
    assert buf.getvalue() == b"".join(encode_record(r) for r in records)
    buf.seek(0)
    assert list(iter_records(buf)) == records


def test_small_records_are_batched_and_masked_together(tmp_path: Path) -> None:
    records = [bytes([i % 256]) * (i % 300) for i in range(5000)]
    buf = io.BytesIO()
    framer = RecordFramer(buf, batch_bytes=10_000)
    for r in records:
        framer.write(r)
    framer.flush()
    assert buf.getvalue() == b"".join(encode_record(r) for r in records)


def test_partial_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    real_writev, real_write = os.writev, os.write
    monkeypatch.setattr(os, "writev", lambda fd, bufs: real_writev(fd, [bufs[0][:5]]))
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    path = tmp_path / "p.tfrecord"
    records = [b"a" * 20000, b"small", b"b" * 30000]
    with TFRecordWriter(path) as w:
        for r in records:
            w.write(r)
    monkeypatch.undo()
    assert list(read_records(path)) == records


@pytest.mark.parametrize("compression", [None, "gzip", "zlib", "GZIP", "ZLIB", ""])
def test_round_trip_compressions(tmp_path: Path, compression: str | None) -> None:
    path = tmp_path / "r.tfrecord"
    records = [b"", b"a", bytes(range(256)) * 50, b"z" * 3_000_000]
    with TFRecordWriter(path, compression=compression) as w:
        for r in records:
            w.write(r)
    expected = (compression or "none").lower() or "none"
    assert detect(path) == expected
    assert list(read_records(path)) == records  # detected
    assert list(read_records(path, compression=compression or "none")) == records


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        path = tmp_path / name
        with TFRecordWriter(path, compression="gzip") as w:
            w.write(b"same")
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]


def test_unknown_compression(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown compression"):
        TFRecordWriter(tmp_path / "x", compression="bz2")


def _file(tmp_path: Path, records: list[bytes]) -> Path:
    path = tmp_path / "f.tfrecord"
    path.write_bytes(b"".join(encode_record(r) for r in records))
    return path


def test_every_single_byte_corruption_is_reported(tmp_path: Path) -> None:
    records = [b"first", b"second record", b"3"]
    good = b"".join(encode_record(r) for r in records)
    path = tmp_path / "c.tfrecord"
    for pos in range(len(good)):
        damaged = bytearray(good)
        damaged[pos] ^= 0x41
        path.write_bytes(bytes(damaged))
        with pytest.raises(RecordError) as info:
            list(read_records(path, compression="none"))
        assert str(path) in str(info.value)
        assert "record" in str(info.value) and "byte offset" in str(info.value)


def test_corruption_names_index_and_offset(tmp_path: Path) -> None:
    path = _file(tmp_path, [b"aaaa", b"bbbb", b"cccc"])
    data = bytearray(path.read_bytes())
    second = len(encode_record(b"aaaa"))
    data[second + 12] ^= 1  # first data byte of record 1
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError) as info:
        list(read_records(path))
    assert info.value.index == 1 and info.value.offset == second
    assert "data CRC" in str(info.value)
    assert isinstance(info.value, ValueError)
    # Without verification the damaged bytes come through.
    assert list(read_records(path, verify=False))[1] == b"cbbb"


def test_every_truncation_is_reported(tmp_path: Path) -> None:
    good = b"".join(encode_record(r) for r in [b"first", b"second"])
    boundary = len(encode_record(b"first"))
    path = tmp_path / "t.tfrecord"
    for cut in range(1, len(good)):
        path.write_bytes(good[:cut])
        if cut == boundary:
            assert list(read_records(path, compression="none")) == [b"first"]
            continue
        with pytest.raises(TruncatedRecordError) as info:
            list(read_records(path, compression="none"))
        assert isinstance(info.value, EOFError)
        assert info.value.index == (0 if cut < boundary else 1)


def test_huge_bogus_length_without_verify_does_not_allocate(tmp_path: Path) -> None:
    path = tmp_path / "bogus"
    path.write_bytes(b"\xff" * 8 + b"\x00" * 4 + b"tiny")
    with pytest.raises(CorruptRecordError, match="over the 268,435,456-byte limit"):
        list(read_records(path, compression="none", verify=False))
    with pytest.raises(CorruptRecordError, match="length CRC"):
        list(read_records(path, compression="none"))


@pytest.mark.parametrize("compression", ["gzip", "zlib"])
def test_cut_compressed_file_is_reported(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "c"
    with TFRecordWriter(path, compression=compression) as w:
        for i in range(200):
            w.write(bytes([i]) * 500)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedRecordError):
        list(read_records(path, compression=compression))


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError):
        list(read_records("/nonexistent/file.tfrecord"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=2000), max_size=20),
       st.sampled_from(["none", "gzip", "zlib"]))
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, records: list[bytes],
                             compression: str) -> None:
    path = tmp_path_factory.mktemp("rt") / "p.tfrecord"
    with TFRecordWriter(path, compression=compression) as w:
        for r in records:
            w.write(r)
    assert list(read_records(path, compression=compression)) == records


@pytest.mark.parametrize("batch_bytes", [1, 50_000, 1 << 20, 1 << 30])
def test_mixed_sizes_keep_their_order_in_a_real_file(tmp_path: Path, batch_bytes: int) -> None:
    # Large records are queued without a copy and go out with the small ones in order,
    # whatever the batch size (1 << 30 with 2000 records: limited by the buffer count).
    sizes = [0, 5, 16383, 16384, 70_000, 3, 200_000, 20_000, 1, 16384] * 200
    records = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    path = tmp_path / "m.tfrecord"
    with open(path, "wb", buffering=0) as f:
        framer = RecordFramer(f, batch_bytes=batch_bytes)
        for r in records:
            buffer = bytearray(r)
            framer.write(buffer)  # type: ignore[arg-type]
            buffer[:] = b"x" * len(buffer)  # reused by the caller at once
        framer.flush()
    assert path.read_bytes() == b"".join(encode_record(r) for r in records)


def test_without_os_writev_the_bytes_are_the_same(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows has no os.writev: the framer writes the pieces one after the other.
    import os

    sizes = [0, 5, 16383, 16384, 70_000, 3, 200_000, 20_000, 1] * 150
    records = [bytes([i % 251]) * n for i, n in enumerate(sizes)]

    def write(name: str) -> bytes:
        path = tmp_path / name
        with TFRecordWriter(path) as w:
            for r in records:
                w.write(r)
        return path.read_bytes()

    normal = write("with.tfrecord")
    calls: list[int] = []
    real_write = os.write
    monkeypatch.delattr(os, "writev")
    monkeypatch.setattr(os, "write", lambda fd, data: calls.append(1) or real_write(fd, data))
    assert write("without.tfrecord") == normal == b"".join(encode_record(r) for r in records)
    assert calls  # the fallback did the writing


def test_gzip_headers_members_and_padding_of_other_tools(tmp_path: Path) -> None:
    # The gzip tool stores a file name (and may add comments, an extra field, a header
    # CRC); files may hold several members, and zero padding after the last one.
    import gzip
    import struct
    import zlib

    records = [b"first", b"x" * 70_000, b"", b"last"]
    plain = b"".join(encode_record(r) for r in records)
    deflated = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflated.compress(plain) + deflated.flush()
    extra = b"AB\x02\x00hi"
    header = (b"\x1f\x8b\x08" + bytes([4 | 8 | 16 | 2]) + b"\x00" * 4 + b"\x00\xff"
              + struct.pack("<H", len(extra)) + extra + b"name.tfrecord\x00comment\x00")
    header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    trailer = struct.pack("<II", zlib.crc32(plain), len(plain))
    path = tmp_path / "tool.gz"
    half = len(encode_record(b"first"))
    for data, expected, kind in [
            (header + body + trailer, records, "gzip"),
            (gzip.compress(plain[:half]) + gzip.compress(plain[half:]), records, "gzip"),
            (gzip.compress(plain) + b"\x00" * 100, records, "gzip"),
            (zlib.compress(plain) + zlib.compress(plain), records * 2, "zlib")]:
        path.write_bytes(data)
        assert list(read_records(path, compression=kind)) == expected
        assert list(read_records(path)) == expected
