from __future__ import annotations

import glob
import os
import random
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import (
    ExampleDecodeError,
    ImageError,
    IndexFileError,
    RecordDecodeError,
    RecordError,
    TFRecordWriter,
    TruncatedRecordError,
    compression,
    encode_example,
    masked_crc32c,
    write_dataset,
)
from tfrecord_lite.cli import main
from tfrecord_lite.errors import CorruptRecordError
from tfrecord_lite.example import ImageFields
from tfrecord_lite.framing import DEFAULT_MAX_RECORD_SIZE, encode_record
from tfrecord_lite.proto import example_pb2
from tfrecord_lite.reader import (
    index_entries,
    iterate,
    read_examples,
    read_index,
    read_record_at,
    read_records,
    write_index,
)
from tfrecord_lite.sharding import shard_name
from tfrecord_lite.stats import stats
from tfrecord_lite.verify import verify_files

from conftest import detection_item, make_image_bytes


@pytest.fixture
def shards(tmp_path: Path, image_file: Any) -> list[Path]:
    items = [detection_item(image_file("png-rgb"), f"i{i}") for i in range(5)]
    write_dataset(items, "d", tmp_path, 2, 2, shuffle=False, progress=False)
    return [tmp_path / shard_name("d", i, 2) for i in range(2)]


def test_iterate_many_shards_gives_create_items(shards: list[Path]) -> None:
    items = list(iterate(shards))
    assert [i["id"] for i in items] == [f"i{n}" for n in range(5)]
    assert items[0]["object"]["bbox"]["text"] == ["bird", "cat"]
    assert "image" not in items[0]


def test_iterate_decodes_images(shards: list[Path]) -> None:
    item = next(iterate(shards[0], decode_images=True))
    assert item["image"].shape == (48, 64, 3) and item["image"].dtype.name == "uint8"


@pytest.mark.parametrize("compression", ["gzip", "zlib"])
def test_iterate_compressed_detected(tmp_path: Path, image_file: Any, compression: str) -> None:
    items = [detection_item(image_file("jpeg-rgb"), i) for i in range(3)]
    write_dataset(items, "c", tmp_path, 1, 1, shuffle=False, compression=compression,
                  progress=False)
    assert [i["id"] for i in iterate(tmp_path / "c-00000-of-00001")] == ["0", "1", "2"]


def test_index_format_and_random_access(tmp_path: Path) -> None:
    records = [b"a" * 10, b"", b"b" * 1000, b"c"]
    path = tmp_path / "r.tfrecord"
    with TFRecordWriter(path) as w:
        for r in records:
            w.write(r)
    idx = write_index(path)
    assert idx == str(tmp_path / ".r.tfrecord.idx")  # hidden: the shard glob never matches it
    # The tfrecord package / DALI format: "offset length" per line, length = framed size.
    lines = Path(idx).read_text().splitlines()
    offsets = [0]
    for r in records[:-1]:
        offsets.append(offsets[-1] + len(encode_record(r)))
    assert lines == [f"{o} {len(r) + 16}" for o, r in zip(offsets, records)]
    assert read_index(idx) == index_entries(path)
    for i, r in enumerate(records):
        assert read_record_at(path, i) == r
    assert read_record_at(path, -1) == b"c"
    with pytest.raises(IndexError, match="no record 9"):
        read_record_at(path, 9)


def test_stale_index_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "r.tfrecord"
    with TFRecordWriter(path) as w:
        w.write(b"x" * 100)
        w.write(b"y" * 100)
    write_index(path)
    with TFRecordWriter(path) as w:  # rewritten with other sizes
        w.write(b"x" * 10)
        w.write(b"y" * 300)
    with pytest.raises((CorruptRecordError, TruncatedRecordError), match="stale"):
        read_record_at(path, 1)


def test_index_refuses_compressed(tmp_path: Path) -> None:
    path = tmp_path / "g"
    with TFRecordWriter(path, compression="gzip") as w:
        w.write(b"x")
    with pytest.raises(ValueError, match="gzip-compressed"):
        write_index(path)


