"""Instance masks and label images (tfrecord_lite/masks.py, polygons.py, rle.py, labels.py),
on their own: forms, errors, sizes, PNG bytes and memory. Agreement with pycocotools is
in test_masks_pycocotools.py."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from tfrecord_lite import labels, maskpng, masks, rle
from tfrecord_lite.errors import MaskError
from tfrecord_lite.masks import Frame

from conftest import encode

FRAME = Frame(30, 40)
RECT = [[5, 3, 20, 3, 20, 9, 5, 9]]


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    """A PNG of ``array``'s values, as gray (by default), palette indices ("P") or 1-bit."""
    if mode == "P":
        return _palette_png(array)
    im = Image.fromarray(array)
    return encode(im if mode is None else im.convert(mode), "PNG")


def _raises(reason: str, *texts: str) -> Any:
    """pytest.raises(MaskError) that also checks the reason and the message's words."""
    class _Check:
        def __enter__(self) -> None:
            self.ctx = pytest.raises(MaskError)
            self.info = self.ctx.__enter__()

        def __exit__(self, *exc: Any) -> bool:
            handled = self.ctx.__exit__(*exc)
            assert self.info.value.reason == reason, str(self.info.value)
            for text in texts:
                assert text in str(self.info.value)
            return bool(handled)
    return _Check()


# --- polygons ---------------------------------------------------------------------------

def test_a_rectangle_on_whole_pixels_covers_exactly_its_pixels() -> None:
    mask = masks.polygon_mask(RECT, FRAME)
    expected = np.zeros((30, 40), np.uint8)
    expected[3:9, 5:20] = 1
    assert mask.dtype == np.uint8 and mask.flags.c_contiguous
    assert np.array_equal(mask, expected)


def test_parts_of_one_object_are_joined_not_cancelled() -> None:
    mask = masks.polygon_mask([[0, 0, 10, 0, 10, 10, 0, 10], [5, 5, 15, 5, 15, 15, 5, 15]],
                              FRAME)
    assert mask[7, 7] == 1 and mask.sum() == 100 + 100 - 25


def test_a_polygon_is_drawn_at_the_stored_size_from_its_scaled_coordinates() -> None:
    frame = Frame(30, 40, 15, 20)
    mask = masks.polygon_mask(RECT, frame)
    expected = np.zeros((15, 20), np.uint8)
    # Pixels whose centres lie in [2.5, 10] x [1.5, 4.5], the rectangle at half size; a
    # centre on the top or left edge is outside, one on the bottom or right edge inside.
    expected[2:5, 3:10] = 1
    assert np.array_equal(mask, expected)


@pytest.mark.parametrize(("value", "reason", "text"), [
    ([], "not a polygon", "got an empty list"),
    ({"x": 1}, "not a polygon", "got dict"),
    ([[1, 2, 3, 4, 5, 6], "1 2 3"], "not a polygon", "polygon 1: expected a list"),
    ([[1, 2, 3, 4, 5]], "not a polygon", "5 numbers, not x, y pairs"),
    ([[1, 2, 3, 4]], "too few points", "2 points; a polygon needs at least 3"),
    ([[1, 2, 3, "four", 5, 6]], "not a polygon", "expected numbers"),
    ([[[1, 2], [3, 4], [5, 6]]], "not a polygon", "expected a flat list"),
    ([[1, 2, 3, float("nan"), 5, 6]], "not a polygon", "not a finite number"),
    ([[1, 2, 3, 4, 41.5, 6]], "out of range", "polygon 0, point 2 (x=41.5, y=6) lies outside the "
                                            "image, 40x30 pixels"),
    ([[0, 0, 40, 0, 40, -1.5]], "out of range", "point 2 (x=40, y=-1.5)"),
    ([[0, 0, 41.5, 0, 40, 10]], "out of range", "--validation lenient draws the part inside"),
])
def test_bad_polygons_are_refused_naming_where_and_what(value: Any, reason: str,
                                                        text: str) -> None:
    with _raises(reason, "object 3: object/mask: ", text):
        masks.polygon_mask(value, FRAME, where="object 3: object/mask")


