"""TensorFlow reads masks and label images as the Model Garden's and the Object Detection
API's decoders do (``tf.io.decode_png(..., channels=1)``), to the same pixels; and its
nearest-neighbour resizing takes the pixels ``Frame`` takes (run by `make test-tf`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tfrecord_lite import labels, maskpng, masks
from tfrecord_lite.masks import Frame

from conftest import ROOT, encode

pytestmark = pytest.mark.tensorflow

tf = pytest.importorskip("tensorflow")

DATA = ROOT / "tests" / "data" / "masks"
INSTANCES = json.loads((DATA / "instances.json").read_text())
_SIZES = {image["id"]: (image["height"], image["width"]) for image in INSTANCES["images"]}


def _tf_pixels(data: bytes) -> np.ndarray:
    decoded = tf.io.decode_png(data, channels=1)
    assert decoded.dtype == tf.uint8
    return decoded.numpy()[:, :, 0]


@pytest.mark.parametrize("annotation", INSTANCES["annotations"],
                         ids=[str(a["id"]) for a in INSTANCES["annotations"]])
@pytest.mark.parametrize("max_side", [None, 320])
def test_tensorflow_decodes_the_masks_of_every_coco_form(annotation: dict[str, Any],
                                                         max_side: int | None) -> None:
    height, width = _SIZES[annotation["image_id"]]
    scale = min(1.0, (max_side or max(height, width)) / max(height, width))
    frame = Frame(height, width, max(1, round(height * scale)), max(1, round(width * scale)))
    mask = masks.coco_mask(annotation["segmentation"], frame)
    assert np.array_equal(_tf_pixels(maskpng.encode(mask)), mask)


def test_tensorflow_decodes_random_masks_and_class_ids() -> None:
    rng = np.random.default_rng(6)
    for _ in range(20):
        height, width = (int(v) for v in rng.integers(1, 90, 2))
        array = np.zeros((height, width), np.uint8)
        top = int(rng.integers(0, height))
        array[top:] = rng.integers(0, 256, (height - top, width), dtype=np.uint8)
        assert np.array_equal(_tf_pixels(maskpng.encode(array)), array)


def test_tensorflow_reads_the_class_ids_of_a_palette_label_image() -> None:
    ids = np.zeros((30, 40), np.uint8)
    ids[5:20, 5:25], ids[4, 4:26], ids[22:28, 30:38] = 15, 255, 7
    palette = Image.frombytes("P", (40, 30), ids.tobytes())
    palette.putpalette([0, 0, 0, 128, 0, 0] + [64] * (254 * 3))
    data = encode(palette, "PNG")
    # The palette file itself would give colours' gray levels: it must be re-encoded.
    assert not np.array_equal(_tf_pixels(data), ids)
    assert np.array_equal(_tf_pixels(labels.label_png(data, Frame(30, 40))), ids)
    gray = encode(Image.fromarray(ids), "PNG")
    assert np.array_equal(_tf_pixels(labels.label_png(gray, Frame(30, 40))), ids)


@pytest.mark.parametrize(("size", "stored"), [((30, 40), (11, 17)), ((480, 640), (240, 320)),
                                              ((427, 640), (213, 320)), ((7, 5), (13, 11))])
def test_tensorflow_resizes_nearest_neighbour_as_frame_does(size: tuple[int, int],
                                                            stored: tuple[int, int]) -> None:
    """Off the ties, where a centre falls on the line between two pixels."""
    height, width = size
    frame = Frame(height, width, *stored)
    ours = np.arange(height)[frame.rows()][:, np.newaxis] * width + np.arange(width)[frame.cols()]
    index = np.arange(height * width, dtype=np.float64).reshape(height, width, 1)
    theirs = tf.image.resize(index, stored, method="nearest").numpy()[:, :, 0]
    row_ties = (np.arange(stored[0]) * 2 + 1) * height % (2 * stored[0]) == 0
    col_ties = (np.arange(stored[1]) * 2 + 1) * width % (2 * stored[1]) == 0
    clear = ~(row_ties[:, np.newaxis] | col_ties)
    assert np.array_equal(ours[clear], theirs[clear].astype(np.int64))


# -- records written by the tool, read with the decoders' own keys ----------------------------

def _model_garden_keys() -> dict[str, Any]:
    """The keys of the Model Garden's ``TfExampleDecoder(include_mask=True)``
    (official/vision/dataloaders/tf_example_decoder.py)."""
    return {
        "image/encoded": tf.io.FixedLenFeature((), tf.string),
        "image/height": tf.io.FixedLenFeature((), tf.int64, -1),
        "image/width": tf.io.FixedLenFeature((), tf.int64, -1),
        "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
        "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
        "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
        "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
        "image/object/class/label": tf.io.VarLenFeature(tf.int64),
        "image/object/area": tf.io.VarLenFeature(tf.float32),
        "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
        "image/object/mask": tf.io.VarLenFeature(tf.string),
        "image/source_id": tf.io.FixedLenFeature((), tf.string),
    }


def _dense(parsed: dict[str, Any]) -> dict[str, Any]:
    """As the decoders do: every sparse tensor to a dense one."""
    return {key: (tf.sparse.to_dense(value, default_value="" if value.dtype == tf.string
                                     else 0) if isinstance(value, tf.SparseTensor) else value)
            for key, value in parsed.items()}


def _model_garden_masks(parsed: dict[str, Any]) -> np.ndarray:
    """The decoder's ``_decode_masks``: each PNG by ``tf.io.decode_png(channels=1)``."""
    masks_png = parsed["image/object/mask"]

    def decode(png: Any) -> Any:
        mask = tf.squeeze(tf.io.decode_png(png, channels=1, dtype=tf.uint8), axis=-1)
        return tf.cast(mask, tf.float32)

    if tf.size(masks_png) == 0:
        return np.zeros((0, int(parsed["image/height"]), int(parsed["image/width"])))
    return tf.map_fn(decode, masks_png, fn_output_signature=tf.float32).numpy()


