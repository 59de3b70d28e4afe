"""A damaged numba cache of the fast PNG path costs a warning and Pillow, never a crash.

numba loads its cache without checking it, and one flipped bit in the compiled code
crashed about one process in six (SIGSEGV, SIGABRT, SIGILL). Here each run flips one
random bit of a good cache, then a new process decodes a PNG photo: it must exit
cleanly, warn, and give Pillow's pixels; the process after it compiles afresh and takes
the fast path again. CACHE_FLIPS sets the number of flips (``make fuzz``: 120).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfrecord_lite.accelerators import chosen

pytestmark = [pytest.mark.slow,  # each case runs a fresh interpreter
              pytest.mark.skipif(chosen().png.backend != "fast-png",
                                 reason=f"without the fast-png extra: {chosen().png.label}")]

FLIPS = int(os.environ.get("CACHE_FLIPS", "4"))

# Decodes a 200x150 PNG photo with the path chosen for the process, compares the pixels
# with Pillow's, and says which path decoded it.
CHILD = """
import io, logging, sys
import numpy as np
from PIL import Image
from tfrecord_lite import png
logging.basicConfig(level=logging.WARNING, format="WARNING %(message)s")
y, x, c = np.indices((150, 200, 3))
buf = io.BytesIO()
Image.fromarray(((x * 3 + y * 7 + c * 80) % 256).astype(np.uint8)).save(buf, "PNG")
data = buf.getvalue()
fast = png.open_and_decode(data)
pillow = Image.open(io.BytesIO(data))
pillow.load()
assert fast is None or fast.tobytes() == pillow.tobytes(), "different pixels"
print("fast" if fast is not None else "pillow")
"""


def _decode(cache: Path) -> tuple[int, str, str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    env.pop("TFRECORD_LITE_FAST_PNG", None)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, timeout=600)
    return done.returncode, done.stdout.strip(), done.stderr


def _files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("_png_kernel.*") if p.is_file())


@pytest.fixture(scope="module")
def good_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("numba-cache")
    code, path, err = _decode(cache)  # compiles, caches, records the checksums
    assert (code, path) == (0, "fast"), err
    assert [p for p in _files(cache) if p.name.endswith(".sha256.json")], _files(cache)
    code, path, err = _decode(cache)  # from the cache, checked
    assert (code, path, "WARNING" in err) == (0, "fast", False), err
    return cache


def test_a_flipped_bit_anywhere_in_the_cache_costs_a_warning_not_a_crash(
        good_cache: Path, tmp_path: Path) -> None:
    rng = random.Random(2024)
    sizes = {p.relative_to(good_cache): p.stat().st_size for p in _files(good_cache)}
    for flip in range(FLIPS):
        cache = tmp_path / f"flip{flip}"
        shutil.copytree(good_cache, cache)
        # A bit chosen uniformly over all the bytes: the compiled code, mostly.
        at = rng.randrange(sum(sizes.values()) * 8)
        names = iter(sizes)
        name = next(names)
        while at >= sizes[name] * 8:
            at -= sizes[name] * 8
            name = next(names)
        damaged = bytearray((cache / name).read_bytes())
        damaged[at // 8] ^= 1 << (at % 8)
        (cache / name).write_bytes(damaged)
        code, path, err = _decode(cache)
        assert code == 0, f"flip {flip} of {name} byte {at // 8}: exit {code}\n{err}"
        assert path == "pillow", (name, err)
        assert "numba's cache of the PNG loop in" in err and "was damaged" in err, err
        shutil.rmtree(cache)
    # The damaged files were removed: the next process compiles afresh, and is fast.
    cache = tmp_path / "after"
    shutil.copytree(good_cache, cache)
    victim = max(_files(cache), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    assert _decode(cache)[:2] == (0, "pillow")
    code, path, err = _decode(cache)
    assert (code, path, "WARNING" in err) == (0, "fast", False), err


def test_a_cache_without_checksums_is_compiled_afresh_silently(
        good_cache: Path, tmp_path: Path) -> None:
    # As an earlier release left it: it cannot be vouched for, so it is not loaded.
    cache = tmp_path / "old"
    shutil.copytree(good_cache, cache)
    (record,) = [p for p in _files(cache) if p.name.endswith(".sha256.json")]
    record.unlink()
    victim = max(_files(cache), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[:-64] + bytes(64))
    code, path, err = _decode(cache)
    assert (code, path, "WARNING" in err) == (0, "fast", False), err
    assert record.exists()


@pytest.mark.parametrize("record", [b"5", b"{", b""], ids=["a number", "cut", "empty"])
def test_a_damaged_checksums_file_costs_a_warning_not_a_crash(
        good_cache: Path, tmp_path: Path, record: bytes) -> None:
    cache = tmp_path / "record"
    shutil.copytree(good_cache, cache)
    (checksums,) = [p for p in _files(cache) if p.name.endswith(".sha256.json")]
    checksums.write_bytes(record)
    code, path, err = _decode(cache)
    assert (code, path) == (0, "pillow"), err
    assert "was damaged (its checksums file" in err, err