def test_vertices_on_the_image_border_are_inside() -> None:
    assert masks.polygon_mask([[0, 0, 40, 0, 40, 30, 0, 30]], FRAME).all()


def test_vertices_within_a_pixel_outside_are_drawn_cut_to_the_image_even_when_strict(
        ) -> None:
    mask = masks.polygon_mask([[-0.3, -1, 40.3, -0.5, 41, 30.7, -1, 31]], FRAME)
    assert mask.all()
    yolo = masks.yolo_mask([-0.01, 0.1, 1.02, 0.1, 1.02, 1.03], FRAME)  # 0.8, 0.9 px
    assert yolo[3:, 39].all() and yolo.any(axis=1)[3:].all()


def test_lenient_mode_cuts_what_lies_outside_but_refuses_the_far_away() -> None:
    mask = masks.polygon_mask([[-10, -10, 50, -10, 50, 40, -10, 40]], FRAME, strict=False)
    assert mask.all()
    with _raises("out of range", "point 1 (x=81.5, y=0) lies far outside"):
        masks.polygon_mask([[0, 0, 81.5, 0, 0, 10]], FRAME, strict=False)


def test_yolo_polygons_are_normalized_coordinates_of_the_image() -> None:
    yolo = [5 / 40, 3 / 30, 20 / 40, 3 / 30, 20 / 40, 9 / 30, 5 / 40, 9 / 30]
    assert np.array_equal(masks.yolo_mask(yolo, FRAME), masks.polygon_mask(RECT, FRAME))
    small = Frame(30, 40, 15, 20)
    assert np.array_equal(masks.yolo_mask(yolo, small), masks.polygon_mask(RECT, small))
    with _raises("out of range", "line 4: polygon 0, point 1 (x=1.2, y=0.5) lies outside the "
                                 "image, 1x1 (normalized)"):
        masks.yolo_mask([0.1, 0.1, 1.2, 0.5, 0.3, 0.9], FRAME, where="line 4")
    with _raises("too few points"):
        masks.yolo_mask([0.1, 0.1, 0.5, 0.5], FRAME)


# --- RLE --------------------------------------------------------------------------------

def _as_pillow_resizes(got: np.ndarray, source: np.ndarray) -> None:
    """``got`` is ``source`` resized nearest-neighbour as Pillow does it, but where a
    stored pixel's centre falls on the line between two source pixels: there Pillow's
    floating point goes either way, and ``Frame`` takes the lower or right one."""
    (height, width), (stored_height, stored_width) = source.shape, got.shape
    pillow = np.asarray(Image.fromarray(source).resize((stored_width, stored_height),
                                                       Image.Resampling.NEAREST))
    row_ties = (np.arange(stored_height) * 2 + 1) * height % (2 * stored_height) == 0
    col_ties = (np.arange(stored_width) * 2 + 1) * width % (2 * stored_width) == 0
    clear = ~(row_ties[:, np.newaxis] | col_ties)
    assert np.array_equal(got[clear], pillow[clear])


def test_nearest_neighbour_takes_the_pixel_under_each_centre_the_lower_at_a_tie() -> None:
    frame = Frame(30, 40, 11, 17)
    # Stored row 5's centre is 5.5 * 30 / 11 = 15 exactly: the line between rows 14 and 15.
    assert frame.rows().tolist() == [1, 4, 6, 9, 12, 15, 17, 20, 23, 25, 28]
    assert frame.cols().tolist()[:4] == [1, 3, 5, 8]
    assert Frame(3, 4).rows().tolist() == [0, 1, 2]
    assert Frame(3, 4, 6, 8).rows().tolist() == [0, 0, 1, 1, 2, 2]


def _rle(mask: np.ndarray, compressed: bool) -> dict[str, Any]:
    counts = rle.encode(mask)
    return {"size": list(mask.shape),
            "counts": rle.counts_to_string(counts) if compressed else counts.tolist()}


