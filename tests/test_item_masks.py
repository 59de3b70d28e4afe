"""Masks in items and records (tfrecord_lite/item_masks.py through create()): each form an
item gives, at the stored size, the label image, and what fails or warns, by mode."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tfrecord_lite import JobOptions, iterate, maskpng, masks, rle, validate_dataset, write_dataset
from tfrecord_lite.cli import main
from tfrecord_lite.items import ItemOptions, encode_item
from tfrecord_lite.masks import Frame

from conftest import encode, make_image_bytes

WIDTH, HEIGHT = 64, 48
FRAME = Frame(HEIGHT, WIDTH)
RECT = [[5, 3, 20, 3, 20, 9, 5, 9]]  # pixels [3:9, 5:20]
TRIANGLE = [[30.5, 10, 60, 40.2, 33, 45]]


def _rect_mask(top: int, bottom: int, left: int, right: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[top:bottom, left:right] = 1
    return mask


def _class_ids() -> np.ndarray:
    ids = np.zeros((HEIGHT, WIDTH), np.uint8)
    ids[5:30, 10:40], ids[35:45, 2:60], ids[31] = 15, 7, 255  # VOC's boundary: 255
    return ids


def _palette_png(ids: np.ndarray) -> bytes:
    im = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.tobytes())
    im.putpalette([0, 0, 0] + [(37 * i) % 256 for i in range(3, 768)])
    return encode(im, "PNG")


def _boxes(n: int) -> dict[str, list[float]]:
    return {"xmin": [0.1] * n, "xmax": [0.5] * n, "ymin": [0.1] * n, "ymax": [0.5] * n,
            "label": list(range(1, n + 1))}


@pytest.fixture
def photo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A 64x48 JPEG in the current directory (tmp_path), by its relative path."""
    monkeypatch.chdir(tmp_path)
    Path("photo.jpg").write_bytes(make_image_bytes("jpeg-rgb", WIDTH, HEIGHT))
    return "photo.jpg"


def _records(pattern: str) -> list[dict[str, Any]]:
    return list(iterate(sorted(str(p) for p in Path().glob(pattern)), decode_masks=True))


def _item(filename: str, mask: list[Any], **extra: Any) -> dict[str, Any]:
    return {"filename": filename, "id": "a",
            "object": {"bbox": _boxes(len(mask)), "mask": mask}, **extra}


def test_every_form_an_item_gives_is_stored_as_a_0_1_png_of_the_image_in_object_order(
        photo: str) -> None:
    Image.fromarray(_rect_mask(40, 46, 50, 60) * 255).save("mask.png")  # 0 and 255
    rle_mask = _rect_mask(20, 30, 2, 12)
    counts = rle.encode(rle_mask)
    forms = [
        RECT,                                                      # polygons
        {"size": [HEIGHT, WIDTH], "counts": counts.tolist()},       # uncompressed RLE
        {"size": [HEIGHT, WIDTH], "counts": rle.counts_to_string(counts)},  # compressed
        [{"size": [HEIGHT, WIDTH], "counts": rle.encode(_rect_mask(0, 2, 0, 4)).tolist()},
         {"size": [HEIGHT, WIDTH], "counts": rle.encode(_rect_mask(46, 48, 60, 64)).tolist()}],
        "mask.png",                                                # a mask image's path
        maskpng.encode(_rect_mask(10, 12, 10, 12)),                # a mask image's bytes
        TRIANGLE,
    ]
    summary = write_dataset([_item(photo, forms)], "train", "out", 1, 1, progress=False)
    assert summary.failed == 0 and not summary.warnings
    (record,) = _records("out/train-*")
    expected = [_rect_mask(3, 9, 5, 20), rle_mask, rle_mask,
                _rect_mask(0, 2, 0, 4) | _rect_mask(46, 48, 60, 64), _rect_mask(40, 46, 50, 60),
                _rect_mask(10, 12, 10, 12), masks.polygon_mask(TRIANGLE, FRAME)]
    assert record["masks"].shape == (7, HEIGHT, WIDTH) and record["masks"].dtype == np.uint8
    for i, mask in enumerate(expected):
        assert np.array_equal(record["masks"][i], mask), f"object {i}"
    for data in record["object"]["mask"]:  # what the reference scripts store: 8-bit gray
        with Image.open(io.BytesIO(data)) as im:
            assert (im.format, im.mode, im.size) == ("PNG", "L", (WIDTH, HEIGHT))
    assert record["object"]["count"] == 7


