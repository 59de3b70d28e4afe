"""The PNG writer of masks and label images (tfrecord_lite/maskpng.py): ordinary 8-bit
gray PNG files, with the pixels and checksums that decoders check, whatever the band of
nonzero rows; and the reader of stored masks."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tfrecord_lite import maskpng
from tfrecord_lite.errors import MaskError

from conftest import encode


def _chunks(data: bytes) -> dict[bytes, bytes]:
    """The chunks of a PNG file, each CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        body = data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks[kind] = chunks.get(kind, b"") + body
        at += 12 + length
    return chunks


def _check(array: np.ndarray, runs: bool = False) -> bytes:
    """Encode ``array`` and check the file every way a decoder would."""
    data = maskpng.encode(array, runs=runs)
    chunks = _chunks(data)
    assert list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    height, width = array.shape
    assert chunks[b"IHDR"] == struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.decompress(chunks[b"IDAT"])  # checks the Adler-32 too
    expected = np.zeros((height, width + 1), np.uint8)
    expected[:, 1:] = array
    assert rows == expected.tobytes()
    with Image.open(io.BytesIO(data)) as im:
        assert (im.mode, im.size) == ("L", (width, height))
        assert np.array_equal(np.asarray(im), array)
    assert np.array_equal(maskpng.decode(data), array)
    return data


@st.composite
def banded(draw: st.DrawFn) -> np.ndarray:
    """Arrays with a band of nonzero rows somewhere (or none), as masks are."""
    height, width = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    top = draw(st.integers(0, height))
    bottom = draw(st.integers(top, height))
    array = np.zeros((height, width), np.uint8)
    seed = draw(st.integers(0, 2**32 - 1))
    values = draw(st.sampled_from([1, 255, 21]))
    rng = np.random.default_rng(seed)
    array[top:bottom] = rng.integers(0, values + 1, (bottom - top, width), dtype=np.uint8)
    return array


@settings(max_examples=300, deadline=None)
@given(banded(), st.booleans())
def test_any_band_of_rows_gives_a_valid_png_of_the_same_pixels(array: np.ndarray,
                                                               runs: bool) -> None:
    _check(array, runs)


@pytest.mark.parametrize("runs", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1), (480, 640)])
@pytest.mark.parametrize("fill", ["zeros", "ones", "last row", "first row"])
def test_edge_cases_of_size_and_band(shape: tuple[int, int], fill: str, runs: bool) -> None:
    array = np.zeros(shape, np.uint8)
    if fill == "ones":
        array[:] = 1
    elif fill == "last row":
        array[-1, -1] = 1
    elif fill == "first row":
        array[0, 0] = 1
    _check(array, runs)


def test_zero_runs_longer_than_the_largest_piece() -> None:
    """3 MiB of zero rows above and below one pixel: the 1 MiB piece, repeated."""
    array = np.zeros((4001, 1600), np.uint8)
    array[2000, 800] = 1
    data = _check(array)
    assert len(data) < 20_000


@pytest.mark.parametrize("runs", [False, True])
def test_masks_are_as_small_as_pillows_within_a_fifth(runs: bool) -> None:
    yy, xx = np.mgrid[0:480, 0:640]
    mask = (((xx - 300) / 90) ** 2 + ((yy - 200) / 60) ** 2 <= 1).astype(np.uint8)
    ours = len(maskpng.encode(mask, runs=runs))
    pillows = len(encode(Image.fromarray(mask), "PNG"))
    assert ours < 1.2 * pillows, (ours, pillows)


def test_the_run_length_strategy_is_what_masks_get_and_label_images_do_not() -> None:
    """(Its bytes differ from the default strategy's; the pixels are the same.)"""
    from tfrecord_lite import item_masks, labels
    from tfrecord_lite.masks import Frame

    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 5:50] = 1
    rect = [[5, 10, 50, 10, 50, 30, 5, 30]]
    item = item_masks.make({"id": "a", "object": {"mask": [rect]}}, Frame(48, 64),
                           lambda path: b"")
    assert item["object"]["mask"] == [maskpng.encode(mask, runs=True)]
    assert maskpng.encode(mask, runs=True) != maskpng.encode(mask)
    stored = labels.label_png(encode(Image.fromarray(mask * 7).convert("P"), "PNG"),
                              Frame(48, 64))
    assert stored == maskpng.encode(mask * 7)


def test_only_2d_uint8_arrays_are_encoded() -> None:
    for bad in (np.zeros((3, 3), np.int64), np.zeros((3, 3, 1), np.uint8),
                np.zeros((0, 3), np.uint8)):
        with pytest.raises(ValueError, match="2-D uint8"):
            maskpng.encode(bad)


def test_decoding_refuses_what_is_not_an_8_bit_gray_png() -> None:
    with pytest.raises(MaskError, match="object 2: expected an 8-bit gray PNG, got PNG RGB"):
        maskpng.decode(encode(Image.new("RGB", (2, 2)), "PNG"), where="object 2")
    with pytest.raises(MaskError, match="does not decode as PNG") as info:
        maskpng.decode(b"\x89PNG\r\n\x1a\n broken")
    assert info.value.reason == "not an image"
