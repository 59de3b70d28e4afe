"""An annotation that cannot be converted never turns its image into a background
image: strict validation leaves the image out (named: image, annotation, reason);
--validation lenient keeps it without the annotation, counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_converters import make_coco, make_voc
from test_yolo import make_ultralytics

from tfrecord_lite import read_examples
from tfrecord_lite.cli import main


def _ids(out: Path, prefix: str = "t") -> list[str]:
    return sorted(r["id"] for p in sorted(out.glob(f"{prefix}-*")) for r in read_examples(p))


def test_coco_image_whose_only_annotation_has_an_unknown_category_is_not_background(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    instances, _ = make_coco(Path("."))
    data = json.loads(instances.read_text())
    data["annotations"].append({"id": 14, "image_id": 3, "category_id": 42,
                                "bbox": [1, 1, 5, 5]})
    instances.write_text(json.dumps(data))
    args = ["from-coco", instances.name, "--images", "val2017", "--prefix", "t",
            "--output_dir", "out"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert ("image id 3, annotation 14 (annotations[4]): unknown category_id 42: the image "
            "is left out") in err
    assert "images left out (rejected annotations)" in err
    assert "--validation lenient" in err
    assert _ids(Path("out")) == ["1", "2"]  # 3 is not written as an image without boxes
    assert main(args + ["--validation", "lenient"]) == 1
    err = capsys.readouterr().err
    assert _ids(Path("out")) == ["1", "2", "3"]
    # images 3 and 4 (whose file is missing: it fails as an item)
    assert "2 images whose every annotation was dropped (kept)" in err
    assert "2 annotations dropped (--validation lenient)" in err


def test_yolo_image_with_only_bad_lines_is_left_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    root = make_ultralytics(Path("pets"))
    (root / "labels/train/rocket.txt").write_text("9 0.5 0.5 0.1 0.1\n")  # id out of range
    assert main(["from-yolo", "pets", "--prefix", "t", "--output_dir", "out", "-q"]) == 1
    err = capsys.readouterr().err
    assert "pets/labels/train/rocket.txt:1: class id 9 is not in names (ids 0 to 2): the " \
           "image is left out" in err
    assert _ids(Path("out")) == ["images/train/camera.png"]  # a real background image


def test_voc_class_left_out_by_the_label_map_is_counted_not_background(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_voc(Path("VOC"))
    Path("labels.json").write_text(json.dumps(["horse"]))
    main(["from-voc", "VOC", "--prefix", "t", "--output_dir", "out", "--label-map",
          "labels.json"])
    err = capsys.readouterr().err
    assert "annotations left out (class not in the label map)" in err
    assert "images whose every annotation was dropped (kept)" in err
    assert "images without" not in err


def test_quiet_converter_prints_its_problems_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_voc(Path("VOC"))
    assert main(["from-voc", "VOC", "--prefix", "t", "--output_dir", "out", "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["from-voc", "VOC", "--to-json", "items.json", "-q"]) == 0
    assert capsys.readouterr().err == ""
