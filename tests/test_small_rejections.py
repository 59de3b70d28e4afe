"""Annotations that were silently misread are rejected, named: a COCO iscrowd that is not
0 or 1, a COCO keypoints list that is not triplets, a VOC object without a class name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_converters import make_coco, make_voc

from tfrecord_lite import read_examples
from tfrecord_lite.cli import main


def _ids(out: Path) -> list[str]:
    return sorted(r["id"] for p in sorted(out.glob("t-*")) for r in read_examples(p))


@pytest.mark.parametrize(("change", "message"), [
    ({"iscrowd": "yes"}, "iscrowd must be 0 or 1, not 'yes'"),
    ({"iscrowd": 2}, "iscrowd must be 0 or 1, not 2"),
    ({"keypoints": [50, 20, 2, 60, 30, 1, 70]},
     "keypoints must be x, y, v triplets: 7 numbers is not a multiple of 3"),
    ({"bbox": [1, 1, -5, 10]},
     "bbox width and height must be >= 0 (COCO's [x, y, width, height]), not [1, 1, -5, 10]"),
])
def test_coco_annotation_misread_before_is_rejected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], change: dict[str, Any], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    instances, _ = make_coco(Path("."))
    data = json.loads(instances.read_text())
    data["annotations"].append({"id": 20, "image_id": 2, "category_id": 1,
                                "bbox": [10, 10, 50, 50], **change})
    instances.write_text(json.dumps(data))
    assert main(["from-coco", instances.name, "--images", "val2017", "--prefix", "t",
                 "--output_dir", "out"]) == 1
    err = capsys.readouterr().err
    assert f"image id 2, annotation 20 (annotations[4]): {message}: the image is left out" \
        in err
    assert "2" not in _ids(Path("out"))


@pytest.mark.parametrize("name", ["<name></name>", "<name>  </name>", ""])
def test_voc_object_without_a_name_is_rejected_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], name: str) -> None:
    monkeypatch.chdir(tmp_path)
    make_voc(Path("VOC"))
    xml = Path("VOC/Annotations/2007_000002.xml")
    xml.write_text(xml.read_text().replace("<name>cat</name>", name))
    assert main(["from-voc", "VOC", "--prefix", "t", "--output_dir", "out"]) == 1
    err = capsys.readouterr().err
    assert ("image '2007_000002': object 0: no class name (its <name> is empty or missing): "
            "the image is left out") in err
    assert "class None" not in err
    assert "1 image left out (rejected annotations)" in err
    assert "skipped" not in err  # the image left out is counted once
    assert _ids(Path("out")) == ["2007_000001"]
