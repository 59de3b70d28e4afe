from __future__ import annotations

import importlib.util
import io
import random
import zlib
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from tfrecord_lite import ImageError, images
from tfrecord_lite.images import ImageOptions, jpeg_info, prepare, read_size_from_file, sniff

from conftest import DEMO, KINDS, ROOT, encode, make_image_bytes

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


def test_read_size_from_file(image_file) -> None:  # type: ignore[no-untyped-def]
    assert read_size_from_file(image_file("jpeg-rgb")) == (64, 48, "JPEG")
    assert read_size_from_file(image_file("png-gray")) == (64, 48, "PNG")
    with pytest.raises(ImageError):
        read_size_from_file(image_file(b"nope"))


# --- the Wuffs PNG decoder (the [png] extra) against Pillow's --------------------------

def _png_with_chunks(image: Image.Image, **kwargs: object) -> bytes:
    return encode(image, "PNG", **kwargs)


def _fast_png_cases() -> dict[str, bytes]:
    rgb = Image.fromarray(np.random.default_rng(3).integers(0, 256, (37, 53, 3), np.uint8))
    rgba = np.dstack([np.asarray(rgb), np.arange(37 * 53, dtype=np.uint8).reshape(37, 53)])
    rgba[:5, :, 3] = 0  # fully transparent rows keep their colors
    return {
        "rgb": make_image_bytes("png-rgb"),
        "rgba": make_image_bytes("png-rgba"),
        "rgba-transparent": _png_with_chunks(Image.fromarray(rgba, "RGBA")),
        "rgb-icc-phys": _png_with_chunks(rgb, icc_profile=b"not applied" * 10, dpi=(300, 300)),
        "1x1": _png_with_chunks(Image.new("RGB", (1, 1), (9, 200, 31))),
        "photo": _png_with_chunks(Image.open(DEMO / "images" / "astronaut.jpg")),
    }


def _prepare_both(data: bytes, monkeypatch: pytest.MonkeyPatch,
                  options: ImageOptions | None = None) -> tuple[object, object]:
    """prepare() with Wuffs, then with Pillow alone: the stored bytes or the error reason."""
    options = options or ImageOptions()
    outcomes = []
    for config in (_WUFFS, None):
        monkeypatch.setattr(images, "_wuffs_config", config)
        try:
            outcomes.append(prepare(data, options).data)
        except ImageError as exc:
            outcomes.append(exc.reason)
    return outcomes[0], outcomes[1]


# As imported: the tests switch these off and on.
_WUFFS = images._wuffs_config
needs_wuffs = pytest.mark.skipif(
    _WUFFS is None, reason="pywuffs (the png extra) not installed; to run these: `make test "
    "EXTRAS=png` or `pip install '.[png]'` (built from source: needs a C++ compiler)")