def test_rle_counts_run_down_the_columns_starting_with_zeros() -> None:
    mask = np.array([[1, 1, 0], [1, 0, 0]], np.uint8)
    assert rle.encode(mask).tolist() == [0, 3, 3]
    assert np.array_equal(rle.decode([0, 3, 3], 2, 3), mask)
    assert np.array_equal(masks.rle_mask({"size": [2, 3], "counts": [0, 3, 3]}, Frame(2, 3)),
                          mask)


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
                  elements=st.integers(0, 1)), st.booleans())
def test_rle_round_trips_in_both_forms(mask: np.ndarray, compressed: bool) -> None:
    value = _rle(mask, compressed)
    assert np.array_equal(masks.rle_mask(value, Frame(*mask.shape)), mask)
    assert np.array_equal(rle.counts_from_string(rle.counts_to_string(rle.encode(mask))),
                          rle.encode(mask))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(1, 60), st.integers(1, 60),
       st.randoms(use_true_random=False))
def test_rle_is_sampled_at_the_stored_size_as_pillow_resizes_nearest(
        height: int, width: int, stored_height: int, stored_width: int, rand: Any) -> None:
    mask = (np.array([[rand.random() for _ in range(width)] for _ in range(height)])
            < rand.random()).astype(np.uint8)
    got = masks.rle_mask(_rle(mask, True), Frame(height, width, stored_height, stored_width))
    _as_pillow_resizes(got, mask)


def test_a_list_of_rles_is_joined() -> None:
    a, b = np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.uint8)
    a[0:2, 0:2], b[1:3, 1:4] = 1, 1
    got = masks.rle_mask([_rle(a, True), _rle(b, False)], Frame(4, 5))
    assert np.array_equal(got, a | b)
    assert np.array_equal(masks.coco_mask([_rle(a, True), _rle(b, True)], Frame(4, 5)), a | b)


@pytest.mark.parametrize(("value", "reason", "text"), [
    ({"size": [30, 41], "counts": [1200]}, "rle size",
     "RLE size [30, 41] (height, width) is not the image's [30, 40]"),
    ({"size": [40, 30], "counts": [1200]}, "rle size", "is not the image's"),
    ({"size": [30, 40], "counts": [1000, 100]}, "corrupt rle",
     "RLE counts add up to 1,100 pixels, not the 30x40 = 1,200"),
    ({"size": [30, 40], "counts": [1300, -100]}, "corrupt rle", "RLE count -100 is negative"),
    ({"size": [30, 40], "counts": [1000.5, 199.5]}, "corrupt rle", "whole numbers"),
    ({"size": [30, 40], "counts": ["a"]}, "corrupt rle", "whole numbers"),
    ({"size": [30, 40], "counts": 1200}, "corrupt rle", "got int"),
    ({"size": "30x40", "counts": [1200]}, "corrupt rle", "size must be [height, width]"),
    ({"counts": [1200]}, "corrupt rle", "expected an RLE"),
    ({"size": [30, 40], "counts": "PQ0 1"}, "corrupt rle", "character b' ' at 3"),
    ({"size": [30, 40], "counts": "PQ0é"}, "corrupt rle", "characters other than"),
    ({"size": [30, 40], "counts": "PQ0Q"}, "corrupt rle", "ends inside a number"),
    ({"size": [30, 40], "counts": "0" * 3 + "o" * 8 + "0"}, "corrupt rle", "too large"),
    ({"size": [30, 40], "counts": "0"}, "corrupt rle", "add up to 0 pixels"),
    ([], "not a polygon", "got an empty list"),
])
def test_bad_rles_are_refused_naming_where_and_what(value: Any, reason: str,
                                                    text: str) -> None:
    with _raises(reason, "object 0: ", text):
        masks.coco_mask(value, FRAME, where="object 0")


def test_a_compressed_rle_with_more_runs_than_pixels_is_refused_before_it_is_decoded(
        ) -> None:
    long = {"size": [30, 40], "counts": "0" * 2_000_000}
    tracemalloc.start()
    try:
        with _raises("corrupt rle", "object 2: ", "more than the 1,201 runs"):
            masks.coco_mask(long, FRAME, where="object 2")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000, peak  # the string is not copied, nor made into arrays
    few = {"size": [30, 40], "counts": "0" * 1202}  # short enough to count its runs
    with _raises("corrupt rle", "the string holds 1,202 counts, more than the 1,201"):
        masks.coco_mask(few, FRAME, where="object 2")


