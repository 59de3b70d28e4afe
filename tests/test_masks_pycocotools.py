"""Masks agree with pycocotools, COCO's reference (``frPyObjects``, ``decode``, ``merge``):
to IoU >= 0.99 per object as the contract asks, and in fact pixel for pixel.

Sets: hand-made hard shapes (tests/data/masks/shapes.json), random polygons and masks
(hypothesis), and a COCO instances file of every segmentation form
(tests/data/masks/instances.json, made by make_instances.py beside it).
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from tfrecord_lite import maskpng, masks, rle
from tfrecord_lite.masks import Frame

from conftest import ROOT

coco = pytest.importorskip("pycocotools.mask", reason="pycocotools is in the test extra")
# pycocotools' decode under numpy 2 warns of its own __array__.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

DATA = ROOT / "tests" / "data" / "masks"
SHAPES = json.loads((DATA / "shapes.json").read_text())["shapes"]
INSTANCES = json.loads((DATA / "instances.json").read_text())


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two 0/1 masks; 1.0 when both are empty."""
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def assert_agrees(got: np.ndarray, reference: np.ndarray) -> None:
    assert got.shape == reference.shape and got.dtype == np.uint8
    assert iou(got, reference) >= 0.99
    assert np.array_equal(got, reference), f"{np.count_nonzero(got != reference)} pixels differ"


def reference_polygons(parts: list[list[float]], frame: Frame) -> np.ndarray:
    """pycocotools' mask of ``parts`` scaled to the stored size, drawn there, joined."""
    sx, sy = frame.stored_width / frame.width, frame.stored_height / frame.height
    scaled = [[v * (sx if i % 2 == 0 else sy) for i, v in enumerate(p)] for p in parts]
    rles = coco.frPyObjects(scaled, frame.stored_height, frame.stored_width)
    return coco.decode(coco.merge(rles))


def nearest(mask: np.ndarray, frame: Frame) -> np.ndarray:
    return mask[frame.rows()][:, frame.cols()]


# --- polygons ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=[s["name"] for s in SHAPES])
def test_hand_made_hard_shapes_agree(shape: dict[str, Any]) -> None:
    frame = Frame(shape["height"], shape["width"], *shape.get("stored", (0, 0)))
    got = masks.polygon_mask(shape["polygons"], frame, strict=not shape.get("lenient"))
    assert_agrees(got, reference_polygons(shape["polygons"], frame))


def test_the_hard_shapes_are_not_trivial() -> None:
    """The set holds empty, full, one-pixel-wide and multi-part masks, as meant."""
    drawn = {s["name"]: masks.polygon_mask(s["polygons"], Frame(s["height"], s["width"]),
                                           strict=not s.get("lenient")) for s in SHAPES}
    assert not drawn["sub-pixel, at a pixel corner"].any()
    assert not drawn["sub-pixel, around a pixel centre"].any()  # its crossings cancel
    assert drawn["sub-pixel, a 0.4 px square around a pixel centre"].sum() == 1
    assert drawn["border, the whole image"].all()
    assert drawn["sliver, vertical, across pixel centres"].sum(axis=1).max() == 1
    assert drawn["concave, comb of 1 px teeth"][10].tolist().count(1) == 9


_SIDE = st.integers(1, 48)
_STYLE = st.sampled_from(["float", "2 decimals", "0.1 grid", "0.5 grid"])


@st.composite
def polygon_sets(draw: Any, outside: float = 0.0,
                 pixels: float = 0.0) -> tuple[list[list[float]], Frame]:
    """Polygons of 1 to 3 parts in an image of up to 48x48, drawn at its size or smaller;
    with ``outside``, vertices up to that many image sizes outside it, and ``pixels``
    more."""
    height, width = draw(_SIDE), draw(_SIDE)
    stored = (draw(st.integers(1, height)), draw(st.integers(1, width))) \
        if draw(st.booleans()) else (height, width)
    style = draw(_STYLE)
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        points = draw(st.integers(3, 12))
        coords = []
        for i in range(2 * points):
            size = width if i % 2 == 0 else height
            low, high = -outside * size - pixels, (1 + outside) * size + pixels
            v = draw(st.floats(low, high))
            if style == "2 decimals":
                v = round(v, 2)
            elif style != "float":
                step = 0.1 if style == "0.1 grid" else 0.5
                v = round(v / step) * step
            coords.append(min(max(v, low), high))
        parts.append(coords)
    return parts, Frame(height, width, *stored)


@settings(max_examples=400, deadline=None)
@given(polygon_sets())
def test_random_polygons_agree(case: tuple[list[list[float]], Frame]) -> None:
    parts, frame = case
    assert_agrees(masks.polygon_mask(parts, frame), reference_polygons(parts, frame))


@settings(max_examples=300, deadline=None)
@given(polygon_sets(pixels=1.0))
def test_random_polygons_reaching_a_pixel_outside_the_image_agree_when_strict(
        case: tuple[list[list[float]], Frame]) -> None:
    parts, frame = case
    assert_agrees(masks.polygon_mask(parts, frame), reference_polygons(parts, frame))


@settings(max_examples=300, deadline=None)
@given(polygon_sets(outside=0.5))
def test_random_polygons_reaching_outside_the_image_agree_in_lenient_mode(
        case: tuple[list[list[float]], Frame]) -> None:
    parts, frame = case
    got = masks.polygon_mask(parts, frame, strict=False)
    assert_agrees(got, reference_polygons(parts, frame))