def _object_detection_api_masks(serialized: Any) -> np.ndarray:
    """The Object Detection API's decoder with ``instance_mask_type: PNG_MASKS``
    (object_detection/data_decoders/tf_example_decoder.py): its keys, and each mask by
    ``tf.image.decode_image(channels=1)`` greater than 0."""
    keys = {"image/object/mask": tf.io.VarLenFeature(tf.string),
            "image/height": tf.io.FixedLenFeature((), tf.int64, 1),
            "image/width": tf.io.FixedLenFeature((), tf.int64, 1)}
    parsed = _dense(tf.io.parse_single_example(serialized, keys))

    def decode(png: Any) -> Any:
        image = tf.squeeze(tf.image.decode_image(png, channels=1), axis=2)
        image.set_shape([None, None])
        return tf.cast(tf.greater(image, 0), tf.float32)

    return tf.map_fn(decode, parsed["image/object/mask"],
                     fn_output_signature=tf.float32).numpy()


def _reference(segmentation: Any, height: int, width: int, stored: tuple[int, int]) -> Any:
    """pycocotools' mask of a COCO segmentation at the stored size: polygons drawn from
    their scaled coordinates, RLE decoded and resized nearest-neighbour."""
    coco = pytest.importorskip("pycocotools.mask")
    frame = Frame(height, width, *stored)
    if isinstance(segmentation, list) and isinstance(segmentation[0], list):
        sx, sy = stored[1] / width, stored[0] / height
        scaled = [[v * (sx if i % 2 == 0 else sy) for i, v in enumerate(p)]
                  for p in segmentation]
        return coco.decode(coco.merge(coco.frPyObjects(scaled, *stored)))
    if isinstance(segmentation, list):
        full = coco.decode(coco.merge(segmentation))
    elif isinstance(segmentation["counts"], list):
        full = coco.decode(coco.frPyObjects(segmentation, height, width))
    else:
        full = coco.decode(segmentation)
    return masks.resize_nearest(full, frame)


