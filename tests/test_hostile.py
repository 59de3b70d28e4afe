"""Hostile input: decompression bombs, oversized files, paths escaping the dataset root,
and write failures (disk full, permission denied, read-only file system)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import ImageError, WriteError, read_records, write_dataset
from tfrecord_lite import compression as _compression
from tfrecord_lite.cli import main
from tfrecord_lite.example import decode_example
from tfrecord_lite.items import ItemOptions, encode_item

from conftest import DEMO, ROOT, detection_item, make_image_bytes


def _png(width: int, height: int, pixel_rows: bytes) -> bytes:
    """A gray 8-bit PNG with the given (filter byte + pixels) rows, compressed."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                               8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(pixel_rows, 9)) + chunk(b"IEND", b""))


def test_header_claiming_50000_by_50000_fails_its_item(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png(50_000, 50_000, b"\x00" * 5000))
    good = tmp_path / "good.jpg"
    good.write_bytes(make_image_bytes("jpeg-rgb"))
    for store_images in (True, False):
        summary = write_dataset([detection_item(str(bomb), "bomb"),
                                 detection_item(str(good), "good")],
                                "b", tmp_path / f"out{store_images}", 1, 1,
                                store_images=store_images, progress=False)
        assert summary.written == 1
        assert summary.failed_by_reason == {"too large": 1}
        message = summary.failures[0]["error_msg"]
        assert "bomb.png" in message and "exceeds" in message and "pixels" in message


def test_a_real_bomb_fails_within_bounded_memory(tmp_path: Path) -> None:
    # 10,000 x 10,000 gray pixels (100 MB decoded, 300 MB as RGB) in a 100 KB file.
    side = 10_000
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png(side, side, b"\x00" * ((side + 1) * side)))
    assert bomb.stat().st_size < 200_000
    items = tmp_path / "items.json"
    items.write_text(json.dumps([detection_item(str(bomb), "bomb")]))
    code = (  # VmHWM: the peak of this process since exec (ru_maxrss counts the fork too)
        "import json, re\n"
        "from tfrecord_lite import write_dataset\n"
        f"s = write_dataset(json.load(open({str(items)!r})), 'b', {str(tmp_path / 'out')!r},"
        " 1, 1, progress=False)\n"
        "peak = int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1])\n"
        "print(json.dumps([s.failed_by_reason, peak // 1024]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    reasons, peak_mb = json.loads(out.stdout)
    assert reasons == {"too large": 1}
    assert peak_mb < 100, f"peak RSS {peak_mb} MB: the bomb was decoded"


def test_oversized_file_fails_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(make_image_bytes("jpeg-rgb"))
    with pytest.raises(ImageError, match="larger than the limit of 100 bytes") as info:
        encode_item(detection_item(str(path), 1), ItemOptions(max_file_bytes=100))
    assert info.value.reason == "too large"


def _fifo(tmp_path: Path, data: bytes) -> tuple[Path, threading.Thread]:
    """A named pipe fed ``data`` in small pieces by a thread: a file of no known size."""
    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)

    def feed() -> None:
        with open(path, "wb", buffering=0) as f, contextlib.suppress(BrokenPipeError):
            for at in range(0, len(data), 1000):
                f.write(data[at:at + 1000])

    feeder = threading.Thread(target=feed)
    feeder.start()
    return path, feeder


def test_an_image_from_a_pipe_is_read_whole(tmp_path: Path) -> None:
    data = (DEMO / "images" / "rocket.jpg").read_bytes()
    path, feeder = _fifo(tmp_path, data)
    record = encode_item(detection_item(str(path), 1))
    feeder.join()
    assert decode_example(record)["encoded"] == data


def test_a_pipe_beyond_the_size_limit_fails(tmp_path: Path) -> None:
    data = (DEMO / "images" / "rocket.jpg").read_bytes()
    path, feeder = _fifo(tmp_path, data)
    with pytest.raises(ImageError, match="larger than the limit of 20,000 bytes") as info:
        encode_item(detection_item(str(path), 1), ItemOptions(max_file_bytes=20_000))
    feeder.join()  # the reader gave up: the feeder's next write found the pipe closed
    assert info.value.reason == "too large"


