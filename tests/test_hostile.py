"""Hostile input: decompression bombs, oversized files, paths escaping the dataset root,
and write failures (disk full, permission denied, read-only file system)."""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import ImageError, WriteError, read_records, validate_dataset, write_dataset
from tfrecord_lite import compression as _compression
from tfrecord_lite.cli import main
from tfrecord_lite.items import ItemOptions, encode_item

from conftest import ROOT, detection_item, make_image_bytes


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


@pytest.mark.slow
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


# -- image paths that are not regular files -------------------------------------------------

def _failures_file(out: Path, prefix: str) -> Any:
    """The failures file a job wrote beside its shards (either naming)."""
    return json.loads(next(out.glob(f"{prefix}[.-]failures.json")).read_text())


def _not_regular_files() -> dict[str, str]:
    """In the current folder: a FIFO with no writer, a socket, a directory; and two devices."""
    os.mkfifo("pipe.jpg")
    os.mkdir("folder.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind("socket.jpg")
    sock.close()  # the file stays
    return {"fifo": "pipe.jpg", "socket": "socket.jpg", "directory": "folder.jpg",
            "zero": "/dev/zero", "urandom": "/dev/urandom"}


@pytest.mark.slow
@pytest.mark.parametrize("store_images", [True, False])
def test_paths_that_are_not_regular_files_fail_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_images: bool) -> None:
    # A FIFO used to block a worker in open() forever, and /dev/zero was read up to the
    # size limit. In a fresh process with a deadline, so that a hang fails the test.
    monkeypatch.chdir(tmp_path)
    paths = _not_regular_files()
    (tmp_path / "good.jpg").write_bytes(make_image_bytes("jpeg-rgb"))
    items = [{"filename": path, "id": kind} for kind, path in paths.items()]
    items.append({"filename": "good.jpg", "id": "good"})
    Path("d.json").write_text(json.dumps(items))
    flag = "--store_images" if store_images else "--no-store_images"
    done = subprocess.run([sys.executable, "-m", "tfrecord_lite", "--dataset_path", "d.json",
                           "--prefix", "s", "--output_dir", "out", "--threads", "8", flag,
                           "-q"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1, done.stderr
    failures = {f["id"]: f["error_msg"] for f in _failures_file(tmp_path / "out", "s")}
    assert set(failures) == set(paths)
    for kind, path in paths.items():
        assert failures[kind].startswith(f"{path}: not a regular file ("), failures[kind]
    assert "a FIFO" in failures["fifo"] and "a directory" in failures["directory"]
    assert "a character device" in failures["zero"] and "a socket" in failures["socket"]
    assert "Traceback" not in done.stderr


def test_validate_only_names_a_path_that_is_not_a_regular_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    paths = _not_regular_files()
    Path("d.json").write_text(json.dumps([{"filename": p, "id": k} for k, p in paths.items()]))
    assert main(["--dataset_path", "d.json", "--prefix", "s", "--output_dir", "out",
                 "--validate-only"]) == 1
    err = capsys.readouterr().err
    assert err.count(": not a regular file (") == len(paths), err
    assert "file not found" not in err and not Path("out").exists()
    report = validate_dataset([{"filename": "pipe.jpg", "id": 1}])
    assert report.failures[0]["error_msg"].startswith("pipe.jpg: not a regular file (a FIFO")


def _encode_with_deadline(item: dict[str, Any], seconds: float = 20) -> Any:
    """``encode_item(item)``'s result or error, from a thread given a deadline: a read
    that blocks fails the test instead of hanging it."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(encode_item(item))
        except ImageError as exc:
            result.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert not worker.is_alive(), f"blocked reading {item['filename']}"
    return result[0]


def test_a_fifo_is_refused_even_when_swapped_in_after_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The path is a regular file when looked at, and a FIFO when opened: the open does
    # not block (O_NONBLOCK), and what was opened is refused.
    monkeypatch.chdir(tmp_path)
    os.mkfifo("pipe.jpg")
    Path("file.jpg").write_bytes(make_image_bytes("jpeg-rgb"))
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: real_stat(
        "file.jpg" if path == "pipe.jpg" else path, *a, **k))
    error = _encode_with_deadline(detection_item("pipe.jpg", 1))
    assert isinstance(error, ImageError) and error.reason == "unreadable"
    assert "not a regular file (a FIFO" in str(error)


@pytest.mark.slow
def test_sixteen_devices_on_eight_threads_take_no_memory(tmp_path: Path) -> None:
    # Each /dev/zero item used to be read up to the 256 MB limit: 4.2 GB at the peak.
    code = (
        "import json, re\n"
        "from tfrecord_lite import write_dataset\n"
        "items = [{'filename': '/dev/zero', 'id': i} for i in range(16)]\n"
        f"s = write_dataset(items, 'z', {str(tmp_path / 'out')!r}, 1, 8, progress=False)\n"
        "peak = int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1])\n"
        "print(json.dumps([s.failed_by_reason, peak // 1024]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True, timeout=60)
    reasons, peak_mb = json.loads(out.stdout)
    assert reasons == {"unreadable": 16}
    assert peak_mb < 150, f"peak RSS {peak_mb} MB"


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
        elif path.name.endswith(".complete"):  # a complete shard, waiting for the others
            final = path.name[1:-len(".complete")]
            assert path.read_bytes() == (reference / final).read_bytes()
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


# -- records longer than the readers accept -------------------------------------------------

def test_an_item_whose_record_exceeds_max_record_size_fails_naming_both(
        tmp_path: Path, image_file: Any) -> None:
    # The writer used to write any record; the readers then called the file damaged
    # ("the header is damaged") past their cap. A 30 KB JPEG stored as is, and a long
    # extra, under a 20 KB cap.
    import numpy as np
    from PIL import Image

    big_jpeg = tmp_path / "big.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big_jpeg, "JPEG", quality=95)
    assert big_jpeg.stat().st_size > 20_000
    items = [detection_item(image_file("jpeg-rgb"), "small"),
             detection_item(str(big_jpeg), "big-jpeg"),
             {**detection_item(image_file("jpeg-rgb"), "long-extra"), "extra": "x" * 25_000}]
    out = tmp_path / "out"
    summary = write_dataset(items, "r", out, 1, 1, shuffle=False, max_record_size=20_000,
                            progress=False)
    assert summary.written == 1
    failed = {f["id"]: f["error_msg"] for f in summary.failures}
    assert set(failed) == {"big-jpeg", "long-extra"}
    for message in failed.values():
        assert "over the 20,000-byte limit of a record (max_record_size)" in message
    assert "its record would be 27,302 bytes" in failed["long-extra"]
    assert summary.manifest()["options"]["max_record_size"] == 20_000
    from tfrecord_lite import verify_files
    assert not verify_files([out / "r-00000-of-00001"], max_record_size=20_000).problems


def test_max_record_size_on_the_command_line(tmp_path: Path, image_file: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "d.json"
    dataset.write_text(json.dumps([{**detection_item(image_file("jpeg-rgb"), "a"),
                                    "extra": "x" * 3000}]))
    argv = ["create", "--dataset_path", str(dataset), "--prefix", "r", "--output_dir",
            str(tmp_path / "out"), "-q"]
    assert main([*argv, "--max-record-size", "2K"]) == 1
    assert "over the 2,048-byte limit of a record" in capsys.readouterr().err
    assert main([*argv, "--max-record-size", "1M"]) == 0
    manifest = json.loads((tmp_path / "out" / "r.manifest.json").read_text())
    assert manifest["options"]["max_record_size"] == 1 << 20
    assert main([*argv]) == 0  # the default is left out of the manifest, as before
    manifest = json.loads((tmp_path / "out" / "r.manifest.json").read_text())
    assert "max_record_size" not in manifest["options"]


@pytest.mark.slow
def test_a_260_mib_extra_fails_under_the_default_cap(tmp_path: Path) -> None:
    # The readers' default cap (256 MiB) is the writer's: such a record used to be
    # written, then reported by verify as a damaged header. In a fresh process, so that
    # its memory is given back.
    code = (
        "import json\n"
        "from tfrecord_lite import write_dataset\n"
        "item = {'filename': 'x.jpg', 'id': 'huge', 'height': 1, 'width': 1,\n"
        "        'extra': 'x' * (260 << 20)}\n"
        f"s = write_dataset([item], 'h', {str(tmp_path / 'out')!r}, 1, 1, store_images=False,\n"
        "                   progress=False)\n"
        "print(json.dumps([s.written, s.failures[0]['error_msg'][-300:]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True, timeout=300)
    written, message = json.loads(out.stdout)
    assert written == 0
    assert "its record would be 272,6" in message
    assert "over the 268,435,456-byte limit of a record" in message
