"""The per-image memory bound for every format Pillow opens: an image counts against the
pixel budget by what decoding its format takes (a JPEG 2000 or WebP pixel costs more
than a PNG's); one that alone would take more than the bound fails, named, before a
pixel is decoded, or, for JPEG 2000 with max_side, is decoded at a reduced resolution."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_lite import budget, images
from tfrecord_lite.budget import decode_weight
from tfrecord_lite.cli import main
from tfrecord_lite.errors import ImageError
from tfrecord_lite.images import ImageOptions, prepare

from conftest import ROOT, encode


def _rgba(side: int) -> Image.Image:
    y, x = np.mgrid[0:side, 0:side]
    return Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256, (x * y) % 256],
                                    axis=-1).astype(np.uint8), "RGBA")


@pytest.mark.parametrize("fmt, mode, weight", [
    ("JPEG", "CMYK", 1.0), ("PNG", "RGBA", 1.0), ("TIFF", "F", 1.0), ("GIF", "P", 1.0),
    ("BMP", "RGB", 1.0), ("AVIF", "RGB", 1.0), ("QOI", "RGB", 1.0),
    ("JPEG2000", "L", 1.0), ("JPEG2000", "RGB", 21.5 / 13), ("JPEG2000", "RGBA", 2.0),
    ("WEBP", "RGB", 16.5 / 13), ("WEBP", "RGBA", 16.5 / 13),
    ("PSD", "RGB", 2.0),  # not measured: counted twice over
])
def test_each_format_counts_by_what_decoding_it_takes(fmt: str, mode: str,
                                                      weight: float) -> None:
    assert decode_weight(fmt, mode) == pytest.approx(weight)


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget of 50,000 pixels: a 200x200 image counted twice over is past it."""
    monkeypatch.setattr(budget, "DECODE_BUDGET_PIXELS", 50_000)
    monkeypatch.setattr(budget, "_LARGE_PIXELS", 1)


def test_an_image_that_would_take_more_than_the_bound_fails_named(small_budget: None) -> None:
    jp2 = encode(_rgba(200), "JPEG2000")
    with pytest.raises(ImageError, match=r"a\.jp2: a 200x200 JPEG2000 image \(RGBA\) takes "
                       r"about 0\.00 GB to decode, more than the 0\.00 GB one image may take "
                       r"\(it counts as 2\.00 pixels a pixel against the 50,000-pixel "
                       r"budget\); max_side \(--max-side\) at most half its size stores it "
                       r"smaller") as info:
        prepare(jp2, where="a.jp2")
    assert info.value.reason == "too large"
    webp = encode(_rgba(220).convert("RGB"), "WEBP")
    with pytest.raises(ImageError, match="WEBP image.*convert it to PNG or JPEG"):
        prepare(webp, ImageOptions(max_side=100), where="b.webp")  # decoded whole anyway
    # The same pixels as PNG count once: within the budget.
    assert prepare(encode(_rgba(200), "PNG")).width == 200


def test_jpeg2000_with_max_side_is_decoded_at_a_reduced_resolution(small_budget: None) -> None:
    jp2 = encode(_rgba(200), "JPEG2000")
    stored = prepare(jp2, ImageOptions(max_side=90))
    assert (stored.width, stored.height) == (90, 90)
    with Image.open(images.io.BytesIO(jp2)) as im:
        assert images._jpeg2000_reduce(im, jp2, (90, 90)) == 100 * 100  # half: 100x100
        assert im.reduce == 1
    # No smaller than the target: 110 needs the full 200 (a half would be 100).
    with Image.open(images.io.BytesIO(jp2)) as im:
        assert images._jpeg2000_reduce(im, jp2, (110, 110)) == 200 * 200


def test_a_job_fails_such_an_image_alone(small_budget: None, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("big.jp2").write_bytes(encode(_rgba(200), "JPEG2000"))
    Path("ok.png").write_bytes(encode(_rgba(200), "PNG"))
    Path("d.json").write_text(json.dumps([{"filename": "big.jp2", "id": "big"},
                                          {"filename": "ok.png", "id": "ok"}]))
    assert main(["--dataset_path", "d.json", "--prefix", "t", "--output_dir", "out",
                 "--store_images", "-q"]) == 1
    (failure,) = json.loads(next(Path("out").glob("t[.-]failures.json")).read_text())
    assert failure["id"] == "big" and "takes about" in failure["error_msg"]
    assert main(["--dataset_path", "d.json", "--prefix", "s", "--output_dir", "out",
                 "--store_images", "--max-side", "100", "-q"]) == 0


_PEAK = """
import re, sys
from tfrecord_lite.errors import ImageError
from tfrecord_lite.images import ImageOptions, prepare
data = open(sys.argv[1], "rb").read()
try:
    stored = prepare(data, ImageOptions(max_side=int(sys.argv[2]) or None), where="x.jp2")
    result = f"{stored.width}x{stored.height}"
except ImageError as exc:
    result = exc.reason
peak = int(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read())[1]) // 1024
print(result, peak)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc")
def test_a_9400_by_9400_jpeg2000_stays_within_the_bound(tmp_path: Path) -> None:
    # Decoded whole it took 2.1 GB (openjpeg holds 4 bytes a sample), against the 1.1 GB
    # one image at the pixel limit takes in any other format.
    side = 9400
    make = ("import numpy as np, sys\nfrom PIL import Image\n"
            f"s = {side}\ny = np.arange(s, dtype=np.uint32)[:, None]\n"
            "x = np.arange(s, dtype=np.uint32)[None, :]\n"
            "bands = [Image.fromarray(((x * (3 + c) + y * (5 + 2 * c)) % 256).astype("
            "np.uint8)) for c in range(4)]\n"
            "Image.merge('RGBA', bands).save(sys.argv[1])\n")
    path = tmp_path / "big.jp2"
    subprocess.run([sys.executable, "-c", make, str(path)], check=True, timeout=600)
    for max_side, expected, bound_mb in ((0, "too large", 300), (4000, "4000x4000", 1200)):
        out = subprocess.run([sys.executable, "-c", _PEAK, str(path), str(max_side)],
                             capture_output=True, text=True, check=True, timeout=600,
                             env={"PYTHONPATH": str(ROOT)})
        result, peak = out.stdout.rsplit(maxsplit=1)
        assert result == expected
        assert int(peak) < bound_mb, f"max_side {max_side}: peak {peak} MB"
