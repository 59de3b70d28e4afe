"""TensorFlow reads what from-yolo and from-csv write (run by `make test-tf`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_odcsv import make_csv
from test_yolo import make_pose, make_ultralytics

from tfrecord_lite.cli import main
from tfrecord_lite.converters.odcsv import OdCsvConverter
from tfrecord_lite.converters.yolo import YoloConverter

pytestmark = pytest.mark.tensorflow

tf = pytest.importorskip("tensorflow")

SPEC = {
    "image/id": tf.io.FixedLenFeature([], tf.string),
    "image/filename": tf.io.FixedLenFeature([], tf.string),
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/object/count": tf.io.FixedLenFeature([], tf.int64),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/label": tf.io.VarLenFeature(tf.int64),
    "image/object/bbox/text": tf.io.VarLenFeature(tf.string),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/parts/x": tf.io.VarLenFeature(tf.float32),
    "image/object/parts/y": tf.io.VarLenFeature(tf.float32),
    "image/object/parts/v": tf.io.VarLenFeature(tf.int64),
}


def _dense(parsed: dict[str, Any], key: str) -> list[Any]:
    values = tf.sparse.to_dense(parsed[key]).numpy().tolist()
    return [v.decode() if isinstance(v, bytes) else v for v in values]


def _check(out: Path, prefix: str, shards: int, items: list[dict[str, Any]]) -> None:
    """Every record parses in TensorFlow, its image decodes to its size, and its boxes,
    labels, names and keypoints are the converter's."""
    files = sorted(str(p) for p in out.glob(f"{prefix}-*-of-{shards:05d}"))
    assert len(files) == shards
    by_id = {i["id"]: i for i in items}
    seen = set()
    for raw in tf.data.TFRecordDataset(files):
        parsed = tf.io.parse_single_example(raw, SPEC)
        item_id = parsed["image/id"].numpy().decode()
        item, obj = by_id[item_id], by_id[item_id]["object"]
        seen.add(item_id)
        image = tf.io.decode_image(parsed["image/encoded"])
        assert image.shape[:2] == (parsed["image/height"], parsed["image/width"])
        assert parsed["image/filename"].numpy().decode() == item["filename"]
        assert parsed["image/object/count"].numpy() == obj["count"]
        for side in ("xmin", "ymin", "xmax", "ymax"):
            assert _dense(parsed, f"image/object/bbox/{side}") == pytest.approx(
                obj["bbox"][side], abs=1e-6)
        assert _dense(parsed, "image/object/bbox/label") == obj["bbox"]["label"]
        assert _dense(parsed, "image/object/class/label") == obj["bbox"]["label"]
        assert _dense(parsed, "image/object/bbox/text") == obj["bbox"]["text"]
        parts = obj.get("parts", {"x": [], "y": [], "v": []})
        assert _dense(parsed, "image/object/parts/x") == pytest.approx(parts["x"], abs=1e-6)
        assert _dense(parsed, "image/object/parts/v") == parts["v"]
    assert seen == set(by_id)


def test_tensorflow_reads_from_yolo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_ultralytics(tmp_path / "pets")
    make_pose(tmp_path / "pose", (3, 3))
    monkeypatch.chdir(tmp_path)
    assert main(["from-yolo", "pets", "--prefix", "train", "--output_dir", "out",
                 "--shards", "2", "--label-offset", "1", "-q"]) == 1  # three bad lines
    _check(Path("out"), "train", 2, list(YoloConverter(str(tmp_path / "pets"), label_offset=1)))
    # Another dataset (other classes): a folder of its own, with its own label map. One
    # line has too few keypoints: lenient keeps its image without it, as read here.
    assert main(["from-yolo", "pose", "--prefix", "pose", "--output_dir", "out-pose",
                 "--label-offset", "1", "-q", "--validation", "lenient"]) == 1
    converter = YoloConverter(str(tmp_path / "pose"), label_offset=1)
    converter.keep_rejected = True
    items = list(converter)
    assert items[0]["object"]["parts"]["v"] == [2, 1, 0, 2, 2, 2]
    _check(Path("out-pose"), "pose", 1, items)


def test_tensorflow_reads_from_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_csv(tmp_path / "pets")
    monkeypatch.chdir(tmp_path)
    assert main(["from-csv", "pets/train_labels.csv", "--images", "pets/images",
                 "--prefix", "train", "--output_dir", "out", "--shards", "2",
                 "--label-offset", "1", "-q"]) == 1
    # The command resolves its paths (the records hold absolute filenames).
    _check(Path("out"), "train", 2, list(OdCsvConverter(str(tmp_path / "pets/train_labels.csv"),
                                                        str(tmp_path / "pets/images"),
                                                        label_offset=1)))
