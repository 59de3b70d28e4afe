"""The JPEG decode check: libjpeg-turbo's verdict on damaged data (strict, lenient, off)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from PIL import Image

from tfrecord_lite import ImageError, JobOptions, encode_example, images, jpeg_check, write_dataset
from tfrecord_lite.example import ImageFields
from tfrecord_lite.framing import encode_record
from tfrecord_lite.images import ImageOptions, prepare
from tfrecord_lite.items import ItemOptions, encode_item
from tfrecord_lite.jpeg import jpeg_info
from tfrecord_lite.verify import verify_files

from conftest import DEMO, encode

ROCKET = (DEMO / "images" / "rocket.jpg").read_bytes()  # 640x427 baseline


def _sof_size(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    sof = out.find(b"\xff\xc0")
    struct.pack_into(">HH", out, sof + 5, height, width)
    return bytes(out)


def _progressive() -> bytes:
    return encode(Image.open(io.BytesIO(ROCKET)), "JPEG", quality=90, progressive=True)


def _scan_starts(data: bytes) -> list[int]:
    starts, pos = [], data.find(b"\xff\xda")
    while pos >= 0:
        starts.append(pos)
        pos = data.find(b"\xff\xda", pos + 2)
    return starts


def _after_header(data: bytes) -> int:
    """Offset of the first segment after APP0 (JFIF)."""
    assert data[2:4] == b"\xff\xe0"
    return 4 + int.from_bytes(data[4:6], "big")


def _jfif_major_2(data: bytes) -> bytes:
    out = bytearray(data)
    out[data.find(b"JFIF\x00") + 5] = 2  # JFIF 2.01: libjpeg warns, loses nothing
    return bytes(out)


def _quarter(data: bytes) -> bytes:
    return data[:len(data) // 4] + b"\xff\xd9"


def _bad_huffman(data: bytes) -> bytes:
    # All-ones codes near the end, where libjpeg-turbo decodes code by code and warns.
    at = len(data) - 1000
    return data[:at] + b"\xff\x00" * 4 + data[at + 8:]


def _cmyk(width: int = 0, height: int = 0) -> bytes:
    data = encode(Image.open(io.BytesIO(ROCKET)).convert("CMYK"), "JPEG")
    return _sof_size(data, width, height) if width else data


DAMAGED: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # name: (bytes, reason, libjpeg's message)
    "quarter+EOI": (lambda: _quarter(ROCKET), "truncated", "premature end of data segment"),
    "SOF 9000x9000": (lambda: _sof_size(ROCKET, 9000, 9000), "truncated",
                      "premature end of data segment"),
    "bad Huffman code": (lambda: _bad_huffman(ROCKET), "corrupt", "bad Huffman code"),
    "progressive cut in a later scan": (
        lambda: _progressive()[:_scan_starts(_progressive())[-2] + 500] + b"\xff\xd9",
        "truncated", "premature end of data segment"),
    "progressive bad code": (lambda: _progressive()[:20000] + b"\xff\x00" * 8
                             + _progressive()[20016:], "corrupt", "bad Huffman code"),
    # A harmless warning first must not hide the damage after it.
    "JFIF 2.01, then cut": (lambda: _quarter(_jfif_major_2(ROCKET)), "truncated",
                            "premature end of data segment"),
    "header garbage, then cut": (
        lambda: _quarter(ROCKET[:_after_header(ROCKET)] + b"\x00\x01\x02"
                         + ROCKET[_after_header(ROCKET):]),
        "truncated", "premature end of data segment"),
    "garbage between two scans": (
        lambda: _progressive()[:_scan_starts(_progressive())[3]] + b"\x00\x01\x02"
        + _progressive()[_scan_starts(_progressive())[3]:],
        "corrupt", "3 extraneous bytes before marker 0xda (between two scans)"),
    "CMYK, SOF 9000x9000": (lambda: _cmyk(9000, 9000), "truncated",
                            "premature end of data segment"),
    "gray, cut": (lambda: _quarter(encode(Image.open(io.BytesIO(ROCKET)).convert("L"), "JPEG")),
                  "truncated", "premature end of data segment"),
}

HARMLESS: dict[str, Callable[[], bytes]] = {
    "extraneous bytes in the header": lambda: (ROCKET[:_after_header(ROCKET)] + b"\x00" * 7
                                               + ROCKET[_after_header(ROCKET):]),
    "extraneous bytes before EOI": lambda: ROCKET[:-2] + bytes(range(1, 65)) + ROCKET[-2:],
    "progressive, extraneous bytes before EOI": lambda: (_progressive()[:-2]
                                                         + bytes(range(1, 65))
                                                         + _progressive()[-2:]),
    "unknown JFIF major version": lambda: _jfif_major_2(ROCKET),
    "JFIF 2.01 and header garbage": lambda: (
        _jfif_major_2(ROCKET)[:_after_header(ROCKET)] + b"\x01\x02"
        + _jfif_major_2(ROCKET)[_after_header(ROCKET):]),
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_damaged_jpeg_fails_under_strict(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make, reason, message = DAMAGED[name]
    data = make()
    info = jpeg_info(data)
    assert info is not None
    with pytest.raises(ImageError) as raised:
        prepare(data, where="photo.jpg")
    assert raised.value.reason == reason
    assert str(raised.value).startswith(f"photo.jpg: {reason} JPEG data, not every pixel")
    assert message in str(raised.value)
    # verify's check gives the same verdict
    with pytest.raises(ImageError, match=message.split(" (")[0]):
        images.decoded_size(data)


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_damaged_jpeg_is_written_with_a_warning_under_lenient(name: str) -> None:
    make, _, message = DAMAGED[name]
    data = make()
    stored = prepare(data, ImageOptions(corrupt_data="warn"), where="photo.jpg")
    assert len(stored.warnings) == 1 and message in stored.warnings[0]
    info = jpeg_info(data)
    assert info is not None
    if info.components == 3:  # stored as it is
        assert stored.data == data


@pytest.mark.parametrize("name", sorted(HARMLESS))
def test_warnings_that_lose_no_pixels_pass(name: str) -> None:
    data = HARMLESS[name]()
    info = jpeg_info(data)
    assert info is not None and jpeg_check._libjpeg_message(data, info) is not None  # warns
    stored = prepare(data)
    assert stored.data == data and stored.warnings == ()  # stored unchanged
    assert images.decoded_size(data) == (640, 427)


@pytest.mark.parametrize("name", ["quarter+EOI", "SOF 9000x9000", "bad Huffman code"])
def test_without_the_decode_check_only_the_end_marker_counts(name: str) -> None:
    data = DAMAGED[name][0]()
    assert prepare(data, ImageOptions(decode_check=False)).data == data  # has its EOI
    with pytest.raises(ImageError, match="no end-of-image marker"):
        prepare(data[:-2], ImageOptions(decode_check=False))


def test_cmyk_frame_claiming_9000x9000_fails_before_any_full_decode(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_full_decode(*args: Any) -> None:
        raise AssertionError("Pillow was asked to open the image")

    monkeypatch.setattr(images, "_open", no_full_decode)
    with pytest.raises(ImageError) as raised:
        prepare(_cmyk(9000, 9000))
    assert raised.value.reason == "truncated"
    with pytest.raises(AssertionError):  # a good CMYK JPEG does reach Pillow
        prepare(_cmyk())


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc")
def test_cmyk_frame_claiming_9000x9000_costs_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    path.write_bytes(_cmyk(9000, 9000))
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    code = ("import re\n"
            "from tfrecord_lite import ImageError\n"
            "from tfrecord_lite.images import prepare\n"
            "try:\n"
            f"    prepare(open({str(path)!r}, 'rb').read())\n"
            "except ImageError as exc:\n"
            "    status = open('/proc/self/status').read()\n"
            "    print(exc.reason, re.search(r'VmHWM:\\s*(\\d+)', status)[1])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(Path(__file__).parent.parent)})
    reason, max_rss_kb = out.stdout.split()
    assert reason == "truncated" and int(max_rss_kb) < 150_000  # a full decode: 600+ MB


def _items(tmp_path: Path, datas: dict[str, bytes]) -> list[dict[str, Any]]:
    items = []
    for i, (name, data) in enumerate(sorted(datas.items())):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(data)
        items.append({"filename": path.name, "id": name, "class": {"label": 1}})
    return items


def test_jobs_fail_strict_and_warn_lenient(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    datas = {"good": ROCKET, "cut": _quarter(ROCKET), "eoi-garbage": HARMLESS[
        "extraneous bytes before EOI"]()}
    items = _items(tmp_path, datas)
    strict = write_dataset(items, "s", "out", 1, 1)
    assert [(f["id"], "premature end of data segment" in f["error_msg"])
            for f in strict.failures] == [("cut", True)]
    lenient = write_dataset(items, "l", "out", 1, 1, validation="lenient")
    assert lenient.failures == [] and len(lenient.warnings) == 1
    assert "cut" in lenient.warnings[0] and "premature end" in lenient.warnings[0]
    unchecked = write_dataset(items, "u", "out", 1, 1, decode_check=False)
    assert unchecked.failures == [] and unchecked.warnings == []


def test_item_options_set_the_corrupt_data_rule() -> None:
    assert ItemOptions().image.corrupt_data == "fail"
    assert ItemOptions(JobOptions(validation="lenient")).image.corrupt_data == "warn"
    assert ItemOptions(JobOptions(validation="off")).image.corrupt_data == "warn"
    with pytest.raises(ValueError, match="corrupt_data"):
        ImageOptions(corrupt_data="ignore")


def test_item_and_image_options_are_derived_from_the_job_options_only() -> None:
    job = JobOptions(quality=50, max_side=10, decode_check=False, validation="lenient",
                     store_images=False, root="data")
    options = ItemOptions(job)
    assert options.image == ImageOptions(50, 10, False, corrupt_data="warn")
    assert (options.store_images, options.validation, options.root) == (False, "lenient",
                                                                         "data")
    with pytest.raises(TypeError):  # no image options of their own to contradict the job's
        ItemOptions(job, image=ImageOptions())  # type: ignore[call-arg]


def test_encode_item_reports_the_image_warning(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cut.jpg").write_bytes(_quarter(ROCKET))
    warnings: list[str] = []
    encode_item({"filename": "cut.jpg", "id": "x"},
                ItemOptions(JobOptions(validation="lenient")), warnings)
    assert len(warnings) == 1 and warnings[0].startswith("id 'x': cut.jpg: truncated JPEG data")


def test_verify_applies_the_same_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    item = {"filename": "f", "id": 1}
    records = [encode_example(item, ImageFields(ROCKET, 427, 640)),
               encode_example(item, ImageFields(_quarter(ROCKET), 427, 640)),
               encode_example(item, ImageFields(HARMLESS["extraneous bytes in the header"](),
                                                427, 640)),
               encode_example(item, ImageFields(_sof_size(ROCKET, 9000, 9000), 9000, 9000))]
    Path("p.tfrecord").write_bytes(b"".join(encode_record(r) for r in records))
    problems = {p.index: p.message for p in verify_files(["p.tfrecord"]).problems}
    assert set(problems) == {1, 3}
    for index in (1, 3):
        assert "does not decode" in problems[index]
        assert "premature end of data segment" in problems[index]
