"""Shards from other tools that store NaN or infinite coordinates (``create`` refuses
them): verify reports them, stats counts them, the torch samples refuse them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tfrecord_lite import TFRecordWriter, encode_example, iterate
from tfrecord_lite.cli import main
from tfrecord_lite.errors import RecordDecodeError
from tfrecord_lite.example import ImageFields
from tfrecord_lite.proto import example_pb2
from tfrecord_lite.torch.samples import training_sample

from conftest import detection_item, make_image_bytes


@pytest.fixture
def shard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """out/other-00000-of-00001: record 0 fine, record 1 with a NaN box edge and an
    infinite keypoint, record 2 with an infinite box edge only."""
    monkeypatch.chdir(tmp_path)
    image = ImageFields(make_image_bytes("jpeg-rgb", 64, 48), 48, 64)
    records = []
    for i, changes in enumerate([{}, {"bbox/xmin": math.nan, "parts/y": math.inf},
                                 {"bbox/ymax": -math.inf}]):
        ex = example_pb2.Example.FromString(encode_example(detection_item("a.jpg", i), image))
        for key, value in changes.items():
            ex.features.feature["image/object/" + key].float_list.value[1] = value
        records.append(ex.SerializeToString(deterministic=True))
    Path("out").mkdir()
    with TFRecordWriter("out/other-00000-of-00001") as writer:
        for record in records:
            writer.write(record)
    return "out/other-00000-of-00001"


def test_verify_reports_nan_and_infinite_coordinates_naming_file_record_and_key(
        shard: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "out/other-*"]) == 1
    out = capsys.readouterr().out
    assert (f"PROBLEM {shard}, record 1, byte offset " in out
            and "image/object/bbox/xmin: 1 value is not finite (NaN or infinite)" in out)
    assert "record 1" in out and "image/object/parts/y: 1 value is not finite" in out
    assert "record 2" in out and "image/object/bbox/ymax: 1 value is not finite" in out
    assert "record 0" not in out
    assert "FAILED: 1 file, 3 records, 3 images decoded, 3 problems" in out


def test_stats_counts_images_with_coordinates_that_are_not_finite(
        shard: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "out/other-*"]) == 0
    assert "images with coordinates that are NaN or infinite: 2 (e.g. ids 1, 2)" in \
        capsys.readouterr().out


def test_torch_samples_refuse_coordinates_that_are_not_finite(shard: str) -> None:
    records = list(iterate([shard]))
    training_sample(records[0], shard, 0, 0)
    with pytest.raises(RecordDecodeError, match=r"record 1.*image/object/bbox/xmin holds a "
                                                r"value that is not a finite number"):
        training_sample(records[1], shard, 1, 100)
    with pytest.raises(RecordDecodeError, match=r"record 2.*image/object/bbox/ymax"):
        training_sample(records[2], shard, 2, 200)