def test_bad_index_line(tmp_path: Path) -> None:
    idx = tmp_path / "x.idx"
    idx.write_text("0 16\nnonsense\n")
    with pytest.raises(ValueError, match="line 2"):
        read_index(idx)


# -- a hostile length field costs no memory (max_record_size) ------------------------------

def _header(length: int, good: bool = True) -> bytes:
    head = struct.pack("<Q", length)
    return head + struct.pack("<I", masked_crc32c(head) ^ (0 if good else 1))


def _peak_bytes(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("verify", [True, False])
def test_a_length_over_the_limit_fails_at_once(tmp_path: Path, verify: bool) -> None:
    path = tmp_path / "big.tfrecord"
    path.write_bytes(encode_record(b"ok") + _header(1 << 40, good=verify) + bytes(100_000))

    def read() -> None:
        with pytest.raises(CorruptRecordError) as info:
            list(read_records(path, verify=verify))
        assert (info.value.path, info.value.index, info.value.offset) == (str(path), 1, 18)
        assert "1,099,511,627,776 bytes, over the 268,435,456-byte limit" in str(info.value)

    assert _peak_bytes(read) < 4_000_000  # the read buffer is 1 MiB
    assert DEFAULT_MAX_RECORD_SIZE == 256 << 20


def test_the_limit_is_configurable_on_every_reader(tmp_path: Path) -> None:
    path = tmp_path / "r.tfrecord"
    item = {"filename": "f", "id": "a", "height": 1, "width": 1}
    path.write_bytes(encode_record(encode_example(item)) + encode_record(b"x" * 5000))
    for read in (lambda m: list(read_records(path, max_record_size=m)),
                 lambda m: list(iterate([path], max_record_size=m)),
                 lambda m: stats([path], max_record_size=m),
                 lambda m: index_entries(path, max_record_size=m)):
        with pytest.raises(CorruptRecordError, match="5,000 bytes, over the 4,999-byte"):
            read(4999)
    assert len(read_records_list(path, 5000)) == 2
    problems = verify_files([path], max_record_size=4999).problems
    assert [(p.index, p.offset) for p in problems] == [(1, len(encode_record(
        encode_example(item))))]
    assert "over the 4,999-byte limit" in problems[0].message


def read_records_list(path: Path, limit: int) -> list[bytes]:
    return list(read_records(path, max_record_size=limit))


def test_a_length_past_the_end_of_a_plain_file_is_not_read(tmp_path: Path) -> None:
    # 200 MB claimed (under the limit, valid CRC) in a file of 100 kB: refused unread.
    path = tmp_path / "cut.tfrecord"
    path.write_bytes(_header(200_000_000) + bytes(100_000))
    for verify in (True, False):
        def read(verify: bool = verify) -> None:
            with pytest.raises(TruncatedRecordError, match="the file holds 100000") as info:
                list(read_records(path, verify=verify))
            assert info.value.index == 0 and info.value.offset == 0

        assert _peak_bytes(read) < 4_000_000  # the read buffer is 1 MiB


def test_a_hostile_gzip_length_is_refused_before_inflating(tmp_path: Path) -> None:
    # The case, scaled down: a header claiming 2**40 bytes, then zeros.
    path = tmp_path / "bomb.gz"
    z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    path.write_bytes(z.compress(_header(1 << 40)) + z.compress(bytes(50 << 20)) + z.flush())
    inflated = [0]
    readinto = compression._InflateReader.readinto

    def counting(self: Any, buffer: Any) -> int:
        n: int = readinto(self, buffer)
        inflated[0] += n
        return n

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compression._InflateReader, "readinto", counting)
        with pytest.raises(CorruptRecordError, match="over the 268,435,456-byte limit"):
            list(read_records(path))
    assert 0 < inflated[0] < 4 << 20  # the header's buffer, not 50 MB
    problems = verify_files([path], decode_images=False).problems
    assert len(problems) == 1 and problems[0].index == 0 and "over the" in problems[0].message


