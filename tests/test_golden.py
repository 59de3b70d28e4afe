"""Files written by real TensorFlow (see tests/data/golden/make_golden.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfrecord_lite import TFRecordWriter, decode_example, read_records
from tfrecord_lite.compression import detect

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
RECORDS = [b"foo", b"", (bytes(range(256)) * 4)[:1000]]


@pytest.mark.parametrize("name, compression", [("golden.tfrecord", "none"),
                                               ("golden.tfrecord.gz", "gzip"),
                                               ("golden.tfrecord.zz", "zlib")])
def test_reads_tensorflow_files(name: str, compression: str) -> None:
    path = GOLDEN / name
    assert detect(path) == compression
    records = list(read_records(path))
    assert records[:3] == RECORDS
    example = decode_example(records[3])
    assert example["id"] == "7" and example["height"] == 48
    assert example["object"]["bbox"]["xmin"] == pytest.approx([0.1, 0.5])


def test_writes_the_same_bytes_as_tensorflow(tmp_path: Path) -> None:
    golden = GOLDEN / "golden.tfrecord"
    records = list(read_records(golden))
    out = tmp_path / "ours.tfrecord"
    with TFRecordWriter(out) as w:
        for r in records:
            w.write(r)
    assert out.read_bytes() == golden.read_bytes()
