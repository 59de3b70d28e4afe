"""The fast PNG path (tfrecord_lite/png.py) against Pillow's decoder: the same pixels,
the same stored bytes and the same verdicts, or the file is left to Pillow."""

from __future__ import annotations

import importlib.util
import io
import logging
import random
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_lite import ImageError, png
from tfrecord_lite.accelerators import chosen
from tfrecord_lite.images import ImageOptions, prepare

from conftest import DEMO, KINDS, ROOT, encode, make_image_bytes

if chosen().png.backend != "fast-png":  # pragma: no cover - without the fast-png extra
    pytest.skip(f"the fast PNG path is off here: {chosen().png.label}",
                allow_module_level=True)

COLOR_TYPES = {"L": 0, "LA": 4, "RGB": 2, "RGBA": 6}
# The tests' images are small; in use, PNGs under 128x128 go to Pillow.
FAST = png.FastPng(min_pixels=1)
if not FAST.ready():  # pragma: no cover
    pytest.skip(f"the fast PNG path does not load here: {FAST.why_not}",
                allow_module_level=True)
CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


# --- PNG files written here, with the row filters chosen row by row --------------------

def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filtered(pixels: np.ndarray, bpp: int, kinds: list[int]) -> bytes:
    """Rows of ``pixels`` (height x stride) filtered as PNG's encoder would: the forward
    direction, written from the specification, independent of the decoder under test."""
    out = bytearray()
    prev = [0] * pixels.shape[1]
    for row, kind in zip(pixels.tolist(), kinds):
        out.append(kind)
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind] if kind < 5 else 0
            out.append((x - predictor) & 0xFF)
        prev = row
    return bytes(out)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body)))


def _png(mode: str, pixels: np.ndarray, kinds: list[int], *, stream: bytes | None = None,
         idat_size: int = 0, before: bytes = b"", after: bytes = b"",
         interlace: int = 0) -> bytes:
    """A PNG file of ``pixels`` (height x width x channels) with the given row filters.

    ``stream`` replaces the zlib stream, ``idat_size`` splits it over IDAT chunks of that
    size, ``before`` and ``after`` are chunks placed around the image data."""
    height, width = pixels.shape[:2]
    bpp = CHANNELS[mode]
    rows = _filtered(pixels.reshape(height, width * bpp), bpp, kinds)
    stream = zlib.compress(rows) if stream is None else stream
    size = idat_size or len(stream) or 1
    idats = b"".join(_chunk(b"IDAT", stream[i:i + size]) for i in range(0, len(stream), size))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[mode], 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + before + idats + after
            + _chunk(b"IEND", b""))


def _pixels(mode: str, width: int, height: int, seed: int) -> np.ndarray:
    """Half noise, half smooth gradient: the filters' predictors all get chosen."""
    rng = np.random.default_rng(seed)
    shape = (height, width, CHANNELS[mode])
    noise = rng.integers(0, 256, shape, dtype=np.int64)
    y, x, ch = np.indices(shape)
    smooth = (x * 7 + y * 3 + ch * 50) % 256
    return np.where(rng.random(shape) < 0.5, noise, smooth).astype(np.uint8)