def test_masks_and_the_label_image_are_made_at_the_size_max_side_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("big.jpg").write_bytes(make_image_bytes("jpeg-rgb", 640, 480))
    ids = np.zeros((480, 640), np.uint8)
    ids[100:300, 50:400], ids[301] = 9, 255
    Path("big.png").write_bytes(_palette_png(ids))
    polygon = [[100.5, 50, 600, 60.25, 500, 400, 120, 410]]
    crowd = {"size": [480, 640], "counts": rle.encode(ids == 9).tolist()}
    item = {"filename": "big.jpg", "id": "big", "object": {
        "bbox": _boxes(2), "mask": [polygon, crowd], "is_crowd": [0, 1]},
        "segmentation": "big.png"}
    summary = write_dataset([item], "half", "out", 1, 1, max_side=320, progress=False)
    assert summary.failed == 0
    (record,) = _records("out/half-*")
    assert (record["height"], record["width"]) == (240, 320)
    frame = Frame(480, 640, 240, 320)
    assert np.array_equal(record["masks"][0], masks.polygon_mask(polygon, frame))
    assert np.array_equal(record["masks"][1], masks.resize_nearest(ids == 9, frame))
    assert np.array_equal(record["class_ids"], masks.resize_nearest(ids, frame))
    assert set(np.unique(record["class_ids"])) == {0, 9, 255}  # nearest: no blend of ids
    assert record["segmentation"]["class"]["format"] == "png"


def test_a_label_image_is_stored_as_its_class_ids_a_gray_png_as_given(photo: str) -> None:
    ids = _class_ids()
    Path("labels").mkdir()
    Path("labels/palette.png").write_bytes(_palette_png(ids))
    gray = encode(Image.fromarray(ids), "PNG")
    Path("labels/gray.png").write_bytes(gray)
    items = [{"filename": photo, "id": name, "segmentation": f"labels/{name}.png"}
             for name in ("palette", "gray")]
    assert write_dataset(items, "seg", "out", 1, 1, progress=False).failed == 0
    records = {r["id"]: r for r in _records("out/seg-*")}
    for record in records.values():
        assert np.array_equal(record["class_ids"], ids)
        assert "mask" not in record["object"] and "masks" not in record
    assert records["gray"]["segmentation"]["class"]["encoded"] == gray  # byte for byte


@pytest.mark.parametrize(("mask", "index", "text"), [
    ([RECT, [[1, 2, 3, 4]]], 1, "object 1: object/mask: polygon 0: 2 points; a polygon "
     "needs at least 3"),
    ([[[5, 3, 80, 3, 20, 9]], RECT], 0, "object 0: object/mask: polygon 0, point 1 (x=80, "
     "y=3) lies outside the image, 64x48 pixels"),
    ([RECT, RECT, {"size": [480, 640], "counts": [307200]}], 2,
     "object 2: object/mask: RLE size [480, 640] (height, width) is not the image's [48, 64]"),
    ([RECT, "small.png"], 1, "object 1: object/mask (small.png): the mask image is 32x24, the "
     "image 64x48"),
    ([RECT, None], 1, "object 1: object/mask: no mask given"),
    ([[5, 3, 20, 3, 20, 9]], 0, "object 0: object/mask: a flat list of numbers; a polygon "
     "goes inside the object's list of polygons"),
    ([RECT, 7], 1, "object 1: object/mask: expected polygons"),
])
def test_a_mask_that_cannot_be_made_fails_its_item_naming_the_object(
        photo: str, mask: list[Any], index: int, text: str) -> None:
    Image.new("L", (32, 24)).save("small.png")
    good = _item(photo, [RECT], id="good")
    summary = write_dataset([_item(photo, mask), good], "train", "out", 1, 1, progress=False)
    assert summary.written == 1 and summary.failed == 1
    (failure,) = summary.failures
    assert failure["id"] == "a"
    assert failure["error_msg"].startswith("id 'a': ")
    assert text in failure["error_msg"], failure["error_msg"]
    assert list(summary.failed_by_reason)[0].startswith("mask: ")
    (record,) = _records("out/train-*")
    assert record["id"] == "good"


