"""Converters, on small fixtures written in each format's real layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfrecord_lite import read_examples
from tfrecord_lite.cli import main
from tfrecord_lite.converters.caltech import CaltechConverter
from tfrecord_lite.converters.coco import CocoConverter
from tfrecord_lite.converters.folder import FolderConverter
from tfrecord_lite.converters.voc import VocConverter

from conftest import make_image_bytes


def _image(path: Path, kind: str = "jpeg-rgb", width: int = 200, height: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_image_bytes(kind, width=width, height=height))


@pytest.fixture
def coco(tmp_path: Path) -> tuple[Path, Path]:
    return make_coco(tmp_path)


def make_coco(tmp_path: Path) -> tuple[Path, Path]:
    """A COCO instances file with three images and four annotations (two bad), and a
    fourth image (no file) whose one annotation has an unknown category."""
    images = tmp_path / "val2017"
    _image(images / "000001.jpg")
    _image(images / "000002.jpg")
    _image(images / "000003.jpg")
    keypoints = [50, 20, 2, 60, 30, 1] + [0, 0, 0] * 15  # 17 triplets
    data = {
        "images": [{"id": 1, "file_name": "000001.jpg", "width": 200, "height": 100},
                   {"id": 2, "file_name": "000002.jpg", "width": 200, "height": 100},
                   {"id": 3, "file_name": "000003.jpg", "width": 200, "height": 100},
                   {"id": 4, "file_name": "000004.jpg", "width": 200, "height": 100}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"},
                       {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [20, 10, 100, 50],
             "area": 4000, "iscrowd": 0, "keypoints": keypoints, "num_keypoints": 2},
            {"id": 11, "image_id": 1, "category_id": 18, "bbox": [150, 50, 100, 80],
             "area": 2500, "iscrowd": 1},                                   # past the edge
            {"id": 12, "image_id": 1, "category_id": 3, "bbox": [10, 10, 0, 5]},  # w = 0
            {"id": 13, "image_id": 4, "category_id": 99, "bbox": [1, 1, 5, 5]},   # bad id
        ],
    }
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps(data))
    return path, images


def test_coco(coco: tuple[Path, Path]) -> None:
    conv = CocoConverter(str(coco[0]), str(coco[1]))
    items = list(conv)
    assert conv.labels == ["person", "car", "dog"]  # ascending category id
    assert [i["id"] for i in items] == ["1", "2", "3"]  # images without boxes kept
    obj = items[0]["object"]
    assert obj["count"] == 2
    assert obj["bbox"]["label"] == [0, 2] and obj["bbox"]["text"] == ["person", "dog"]
    assert obj["bbox"]["xmin"] == [0.1, 0.75] and obj["bbox"]["xmax"] == [0.6, 1.0]
    assert obj["bbox"]["ymin"] == [0.1, 0.5] and obj["bbox"]["ymax"] == [0.6, 1.0]
    assert obj["is_crowd"] == [0, 1] and obj["id"] == ["10", "11"]
    assert obj["area"] == [0.2, 0.125]
    assert obj["parts"]["x"][:2] == [0.25, 0.3] and obj["parts"]["y"][:2] == [0.2, 0.3]
    # 17 points per object, object after object: the dog has none, so 17 with v = 0
    assert obj["parts"]["v"][:3] == [2, 1, 0] and len(obj["parts"]["v"]) == 34
    assert obj["parts"]["v"][17:] == [0] * 17 and obj["parts"]["x"][17:] == [0.0] * 17
    assert conv.report["objects completed with unlabelled keypoints (v = 0)"] == 1
    assert conv.report["boxes dropped (zero or negative size)"] == 1
    assert conv.report["boxes clipped at the image edge"] == 1
    assert conv.problems == ["image id 4, annotation 13 (annotations[3]): unknown "
                             "category_id 99: the image is left out"]
    assert [i["id"] for i in CocoConverter(str(coco[0]), str(coco[1]), drop_empty=True)] == ["1"]


def test_coco_cli_writes_shards_and_label_maps(coco: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    status = main(["from-coco", str(coco[0]), "--images", str(coco[1]), "--prefix", "val",
                   "--output_dir", str(out), "--shards", "2", "-q"])
    assert status == 1  # one annotation had a problem; everything else was written
    records = list(read_examples(out / "val-00000-of-00002")) + list(
        read_examples(out / "val-00001-of-00002"))
    assert len(records) == 3
    assert json.loads((out / "label_map.json").read_text()) == {
        "1": "person", "2": "car", "3": "dog"}
    pbtxt = (out / "label_map.pbtxt").read_text()
    assert "item {\n  id: 3\n  name: 'dog'\n}" in pbtxt


def test_to_json_then_create(coco: tuple[Path, Path], tmp_path: Path) -> None:
    items_path = tmp_path / "items.json"
    main(["from-coco", str(coco[0]), "--images", str(coco[1]), "--to-json", str(items_path)])
    items = json.loads(items_path.read_text())
    assert len(items) == 3 and items[0]["object"]["bbox"]["label"] == [1, 3]
    assert main(["create", "--dataset_path", str(items_path), "--prefix", "t",
                 "--output_dir", str(tmp_path / "o"), "-q"]) == 0


def make_voc(root: Path, xml_size: tuple[int, int] = (200, 100)) -> None:
    _image(root / "JPEGImages" / "2007_000001.jpg")
    _image(root / "JPEGImages" / "2007_000002.jpg")
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("2007_000001\n2007_000002\n")
    (root / "Annotations").mkdir()
    (root / "Annotations" / "2007_000001.xml").write_text(f"""<annotation>
  <folder>VOC2007</folder><filename>2007_000001.jpg</filename>
  <size><width>{xml_size[0]}</width><height>{xml_size[1]}</height><depth>3</depth></size>
  <object><name>dog</name><truncated>1</truncated><difficult>0</difficult>
    <bndbox><xmin>20</xmin><ymin>10</ymin><xmax>120</xmax><ymax>60</ymax></bndbox></object>
  <object><name>cat</name><truncated>0</truncated><difficult>1</difficult>
    <bndbox><xmin>100</xmin><ymin>50</ymin><xmax>200</xmax><ymax>100</ymax></bndbox></object>