def test_a_polygon_walked_in_many_pieces_agrees() -> None:
    """A zigzag of 300 edges across a 640x480 image: a walk of 900,000 points."""
    xs = np.where(np.arange(300) % 2 == 0, 0.5, 639.5)
    ys = np.linspace(1, 479, 300).round(2)
    parts = [np.stack([xs, ys], axis=1).ravel().tolist()]
    frame = Frame(480, 640)
    assert_agrees(masks.polygon_mask(parts, frame), reference_polygons(parts, frame))


@settings(max_examples=200, deadline=None)
@given(polygon_sets())
def test_random_yolo_polygons_agree_with_their_pixel_coordinates(
        case: tuple[list[list[float]], Frame]) -> None:
    parts, frame = case
    normalized = [v / (frame.width if i % 2 == 0 else frame.height)
                  for i, v in enumerate(parts[0])]
    pixels = [[v * (frame.width if i % 2 == 0 else frame.height)
               for i, v in enumerate(normalized)]]
    assert_agrees(masks.yolo_mask(normalized, frame), reference_polygons(pixels, frame))


# --- RLE --------------------------------------------------------------------------------

_MASKS = hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, max_side=48),
                    elements=st.integers(0, 1))


@settings(max_examples=300, deadline=None)
@given(_MASKS)
def test_rle_strings_are_pycocotools_own_both_ways(mask: np.ndarray) -> None:
    theirs = coco.encode(np.asfortranarray(mask))
    assert rle.counts_to_string(rle.encode(mask)) == theirs["counts"].decode("ascii")
    value = {"size": theirs["size"], "counts": theirs["counts"].decode("ascii")}
    assert_agrees(masks.rle_mask(value, Frame(*mask.shape)), coco.decode(theirs))


@settings(max_examples=200, deadline=None)
@given(_MASKS)
def test_uncompressed_rle_agrees(mask: np.ndarray) -> None:
    value = {"size": list(mask.shape), "counts": rle.encode(mask).tolist()}
    theirs = coco.decode(coco.frPyObjects(value, *mask.shape))
    assert_agrees(masks.coco_mask(value, Frame(*mask.shape)), theirs)


@settings(max_examples=150, deadline=None)
@given(st.lists(_MASKS, min_size=1, max_size=4), st.integers(1, 48), st.integers(1, 48))
def test_lists_of_rles_agree_with_merge(shapes: list[np.ndarray], height: int,
                                       width: int) -> None:
    parts = [np.resize(m, (height, width)) for m in shapes]
    rles = [coco.encode(np.asfortranarray(m)) for m in parts]
    value = [{"size": r["size"], "counts": r["counts"].decode("ascii")} for r in rles]
    assert_agrees(masks.coco_mask(value, Frame(height, width)),
                  coco.decode(coco.merge(rles)))


# --- a COCO instances file --------------------------------------------------------------

def _reference_png(annotation: dict[str, Any], height: int, width: int) -> bytes:
    """What create_coco_tf_record.py --include_masks writes for an annotation (both the
    Object Detection API's and the Model Garden's): frPyObjects, decode, the maximum
    over the parts unless a crowd, Pillow's PNG. pycocotools' frPyObjects takes only
    uncompressed RLE, so a compressed one is decoded as COCO's annToRLE does."""
    segmentation = annotation["segmentation"]
    compressed = (isinstance(segmentation, dict) and isinstance(segmentation["counts"], str)) \
        or (isinstance(segmentation, list) and isinstance(segmentation[0], dict))
    rles = segmentation if compressed else coco.frPyObjects(segmentation, height, width)
    binary_mask = coco.decode(rles)
    if binary_mask.ndim == 3 and not annotation["iscrowd"]:
        binary_mask = np.amax(binary_mask, axis=2)
    out = io.BytesIO()
    Image.fromarray(binary_mask).save(out, format="PNG")
    return out.getvalue()


def _pixels(data: bytes) -> tuple[str, np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        return im.mode, np.asarray(im)


_IMAGES = {image["id"]: image for image in INSTANCES["images"]}
_ANNOTATIONS = INSTANCES["annotations"]


@pytest.mark.parametrize("annotation", _ANNOTATIONS, ids=[str(a["id"]) for a in _ANNOTATIONS])
def test_coco_annotations_give_the_reference_scripts_png_pixels(
        annotation: dict[str, Any]) -> None:
    image = _IMAGES[annotation["image_id"]]
    frame = Frame(image["height"], image["width"])
    ours = _pixels(maskpng.encode(masks.coco_mask(annotation["segmentation"], frame)))
    theirs = _pixels(_reference_png(annotation, image["height"], image["width"]))
    assert ours[0] == theirs[0] == "L"
    assert_agrees(ours[1], theirs[1])


@pytest.mark.parametrize("annotation", _ANNOTATIONS, ids=[str(a["id"]) for a in _ANNOTATIONS])
def test_coco_annotations_agree_at_max_side_320(annotation: dict[str, Any]) -> None:
    image = _IMAGES[annotation["image_id"]]
    height, width = image["height"], image["width"]
    scale = min(1.0, 320 / max(height, width))
    frame = Frame(height, width, max(1, round(height * scale)), max(1, round(width * scale)))
    segmentation = annotation["segmentation"]
    got = masks.coco_mask(segmentation, frame)
    if isinstance(segmentation, list) and isinstance(segmentation[0], list):
        assert_agrees(got, reference_polygons(segmentation, frame))
    else:  # RLE: decoded at the original size, then resized nearest-neighbour
        full = coco.decode(segmentation if isinstance(segmentation, list)
                           else coco.frPyObjects(segmentation, height, width)
                           if isinstance(segmentation["counts"], list) else segmentation)
        assert_agrees(got, nearest(full.max(axis=2) if full.ndim == 3 else full, frame))