def test_lenient_mode_writes_an_empty_mask_in_its_place_and_cuts_what_lies_outside(
        photo: str) -> None:
    outside = [[50, 40, 80, 40, 80, 60, 50, 60]]  # reaches past the right and bottom edges
    item = _item(photo, [[[1, 2, 3, 4]], outside, RECT])
    summary = write_dataset([item], "train", "out", 1, 1, validation="lenient",
                            progress=False)
    assert summary.failed == 0
    (record,) = _records("out/train-*")
    assert not record["masks"][0].any()
    assert np.array_equal(record["masks"][1], _rect_mask(40, 48, 50, 64))
    assert np.array_equal(record["masks"][2], _rect_mask(3, 9, 5, 20))
    warnings = "\n".join(summary.warnings)
    assert "id 'a': object 0: object/mask: polygon 0: 2 points" in warnings
    assert "an empty mask is written in its place" in warnings
    assert "id 'a': object 1: object/mask: polygon 0, point 1 (x=80, y=40) lies outside" \
        in warnings and "the part outside the image is cut" in warnings


def test_a_mask_or_label_file_that_cannot_be_read_fails_its_item_in_every_mode(
        photo: str) -> None:
    items = [_item(photo, [RECT, "gone.png"]),
             {"filename": photo, "id": "b", "segmentation": "labels/gone.png"}]
    for mode in ("strict", "lenient"):
        summary = write_dataset(items, mode, "out", 1, 1, validation=mode, progress=False)
        assert summary.failed == 2 and summary.failed_by_reason == {"missing": 2}
        messages = [f["error_msg"] for f in sorted(summary.failures, key=lambda f: f["id"])]
        assert "id 'a': object 1: object/mask: gone.png: file not found" in messages[0]
        assert "id 'b': segmentation: labels/gone.png: file not found" in messages[1]


@pytest.mark.parametrize(("make", "text"), [
    (lambda: Image.new("L", (WIDTH + 1, HEIGHT)), "the label image is 65x48, the image 64x48"),
    (lambda: Image.new("RGB", (WIDTH, HEIGHT)), "the label image has 3 channels"),
])
def test_a_label_image_that_does_not_fit_fails_its_item_in_every_mode(
        photo: str, make: Any, text: str) -> None:
    make().save("labels.png")
    item = {"filename": photo, "id": "a", "segmentation": "labels.png"}
    summary = write_dataset([item], "train", "out", 1, 1, validation="lenient", progress=False)
    assert summary.failed == 1
    assert f"id 'a': segmentation (labels.png): {text}" in summary.failures[0]["error_msg"]


def test_a_jpeg_label_image_is_refused_its_compression_changes_ids(photo: str) -> None:
    Image.fromarray(_class_ids()).save("labels.jpg")
    item = {"filename": photo, "id": "a", "segmentation": "labels.jpg"}
    summary = write_dataset([item], "train", "out", 1, 1, progress=False)
    assert summary.failures[0]["error_msg"].startswith(
        "id 'a': segmentation (labels.jpg): the label image is a JPEG file; a label image "
        "must be lossless, a PNG")
    assert summary.failed_by_reason == {"mask: lossy label image": 1}


def test_fewer_masks_than_objects_fail_as_lists_of_unequal_lengths(photo: str) -> None:
    item = {"filename": photo, "id": "a", "object": {"bbox": _boxes(2), "mask": [RECT]}}
    summary = write_dataset([item], "train", "out", 1, 1, progress=False)
    assert "object: lists of unequal lengths" in summary.failures[0]["error_msg"]
    assert "mask 1" in summary.failures[0]["error_msg"]


def test_records_read_back_are_items_that_write_the_same_masks(photo: str) -> None:
    Path("labels.png").write_bytes(_palette_png(_class_ids()))
    item = _item(photo, [RECT, TRIANGLE], segmentation="labels.png")
    write_dataset([item], "first", "out", 1, 1, progress=False)
    (first,) = list(iterate("out/first-00000-of-00001"))
    write_dataset([first], "second", "out", 1, 1, progress=False)  # masks given as bytes
    (second,) = list(iterate("out/second-00000-of-00001"))
    assert second["object"]["mask"] == first["object"]["mask"]
    assert second["segmentation"] == first["segmentation"]
    assert Path("out/first-00000-of-00001").read_bytes() == \
        Path("out/second-00000-of-00001").read_bytes()