@needs_wuffs
@pytest.mark.parametrize("case", sorted(_fast_png_cases()))
def test_fast_png_decoder_stores_the_same_bytes_as_pillow(
        case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _fast_png_cases()[case]
    assert images._decode_png_fast(data) is not None  # the fast path was taken
    fast, pillow = _prepare_both(data, monkeypatch)
    assert isinstance(fast, bytes) and fast == pillow
    fast, pillow = _prepare_both(data, monkeypatch, ImageOptions(max_side=20, quality=80))
    assert isinstance(fast, bytes) and fast == pillow


@needs_wuffs
@pytest.mark.parametrize("kind", ["png-palette", "png-gray", "png-16bit"])
def test_other_pngs_are_left_to_pillow(kind: str) -> None:
    assert images._decode_png_fast(make_image_bytes(kind)) is None


@needs_wuffs
def test_interlaced_png_is_left_to_pillow() -> None:
    data = bytearray(make_image_bytes("png-rgb"))
    data[28] = 1  # IHDR interlace method: Adam7
    assert images._decode_png_fast(bytes(data)) is None


@needs_wuffs
def test_rgb_png_with_a_transparent_color_is_left_to_pillow(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Wuffs turns the pixels of a tRNS color black; Pillow keeps their color.
    rgb = Image.fromarray(np.random.default_rng(5).integers(0, 256, (20, 30, 3), np.uint8))
    data = _png_with_chunks(rgb, transparency=tuple(np.asarray(rgb)[0, 0].tolist()))
    assert images._decode_png_fast(data) is None
    fast, pillow = _prepare_both(data, monkeypatch)
    assert isinstance(fast, bytes) and fast == pillow


def _fix_crcs(data: bytes) -> bytes:
    out, pos = bytearray(data), 8
    while pos + 12 <= len(out):
        length = int.from_bytes(out[pos:pos + 4], "big")
        end = pos + 8 + length
        if end + 4 > len(out):
            break
        out[end:end + 4] = zlib.crc32(bytes(out[pos + 4:end])).to_bytes(4, "big")
        pos = end + 4
    return bytes(out)


@needs_wuffs
@pytest.mark.parametrize("fix_crcs", [False, True], ids=["plain", "crc-fixed"])
def test_damaged_pngs_get_the_same_verdict_from_both_decoders(
        fix_crcs: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # Random damage to the pixel data and headers; with fixed CRCs the damage reaches the
    # decoders instead of failing the CRC check, so the zlib stream itself is judged.
    rng = random.Random(11)
    verdicts = set()
    for kind in ("png-rgb", "png-rgba"):
        base = make_image_bytes(kind, width=40, height=30)
        for _ in range(150):
            data = bytearray(base)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(16, len(data) - 12)] = rng.randrange(256)
            damaged = _fix_crcs(bytes(data)) if fix_crcs else bytes(data)
            monkeypatch.setattr(images, "_wuffs_config", _WUFFS)
            decoded = images._decode_png_fast(damaged) is not None
            fast, pillow = _prepare_both(damaged, monkeypatch)
            assert fast == pillow
            verdicts.add((decoded, isinstance(fast, bytes)))
    # Seen: damage Wuffs decodes, damage only Pillow passes, damage that fails both.
    assert verdicts == {(True, True), (False, True), (False, False)}


def _benchmark_photos(tmp_path: Path, count: int) -> list[bytes]:
    """``count`` 640x480 PNG crops of the demo photos, as ``make bench`` makes them."""
    spec = importlib.util.spec_from_file_location("photos", ROOT / "benchmarks" / "photos.py")
    assert spec is not None and spec.loader is not None
    photos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(photos)
    return [Path(item["filename"]).read_bytes()
            for item in photos.make_photos(tmp_path, count, "PNG")]


@needs_wuffs
def test_wuffs_stores_the_corpus_as_pillow_does(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Every PNG kind of the test corpus, the demo's gray camera.png and the benchmark's
    # photos: the same stored bytes with and without the png extra; the photos take Wuffs.
    corpus = {kind: make_image_bytes(kind) for kind in KINDS if kind.startswith("png")}
    corpus["camera.png"] = (DEMO / "images" / "camera.png").read_bytes()
    photos = _benchmark_photos(tmp_path, 3)
    corpus.update((f"photo {i}", data) for i, data in enumerate(photos))
    for name, data in corpus.items():
        monkeypatch.setattr(images, "_wuffs_config", _WUFFS)
        fast = images._decode_png_fast(data) is not None
        assert fast == (name in ("png-rgb", "png-rgba") or name.startswith("photo")), name
        wuffs, pillow = _prepare_both(data, monkeypatch)
        assert isinstance(wuffs, bytes) and wuffs == pillow, name


@needs_wuffs
def test_very_large_pngs_are_left_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_image_bytes("png-rgb")  # 64x48
    assert images._decode_png_fast(data) is not None
    monkeypatch.setattr(images, "_FAST_PNG_MAX_PIXELS", 64 * 48 - 1)
    assert images._decode_png_fast(data) is None


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
    assert info is not None and images.jpeg_damage(data, info) is None
    assert prepare(data).data == data


def test_version_names_the_jpeg_check() -> None:
    assert images.decoders().startswith(f"JPEG check: simplejpeg {simplejpeg.__version__}; ")


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
