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