def test_cli_max_record_size(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.tfrecord").write_bytes(encode_record(encode_example(
        {"filename": "f", "id": "a", "height": 1, "width": 1, "extra": "x" * 3000})))
    for command in (["verify"], ["inspect"], ["stats"], ["show", "-o", "o.png"], ["index"]):
        assert main([*command, "r.tfrecord", "--max-record-size", "1K"]) == 1, command
        out = capsys.readouterr()
        assert "over the 1,024-byte limit" in out.out + out.err
        assert "Traceback" not in out.err
    assert main(["stats", "r.tfrecord", "--max-record-size", "4k"]) == 0
    assert main(["inspect", "r.tfrecord", "--max-record-size", "2MiB"]) == 0
    capsys.readouterr()
    assert main(["stats", "r.tfrecord", "--max-record-size", "lots"]) == 2
    assert "expected a size in bytes such as 512M" in capsys.readouterr().err


# -- readers raise only the library's errors ------------------------------------------------

def _example(features: dict[str, tuple[str, list[Any]]]) -> bytes:
    ex = example_pb2.Example()
    for key, (kind, values) in features.items():
        getattr(ex.features.feature[key], kind).value.extend(values)
    return ex.SerializeToString()


_BASE = {"image/id": ("bytes_list", [b"r0"]), "image/filename": ("bytes_list", [b"f"]),
         "image/height": ("int64_list", [48]), "image/width": ("int64_list", [64])}
CONFUSED = {
    "width as bytes": ({"image/width": ("bytes_list", [b"64"])}, "image/width holds bytes"),
    "encoded as int64": ({"image/encoded": ("int64_list", [7])},
                         "image/encoded holds int64 values, expected bytes"),
    "object and its bbox": ({"image/object": ("int64_list", [1]),
                             "image/object/bbox/xmin": ("float_list", [0.1])},
                            "image/object holds values, where image/object/... keys are"),
    "xmin as bytes": ({"image/object/bbox/xmin": ("bytes_list", [b"a"]),
                       "image/object/bbox/xmax": ("float_list", [0.5])},
                      "image/object/bbox/xmin holds bytes values, expected float"),
    "class as a value": ({"image/class": ("float_list", [1.0])},
                         "image/class holds values"),
    "label as a group": ({"image/class/label/x": ("int64_list", [1])},
                         "image/class/label is a group of keys"),
}