@pytest.fixture
def rooted(tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    jpeg = make_image_bytes("jpeg-rgb")
    (root / "images" / "in.jpg").write_bytes(jpeg)
    (tmp_path / "secret.jpg").write_bytes(jpeg)
    (root / "images" / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    return {"root": root, "outside": tmp_path / "secret.jpg"}


def test_paths_escaping_the_root_are_refused(tmp_path: Path, rooted: dict[str, Any]) -> None:
    items = [detection_item("images/in.jpg", "inside"),
             detection_item(str(rooted["root"] / "images" / "in.jpg"), "absolute-inside"),
             detection_item("../secret.jpg", "dotdot"),
             detection_item("images/../../secret.jpg", "nested-dotdot"),
             detection_item(str(rooted["outside"]), "absolute-outside"),
             detection_item("images/link.jpg", "symlink-out")]
    summary = write_dataset(items, "r", tmp_path / "out", 1, 2, shuffle=False,
                            root=rooted["root"], progress=False)
    assert summary.written == 2
    refused = {f["id"]: f["error_msg"] for f in summary.failures}
    assert set(refused) == {"dotdot", "nested-dotdot", "absolute-outside", "symlink-out"}
    assert all("outside the dataset root" in m for m in refused.values())
    assert summary.failed_by_reason == {"outside root": 4}
    # The record keeps the filename as given.
    from tfrecord_lite import read_examples
    first = next(iter(read_examples(tmp_path / "out" / "r-00000-of-00001")))
    assert first["filename"] == "images/in.jpg"


def test_without_a_root_paths_are_read_as_given(tmp_path: Path,
                                                rooted: dict[str, Any]) -> None:
    summary = write_dataset([detection_item(str(rooted["outside"]), "x")], "r", tmp_path / "o",
                            1, 1, progress=False)
    assert summary.written == 1


def test_cli_root_option(tmp_path: Path, rooted: dict[str, Any]) -> None:
    dataset = tmp_path / "d.json"
    dataset.write_text(json.dumps([detection_item("images/in.jpg", "a"),
                                   detection_item("../secret.jpg", "b")]))
    args = ["--dataset_path", str(dataset), "--prefix", "r", "--output_dir",
            str(tmp_path / "out"), "--root", str(rooted["root"]), "-q"]
    assert main(args + ["--validate-only"]) == 1
    assert main(args) == 1
    failures = json.loads((tmp_path / "out" / "r.failures.json").read_text())
    assert [f["id"] for f in failures] == ["b"]


# -- write failures -------------------------------------------------------------------------

FAILURES = {
    "disk full": (errno.ENOSPC, "No space left on device"),
    "permission denied": (errno.EACCES, "Permission denied"),
    "read-only": (errno.EROFS, "Read-only file system"),
}


def _items(image_file: Any, n: int = 9) -> list[dict[str, Any]]:
    return [detection_item(image_file("jpeg-rgb"), f"w{i}") for i in range(n)]


def _inject(monkeypatch: pytest.MonkeyPatch, where: str, err: tuple[int, str],
            at_call: int) -> None:
    """Make the ``at_call``-th call of one file operation fail with ``err``."""
    calls = [0]

    def failing(real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == at_call:
                raise OSError(err[0], err[1])
            return real(*args, **kwargs)
        return wrapper

    if where == "open":
        monkeypatch.setattr(_compression, "open_file", failing(_compression.open_file))
    elif where == "write":
        monkeypatch.setattr(os, "writev", failing(os.writev))
    elif where == "rename":
        monkeypatch.setattr(os, "replace", failing(os.replace))


@pytest.mark.parametrize("kind", sorted(FAILURES))
@pytest.mark.parametrize("where, at_call", [("open", 2), ("write", 2), ("rename", 3),
                                            ("rename", 5)])
def test_write_failures_are_clear_and_leave_nothing_partial(
        tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch,
        kind: str, where: str, at_call: int) -> None:
    items = _items(image_file)
    reference = tmp_path / "reference"
    write_dataset(items, "w", reference, 3, 2, seed=1, progress=False)
    out = tmp_path / "out"
    _inject(monkeypatch, where, FAILURES[kind], at_call)
    with pytest.raises(WriteError) as info:
        write_dataset(items, "w", out, 3, 2, seed=1, progress=False)
    monkeypatch.undo()
    assert FAILURES[kind][1] in str(info.value)
    assert ("disk full?" in str(info.value)) == (kind == "disk full")
    for path in out.iterdir():
        if not path.name.startswith("."):  # under a final name: a complete shard
            assert path.read_bytes() == (reference / path.name).read_bytes()
            assert len(list(read_records(path))) == 3
        else:  # no temporary file is left; the journal stays, for --resume
            assert path.name.startswith(".w-journal") and path.name.endswith(".json"), path
    summary = write_dataset(items, "w", out, 3, 2, seed=1, resume=True, progress=False)
    assert summary.written == 9
    assert sorted(os.listdir(out)) == sorted(os.listdir(reference))


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_cli_write_failure_exit_status(tmp_path: Path, image_file: Any,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str], kind: str) -> None:
    dataset = tmp_path / "d.json"
    dataset.write_text(json.dumps(_items(image_file, 3)))
    _inject(monkeypatch, "write", FAILURES[kind], 1)
    status = main(["--dataset_path", str(dataset), "--prefix", "w", "--output_dir",
                   str(tmp_path / "out"), "-q"])
    assert status == 3
    err = capsys.readouterr().err
    assert err.startswith("tfrecord-lite: error: cannot write shard ")
    assert FAILURES[kind][1] in err and "Traceback" not in err


def test_cli_unwritable_failures_file(tmp_path: Path, image_file: Any,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "d.json"
    dataset.write_text(json.dumps(_items(image_file, 2)))
    real_replace = os.replace

    def read_only(src: str, dst: str) -> None:
        if dst.endswith(".failures.json"):
            raise OSError(errno.EROFS, "Read-only file system")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", read_only)
    assert main(["--dataset_path", str(dataset), "--prefix", "w", "--output_dir",
                 str(tmp_path / "out"), "-q"]) == 3
    assert "Read-only file system" in capsys.readouterr().err
