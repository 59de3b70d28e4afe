from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from tfrecord_lite import ImageError, images, jpeg_check, write_dataset
from tfrecord_lite.accelerators import chosen
from tfrecord_lite.images import ImageOptions, prepare, read_size_from_file, sniff
from tfrecord_lite.jpeg import jpeg_info

from conftest import DEMO, KINDS, encode, make_image_bytes

CONVERTED = [k for k in KINDS if k not in ("jpeg-rgb", "jpeg-progressive")]


def _decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize("kind", ["jpeg-rgb", "jpeg-progressive"])
def test_three_channel_jpeg_is_stored_byte_for_byte(kind: str) -> None:
    data = make_image_bytes(kind)
    stored = prepare(data)
    assert stored.data == data
    assert (stored.width, stored.height, stored.format, stored.channels) == (64, 48, "JPEG", 3)


def test_real_photo_passthrough() -> None:
    data = (DEMO / "images" / "rocket.jpg").read_bytes()
    stored = prepare(data)
    assert stored.data is data or stored.data == data
    assert (stored.width, stored.height) == (640, 427)


@pytest.mark.parametrize("kind", CONVERTED)
def test_everything_else_becomes_rgb_jpeg(kind: str) -> None:
    data = make_image_bytes(kind)
    stored = prepare(data)
    assert stored.data != data
    im = _decode(stored.data)
    assert im.format == "JPEG" and im.mode == "RGB"
    assert (im.width, im.height) == (stored.width, stored.height) == (64, 48)
    original = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)
    if kind == "png-16bit":  # 16-bit values scaled to 8 bits, not clipped
        original = np.asarray(Image.open(io.BytesIO(data)), dtype=float)[..., None] / 257
    assert np.abs(np.asarray(im, dtype=float) - original).mean() < 6


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    arr = np.full((8, 8), 65535, dtype=np.uint16)
    arr[:4] = 32896  # 128 * 257
    stored = prepare(encode(Image.fromarray(arr), "PNG"))
    pixels = np.asarray(_decode(stored.data))
    assert abs(int(pixels[0, 0, 0]) - 128) <= 2 and pixels[7, 7, 0] >= 253


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), color) for color in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    pixels = np.asarray(_decode(prepare(buf.getvalue()).data))
    assert pixels[8, 8, 0] > 200 and pixels[8, 8, 2] < 60


def test_exif_orientation_is_not_applied() -> None:
    im = Image.fromarray(np.zeros((20, 40, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    data = encode(im, "JPEG", exif=exif.tobytes())
    stored = prepare(data)
    assert (stored.width, stored.height) == (40, 20) and stored.data == data


def test_quality_option() -> None:
    data = make_image_bytes("png-rgb", width=200, height=150)
    low, high = prepare(data, ImageOptions(quality=20)), prepare(data, ImageOptions(quality=98))
    assert len(low.data) < len(high.data)


@pytest.mark.parametrize("kind", ["jpeg-rgb", "png-rgb"])
def test_max_side_downscales(kind: str) -> None:
    data = make_image_bytes(kind, width=400, height=100)
    stored = prepare(data, ImageOptions(max_side=100))
    assert (stored.width, stored.height) == (100, 25)
    assert _decode(stored.data).size == (100, 25)
    small = make_image_bytes(kind, width=50, height=40)
    assert prepare(small, ImageOptions(max_side=100)).width == 50


def test_sniff_reads_content_not_names() -> None:
    assert sniff(make_image_bytes("png-rgb")) == "PNG"
    assert sniff(make_image_bytes("jpeg-rgb")) == "JPEG"
    assert sniff(make_image_bytes("webp")) == "WEBP"
    assert sniff(b"RIFF....WAVEfmt ") is None
    assert sniff(b"plain text") is None


def test_jpeg_info() -> None:
    info = jpeg_info(make_image_bytes("jpeg-cmyk"))
    assert info is not None and info.components == 4 and (info.width, info.height) == (64, 48)
    assert jpeg_info(b"\xff\xd8\xff\xe0\x00") is None


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"just some text, not an image", "not an image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00garbage", "corrupt"),
])
def test_bad_bytes_fail_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError) as info:
        prepare(data, where="/x/img.jpg")
    assert info.value.reason == reason
    assert "/x/img.jpg" in str(info.value)


@pytest.mark.parametrize("kind", ["jpeg-rgb", "png-rgb", "jpeg-gray"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_images_fail(kind: str, keep: float) -> None:
    data = make_image_bytes(kind, width=120, height=90)
    with pytest.raises(ImageError) as info:
        prepare(data[: int(len(data) * keep)])
    assert info.value.reason in ("truncated", "corrupt")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.99])
def test_truncated_jpeg_caught_even_without_decode_check(keep: float) -> None:
    data = (DEMO / "images" / "astronaut.jpg").read_bytes()
    with pytest.raises(ImageError, match="truncated"):
        prepare(data[: int(len(data) * keep)], ImageOptions(decode_check=False))


def test_decompression_bomb_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for kind in ("jpeg-rgb", "png-rgb"):  # 64x48 = 3072 > 2 * 1000
        with pytest.raises(ImageError) as info:
            prepare(make_image_bytes(kind))
        assert info.value.reason == "too large"


def _wide_png(width: int) -> bytes:
    return encode(Image.new("L", (width, 1), 200), "PNG")  # a few hundred bytes