@pytest.mark.parametrize("case", sorted(CONFUSED))
def test_wrong_feature_types_are_named_not_crashes(tmp_path: Path, case: str,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    features, message = CONFUSED[case]
    good = encode_example({"filename": "g", "id": "g", "height": 1, "width": 1})
    Path("t.tfrecord").write_bytes(encode_record(good)
                                   + encode_record(_example({**_BASE, **features})))
    offset = len(encode_record(good))
    for read in (lambda: stats(["t.tfrecord"]), lambda: list(iterate("t.tfrecord")),
                 lambda: list(read_examples("t.tfrecord"))):
        with pytest.raises(RecordDecodeError, match=message) as info:
            read()
        assert (info.value.path, info.value.index, info.value.offset) == (
            "t.tfrecord", 1, offset)
        assert isinstance(info.value, ExampleDecodeError)
    problems = verify_files(["t.tfrecord"], decode_images=False).problems
    assert problems and all(p.index == 1 for p in problems), problems
    for command in (["stats", "t.tfrecord"], ["show", "t.tfrecord", "--index", "1",
                                                "-o", "o.png"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "t.tfrecord, record 1" in err and message in err
    assert main(["inspect", "t.tfrecord", "-n", "2"]) == 0  # shows what is there
    assert "image/" in capsys.readouterr().out


def test_a_record_that_is_not_an_example_is_named(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "n.tfrecord"
    item = {"filename": "f", "id": 1, "height": 1, "width": 1}
    path.write_bytes(encode_record(encode_example(item))
                     + encode_record(b"\xff\xff\xff garbage"))
    with pytest.raises(RecordDecodeError, match=r"record 1, byte offset \d+: not a tf.train"):
        list(iterate(path))
    assert main(["inspect", str(path), "-n", "2"]) == 1
    assert "record 1" in capsys.readouterr().err


def _image_record(data: bytes) -> bytes:
    return encode_record(encode_example({"filename": "f", "id": "bad"},
                                        ImageFields(data, 48, 64)))


@pytest.mark.parametrize("damage", ["cut png", "cut jpeg", "not an image", "bomb"])
def test_images_that_do_not_decode_raise_image_error(tmp_path: Path, damage: str,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    data = {"cut png": make_image_bytes("png-rgb")[:300],
            "cut jpeg": make_image_bytes("jpeg-rgb")[:400],
            "not an image": b"GIF89a" + b"\x00" * 30,
            "bomb": make_image_bytes("png-rgb")}[damage]
    path = tmp_path / "i.tfrecord"
    path.write_bytes(_image_record(make_image_bytes("png-rgb")) + _image_record(data))
    items = iterate(path, decode_images=True)
    assert next(items)["image"].shape == (48, 64, 3)
    if damage == "bomb":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match=rf"{path}, record 1, byte offset \d+: image/encoded "
                                         "does not decode") as info:
        next(items)
    assert info.value.reason == ("too large" if damage == "bomb" else "corrupt")
    assert main(["show", str(path), "--index", "1", "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'bad': image/encoded does not decode" in err


# -- compressed streams report where --------------------------------------------------------

def _compressed(tmp_path: Path, compression: str, n: int = 300) -> tuple[Path, list[bytes]]:
    rng = random.Random(5)
    records = [bytes([i % 256]) * 200 + rng.randbytes(100) for i in range(n)]
    path = tmp_path / f"c.{compression}"
    with TFRecordWriter(path, compression) as w:
        for r in records:
            w.write(r)
    return path, records


@pytest.mark.parametrize("compression", ["gzip", "zlib"])
def test_a_flipped_bit_in_a_compressed_shard_is_corrupt_and_placed(
        tmp_path: Path, compression: str) -> None:
    path, records = _compressed(tmp_path, compression)
    data = path.read_bytes()
    for position in range(20, len(data), 331):
        damaged = bytearray(data)
        damaged[position] ^= 1 << (position % 8)
        path.write_bytes(bytes(damaged))
        got: list[bytes] = []
        with pytest.raises(CorruptRecordError) as info:
            for record in read_records(path):
                got.append(record)
        # Every record before the damage comes through, then the damage is placed.
        assert got == records[:len(got)]
        assert info.value.index == len(got)
        assert info.value.offset == sum(len(r) + 16 for r in got)


@pytest.mark.parametrize(("compression", "back"), [("gzip", 8), ("gzip", 3), ("zlib", 2)])
def test_a_damaged_trailer_comes_after_every_record(tmp_path: Path, compression: str,
                                                    back: int) -> None:
    path, records = _compressed(tmp_path, compression, 40)
    data = bytearray(path.read_bytes())
    data[-back] ^= 0x10  # gzip: CRC-32 (8 back) or length (3 back); zlib: Adler-32
    path.write_bytes(bytes(data))
    got: list[bytes] = []
    with pytest.raises(CorruptRecordError, match=f"the {compression} stream is damaged") as info:
        for record in read_records(path):
            got.append(record)
    assert got == records
    assert (info.value.index, info.value.offset) == (40, sum(len(r) + 16 for r in records))
    report = verify_files([path], decode_images=False)
    assert report.records == 40
    assert [(p.index, p.offset) for p in report.problems
            if "tf.train.Example" not in p.message] == [(40, info.value.offset)]


def test_verify_and_the_reader_report_damage_alike(tmp_path: Path) -> None:
    # One reading path: verify reports what the reader raises, with the same place.
    path, records = _compressed(tmp_path, "gzip", 50)
    data = path.read_bytes()
    plain = tmp_path / "p.tfrecord"
    plain.write_bytes(b"".join(encode_record(r) for r in records))
    cases = [(path, data[: len(data) // 2]), (path, data[:-5] + b"\x00" * 5),
             (plain, plain.read_bytes()[:-7])]
    for target, content in cases:
        target.write_bytes(content)
        with pytest.raises(RecordError) as info:
            list(read_records(target))
        (problem,) = [p for p in verify_files([target], decode_images=False).problems
                      if "tf.train.Example" not in p.message]
        assert (problem.index, problem.offset, problem.message) == (
            info.value.index, info.value.offset, info.value.reason)


def test_index_default_name_older_name_and_explicit_path(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with TFRecordWriter("t-00000-of-00001") as w:
        w.write(b"a" * 10)
        w.write(b"b" * 5)
    assert write_index("t-00000-of-00001") == ".t-00000-of-00001.idx"
    assert glob.glob("t-*") == ["t-00000-of-00001"]
    assert read_record_at("t-00000-of-00001", 1) == b"b" * 5
    # An earlier version's FILE.idx is read when it is the only one.
    os.rename(".t-00000-of-00001.idx", "t-00000-of-00001.idx")
    assert read_record_at("t-00000-of-00001", 0) == b"a" * 10
    os.rename("t-00000-of-00001.idx", "elsewhere.idx")
    with pytest.raises(FileNotFoundError, match=".t-00000-of-00001.idx"):
        read_record_at("t-00000-of-00001", 0)
    assert read_record_at("t-00000-of-00001", 1, index_path="elsewhere.idx") == b"b" * 5
    assert write_index("t-00000-of-00001", "mine.idx") == "mine.idx"
    assert read_index("mine.idx") == [(0, 26), (26, 21)]


# -- hostile .idx files ----------------------------------------------------------------------

@pytest.mark.parametrize(("line", "message"), [
    ("0 99999999999999999", "length 99,999,999,999,999,999 is over the 268,435,456-byte"),
    ("26 1000", r"offset 26 \+ length 1000 is past the end of the file \(52 bytes\)"),
    ("-5 100", "offset -5 is negative"),
    ("0 -1", "length -1 is less than a record's 16-byte frame"),
    ("0 15", "length 15 is less than a record's 16-byte frame"),
    ("10 1099511627776", "length 1,099,511,627,776 is over the 268,435,456-byte record limit"),
    ("0", "expected 'offset length'"),
])
def test_hostile_index_entries_are_refused(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "r.tfrecord"
    with TFRecordWriter(path) as w:
        w.write(b"a" * 10)
        w.write(b"b" * 10)
    Path(str(path) + ".idx").write_text(f"0 26\n\n{line}\n")
    with pytest.raises(IndexFileError, match=f"r.tfrecord.idx, line 3: {message}"):
        read_record_at(path, 1)
    offset, length = (int(v) for v in (line.split() + ["0"])[:2])
    if "expected" not in message:
        with pytest.raises(IndexFileError, match=f"index entry 1: {message}"):
            read_record_at(path, 1, index=[(0, 26), (offset, length)])
    assert read_record_at(path, 0, index=[(0, 26)]) == b"a" * 10


def test_read_index_checks_against_a_size(tmp_path: Path) -> None:
    idx = tmp_path / "x.idx"
    idx.write_text("0 26\n26 26\n")
    assert read_index(idx) == [(0, 26), (26, 26)]
    assert read_index(idx, size=52) == [(0, 26), (26, 26)]
    with pytest.raises(IndexFileError, match="line 2: offset 26 \\+ length 26 is past the end"):
        read_index(idx, size=51)