def test_decoding_a_compressed_rle_takes_a_few_bytes_a_character() -> None:
    mask = np.zeros((1000, 1000), np.uint8)
    mask[::2] = 1  # a run of one pixel each: a count or two a character
    text = rle.counts_to_string(rle.encode(mask))
    tracemalloc.start()
    try:
        counts = rle.counts_from_string(text, max_runs=mask.size + 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(counts, rle.encode(mask))
    assert peak < 32 * len(text), (peak, len(text))


def test_the_compressed_form_accepts_bytes_as_pycocotools_returns_them() -> None:
    mask = np.eye(6, dtype=np.uint8)
    text = rle.counts_to_string(rle.encode(mask))
    got = masks.rle_mask({"size": [6, 6], "counts": text.encode()}, Frame(6, 6))
    assert np.array_equal(got, mask)


# --- mask images ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["L", "P", "1", "I;16"])
def test_a_mask_image_is_one_where_nonzero(mode: str) -> None:
    pixels = np.zeros((30, 40), np.uint8)
    pixels[5:10, 8:20] = 255
    pixels[20:25, 1:3] = 7 if mode != "1" else 255
    if mode == "I;16":
        data = encode(Image.fromarray(pixels.astype(np.uint16) * 200), "PNG")
    else:
        data = _png(pixels, mode)
    assert np.array_equal(masks.image_mask(data, FRAME), (pixels != 0).astype(np.uint8))


def test_a_mask_image_is_resized_nearest_neighbour() -> None:
    pixels = (np.random.default_rng(1).random((30, 40)) < 0.3).astype(np.uint8)
    got = masks.image_mask(_png(pixels), Frame(30, 40, 11, 17))
    _as_pillow_resizes(got, pixels)


def test_bad_mask_images_are_refused() -> None:
    rgb = np.zeros((30, 40, 3), np.uint8)
    with _raises("channels", "mask.png: the mask image has 3 channels (RGB)"):
        masks.image_mask(_png(rgb), FRAME, where="mask.png")
    with _raises("size", "the mask image is 41x30, the image 40x30"):
        masks.image_mask(_png(np.zeros((30, 41), np.uint8)), FRAME)
    with _raises("not an image", "is not an image Pillow reads"):
        masks.image_mask(b"not an image at all", FRAME)
    noise = np.random.default_rng(2).integers(0, 2, (30, 40), dtype=np.uint8)
    with _raises("not an image", "does not decode"):
        masks.image_mask(_png(noise)[:-40], FRAME)


# --- label images -----------------------------------------------------------------------

def _voc_label(height: int = 30, width: int = 40) -> np.ndarray:
    ids = np.zeros((height, width), np.uint8)
    ids[5:20, 5:25] = 15  # person
    ids[4, 4:26] = ids[20, 4:26] = 255  # boundary
    ids[22:28, 30:38] = 7
    return ids


def _palette_png(ids: np.ndarray) -> bytes:
    im = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.tobytes())
    palette = np.zeros((256, 3), np.uint8)
    palette[15], palette[7], palette[255] = (192, 128, 128), (128, 128, 128), (224, 224, 192)
    im.putpalette(palette.ravel().tolist())
    return encode(im, "PNG")


def test_a_palette_label_image_gives_its_indices_with_255_kept() -> None:
    ids = _voc_label()
    stored = labels.label_png(_palette_png(ids), FRAME)
    assert maskpng.decode(stored).tolist() == ids.tolist()
    assert (stored[24], stored[25]) == (8, 0)


def test_an_8_bit_gray_label_png_is_stored_byte_for_byte() -> None:
    data = _png(_voc_label())
    assert labels.label_png(data, FRAME) is data


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_gray_label_pngs_of_fewer_bits_give_their_ids(bits: int) -> None:
    ids = (np.arange(30 * 40).reshape(30, 40) % (1 << bits)).astype(np.uint8)
    im = Image.fromarray(ids.astype(bool)) if bits == 1 else Image.fromarray(ids)
    data = encode(im, "PNG", **({} if bits == 1 else {"bits": bits}))
    assert data[24] == bits
    assert maskpng.decode(labels.label_png(data, FRAME)).tolist() == ids.tolist()


