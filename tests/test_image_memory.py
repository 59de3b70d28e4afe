"""Bounded memory for large images: 8-bit conversion by row blocks, a pixel budget."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tfrecord_lite import budget, images, rgb, write_dataset
from tfrecord_lite.images import prepare

from conftest import encode, make_image_bytes

ROOT = Path(__file__).resolve().parent.parent


def _whole_image_gray8(im: Image.Image) -> np.ndarray:
    """The conversion as it was before: the whole image in float64."""
    arr = np.asarray(im, dtype=np.float64)
    if arr.size and arr.max() > 255:
        arr = arr / 257.0
    return np.clip(arr + 0.5, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("mode, low, high", [
    ("I;16", 0, 65536), ("I;16", 0, 256), ("I", -70000, 70000), ("I", -5, 200),
    ("F", -300.0, 40000.0), ("F", -1.0, 255.0),
])
def test_block_conversion_gives_the_bytes_of_the_whole_image_one(
        mode: str, low: float, high: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rgb, "_ROWS_PER_BLOCK", 7)  # many blocks, a short last one
    rng = np.random.default_rng(4)
    if mode == "F":
        arr = rng.uniform(low, high, (45, 31)).astype(np.float32)
        arr[3, 4] = 255.5  # halves round up
    else:
        dtype = np.uint16 if mode == "I;16" else np.int32
        arr = rng.integers(low, high, (45, 31)).astype(dtype)
    im = Image.fromarray(arr) if mode != "F" else Image.fromarray(arr, "F")
    assert im.mode == mode
    assert np.array_equal(np.asarray(rgb._to_gray8(im)), _whole_image_gray8(im))
    fmt = "PNG" if mode == "I;16" else "TIFF"
    data = encode(im, fmt)
    assert prepare(data).data == images._encode_jpeg(
        Image.fromarray(_whole_image_gray8(Image.open(io.BytesIO(data))))
        .convert("RGB"), 95, "image").data


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc")
def test_sixteen_bit_png_converts_without_float64_copies(tmp_path: Path) -> None:
    # 4000x4000 16-bit gray: 32 MB of pixels; a float64 copy alone is 128 MB.
    y, x = np.mgrid[0:4000, 0:4000]
    path = tmp_path / "gray16.png"
    Image.fromarray(((x * 7 + y * 3) % 65536).astype(np.uint16)).save(path, compress_level=1)
    code = ("import re\n"
            "from tfrecord_lite.images import prepare\n"
            f"prepare(open({str(path)!r}, 'rb').read())\n"
            "print(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(ROOT)})
    peak_mb = int(out.stdout) / 1024
    # the 16-bit source (32 MB), the 8-bit gray (16 MB), RGB (48 MB), the interpreter
    assert peak_mb < 230, f"peak {peak_mb:.0f} MB"


def test_pixel_budget_admits_large_images_one_budget_at_a_time() -> None:
    shared = budget.PixelBudget(100 << 20)
    big, small = 80 << 20, 20 << 20
    order: list[str] = []
    asking = threading.Event()

    def take(name: str, pixels: int) -> None:
        if name == "b":
            asking.set()
        with shared.hold(pixels):
            order.append(f"+{name}")
        order.append(f"-{name}")

    with shared.hold(big):  # a
        order.append("+a")
        b = threading.Thread(target=take, args=("b", big))
        b.start()
        asking.wait(timeout=60)
        c = threading.Thread(target=take, args=("c", small))
        c.start()
        c.join(timeout=60)
        assert order[-2:] == ["+c", "-c"]  # fitted beside a
        b.join(timeout=1)  # (b waits for a: if it did not, one second lets it in)
        assert b.is_alive() and "+b" not in order
        order.append("-a")
    b.join(timeout=60)
    assert order.index("+b") > order.index("-a")  # waited for a
    with shared.hold(300 << 20):  # alone, larger than the budget: proceeds
        assert shared.in_use == 300 << 20
    with shared.hold(100):  # small images are not counted
        assert shared.in_use == 0


def test_threads_of_a_job_share_the_pixel_budget(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Four PNGs of 64x48 pixels, counted as large, with room for one at a time.
    monkeypatch.setattr(budget, "_LARGE_PIXELS", 1)
    monkeypatch.setattr(budget, "_shared", budget.PixelBudget(64 * 48))
    # PNGs under 128x128: Pillow decodes them, through _load, whatever is installed.
    inside, most = [0], [0]
    lock = threading.Lock()
    load = images._load

    def counting_load(im: Any, where: str) -> None:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)  # widens the window in which loads would overlap, were it allowed
        try:
            load(im, where)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(images, "_load", counting_load)
    monkeypatch.chdir(tmp_path)
    items = []
    for i in range(4):
        Path(f"{i}.png").write_bytes(make_image_bytes("png-rgb"))
        items.append({"filename": f"{i}.png", "id": i})
    summary = write_dataset(items, "p", "out", 1, 2, progress=False)
    assert summary.written == 4 and most[0] == 1


def test_budget_is_released_when_an_image_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "_LARGE_PIXELS", 1)
    monkeypatch.setattr(budget, "_shared", budget.PixelBudget(64 * 48))
    data = make_image_bytes("png-rgb", width=120, height=90)
    with pytest.raises(images.ImageError):
        prepare(data[: len(data) // 2])
    assert budget._shared.in_use == 0
    assert re.fullmatch(rb"\xff\xd8.*", prepare(data).data, re.S)


@pytest.mark.slow
@pytest.mark.parametrize("env, expected", [({}, 64 << 20), ({"PILLOW_BLOCK_SIZE": "2m"}, 2 << 20)])
def test_pillow_blocks_are_larger_than_mallocs_heap_threshold(
        env: dict[str, str], expected: int) -> None:
    code = ("from PIL import Image\n"
            "import tfrecord_lite.images\n"
            "print(Image.core.get_block_size())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(ROOT), **env})
    assert int(out.stdout) == expected
