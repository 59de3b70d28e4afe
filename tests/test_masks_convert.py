"""Masks from the converters, as a user runs them (``main(argv)``, relative paths, shard
globs): from-coco --include-masks, from-yolo --include-masks, from-voc --segmentation,
from-segmentation; and read back by verify, stats, inspect and show."""

from __future__ import annotations

import json
import shutil
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tfrecord_lite import encode_example, iterate, masks, rle
from tfrecord_lite.cli import main
from tfrecord_lite.errors import MaskError
from tfrecord_lite.example import ImageFields
from tfrecord_lite.masks import Frame
from tfrecord_lite.records import TFRecordWriter

from conftest import ROOT, encode, make_image_bytes

INSTANCES = ROOT / "tests" / "data" / "masks" / "instances.json"


def _records(pattern: str, decode_masks: bool = True) -> list[dict[str, Any]]:
    files = sorted(str(p) for p in Path().glob(pattern))
    assert files, pattern
    return sorted(iterate(files, decode_masks=decode_masks), key=lambda r: r["id"])


def _image(path: Path, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_image_bytes("jpeg-rgb", width, height))


def _coco(work: Path) -> dict[str, Any]:
    """The COCO fixture (polygons, RLE, crowd RLE, a list of RLEs) and its images."""
    data = json.loads(INSTANCES.read_text())
    for image in data["images"]:
        _image(work / "images" / image["file_name"], image["width"], image["height"])
    shutil.copy(INSTANCES, work / "instances.json")
    return data


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- from-coco --------------------------------------------------------------------------

def test_from_coco_include_masks_stores_every_objects_segmentation_in_order(
        work: Path) -> None:
    data = _coco(work)
    assert main(["from-coco", "instances.json", "--images", "images", "--include-masks",
                 "--prefix", "train", "--output_dir", "out", "--shards", "2", "-q"]) == 0
    sizes = {image["id"]: (image["height"], image["width"]) for image in data["images"]}
    by_id = {str(ann["id"]): ann for ann in data["annotations"]}
    records = _records("out/train-*")
    assert [r["id"] for r in records] == ["1", "2", "3"]
    for record in records:
        anns = [by_id[i] for i in record["object"]["id"]]  # (a zero-size box is dropped)
        assert all(ann["image_id"] == int(record["id"]) for ann in anns)
        frame = Frame(*sizes[int(record["id"])])
        assert record["masks"].shape == (len(anns), frame.height, frame.width)
        assert record["object"]["is_crowd"] == [a["iscrowd"] for a in anns]
        for i, ann in enumerate(anns):
            expected = masks.coco_mask(ann["segmentation"], frame)
            assert np.array_equal(record["masks"][i], expected), (record["id"], i)
            assert record["masks"][i].any()
    assert sum(r["object"]["is_crowd"].count(1) for r in records) == 2  # crowd RLE kept
    assert main(["verify", "out/train-*"]) == 0


def test_from_coco_without_the_flag_stores_no_masks(work: Path) -> None:
    _coco(work)
    assert main(["from-coco", "instances.json", "--images", "images", "--prefix", "train",
                 "--output_dir", "out", "-q"]) == 0
    for record in _records("out/train-*"):
        assert "mask" not in record["object"] and "masks" not in record