def test_a_16_bit_label_png_gives_its_ids_up_to_255() -> None:
    ids = _voc_label().astype(np.uint16)
    assert labels.label_ids(encode(Image.fromarray(ids), "PNG"), FRAME).tolist() == ids.tolist()
    ids[0, 0] = 300
    with _raises("class ids", "seg.png: the label image holds the id 300; ids must be 0 "):
        labels.label_ids(encode(Image.fromarray(ids), "PNG"), FRAME, where="seg.png")
    negative = _voc_label().astype(np.int32)
    negative[1, 1] = -1
    with _raises("class ids", "the label image holds the id -1"):
        labels.label_ids(encode(Image.fromarray(negative), "TIFF"), FRAME)


def test_a_label_image_is_resized_nearest_neighbour_for_max_side() -> None:
    ids = _voc_label()
    stored = labels.label_png(_palette_png(ids), Frame(30, 40, 11, 17))
    _as_pillow_resizes(maskpng.decode(stored), ids)
    assert set(np.unique(maskpng.decode(stored))) <= {0, 7, 15, 255}


def test_bad_label_images_are_refused() -> None:
    ids = _voc_label()
    with _raises("lossy label image", "seg.jpg: the label image is a JPEG file; a label "
                 "image must be lossless, a PNG (BMP, GIF, PPM, TIFF are taken too)"):
        labels.label_png(encode(Image.fromarray(ids), "JPEG"), FRAME, where="seg.jpg")
    with _raises("channels", "the label image has 3 channels (RGB)"):
        labels.label_png(_png(np.stack([ids] * 3, axis=-1)), FRAME)
    with _raises("size", "the label image is 40x30, the image 30x40"):
        labels.label_png(_png(ids), Frame(40, 30))
    with _raises("class ids", "floating-point pixels"):
        labels.label_png(encode(Image.fromarray(ids.astype(np.float32)), "TIFF"), FRAME)
    with _raises("not an image", "does not decode"):
        labels.label_png(_png(np.random.default_rng(3).integers(0, 21, (30, 40),
                                                               dtype=np.uint8))[:-60], FRAME)


# --- sizes and memory -------------------------------------------------------------------

def test_frames_default_to_the_original_size_and_refuse_empty_sizes() -> None:
    assert (Frame(3, 4).stored_height, Frame(3, 4).stored_width) == (3, 4)
    assert not Frame(3, 4).resized and Frame(3, 4, 2, 2).resized
    with pytest.raises(ValueError, match="at least 1x1"):
        Frame(0, 4)


def test_polygon_and_rle_masks_of_a_large_image_are_made_at_the_stored_size() -> None:
    """100 megapixels stored at 100x100: nothing of the original's size is allocated."""
    frame = Frame(10_000, 10_000, 100, 100)
    value = {"size": [10_000, 10_000], "counts": [10_000 * 5000, 10_000 * 5000]}
    tracemalloc.start()
    try:
        polygon = masks.polygon_mask([[1000, 1000, 9000, 1000, 9000, 9000, 1000, 9000]], frame)
        rle_half = masks.rle_mask(value, frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert polygon.shape == rle_half.shape == (100, 100)
    assert polygon.sum() == 80 * 80 and not rle_half[:, :50].any() and rle_half[:, 50:].all()
    assert peak < 2_000_000, f"{peak:,} bytes at the peak"


def test_a_polygon_of_many_long_edges_is_walked_a_piece_at_a_time() -> None:
    """2,000 edges across a 640x480 image (a walk of 6 million points): the points
    would take hundreds of MB at once."""
    xs = np.where(np.arange(2000) % 2 == 0, 0.0, 640.0)
    zigzag = np.stack([xs, np.linspace(0, 480, 2000)], axis=1).ravel().tolist()
    tracemalloc.start()
    try:
        mask = masks.polygon_mask([zigzag], Frame(480, 640))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0 < mask.sum() < mask.size
    assert peak < 15_000_000, f"{peak:,} bytes at the peak"
