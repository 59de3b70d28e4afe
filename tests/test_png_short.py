"""A PNG whose zlib stream ends, whole and checked, before the last row: Pillow would fill
the missing rows with black and say nothing, and tf.io.decode_png refuses the file. It
fails as truncated under strict validation, on either decode path, and is written with a
warning under lenient."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from tfrecord_lite import ImageError, png, read_examples
from tfrecord_lite.accelerators import chosen
from tfrecord_lite.cli import main
from tfrecord_lite.images import ImageOptions, prepare

from conftest import detection_item

WIDTH, HEIGHT = 160, 130  # over 128x128: the size the fast path takes in use


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_file(raw: bytes, width: int, height: int, interlace: int = 0) -> bytes:
    """An 8-bit RGB PNG whose image data is the zlib stream of ``raw`` (filtered rows)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def _rows(pixels: np.ndarray) -> bytes:
    """Each row with filter type 0 (None) in front."""
    return b"".join(b"\x00" + row.tobytes() for row in pixels)


def _photo(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    y, x, c = np.indices((height, width, 3))
    return ((x * 3 + y * 5 + c * 70) % 251 + 1).astype(np.uint8)  # no zero byte


def _half_rows_png() -> bytes:
    rows = _rows(_photo())
    return _png_file(rows[:len(rows) // 2 // (WIDTH * 3 + 1) * (WIDTH * 3 + 1)], WIDTH, HEIGHT)


def _decoders() -> list[object]:
    fast = png.FastPng(min_pixels=1)
    skip = pytest.mark.skipif(chosen().png.backend != "fast-png",
                              reason=f"fast-png is not in use here: {chosen().png.label}")
    return [pytest.param(png.PILLOW, id="Pillow"), pytest.param(fast, id="fast-png", marks=skip)]


@pytest.mark.parametrize("decoder", _decoders())
def test_a_png_ending_after_half_its_rows_is_truncated_under_strict(decoder: png.Decoder) -> None:
    with pytest.raises(ImageError) as caught:
        prepare(_half_rows_png(), ImageOptions(corrupt_data="fail"), "half.png",
                png_decoder=decoder)
    assert caught.value.reason == "truncated"
    assert str(caught.value) == ("half.png: truncated PNG file (the image data ends after 65 "
                                 "of 130 rows)")


@pytest.mark.parametrize("decoder", _decoders())
def test_a_png_ending_after_half_its_rows_is_stored_with_a_warning_under_lenient(
        decoder: png.Decoder) -> None:
    stored = prepare(_half_rows_png(), ImageOptions(corrupt_data="warn"), "half.png",
                     png_decoder=decoder)
    assert stored.warnings == ("half.png: truncated PNG file (the image data ends after 65 of "
                               "130 rows); stored anyway, the missing rows black (validation "
                               "is not strict)",)
    assert (stored.width, stored.height) == (WIDTH, HEIGHT)


@pytest.mark.parametrize("decoder", _decoders())
def test_a_whole_png_whose_last_rows_are_black_is_stored_as_it_is(decoder: png.Decoder) -> None:
    pixels = _photo()
    pixels[-3:] = 0  # what Pillow leaves in rows it never got, here drawn on purpose
    data = _png_file(_rows(pixels), WIDTH, HEIGHT)
    strict = prepare(data, ImageOptions(corrupt_data="fail"), png_decoder=decoder)
    assert strict.warnings == ()
    assert strict.data == prepare(data, png_decoder=png.PILLOW).data


def _adam7(pixels: np.ndarray) -> bytes:
    """The seven passes of an interlaced image, each row with filter type 0."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
              (1, 0, 2, 2), (0, 1, 1, 2))
    return b"".join(_rows(pixels[y::dy, x::dx]) for x, y, dx, dy in passes
                    if pixels[y::dy, x::dx].size)


def test_an_interlaced_png_missing_its_last_pass_is_truncated() -> None:
    pixels = _photo(37, 29)
    whole = _adam7(pixels)
    last_pass = len(_rows(pixels[1::2, :]))
    data = _png_file(whole[:-last_pass], 37, 29, interlace=1)
    with pytest.raises(ImageError, match=r"truncated PNG file \(the image data ends after "
                                         rf"{len(whole) - last_pass} of {len(whole)} bytes\)"):
        prepare(data, ImageOptions(corrupt_data="fail"))
    assert prepare(_png_file(whole, 37, 29, interlace=1)).warnings == ()


def _dataset(tmp_path: Path) -> str:
    (tmp_path / "half.png").write_bytes(_half_rows_png())
    (tmp_path / "whole.png").write_bytes(_png_file(_rows(_photo()), WIDTH, HEIGHT))
    items = [detection_item("half.png", "half"), detection_item("whole.png", "whole")]
    (tmp_path / "train.json").write_text(json.dumps(items))
    return "train.json"


def test_the_command_line_fails_the_short_png_and_writes_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    dataset = _dataset(tmp_path)
    assert main(["create", "--dataset_path", dataset, "--prefix", "train",
                 "--output_dir", "out", "--shards", "1"]) == 1
    failures = json.loads(Path("out/train.failures.json").read_text())
    assert [(f["id"], f["error_msg"]) for f in failures] == [
        ("half", "half.png: truncated PNG file (the image data ends after 65 of 130 rows)")]
    assert [e["id"] for e in read_examples("out/train-00000-of-00001")] == ["whole"]
    capsys.readouterr()
    # Lenient: written, with the warning in the summary.
    assert main(["create", "--dataset_path", dataset, "--prefix", "train",
                 "--output_dir", "out", "--shards", "1", "--validation", "lenient"]) == 0
    assert ("half.png: truncated PNG file (the image data ends after 65 of 130 rows); stored "
            "anyway") in capsys.readouterr().err
    assert len(list(read_examples("out/train-00000-of-00001"))) == 2