def test_from_coco_a_bad_segmentation_fails_its_image_alone_naming_the_object(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _coco(work)
    data["annotations"][1]["segmentation"] = [[10, 10, 20, 20]]  # image 1, object 1
    # image 2, object 1 (its annotation 8 before is dropped: a box of zero size)
    data["annotations"][8]["segmentation"] = {"size": [480, 640], "counts": [307200]}
    Path("instances.json").write_text(json.dumps(data))
    argv = ["from-coco", "instances.json", "--images", "images", "--include-masks",
            "--prefix", "train", "--output_dir", "out"]
    assert main(argv) == 1
    assert [r["id"] for r in _records("out/train-*")] == ["3"]
    err = capsys.readouterr().err
    assert "id '1': object 1: object/mask: polygon 0: 2 points" in err
    assert "Traceback" not in err
    failures = json.loads(Path("out/train.failures.json").read_text())
    assert [f["error_msg"] for f in failures] == [
        "id '1': object 1: object/mask: polygon 0: 2 points; a polygon needs at least 3",
        "id '2': object 1: object/mask: RLE size [480, 640] (height, width) is not the "
        "image's [640, 427]"]
    assert main([*argv, "--validation", "lenient", "--prefix", "lenient"]) == 0
    records = _records("out/lenient-*")
    assert [r["id"] for r in records] == ["1", "2", "3"]
    assert not records[0]["masks"][1].any() and records[0]["masks"][0].any()
    assert "an empty mask is written in its place" in capsys.readouterr().err


# -- from-yolo ---------------------------------------------------------------------------

def _yolo(work: Path, lines: str, kpt: str = "") -> None:
    _image(work / "seg" / "images" / "train" / "a.jpg", 64, 48)
    labels = work / "seg" / "labels" / "train"
    labels.mkdir(parents=True)
    (labels / "a.txt").write_text(lines)
    (work / "seg" / "data.yaml").write_text(
        f"path: .\ntrain: images/train\nnames:\n  0: cat\n  1: dog\n{kpt}")


POLYGON = [0.1, 0.1, 0.6, 0.15, 0.5, 0.8, 0.12, 0.7]


def test_from_yolo_include_masks_draws_each_polygon_in_pixels_of_the_image(
        work: Path) -> None:
    _yolo(work, "0 " + " ".join(map(str, POLYGON)) + "\n1 0.9 0.1 0.95 0.2 0.8 0.3\n")
    assert main(["from-yolo", "seg", "--include-masks", "--prefix", "train", "--output_dir",
                 "out", "-q"]) == 0
    (record,) = _records("out/train-*")
    frame = Frame(48, 64)
    assert np.array_equal(record["masks"][0], masks.yolo_mask(POLYGON, frame))
    assert np.array_equal(record["masks"][1],
                          masks.yolo_mask([0.9, 0.1, 0.95, 0.2, 0.8, 0.3], frame))
    assert record["object"]["bbox"]["xmin"][0] == pytest.approx(0.1)
    # Without the flag, the polygons are boxes only, as before.
    assert main(["from-yolo", "seg", "--prefix", "boxes", "--output_dir", "out", "-q"]) == 0
    (record,) = _records("out/boxes-*")
    assert "mask" not in record["object"] and record["object"]["count"] == 2


def test_from_yolo_include_masks_a_box_line_has_no_mask_and_fails_its_image(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _yolo(work, "0 " + " ".join(map(str, POLYGON)) + "\n1 0.5 0.5 0.2 0.2\n")
    assert main(["from-yolo", "seg", "--include-masks", "--prefix", "train", "--output_dir",
                 "out"]) == 1
    err = capsys.readouterr().err
    assert "object 1: object/mask: no mask given" in err
    assert "1 box without a polygon (no mask)" in err


def test_from_yolo_include_masks_refuses_a_pose_dataset(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _yolo(work, "0 0.5 0.5 0.2 0.2 0.5 0.5\n", kpt="kpt_shape: [1, 2]\n")
    assert main(["from-yolo", "seg", "--include-masks", "--prefix", "train", "--output_dir",
                 "out"]) == 2
    assert "kpt_shape makes this a pose dataset" in capsys.readouterr().err


# -- from-voc --segmentation ---------------------------------------------------------------

def _class_ids(n: int) -> np.ndarray:
    ids = np.zeros((48, 64), np.uint8)
    ids[5:30, 10 + n:40], ids[31] = 15, 255
    return ids


def _palette(ids: np.ndarray) -> bytes:
    im = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.tobytes())
    im.putpalette([0, 0, 0] + [(53 * i) % 256 for i in range(3, 768)])
    return encode(im, "PNG")


def _voc(root: Path) -> None:
    for n, stem in enumerate(("2007_000032", "2007_000033", "2007_000039")):
        _image(root / "JPEGImages" / f"{stem}.jpg", 64, 48)
        if n < 2:
            (root / "SegmentationClass").mkdir(parents=True, exist_ok=True)
            (root / "SegmentationClass" / f"{stem}.png").write_bytes(_palette(_class_ids(n)))
    (root / "Annotations").mkdir()
    (root / "Annotations" / "2007_000032.xml").write_text(
        "<annotation><filename>2007_000032.jpg</filename><size><width>64</width><height>48"
        "</height></size><object><name>aeroplane</name><bndbox><xmin>10</xmin><ymin>5</ymin>"
        "<xmax>40</xmax><ymax>30</ymax></bndbox></object></annotation>")
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text(
        "2007_000032\n2007_000033\n2007_000039\n")


def test_from_voc_segmentation_stores_each_label_image_as_class_ids(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _voc(work / "VOC2012")
    assert main(["from-voc", "VOC2012", "--segmentation", "--prefix", "train",
                 "--output_dir", "out"]) == 1  # 2007_000039 has no label image
    err = capsys.readouterr().err
    assert "image '2007_000039': no label image" in err
    first, second = _records("out/train-*")
    assert np.array_equal(first["class_ids"], _class_ids(0))  # palette indices, 255 kept
    assert np.array_equal(second["class_ids"], _class_ids(1))
    assert first["object"]["bbox"]["text"] == ["aeroplane"]  # from its XML
    assert second["object"]["count"] == 0  # no XML: the label image only
    assert main(["verify", "out/train-*"]) == 0


def test_from_voc_segmentation_labels_boxes_with_the_label_images_class_ids(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a split holding only cats and dogs: the label images say 8 and 12, as must the boxes
    root = work / "VOC2012"
    _image(root / "JPEGImages" / "a.jpg", 64, 48)
    ids = np.zeros((48, 64), np.uint8)
    ids[5:30, 10:40], ids[32:45, 2:20] = 8, 12
    (root / "SegmentationClass").mkdir(parents=True)
    (root / "SegmentationClass" / "a.png").write_bytes(_palette(ids))
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}"
        f"</xmax><ymax>{y1}</ymax></bndbox></object>"
        for name, (x0, y0, x1, y1) in (("cat", (10, 5, 40, 30)), ("dog", (2, 32, 20, 45))))
    (root / "Annotations").mkdir()
    (root / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>64</width><height>48</height>"
        f"</size>{objects}</annotation>")
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("a\n")
    assert main(["from-voc", "VOC2012", "--segmentation", "--prefix", "train",
                 "--output_dir", "out"]) == 0
    (record,) = _records("out/train-*")
    labels = record["object"]["bbox"]["label"]
    assert labels == [8, 12]
    assert [int(record["class_ids"][y, x]) for x, y in ((20, 10), (10, 40))] == labels
    label_map = json.loads(Path("out/label_map.json").read_text())
    assert len(label_map) == 20 and "note:" not in capsys.readouterr().err
    # a class VOC does not have: the ids are the sorted names', and a note says so
    xml = root / "Annotations" / "a.xml"
    xml.write_text(xml.read_text().replace("<name>dog</name>", "<name>unicorn</name>"))
    assert main(["from-voc", "VOC2012", "--segmentation", "--prefix", "other",
                 "--output_dir", "out2"]) == 0
    err = capsys.readouterr().err
    assert "note: classes that are not VOC's (unicorn)" in err and "--label-map" in err


# -- from-segmentation ---------------------------------------------------------------------

def _pairs(work: Path) -> None:
    for n, name in enumerate(("a", "sub/b", "c")):
        _image(work / "photos" / f"{name}.jpg", 64, 48)
        if name != "c":
            (work / "masks" / name).parent.mkdir(parents=True, exist_ok=True)
            (work / "masks" / f"{name}_mask.png").write_bytes(_palette(_class_ids(n)))
    (work / "masks" / "orphan_mask.png").write_bytes(_palette(_class_ids(5)))


def test_from_segmentation_pairs_images_and_label_images_by_name(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _pairs(work)
    assert main(["from-segmentation", "photos", "masks", "--label-suffix", "_mask",
                 "--prefix", "train", "--output_dir", "out", "--shards", "2"]) == 1
    err = capsys.readouterr().err
    assert "c.jpg: no label image c_mask.*" in err
    assert "1 file in LABELS without an image" in err
    records = _records("out/train-*")
    assert [r["id"] for r in records] == ["a.jpg", "sub/b.jpg"]
    assert np.array_equal(records[0]["class_ids"], _class_ids(0))
    assert np.array_equal(records[1]["class_ids"], _class_ids(1))
    assert not Path("out/label_map.json").exists()  # class ids are pixels: no names
    assert main(["from-segmentation", "photos", "masks", "--to-json", "items.json"]) == 1
    items = json.loads(Path("items.json").read_text())
    assert items == []  # without the suffix no name matches
    assert main(["from-segmentation", "photos", "masks", "--label-suffix", "_mask",
                 "--to-json", "items.json"]) == 1
    items = json.loads(Path("items.json").read_text())
    assert [Path(i["segmentation"]).name for i in items] == ["a_mask.png", "b_mask.png"]


def test_from_segmentation_of_one_folder_needs_a_suffix(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _image(work / "both" / "a.jpg", 64, 48)
    assert main(["from-segmentation", "both", "both", "--prefix", "t", "--output_dir",
                 "out"]) == 2
    assert "give --label-suffix" in capsys.readouterr().err
    (work / "both" / "a_label.png").write_bytes(_palette(_class_ids(0)))
    assert main(["from-segmentation", "both", "both", "--label-suffix", "_label",
                 "--prefix", "t", "--output_dir", "out"]) == 0
    (record,) = _records("out/t-*")
    assert record["id"] == "a.jpg" and np.array_equal(record["class_ids"], _class_ids(0))


# -- reading back --------------------------------------------------------------------------

def _write(path: str, item: dict[str, Any], image: ImageFields) -> None:
    with TFRecordWriter(path) as writer:
        writer.write(encode_example(item, image))


def _png(array: np.ndarray) -> bytes:
    return encode(Image.fromarray(array.astype(np.uint8)), "PNG")


@pytest.mark.parametrize(("masks_given", "labels", "problem"), [
    ([np.ones((48, 65))], None, "image/object/mask[0] is 65x48, the image 64x48"),
    ([np.ones((48, 64)) * 255], None, "image/object/mask[0] holds values other than 0 and 1 "
     "(up to 255)"),
    ([np.ones((48, 64))] * 2, None,
     "image/object: lists of unequal lengths (bbox/xmin 1, bbox/xmax 1, bbox/ymin 1, "
     "bbox/ymax 1, bbox/label 1, mask 2)"),
    ([np.ones((48, 64))], np.zeros((40, 64)), "image/segmentation/class/encoded is 64x40, "
     "the image 64x48"),
    (None, "palette", "image/segmentation/class/encoded: expected an 8-bit gray PNG, got "
     "PNG P"),
])
def test_verify_decodes_masks_and_label_images_and_checks_them_against_the_image(
        work: Path, capsys: pytest.CaptureFixture[str], masks_given: Any, labels: Any,
        problem: str) -> None:
    jpeg = make_image_bytes("jpeg-rgb", 64, 48)
    item: dict[str, Any] = {"filename": "a.jpg", "id": "a",
                            "object": {"bbox": {"xmin": [0.1], "xmax": [0.5], "ymin": [0.1],
                                                "ymax": [0.5], "label": [1]}}}
    if masks_given is not None:
        item["object"]["mask"] = [_png(m) for m in masks_given]
    if labels is not None:
        data = _palette(_class_ids(0)) if isinstance(labels, str) else _png(labels)
        item["segmentation"] = {"class": {"encoded": data, "format": "png"}}
    Path("out").mkdir()
    _write("out/bad-00000-of-00001", item, ImageFields(jpeg, 48, 64))
    assert main(["verify", "out/bad-*"]) == 1
    assert problem in capsys.readouterr().out
    assert main(["verify", "out/bad-*", "--no-decode"]) == (1 if "mask 2" in problem else 0)


def test_stats_counts_objects_with_and_without_masks(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _coco(work)
    assert main(["from-coco", "instances.json", "--images", "images", "--include-masks",
                 "--prefix", "masks", "--output_dir", "out", "-q"]) == 0
    assert main(["from-coco", "instances.json", "--images", "images", "--prefix", "boxes",
                 "--output_dir", "other", "-q"]) == 0
    shutil.copy(next(Path("other").glob("boxes-*")), "out/boxes-00000-of-00001")
    capsys.readouterr()
    assert main(["stats", "out/masks-*", "out/boxes-*", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    n = result["boxes"] // 2
    assert n == len(data["annotations"]) - 1  # a box of zero size is dropped
    assert result["masks"] == {"objects_with_mask": n, "objects_without_mask": n,
                               "images_with_label_image": 0}
    assert main(["stats", "out/masks-*"]) == 0
    assert f"masks: {n} objects with a mask, 0 without; label images: 0 of 3 images" in \
        capsys.readouterr().out


def test_inspect_shows_masks_as_pngs(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _coco(work)
    main(["from-coco", "instances.json", "--images", "images", "--include-masks",
          "--prefix", "train", "--output_dir", "out", "-q"])
    capsys.readouterr()
    assert main(["inspect", "out/train-*", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    shown = record["image/object/mask"]
    assert len(shown) == 6 and all(s.endswith("bytes, PNG 640x480 L>") for s in shown)


def _shown(work: Path, argv: list[str]) -> np.ndarray:
    assert main(argv) == 0
    with Image.open(argv[argv.index("-o") + 1]) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int64)


def test_show_fills_each_mask_translucent_in_its_boxs_colour_and_the_label_image(
        work: Path) -> None:
    gray = np.full((48, 64, 3), 128, np.uint8)
    Path("photo.png").write_bytes(encode(Image.fromarray(gray), "PNG"))
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 10:30] = 1
    ids = np.zeros((48, 64), np.uint8)
    ids[35:45, 40:60], ids[46] = 2, 255
    Path("labels.png").write_bytes(_palette(ids))
    item = {"filename": "photo.png", "id": "a", "segmentation": "labels.png",
            "object": {"bbox": {"xmin": [0.0], "xmax": [1.0], "ymin": [0.0], "ymax": [1.0],
                                "label": [3]},
                       "mask": [{"size": [48, 64], "counts": rle.encode(mask).tolist()}]}}
    Path("d.json").write_text(json.dumps([item]))
    assert main(["create", "--dataset_path", "d.json", "--prefix", "t", "--output_dir", "out",
                 "-q"]) == 0
    picture = _shown(work, ["show", "out/t-*", "-o", "shown.png"])
    background = picture[20, 40]  # inside the box, outside every fill
    assert np.abs(background - 128).max() <= 6  # JPEG's error only
    from tfrecord_lite.preview import COLORS, FILL_ALPHA
    for (y, x), color in (((20, 20), COLORS[3]), ((40, 50), COLORS[2])):
        expected = 128 * (1 - FILL_ALPHA) + np.array(color) * FILL_ALPHA
        assert np.abs(picture[y, x] - expected).max() <= 8, (y, x, picture[y, x], expected)
    assert np.abs(picture[46, 20] - 128).max() <= 6  # 255: boundaries are left clear
    sheet = _shown(work, ["show", "out/t-*", "--grid", "1", "-o", "sheet.png"])
    assert (np.abs(sheet - np.array(COLORS[3]) * FILL_ALPHA - 128 * (1 - FILL_ALPHA))
            .max(axis=2) <= 8).sum() > 1000  # the mask, scaled up to the cell


def test_iterate_names_the_record_of_a_mask_that_does_not_decode(work: Path) -> None:
    from tfrecord_lite.errors import RecordDecodeError

    jpeg = make_image_bytes("jpeg-rgb", 64, 48)
    item = {"filename": "a", "id": "a", "object": {"mask": [_png(np.ones((48, 64))),
                                                        b"not a png"]}}
    _write("bad.tfrecord", item, ImageFields(jpeg, 48, 64))
    (record,) = list(iterate("bad.tfrecord"))  # the bytes, not decoded
    assert record["object"]["mask"][1] == b"not a png"
    with pytest.raises(RecordDecodeError, match=r"bad.tfrecord, record 0, byte offset 0: "
                       r"image/object/mask\[1\]: does not decode as PNG"):
        list(iterate("bad.tfrecord", decode_masks=True))


def test_from_coco_draws_a_polygon_a_fraction_of_a_pixel_outside_as_pycocotools_does(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coco = pytest.importorskip("pycocotools.mask")
    _image(work / "images" / "a.jpg", 80, 60)
    _image(work / "images" / "b.jpg", 80, 60)
    near = [[10, -0.3, 80.3, 10, 80.3, 59, 10, 60.4]]
    far = [[10, 10, 95, 10, 10, 50]]
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 60},
                       {"id": 2, "file_name": "b.jpg", "width": 80, "height": 60}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [
                {"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0,
                 "bbox": [10, 0, 70, 60], "area": 3000.0, "segmentation": near},
                {"id": 6, "image_id": 2, "category_id": 1, "iscrowd": 0,
                 "bbox": [10, 10, 70, 40], "area": 1000.0, "segmentation": far}]}
    Path("instances.json").write_text(json.dumps(data))
    assert main(["from-coco", "instances.json", "--images", "images", "--include-masks",
                 "--prefix", "train", "--output_dir", "out", "-q"]) == 1
    err = capsys.readouterr().err
    assert "point 1 (x=95, y=10) lies outside the image" in err
    assert "--validation lenient" in err
    (record,) = _records("out/train-*")
    expected = coco.decode(coco.merge(coco.frPyObjects(near, 60, 80)))
    assert np.array_equal(record["masks"][0], expected)


def _huge_png_header(width: int, height: int) -> bytes:
    """A gray PNG that claims ``width`` x ``height`` and holds a few rows of zeros: a
    reader that decodes it before checking its size fails on the cut data (and Pillow
    warns of, or refuses, a decompression bomb); one that reads the header first
    refuses its size."""
    rows = zlib.compress(bytes((width + 1) * 4))
    return b"".join([b"\x89PNG\r\n\x1a\n",
                     _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)),
                     _png_chunk(b"IDAT", rows), _png_chunk(b"IEND", b"")])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def test_readers_refuse_a_mask_or_label_image_of_huge_dimensions_from_its_header(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tfrecord_lite.errors import RecordDecodeError
    from tfrecord_lite.torch.samples import training_sample

    jpeg = make_image_bytes("jpeg-rgb", 80, 60)
    item: dict[str, Any] = {
        "filename": "a.jpg", "id": "a",
        "object": {"bbox": {"xmin": [0.1], "xmax": [0.5], "ymin": [0.1], "ymax": [0.5],
                            "label": [1]}, "mask": [_huge_png_header(15000, 11000)]},
        "segmentation": {"class": {"encoded": _huge_png_header(15000, 12000),
                                   "format": "png"}}}
    Path("out").mkdir()
    _write("out/big-00000-of-00001", item, ImageFields(jpeg, 60, 80))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow warning reaches the user
        assert main(["verify", "out/big-*"]) == 1
        out = capsys.readouterr().out
        assert "image/object/mask[0] is 15000x11000, the image 80x60" in out
        assert "image/segmentation/class/encoded is 15000x12000, the image 80x60" in out
        assert "bomb" not in out
        assert main(["show", "out/big-*", "-o", "shown.png"]) == 0
        assert main(["inspect", "out/big-*"]) == 0
        assert "PNG 15000x11000" in capsys.readouterr().out
        with pytest.raises(RecordDecodeError,
                           match=r"image/object/mask\[0\] is 15000x11000, the image 80x60"):
            list(iterate(["out/big-00000-of-00001"], decode_masks=True))
        (record,) = iterate(["out/big-00000-of-00001"])
        with pytest.raises(RecordDecodeError,
                           match=r"image/object/mask\[0\] is 15000x11000, the image 80x60"):
            training_sample(record, "out/big-00000-of-00001", 0, 0)
        del record["object"]["mask"]
        with pytest.raises(RecordDecodeError, match="image/segmentation/class/encoded is "
                                                    "15000x12000, the image 80x60"):
            training_sample(record, "out/big-00000-of-00001", 0, 0)


def test_writers_refuse_a_mask_or_label_image_of_huge_dimensions_from_its_header() -> None:
    from tfrecord_lite import labels

    frame = Frame(60, 80)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(MaskError, match="the mask image is 15000x11000, the image 80x60"):
            masks.image_mask(_huge_png_header(15000, 11000), frame, "object 0: object/mask")
        with pytest.raises(MaskError, match="the label image is 15000x12000, the image "
                                            "80x60") as info:
            labels.label_ids(_huge_png_header(15000, 12000), frame)
        assert "bomb" not in str(info.value)