def _pillow(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _same_image(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("mode", sorted(COLOR_TYPES))
@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1), (13, 7), (64, 33)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_filter_type_gives_pillows_pixels(mode: str, size: tuple[int, int]) -> None:
    width, height = size
    rng = random.Random(f"{mode}{size}")
    for first in range(5):  # each filter type on the first row (nothing above it) too
        kinds = [first] + [rng.randrange(5) for _ in range(height - 1)]
        data = _png(mode, _pixels(mode, width, height, seed=first), kinds)
        fast = png.open_and_decode(data, FAST)
        assert fast is not None, kinds
        assert _same_image(fast, _pillow(data)), kinds


def test_the_image_data_over_many_chunks() -> None:
    data = _png("RGB", _pixels("RGB", 40, 30, seed=1), [4] * 30, idat_size=7)
    fast = png.open_and_decode(data, FAST)
    assert fast is not None and _same_image(fast, _pillow(data))


# --- prepare() stores the same bytes with and without the fast path ---------------------

def _prepare_both(data: bytes, options: ImageOptions | None = None) -> tuple[object, object]:
    """prepare() with the fast path, then with Pillow alone: the stored bytes or the
    error's reason."""
    options = options or ImageOptions()
    outcomes: list[object] = []
    for decoder in (FAST, png.PILLOW):
        try:
            outcomes.append(prepare(data, options, png_decoder=decoder).data)
        except ImageError as exc:
            outcomes.append(exc.reason)
    return outcomes[0], outcomes[1]


def _benchmark_photos(tmp_path: Path, count: int) -> list[bytes]:
    """``count`` 640x480 PNG crops of the demo photos, as ``make bench`` makes them."""
    spec = importlib.util.spec_from_file_location("photos", ROOT / "benchmarks" / "photos.py")
    assert spec is not None and spec.loader is not None
    photos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(photos)
    return [Path(item["filename"]).read_bytes()
            for item in photos.make_photos(tmp_path, count, "PNG")]


def _corpus(tmp_path: Path) -> dict[str, bytes]:
    rgb = Image.fromarray(np.random.default_rng(3).integers(0, 256, (37, 53, 3), np.uint8))
    rgba = np.dstack([np.asarray(rgb), np.arange(37 * 53, dtype=np.uint8).reshape(37, 53)])
    rgba[:5, :, 3] = 0  # fully transparent rows keep their colors
    corpus = {kind: make_image_bytes(kind) for kind in KINDS if kind.startswith("png")}
    corpus.update({
        "rgba-transparent": encode(Image.fromarray(rgba, "RGBA"), "PNG"),
        "rgb-trns": encode(rgb, "PNG", transparency=tuple(np.asarray(rgb)[0, 0].tolist())),
        "gray-trns": encode(rgb.convert("L"), "PNG", transparency=7),
        "gray-alpha": encode(Image.fromarray(rgba, "RGBA").convert("LA"), "PNG"),
        "rgb-icc-phys": encode(rgb, "PNG", icc_profile=b"not applied" * 10, dpi=(300, 300)),
        "1x1": encode(Image.new("RGB", (1, 1), (9, 200, 31)), "PNG"),
        "camera.png": (DEMO / "images" / "camera.png").read_bytes(),
        "astronaut": encode(Image.open(DEMO / "images" / "astronaut.jpg"), "PNG"),
    })
    corpus.update((f"photo {i}", data) for i, data in enumerate(_benchmark_photos(tmp_path, 3)))
    return corpus


# What the fast path leaves to Pillow in the corpus: palettes and 16-bit samples.
LEFT_TO_PILLOW = {"png-palette", "png-16bit"}


def test_the_corpus_is_stored_as_pillow_stores_it(tmp_path: Path) -> None:
    for name, data in _corpus(tmp_path).items():
        assert (png.open_and_decode(data, FAST) is None) == (name in LEFT_TO_PILLOW), name
        for options in (ImageOptions(), ImageOptions(max_side=20, quality=80)):
            fast, pillow = _prepare_both(data, options)
            assert isinstance(fast, bytes) and fast == pillow, name


class _Bits:
    """A deflate bit writer: fields least significant bit first, Huffman codes most."""

    def __init__(self) -> None:
        self.out, self.acc, self.count = bytearray(), 0, 0

    def put(self, value: int, bits: int) -> None:
        self.acc |= value << self.count
        self.count += bits
        while self.count >= 8:
            self.out.append(self.acc & 0xFF)
            self.acc >>= 8
            self.count -= 8

    def code(self, value: int, bits: int) -> None:
        self.put(int(format(value, f"0{bits}b")[::-1], 2), bits)

    def done(self) -> bytes:
        return bytes(self.out) + (bytes([self.acc]) if self.count else b"")


def _canonical(lengths: list[int]) -> list[int]:
    codes, code = [0] * len(lengths), 0
    for length in range(1, max(lengths) + 1):
        for symbol, n in enumerate(lengths):
            if n == length:
                codes[symbol] = code
                code += 1
        code <<= 1
    return codes


def _stream_with_too_many_codes(rows: bytes) -> bytes:
    """One dynamic block declaring 288 literal/length and 32 distance codes: RFC 1951
    allows 286 and 30, and zlib refuses it ("too many length or distance symbols");
    libdeflate, for one, inflates it."""
    lit, dist = [8] * 224 + [9] * 64, [5] * 32
    lengths = [0] * 19
    lengths[5], lengths[8], lengths[9] = 1, 2, 2
    order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    bits = _Bits()
    bits.put(1, 1)  # the last block
    bits.put(2, 2)  # dynamic Huffman codes
    bits.put(288 - 257, 5)
    bits.put(32 - 1, 5)
    bits.put(19 - 4, 4)
    for symbol in order:
        bits.put(lengths[symbol], 3)
    length_codes = _canonical(lengths)
    for n in lit + dist:
        bits.code(length_codes[n], lengths[n])
    lit_codes = _canonical(lit)
    for byte in rows + b"":
        bits.code(lit_codes[byte], lit[byte])
    bits.code(lit_codes[256], lit[256])
    return b"\x78\x9c" + bits.done() + struct.pack(">I", zlib.adler32(rows))


def _stream_with_distance_code_30(rows: bytes) -> bytes:
    """One fixed-Huffman block ending in a 3-byte match with distance code 30, which RFC
    1951 leaves undefined: zlib refuses it ("invalid distance code"); libdeflate, for one,
    reads it as 24,577 bytes back, the base of code 29 (so the rows hold more)."""
    fixed = [8] * 144 + [9] * 112 + [7] * 24 + [8] * 8
    codes = _canonical(fixed)
    bits = _Bits()
    bits.put(1, 1)
    bits.put(1, 2)  # fixed Huffman codes
    for byte in rows:
        bits.code(codes[byte], fixed[byte])
    bits.code(codes[257], fixed[257])  # a match of 3 bytes...
    bits.code(30, 5)  # ...at distance code 30
    bits.put(0, 13)
    bits.code(codes[256], fixed[256])
    back = len(rows) - 24577
    inflated = rows + rows[back:back + 3]  # as libdeflate has it; the checksum is of these
    return b"\x78\x01" + bits.done() + struct.pack(">I", zlib.adler32(inflated))


def _left_to_pillow_cases() -> dict[str, bytes]:
    pixels = _pixels("RGB", 20, 10, seed=2)
    rows = _filtered(pixels.reshape(10, 60), 3, [1] * 10)
    animated = io.BytesIO()
    first = Image.fromarray(pixels)
    first.save(animated, "PNG", save_all=True, append_images=[first.rotate(180)])
    return {
        "text after the image data": _png("RGB", pixels, [1] * 10,
                                          after=_chunk(b"tEXt", b"k\x00v")),
        "a row too many": _png("RGB", pixels, [1] * 10, stream=zlib.compress(rows + rows[:61])),
        "bad zlib checksum": _png("RGB", pixels, [1] * 10,
                                  stream=zlib.compress(rows)[:-1] + b"\x00"),
        "no zlib checksum": _png("RGB", pixels, [1] * 10, stream=zlib.compress(rows)[:-4]),
        "filter type 5": _png("RGB", pixels, [1, 1, 5] + [1] * 7),
        "interlaced": _png("RGB", pixels, [1] * 10, interlace=1),
        "animated": animated.getvalue(),
    }


@pytest.mark.parametrize("case", sorted(_left_to_pillow_cases()))
def test_other_pngs_are_left_to_pillow(case: str) -> None:
    data = _left_to_pillow_cases()[case]
    assert png.open_and_decode(data, FAST) is None
    fast, pillow = _prepare_both(data)
    assert fast == pillow


def test_bytes_after_the_zlib_stream_are_ignored_as_pillow_ignores_them() -> None:
    pixels = _pixels("RGB", 20, 10, seed=2)
    rows = _filtered(pixels.reshape(10, 60), 3, [4] * 10)
    data = _png("RGB", pixels, [4] * 10, stream=zlib.compress(rows) + b"\x00" * 9)
    fast = png.open_and_decode(data, FAST)
    assert fast is not None and _same_image(fast, _pillow(data))


def test_the_known_difference_streams_zlib_refuses_and_libdeflate_reads() -> None:
    # Deflate streams that break the format's limits as no encoder does: the fast path
    # stores them (libdeflate's reading), Pillow alone refuses them (zlib's). Documented
    # in png.py and the README; this test says when a libdeflate release changes it.
    pixels = _pixels("RGB", 20, 10, seed=2)
    rows = _filtered(pixels.reshape(10, 60), 3, [1] * 10)
    big = _pixels("RGB", 200, 60, seed=4)
    big_rows = _filtered(big.reshape(60, 600), 3, [0] * 60)
    for data in (_png("RGB", pixels, [1] * 10, stream=_stream_with_too_many_codes(rows)),
                 _png("RGB", big, [0] * 60,
                      stream=_stream_with_distance_code_30(big_rows[:-3]))):
        assert png.open_and_decode(data, FAST) is not None
        fast, pillow = _prepare_both(data)
        assert isinstance(fast, bytes) and pillow == "corrupt"


def test_very_large_pngs_are_left_to_pillow() -> None:
    data = make_image_bytes("png-rgb")  # 64x48
    assert png.open_and_decode(data, FAST) is not None
    assert png.open_and_decode(data, png.FastPng(min_pixels=1, max_pixels=64 * 48 - 1)) is None


def test_small_pngs_are_left_to_pillow_without_loading_numba() -> None:
    loads = []

    def load() -> png.Kernel:
        loads.append(1)
        return png._load_loop()

    decoder = png.FastPng(load=load)  # MIN_PIXELS as shipped
    assert png.open_and_decode(make_image_bytes("png-rgb", 127, 128), decoder) is None
    assert loads == []  # not even prepared
    assert png.open_and_decode(make_image_bytes("png-rgb", 128, 128), decoder) is not None
    assert loads == [1]


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


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("fix_crcs", [False, True], ids=["plain", "crc-fixed"])
def test_damaged_pngs_get_the_same_verdict_either_way(fix_crcs: bool) -> None:
    # Random damage to the headers and the image data; with fixed CRCs the damage gets
    # past Pillow's CRC check of the header chunks, so the zlib stream itself is judged.
    rng = random.Random(11)
    verdicts = set()
    for kind in ("png-rgb", "png-rgba", "png-gray"):
        base = make_image_bytes(kind, width=40, height=30)
        for _ in range(150):
            data = bytearray(base)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(16, len(data) - 12)] = rng.randrange(256)
            damaged = _fix_crcs(bytes(data)) if fix_crcs else bytes(data)
            try:
                taken = png.open_and_decode(damaged, FAST) is not None
            except Exception:  # Pillow's own refusal of the header, as before
                taken = False
            fast, pillow = _prepare_both(damaged)
            assert fast == pillow
            verdicts.add((taken, isinstance(fast, bytes)))
    # Seen: damage the fast path decodes (to Pillow's pixels), damage only Pillow
    # passes, damage both refuse; never damage the fast path passes and Pillow refuses.
    assert verdicts == {(True, True), (False, True), (False, False)}