def test_mask_paths_are_found_as_the_image_is_from_the_root(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = Path("data")
    (data / "masks").mkdir(parents=True)
    (data / "photo.jpg").write_bytes(make_image_bytes("jpeg-rgb", WIDTH, HEIGHT))
    Image.fromarray(_rect_mask(1, 5, 1, 5)).save(data / "masks" / "0.png")
    Path("labels.png").write_bytes(_palette_png(_class_ids()))  # outside the root
    items = [_item("photo.jpg", ["masks/0.png"]),
             {"filename": "photo.jpg", "id": "b", "segmentation": "../labels.png"}]
    Path("train.json").write_text(json.dumps(items))
    status = main(["create", "--dataset_path", "train.json", "--root", "data", "--prefix",
                   "train", "--output_dir", "out"])
    assert status == 1
    (record,) = _records("out/train-*")
    assert np.array_equal(record["masks"][0], _rect_mask(1, 5, 1, 5))
    (failure,) = json.loads(Path("out/train.failures.json").read_text())
    assert "outside the dataset root" in failure["error_msg"]


def test_the_dry_run_makes_the_masks_at_the_size_the_item_gives(photo: str) -> None:
    sized = {"height": HEIGHT, "width": WIDTH}
    items = [_item(photo, [RECT], **sized),
             {**_item(photo, [{"size": [480, 640], "counts": [307200]}], **sized), "id": "b"},
             {**_item(photo, [[[1, 2, 3, 4]]]), "id": "c"},           # no size: forms only
             {**_item(photo, [{"size": [480, 640], "counts": [7]}]), "id": "d"},
             {**_item(photo, ["gone.png"]), "id": "e"}]
    report = validate_dataset(items)
    failed = {f["id"]: f["error_msg"] for f in report.failures}
    assert set(failed) == {"b", "c", "d", "e"}
    assert "is not the image's [48, 64]" in failed["b"]
    assert "2 points" in failed["c"]
    assert "RLE counts add up to 7 pixels, not the 480x640" in failed["d"]
    assert "gone.png: file not found" in failed["e"]
    lenient = validate_dataset(items[1:3], validation="lenient")
    assert lenient.ok and len(lenient.warnings) == 2


def test_an_item_with_100_polygon_masks_never_holds_them_all(photo: str) -> None:
    """Each mask is encoded before the next is drawn: 100 masks of the image's size at
    once would take 100 x 3 KB here, and at 640x480 100 x 300 KB."""
    Path("big.jpg").write_bytes(make_image_bytes("jpeg-rgb", 640, 480))
    rng = np.random.default_rng(3)
    objects = []
    for _ in range(100):
        cx, cy, r = rng.uniform(60, 580), rng.uniform(60, 420), rng.uniform(10, 55)
        a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        objects.append([np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1).ravel().tolist()])
    item = _item("big.jpg", objects)
    options = ItemOptions(JobOptions(decode_check=False))
    encode_item(item, options)  # imports and caches first
    tracemalloc.start()
    try:
        data = encode_item(item, options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert data.count(b"IHDR") == 100
    assert peak < 8_000_000, f"{peak:,} bytes at the peak"


def test_without_stored_images_or_with_encoded_given_masks_have_the_items_size(
        photo: str) -> None:
    header_only = _item(photo, [RECT])  # size from the image file's header
    given = {**_item("elsewhere.jpg", [RECT]), "id": "given",
             "encoded": make_image_bytes("jpeg-rgb", WIDTH, HEIGHT), "height": HEIGHT,
             "width": WIDTH, "format": "JPEG", "colorspace": "RGB", "channels": 3}
    assert write_dataset([header_only], "bare", "out", 1, 1, store_images=False,
                         progress=False).failed == 0
    assert write_dataset([given], "given", "out", 1, 1, progress=False).failed == 0
    for prefix in ("bare", "given"):
        (record,) = _records(f"out/{prefix}-*")
        assert np.array_equal(record["masks"][0], _rect_mask(3, 9, 5, 20)), prefix
    bad = {**given, "height": "tall"}
    summary = write_dataset([bad], "bad", "out", 1, 1, progress=False)
    assert "id 'given': height: not an integer: 'tall'" in summary.failures[0]["error_msg"]