</annotation>""")
    (root / "Annotations" / "2007_000002.xml").write_text("""<annotation>
  <filename>2007_000002.jpg</filename>
  <size><width>200</width><height>100</height></size>
  <object><name>cat</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>50</xmax>
    <ymax>50</ymax></bndbox></object>
</annotation>""")


def test_voc(tmp_path: Path) -> None:
    root = tmp_path / "VOCdevkit" / "VOC2007"
    make_voc(root)
    conv = VocConverter(str(root), "train")
    items = list(conv)
    assert conv.labels == ["cat", "dog"] and conv.problems == []
    obj = items[0]["object"]
    assert obj["bbox"]["label"] == [1, 0] and obj["bbox"]["text"] == ["dog", "cat"]
    assert obj["bbox"]["xmin"] == [0.1, 0.5] and obj["bbox"]["ymax"] == [0.6, 1.0]
    assert obj["difficult"] == [0, 1] and obj["truncated"] == [1, 0]
    assert [i["id"] for i in VocConverter(str(root), "train", ["dog", "cat"])] == [
        "2007_000001", "2007_000002"]
    assert next(iter(VocConverter(str(root), "train", ["dog", "cat"])))["object"]["bbox"][
        "label"] == [0, 1]


def test_voc_size_mismatch_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "VOC"
    make_voc(root, xml_size=(640, 480))
    conv = VocConverter(str(root))
    assert [i["id"] for i in conv] == ["2007_000002"]
    assert conv.problems == ["image '2007_000001': the XML says 640x480, the image is 200x100"]


def test_voc_cli_keeps_difficult(tmp_path: Path) -> None:
    root = tmp_path / "VOC"
    make_voc(root)
    out = tmp_path / "out"
    assert main(["from-voc", str(root), "--split", "train", "--prefix", "t", "--output_dir",
                 str(out), "-q"]) == 0
    (first, _) = read_examples(out / "t-00000-of-00001")
    assert first["object"]["difficult"] == [0, 1]


def test_folder(tmp_path: Path) -> None:
    root = tmp_path / "flowers"
    _image(root / "tulip" / "a.jpg")
    _image(root / "daisy" / "b.png", kind="png-rgb")
    _image(root / "daisy" / "c.photo", kind="jpeg-rgb")  # an image, whatever its name
    (root / "daisy" / "notes.txt").write_text("not an image")
    conv = FolderConverter(str(root))
    items = list(conv)
    assert conv.labels == ["daisy", "tulip"]
    assert [(i["id"], i["class"]["label"], i["class"]["text"]) for i in items] == [
        ("daisy/b.png", 0, "daisy"), ("daisy/c.photo", 0, "daisy"), ("tulip/a.jpg", 1, "tulip")]
    assert conv.report["files skipped (not images)"] == 1
    out = tmp_path / "out"
    assert main(["from-folder", str(root), "--prefix", "f", "--output_dir", str(out), "-q"]) == 0
    assert json.loads((out / "label_map.json").read_text()) == {"0": "daisy", "1": "tulip"}


def test_caltech(tmp_path: Path) -> None:
    images, anns = tmp_path / "images", tmp_path / "annotations"
    _image(images / "set00_V000_I00029.jpg")
    _image(images / "set00_V000_I00030.jpg")
    anns.mkdir()
    (anns / "set00_V000_I00029.txt").write_text(
        "% bbGt version=3\n"
        "person 20 10 100 50 0 0 0 0 0 0 0\n"
        "people 150 50 100 80 0 0 0 0 0 1 0\n"
        "person 5 5 -3 10 0 0 0 0 0 0 0\n")
    (anns / "set00_V000_I00030.txt").write_text("no header\nperson 1 1 5 5\n")
    conv = CaltechConverter(str(images), str(anns))
    items = list(conv)
    assert conv.labels == ["people", "person"]
    obj = items[0]["object"]
    assert obj["bbox"]["label"] == [1, 0] and obj["bbox"]["xmin"] == [0.1, 0.75]
    assert obj["is_crowd"] == [0, 1]
    assert conv.report["boxes dropped (zero or negative size)"] == 1
    assert len(conv.problems) == 1 and "not a bbGt file" in conv.problems[0]
    out = tmp_path / "out"
    assert main(["from-caltech", str(images), str(anns), "--prefix", "c", "--output_dir",
                 str(out), "-q"]) == 1


def test_converter_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["from-coco", str(tmp_path / "none.json"), "--images", str(tmp_path),
                 "--prefix", "p", "--output_dir", "o"]) == 2
    assert main(["from-folder", str(tmp_path), "--prefix", "p", "--output_dir", "o"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert main(["from-coco", str(bad), "--images", str(tmp_path), "--to-json", "o.json"]) == 2
    err = capsys.readouterr().err
    assert f"from-coco INSTANCES.json: no such file: {tmp_path / 'none.json'}" in err
    assert "no class sub-folders" in err and "not a COCO annotation file" in err
    assert "Traceback" not in err


def test_a_fifo_among_the_images_is_reported_not_waited_on(tmp_path: Path) -> None:
    # Converters read image sizes from headers: a FIFO there used to block the reader
    # until a writer came (forever). In a thread with a deadline, so a hang fails the test.
    import os
    import threading

    root = tmp_path / "VOCdevkit" / "VOC2007"
    make_voc(root)
    photo = root / "JPEGImages" / "2007_000001.jpg"
    photo.unlink()
    os.mkfifo(photo)
    found: list[object] = []
    conv = VocConverter(str(root), "train", ["cat", "dog"])
    reader = threading.Thread(target=lambda: found.extend(conv), daemon=True)
    reader.start()
    reader.join(20)
    if reader.is_alive():
        with open(photo, "wb"):  # unblock the reader before failing
            pass
        pytest.fail("the converter waited on a FIFO")
    assert [item["id"] for item in found] == ["2007_000002"]  # type: ignore[index]
    assert any("not a regular file" in p for p in conv.problems), conv.problems