# --- a broken install, threads ---------------------------------------------------------

def test_a_broken_numba_install_leaves_png_to_pillow(caplog: pytest.LogCaptureFixture) -> None:
    def load() -> png.Kernel:
        raise ImportError("numba: undefined symbol")

    decoder = png.FastPng(min_pixels=1, load=load)
    data = make_image_bytes("png-rgb")
    with caplog.at_level(logging.WARNING, logger="tfrecord_lite.png"):
        assert not decoder.ready()
        assert png.open_and_decode(data, decoder) is None
        assert png.open_and_decode(data, decoder) is None
    (message,) = [r.getMessage() for r in caplog.records]  # one warning, not one per file
    assert message.startswith("PNG files are decoded by Pillow alone: numba failed: numba: "
                              "undefined symbol (if its cache is damaged, delete the "
                              "_png_kernel.* files in ")
    assert decoder.why_not is not None and decoder.why_not.startswith("numba failed")
    _, pillow = _prepare_both(data)
    assert prepare(data, png_decoder=decoder).data == pillow


def test_a_loop_that_fails_when_first_called_leaves_png_to_pillow(
        caplog: pytest.LogCaptureFixture) -> None:
    # As numba does when its cache cannot be written (a full disk).
    def broken(*args: object) -> int:
        raise OSError(28, "No space left on device")

    decoder = png.FastPng(min_pixels=1, load=lambda: broken)
    with caplog.at_level(logging.WARNING, logger="tfrecord_lite.png"):
        assert not decoder.ready()
    assert "No space left on device" in caplog.text
    assert png.open_and_decode(make_image_bytes("png-rgb"), decoder) is None