def test_an_image_wider_than_jpeg_allows_fails_alone(tmp_path: Path) -> None:
    data = _wide_png(70_000)
    with pytest.raises(ImageError, match="at most 65,500 a side") as info:
        prepare(data)
    assert info.value.reason == "too large"
    stored = prepare(data, ImageOptions(max_side=1000))
    assert (stored.width, stored.height) == (1000, 1)
    # In a job: that item fails, the others are written.
    (tmp_path / "wide.png").write_bytes(data)
    (tmp_path / "ok.png").write_bytes(make_image_bytes("png-rgb"))
    items = [{"filename": str(tmp_path / name), "id": name, "class": {"label": 0, "text": "a"}}
             for name in ("wide.png", "ok.png")]
    summary = write_dataset(items, "t", tmp_path / "out", 1, 1, progress=False)
    assert (summary.written, summary.failed) == (1, 1)
    assert "65,500 a side" in summary.failures[0]["error_msg"]


def _jpeg_with_size(width: int, height: int) -> bytes:
    """A real JPEG whose frame header is then made to claim ``width`` x ``height``."""
    data = bytearray(encode(Image.new("L", (16, 8), 90), "JPEG"))
    info = jpeg_info(bytes(data))
    assert info is not None
    at = data.index(b"\xff\xc0") + 5  # SOF0: length, precision, then height and width
    data[at:at + 4] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize("size", [(65535, 2), (2, 65501)])
@pytest.mark.parametrize("check", [True, False], ids=["check", "no-check"])
def test_a_jpeg_wider_than_libjpeg_decodes_is_too_large(size: tuple[int, int],
                                                        check: bool) -> None:
    for options in (ImageOptions(decode_check=check), ImageOptions(max_side=1000)):
        with pytest.raises(ImageError, match="decodes at most 65,500 a side") as info:
            prepare(_jpeg_with_size(*size), options)
        assert info.value.reason == "too large"


def test_an_encoder_error_fails_the_item_not_the_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    # Past the size check, libjpeg itself refuses the image: still the item's failure.
    monkeypatch.setattr(images, "_JPEG_MAX_SIDE", 10**6)
    with pytest.raises(ImageError, match="cannot be stored as JPEG") as info:
        prepare(_wide_png(70_000), where="wide.png")
    assert str(info.value).startswith("wide.png: ")


def test_error_messages_name_no_memory_address() -> None:
    # Pillow names the in-memory file with its address; the failures file of a rerun
    # must read the same.
    messages = set()
    for _ in range(2):
        with pytest.raises(ImageError) as info:
            prepare(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, where="x.png")
        messages.add(str(info.value))
    (message,) = messages
    assert "0x" not in message and "object at" not in message, message


def test_read_size_from_file(image_file) -> None:  # type: ignore[no-untyped-def]
    assert read_size_from_file(image_file("jpeg-rgb")) == (64, 48, "JPEG")
    assert read_size_from_file(image_file("png-gray")) == (64, 48, "PNG")
    with pytest.raises(ImageError):
        read_size_from_file(image_file(b"nope"))


def _jpeg_bases() -> list[bytes]:
    photo = (DEMO / "images" / "rocket.jpg").read_bytes()
    im = Image.open(io.BytesIO(photo))
    return [photo, make_image_bytes("jpeg-rgb"), make_image_bytes("jpeg-progressive"),
            encode(im, "JPEG", quality=60, progressive=True),
            encode(im.resize((37, 29)), "JPEG", quality=95, subsampling=0),
            encode(im.resize((5, 3)), "JPEG")]


def _damage(rng: random.Random, base: bytes) -> bytes:
    data = bytearray(base)
    kind = rng.choice(("flip", "flip", "header", "cut", "cut-eoi", "insert", "delete"))
    if kind == "flip":
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(2, len(data))] = rng.randrange(256)
    elif kind == "header":  # the markers before the scan data
        data[rng.randrange(2, min(len(data), 700))] = rng.randrange(256)
    elif kind in ("cut", "cut-eoi"):
        del data[rng.randrange(2, len(data)):]
        if kind == "cut-eoi":
            data += b"\xff\xd9"
    elif kind == "insert":
        at = rng.randrange(2, len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    else:
        at = rng.randrange(2, len(data))
        del data[at:at + rng.randint(1, 8)]
    return bytes(data)


@pytest.mark.parametrize("index", range(6))
def test_jpeg_check_passes_good_jpegs(index: int) -> None:
    data = _jpeg_bases()[index]
    info = jpeg_info(data)
    assert info is not None and jpeg_check.jpeg_damage(data, info) is None
    assert prepare(data).data == data


def test_version_names_the_jpeg_check() -> None:
    assert f"JPEG check: simplejpeg {simplejpeg.__version__}; " in chosen().report()


def test_damaged_jpegs_strict_lenient_and_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    # The verdict is libjpeg's first warning, read past the harmless ones. Whatever
    # strict passes, Pillow decodes in full; whatever strict fails, lenient stores as is
    # (a 3-channel JPEG) with libjpeg's message as its warning.
    rng = random.Random(5)
    bases = _jpeg_bases()
    seen = set()
    for _ in range(600):
        data = _damage(rng, rng.choice(bases))
        info = jpeg_info(data)
        try:
            stored = prepare(data)
        except ImageError as exc:
            outcome = exc.reason
            if info is None or "not every pixel decodes" not in str(exc):
                seen.add("failed before the check")
                continue
            lenient = prepare(data, ImageOptions(corrupt_data="warn"))
            assert len(lenient.warnings) == 1 and str(exc) in lenient.warnings[0]
            if info.components == 3 and info.sof in (0xC0, 0xC1, 0xC2):
                assert lenient.data == data
        else:
            outcome = "passed"
            assert stored.warnings == () and stored.data == data
            _decode(data)  # Pillow decodes it in full, without an error
        seen.add(outcome)
    assert seen == {"passed", "truncated", "corrupt", "failed before the check"}
