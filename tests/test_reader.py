from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import TFRecordWriter, TruncatedRecordError, write_dataset
from tfrecord_lite.errors import CorruptRecordError
from tfrecord_lite.framing import encode_record
from tfrecord_lite.reader import (
    index_entries,
    iterate,
    read_index,
    read_record_at,
    write_index,
)
from tfrecord_lite.sharding import shard_name

from conftest import detection_item


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
    assert idx == str(path) + ".idx"
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