def test_without_a_writable_cache_folder_the_loop_is_compiled_uncached(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # numba refuses cache=True where it can write nowhere (a read-only install without
    # a home): the loop is then compiled in each process rather than left unused.
    import numba

    from tfrecord_lite import _png_kernel

    real_njit = numba.njit

    def njit(**options: object) -> object:
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
        return real_njit(**options)

    monkeypatch.setattr(numba, "njit", njit)
    monkeypatch.setattr(_png_kernel, "CACHED", True)

    def add_one(x: int) -> int:
        return x + 1

    compiled = _png_kernel._compiled(add_one)
    assert compiled(41) == 42 and compiled.signatures  # compiled, not plain Python
    assert _png_kernel.CACHED is False
    # The job still takes the fast path, and says why each process compiles.
    monkeypatch.setattr(numba, "njit", real_njit)
    with caplog.at_level(logging.WARNING, logger="tfrecord_lite.png"):
        assert png.FastPng().ready()
    assert "compiled in each process" in caplog.text


def test_numbas_own_switch_to_plain_python_leaves_png_to_pillow(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import numba

    monkeypatch.setattr(numba.config, "DISABLE_JIT", 1)
    decoder = png.FastPng()
    assert not decoder.ready()
    assert decoder.why_not is not None and decoder.why_not.startswith("NUMBA_DISABLE_JIT is set")


def test_threads_decode_with_pillow_while_one_prepares_the_loop() -> None:
    gate, started = threading.Event(), threading.Event()

    def held_load() -> png.Kernel:
        started.set()
        gate.wait(10)
        return png._load_loop()

    decoder = png.FastPng(min_pixels=1, load=held_load)
    data = make_image_bytes("png-rgb")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(png.open_and_decode, data, decoder)  # prepares, then decodes
        assert started.wait(10)
        assert png.open_and_decode(data, decoder) is None  # meanwhile: Pillow's turn
        stored = prepare(data, png_decoder=decoder).data
        gate.set()
        assert first.result(10) is not None
    assert decoder.ready()
    assert png.open_and_decode(data, decoder) is not None
    assert prepare(data, png_decoder=decoder).data == stored


def test_threads_decode_as_one_thread_does(tmp_path: Path) -> None:
    photos = _benchmark_photos(tmp_path, 4) * 5
    alone = [png.open_and_decode(data, FAST).tobytes() for data in photos]
    with ThreadPoolExecutor(4) as pool:
        together = [im.tobytes() for im in pool.map(png.open_and_decode, photos,
                                                      [FAST] * len(photos))]
    assert together == alone