@pytest.mark.parametrize("max_side", [None, 320])
def test_tensorflow_reads_from_coco_masks_as_the_decoders_do_to_pycocotools_pixels(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, max_side: int | None) -> None:
    from tfrecord_lite.cli import main

    from conftest import make_image_bytes

    monkeypatch.chdir(tmp_path)
    (tmp_path / "images").mkdir()
    for image in INSTANCES["images"]:
        (tmp_path / "images" / image["file_name"]).write_bytes(
            make_image_bytes("jpeg-rgb", image["width"], image["height"]))
    (tmp_path / "instances.json").write_text(json.dumps(INSTANCES))
    extra = ["--max-side", str(max_side)] if max_side else []
    assert main(["from-coco", "instances.json", "--images", "images", "--include-masks",
                 "--prefix", "train", "--output_dir", "out", "--shards", "2", "-q",
                 *extra]) == 0
    by_id = {str(a["id"]): a for a in INSTANCES["annotations"]}
    files = sorted(str(p) for p in (tmp_path / "out").glob("train-*"))
    seen = 0
    for serialized in tf.data.TFRecordDataset(files):
        parsed = _dense(tf.io.parse_single_example(serialized, _model_garden_keys()))
        height, width = int(parsed["image/height"]), int(parsed["image/width"])
        image_id = int(parsed["image/source_id"].numpy())
        original = _SIZES[image_id]
        assert tf.io.decode_image(parsed["image/encoded"]).shape[:2] == (height, width)
        ids = tf.io.parse_single_example(serialized, {"image/object/id": tf.io.VarLenFeature(
            tf.string)})["image/object/id"].values.numpy()
        found = _model_garden_masks(parsed)
        assert found.shape == (len(ids), height, width)
        od_api = _object_detection_api_masks(serialized)
        np.testing.assert_array_equal(od_api, found)  # 0 and 1 only: > 0 changes nothing
        for mask, ident in zip(found, ids):
            annotation = by_id[ident.decode()]
            expected = _reference(annotation["segmentation"], *original, (height, width))
            np.testing.assert_array_equal(mask, expected, err_msg=f"annotation {ident}")
            seen += 1
        crowd = parsed["image/object/is_crowd"].numpy().tolist()
        assert crowd == [by_id[i.decode()]["iscrowd"] for i in ids]
    assert seen == len(INSTANCES["annotations"]) - 1  # one box has zero size: dropped


def _segmentation_keys() -> dict[str, Any]:
    """The keys of the Model Garden's segmentation decoder
    (official/vision/dataloaders/segmentation_input.py)."""
    return {
        "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
        "image/height": tf.io.FixedLenFeature((), tf.int64, default_value=0),
        "image/width": tf.io.FixedLenFeature((), tf.int64, default_value=0),
        "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string,
                                                                  default_value=""),
        "image/segmentation/class/format": tf.io.FixedLenFeature((), tf.string,
                                                                 default_value="png"),
    }


@pytest.mark.parametrize("max_side", [None, 100])
def test_tensorflow_reads_the_label_image_as_the_segmentation_decoder_does_exactly(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, max_side: int | None) -> None:
    from tfrecord_lite import write_dataset

    from conftest import make_image_bytes

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(26)
    ids = rng.integers(0, 21, (120, 160)).astype(np.uint8)
    ids[::7] = 255  # VOC's boundaries
    palette = Image.frombytes("P", (160, 120), ids.tobytes())
    palette.putpalette([(29 * i) % 256 for i in range(768)])
    palette.save("labels.png")
    (tmp_path / "a.jpg").write_bytes(make_image_bytes("jpeg-rgb", 160, 120))
    item = {"filename": "a.jpg", "id": "a", "segmentation": "labels.png"}
    summary = write_dataset([item], "seg", "out", 1, 1, max_side=max_side, progress=False)
    assert summary.failed == 0
    (serialized,) = list(tf.data.TFRecordDataset([str(tmp_path / "out" /
                                                      "seg-00000-of-00001")]))
    data = tf.io.parse_single_example(serialized, _segmentation_keys())
    height, width = int(data["image/height"]), int(data["image/width"])
    # The parser's _prepare_image_and_label.
    label = tf.io.decode_image(data["image/segmentation/class/encoded"], channels=1)
    label = tf.reshape(label, (1, height, width)).numpy()[0]
    assert data["image/segmentation/class/format"].numpy() == b"png"
    expected = ids if max_side is None else masks.resize_nearest(
        ids, Frame(120, 160, height, width))
    assert (height, width) == ((120, 160) if max_side is None else (75, 100))
    np.testing.assert_array_equal(label, expected)
