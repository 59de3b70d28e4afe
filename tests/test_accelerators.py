"""Accelerators are detected in one place, reported by --version without being loaded,
and loaded only by a job that uses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfrecord_lite.accelerators import FAST_PNG_INSTALL, FAST_PNG_SWITCH, chosen, detect

from conftest import detection_item, make_image_bytes

EVERYTHING = {"google_crc32c._crc32c", "crcmod._crcfunext", "simplejpeg", "deflate", "numba"}
FAST_PNG_IN_USE = chosen().png.backend == "fast-png"


def test_png_takes_the_fast_path_only_with_both_of_its_libraries() -> None:
    assert detect(environ={}, found=EVERYTHING.__contains__).png.backend == "fast-png"
    for missing in ("numba", "deflate"):
        choice = detect(environ={}, found=(EVERYTHING - {missing}).__contains__).png
        assert choice.backend == "pillow"
        assert choice.label == ("Pillow (for faster PNG decoding, the fast-png extra: "
                                f"{FAST_PNG_INSTALL})")


@pytest.mark.parametrize("value", ["0", "off", "false", "no"])
def test_the_environment_switches_the_fast_path_off(value: str) -> None:
    choice = detect(environ={FAST_PNG_SWITCH: value}, found=EVERYTHING.__contains__).png
    assert (choice.backend, choice.label) == ("pillow", f"Pillow ({FAST_PNG_SWITCH}={value})")


@pytest.mark.parametrize(("value", "backend"), [("1", "pillow"), ("0", "fast-png"),
                                              ("", "fast-png")])
def test_numbas_own_switch_to_plain_python_is_reported_as_pillow(value: str,
                                                                 backend: str) -> None:
    # --version says what a job gets: numba without its compiler would be slower than Pillow.
    choice = detect(environ={"NUMBA_DISABLE_JIT": value}, found=EVERYTHING.__contains__).png
    assert choice.backend == backend
    assert ("NUMBA_DISABLE_JIT" in choice.label) == (backend == "pillow")


def test_without_simplejpeg_the_report_says_how_to_install_it() -> None:
    choices = detect(environ={}, found=(EVERYTHING - {"simplejpeg"}).__contains__)
    assert "JPEG check: simplejpeg is not installed (pip install simplejpeg)" in choices.report()


def _run(args: list[str], cwd: Path, **env: str) -> tuple[str, list[str]]:
    """``python -m tfrecord_lite ARGS`` in a new process: its output, and which of the
    heavy modules it imported."""
    script = ("import sys, runpy\n"
              "sys.argv = ['tfrecord_lite'] + sys.argv[1:]\n"
              "try:\n"
              "    runpy.run_module('tfrecord_lite', run_name='__main__')\n"
              "except SystemExit as exc:\n"
              "    code = exc.code\n"
              "heavy = [m for m in ('numba', 'llvmlite', 'deflate') if m in sys.modules]\n"
              "print('IMPORTED', *heavy, file=sys.stderr)\n")
    environ = {k: v for k, v in os.environ.items() if k != FAST_PNG_SWITCH}
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**environ, **env})
    imported = [line for line in done.stderr.splitlines() if line.startswith("IMPORTED")]
    assert imported, done.stderr
    return done.stdout + done.stderr, imported[-1].split()[1:]


def _write(tmp_path: Path, kind: str, size: tuple[int, int]) -> None:
    items = []
    for i in range(3):
        (tmp_path / f"{i}.img").write_bytes(make_image_bytes(kind, *size))
        items.append(detection_item(f"{i}.img", i))
    (tmp_path / "train.json").write_text(json.dumps(items))


@pytest.mark.slow
def test_version_help_readers_and_a_jpeg_job_never_load_numba(tmp_path: Path) -> None:
    _write(tmp_path, "jpeg-rgb", (300, 200))
    out, imported = _run(["--version"], tmp_path)
    assert f"({chosen().report()})" in out and imported == []
    for args in (["--help"], ["create", "--help"],
                 ["create", "--dataset_path", "train.json", "--prefix", "train",
                  "--output_dir", "out", "--shards", "2"],
                 ["verify", "out/train-*"], ["stats", "out/train-*"]):
        out, imported = _run(args, tmp_path)
        assert imported == [], (args, out)
    assert len(list((tmp_path / "out").glob("train-*"))) == 2
    # Small PNGs (under 128x128) are left to Pillow: no numba either.
    _write(tmp_path, "png-rgb", (127, 128))
    out, imported = _run(["create", "--dataset_path", "train.json", "--prefix", "small",
                          "--output_dir", "out"], tmp_path)
    assert imported == [], out


@pytest.mark.slow
@pytest.mark.skipif(not FAST_PNG_IN_USE, reason="without the fast-png extra")
def test_a_job_with_png_photos_loads_the_fast_path_unless_switched_off(tmp_path: Path) -> None:
    _write(tmp_path, "png-rgb", (200, 150))
    args = ["create", "--dataset_path", "train.json", "--prefix", "train", "--output_dir"]
    _, imported = _run([*args, "fast"], tmp_path)
    assert "numba" in imported
    out, imported = _run([*args, "pillow"], tmp_path, **{FAST_PNG_SWITCH: "0"})
    assert imported == [], out
    assert [p.read_bytes() for p in sorted((tmp_path / "fast").glob("train-*"))] == [
        p.read_bytes() for p in sorted((tmp_path / "pillow").glob("train-*"))]
    out, _ = _run(["--version"], tmp_path, **{FAST_PNG_SWITCH: "0"})
    assert f"PNG: Pillow ({FAST_PNG_SWITCH}=0)" in out
