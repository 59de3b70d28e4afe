"""Every input file is opened in one step: a regular file, never waited on, and under a
root never outside it (``confined``), whatever path form or race leads elsewhere."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import ImageError, confined, write_dataset
from tfrecord_lite.cli import main
from tfrecord_lite.confined import open_file
from tfrecord_lite.items import ItemOptions, encode_item
from tfrecord_lite.options import JobOptions

from conftest import detection_item, make_image_bytes

INSIDE = b"inside"
OUTSIDE = b"outside"


def _resolvers() -> list[Any]:
    """The resolvers this system has; openat2 only where the kernel offers it."""
    found: list[Any] = ["auto", "walk", "realpath"]
    if confined._openat2_available():
        found.append("openat2")
    else:
        found.append(pytest.param("openat2", marks=pytest.mark.skip("no openat2 here")))
    return found


# The race-free resolvers: the check is the open.
RACE_FREE = [r for r in _resolvers() if r != "realpath"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``root/`` with a file, links of every kind, a FIFO; ``secret.jpg`` beside it."""
    root = tmp_path / "root"
    images = root / "images"
    images.mkdir(parents=True)
    (images / "in.jpg").write_bytes(INSIDE)
    (tmp_path / "secret.jpg").write_bytes(OUTSIDE)
    (images / "abs-out.jpg").symlink_to(tmp_path / "secret.jpg")
    (images / "rel-out.jpg").symlink_to(Path("..") / ".." / "secret.jpg")
    (images / "rel-in.jpg").symlink_to("in.jpg")
    (images / "abs-in.jpg").symlink_to(images / "in.jpg")
    (images / "dev.jpg").symlink_to("/dev/zero")
    (root / "dir-out").symlink_to(tmp_path)
    (root / "dir-in").symlink_to("images")
    (root / "loop.jpg").symlink_to("loop.jpg")
    os.mkfifo(root / "pipe.jpg")
    return root


# (path, under the root: the bytes read, or the errno of the refusal)
CASES: list[tuple[str, Any]] = [
    ("images/in.jpg", INSIDE),
    ("./images/./in.jpg", INSIDE),
    ("images/../images/in.jpg", INSIDE),
    ("{root}/images/in.jpg", INSIDE),
    ("images/rel-in.jpg", INSIDE),
    ("images/abs-in.jpg", INSIDE),
    ("dir-in/in.jpg", INSIDE),
    ("../secret.jpg", errno.EXDEV),
    ("images/../../secret.jpg", errno.EXDEV),
    ("{root}/../secret.jpg", errno.EXDEV),
    ("{outside}", errno.EXDEV),
    ("images/abs-out.jpg", errno.EXDEV),
    ("images/rel-out.jpg", errno.EXDEV),
    ("images/dev.jpg", errno.EXDEV),
    ("dir-out/secret.jpg", errno.EXDEV),
    ("missing.jpg", errno.ENOENT),
    ("images/in.jpg/x", errno.ENOTDIR),
    ("images", errno.EISDIR),
    ("images/..", errno.EISDIR),
    ("pipe.jpg", errno.EINVAL),
    ("loop.jpg", errno.ELOOP),
]


def _read(path: str, root: str | None, resolver: str = "auto") -> bytes:
    fd = open_file(path, root, resolver)
    try:
        return os.read(fd, 100)
    finally:
        os.close(fd)


@pytest.mark.parametrize("resolver", _resolvers())
@pytest.mark.parametrize("path, expected", CASES, ids=[c[0] for c in CASES])
def test_path_forms_under_a_root(tree: Path, resolver: str, path: str, expected: Any) -> None:
    path = path.format(root=tree, outside=tree.parent / "secret.jpg")
    if isinstance(expected, bytes):
        assert _read(path, str(tree), resolver) == expected
        return
    with pytest.raises(OSError) as info:
        _read(path, str(tree), resolver)
    assert info.value.errno == expected, info.value
    if expected == errno.EXDEV:
        assert confined.reason(info.value) == "outside root"
        assert str(tree) in confined.describe(info.value)


@pytest.mark.parametrize("resolver", RACE_FREE)
def test_a_path_that_leaves_the_root_and_comes_back_is_refused(tree: Path,
                                                               resolver: str) -> None:
    # As openat2's RESOLVE_BENEATH: the walk never stands outside the root, even on the way.
    with pytest.raises(OSError) as info:
        _read("dir-out/root/images/in.jpg", str(tree), resolver)
    assert info.value.errno == errno.EXDEV


@pytest.mark.parametrize("resolver", _resolvers())
def test_a_relative_root_and_relative_paths(tree: Path, resolver: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree.parent)
    assert _read("images/in.jpg", "root", resolver) == INSIDE
    assert _read(str(tree / "images" / "in.jpg"), "root", resolver) == INSIDE
    with pytest.raises(OSError) as info:
        _read("images/abs-out.jpg", "root", resolver)
    assert info.value.errno == errno.EXDEV


def test_without_a_root_links_are_followed_and_only_regular_files_opened(tree: Path) -> None:
    assert _read(str(tree / "images" / "abs-out.jpg"), None) == OUTSIDE
    for path, kind in [(tree / "pipe.jpg", "a FIFO"), (tree / "images", "a directory"),
                       (Path("/dev/zero"), "a character device")]:
        with pytest.raises(OSError) as info:
            _read(str(path), None)
        assert confined.describe(info.value) == f"not a regular file ({kind})"


def test_an_unknown_resolver_is_refused(tree: Path) -> None:
    with pytest.raises(ValueError, match="resolver must be one of"):
        open_file("images/in.jpg", str(tree), "guess")


def _swap_at_first_open(monkeypatch: pytest.MonkeyPatch, folder: Path, link_to: Path) -> None:
    """Replace ``folder`` by a link to ``link_to`` just before the first ``os.open``: after
    whatever a resolver looked at by name, before it opens anything."""
    real_open = os.open
    done = []

    def open_after_swap(*args: Any, **kwargs: Any) -> int:
        if not done:
            done.append(True)
            folder.rename(folder.with_name("moved"))
            folder.symlink_to(link_to)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(os, "open", open_after_swap)


@pytest.mark.parametrize("resolver", RACE_FREE)
def test_a_folder_swapped_for_a_link_while_opening_never_leads_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resolver: str) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "photo.jpg").write_bytes(INSIDE)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "photo.jpg").write_bytes(OUTSIDE)
    _swap_at_first_open(monkeypatch, root / "sub", tmp_path / "elsewhere")
    with pytest.raises(OSError) as info:
        _read("sub/photo.jpg", str(root), resolver)
    assert info.value.errno == errno.EXDEV


def test_an_item_whose_folder_is_swapped_while_opening_fails_outside_root(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check by realpath and the open by name were two steps: a folder swapped for a
    # link between them was read outside the root.
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    jpeg = make_image_bytes("jpeg-rgb")
    (root / "sub" / "photo.jpg").write_bytes(jpeg)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "photo.jpg").write_bytes(make_image_bytes("jpeg-gray"))
    _swap_at_first_open(monkeypatch, root / "sub", tmp_path / "elsewhere")
    options = ItemOptions(JobOptions(root=str(root)))
    with pytest.raises(ImageError) as info:
        encode_item(detection_item("sub/photo.jpg", "a"), options)
    assert info.value.reason == "outside root"
    assert "sub/photo.jpg: outside the dataset root" in str(info.value)


@pytest.mark.parametrize("resolver", RACE_FREE)
def test_a_folder_swapped_back_and_forth_never_leads_out(
        tmp_path: Path, resolver: str) -> None:
    # A real race: a thread swaps a folder of the root for a link out, and back, while
    # the path is opened again and again. Every open reads inside, or fails; none reads
    # outside. (FUZZ_EXAMPLES sizes it: `make fuzz` runs 100,000 opens.)
    tries = max(2000, int(os.environ.get("FUZZ_EXAMPLES", "0")))
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "photo.jpg").write_bytes(INSIDE)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "photo.jpg").write_bytes(OUTSIDE)
    (root / "link").symlink_to(tmp_path / "elsewhere")
    (root / "real").mkdir()
    (root / "real" / "photo.jpg").write_bytes(INSIDE)
    stop = threading.Event()

    def swap() -> None:
        sub = str(root / "sub")
        while not stop.is_set():
            os.replace(str(root / "link"), sub + ".tmp")  # sub -> the link out
            os.rename(sub, str(root / "link"))
            os.rename(sub + ".tmp", sub)
            os.rename(sub, sub + ".tmp")  # and back: sub -> a real folder
            os.rename(str(root / "real"), sub)
            os.rename(sub + ".tmp", str(root / "real"))

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    read, refused = 0, 0
    try:
        for _ in range(tries):
            try:
                data = _read("sub/photo.jpg", str(root), resolver)
            except OSError:
                refused += 1
                continue
            assert data == INSIDE
            read += 1
    finally:
        stop.set()
        swapper.join()
    assert read + refused == tries


def test_a_rename_during_the_walk_fails_the_item_not_the_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # realpath meets a link that a concurrent rename has just replaced: readlink raises
    # EINVAL. That used to stop the whole job (exit status 3).
    root = tmp_path / "root"
    root.mkdir()
    jpeg = make_image_bytes("jpeg-rgb")
    (root / "a.jpg").write_bytes(jpeg)
    (root / "b.jpg").write_bytes(jpeg)
    real_realpath = os.path.realpath

    def racing_realpath(path: Any, *args: Any, **kwargs: Any) -> str:
        if str(path).endswith("b.jpg"):
            raise OSError(errno.EINVAL, "Invalid argument", str(path))
        return real_realpath(path, *args, **kwargs)

    monkeypatch.setattr(os.path, "realpath", racing_realpath)
    items = [detection_item("a.jpg", "a"), detection_item(f"{tmp_path}/./root/b.jpg", "b")]
    summary = write_dataset(items, "r", tmp_path / "out", 1, 1, root=root, progress=False,
                            shuffle=False)
    assert summary.written == 1
    assert [f["id"] for f in summary.failures] == ["b"]
    assert "Invalid argument" in summary.failures[0]["error_msg"]


def test_a_link_replaced_during_the_walk_fails_that_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The walk opens a link with O_NOFOLLOW (refused: it is a link), then reads it; a
    # rename in between makes readlink fail with EINVAL. That path fails, named.
    root = tmp_path / "root"
    root.mkdir()
    (root / "target.jpg").write_bytes(INSIDE)
    (root / "link.jpg").symlink_to("target.jpg")

    def replaced(*args: Any, **kwargs: Any) -> str:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "readlink", replaced)
    with pytest.raises(OSError) as info:
        _read("link.jpg", str(root), "walk")
    assert info.value.errno == errno.EINVAL
    assert confined.describe(info.value) == "changed while being opened"


# -- every file the tool opens goes through the same door -----------------------------------

def _main_with_deadline(argv: list[str], fifos: list[Path], seconds: float = 30) -> int:
    """``main(argv)`` in a thread: a read that waits on one of ``fifos`` fails the test
    (after unblocking it) instead of hanging it."""
    status: list[int] = []
    runner = threading.Thread(target=lambda: status.append(main(argv)), daemon=True)
    runner.start()
    runner.join(seconds)
    if runner.is_alive():
        for fifo in fifos:  # a writer that comes and goes: the reader sees the end
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        runner.join(seconds)
        pytest.fail(f"{argv[0]} waited on a FIFO")
    return status[0]


def _voc(root: Path) -> None:
    from test_converters import make_voc

    make_voc(root)


def _csv(root: Path) -> None:
    from test_convert_cli import _make_csv

    _make_csv(root / "labels.csv", root / "images")


def _yolo(root: Path) -> None:
    from test_convert_cli import _make_darknet

    _make_darknet(root)  # obj/1.jpg, obj/2.jpg, their labels beside them, train.txt


# converter: (make the dataset under a folder, its command line, the image to make a
# link out of the root)
CONVERTERS = {
    "from-voc": (_voc, ["from-voc", "data"], "data/JPEGImages/2007_000002.jpg"),
    "from-csv": (_csv, ["from-csv", "data/labels.csv", "--images", "data/images"],
                 "data/images/b.jpg"),
    "from-yolo": (_yolo, ["from-yolo", "data"], "data/obj/2.jpg"),
}


@pytest.mark.parametrize("command", sorted(CONVERTERS))
def test_converters_read_no_image_header_outside_the_root(
        command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The image is a link to a FIFO outside the root: reading its header without the
    # root's check used to wait forever (and read outside the root, had it been a file).
    monkeypatch.chdir(tmp_path)
    make, argv, image = CONVERTERS[command]
    make(tmp_path / "data")
    os.mkfifo(tmp_path / "outside.jpg")
    (tmp_path / image).unlink()
    (tmp_path / image).symlink_to(tmp_path / "outside.jpg")
    status = _main_with_deadline([*argv, "--prefix", "t", "--output_dir", "out", "--root",
                                  "data", "-q"], [tmp_path / "outside.jpg"])
    assert status == 1
    err = capsys.readouterr().err
    assert "outside the dataset root data" in err and Path(image).name in err, err
    assert "Traceback" not in err


def test_from_yolo_label_files_outside_the_root_are_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    _yolo(tmp_path / "data")
    (tmp_path / "secret.txt").write_text("0 0.5 0.5 0.9 0.9\n")
    (tmp_path / "data" / "obj" / "2.txt").unlink()
    (tmp_path / "data" / "obj" / "2.txt").symlink_to(tmp_path / "secret.txt")
    assert main(["from-yolo", "data", "--to-json", "items.json", "--root", "data"]) == 1
    err = capsys.readouterr().err
    assert "2.txt: cannot read: outside the dataset root data" in err, err


@pytest.mark.parametrize("where", ["image", "label"])
def test_from_folder_and_from_yolo_report_a_fifo_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], where: str) -> None:
    monkeypatch.chdir(tmp_path)
    _yolo(tmp_path / "data")
    fifo = tmp_path / "data" / "obj" / ("2.jpg" if where == "image" else "2.txt")
    fifo.unlink()
    os.mkfifo(fifo)
    status = _main_with_deadline(["from-yolo", "data", "--to-json", "items.json"], [fifo])
    assert status == 1
    assert "not a regular file (a FIFO)" in capsys.readouterr().err
    if where == "label":
        return
    from test_converters import _image

    _image(tmp_path / "pets" / "cats" / "a.jpg")
    os.mkfifo(tmp_path / "pets" / "cats" / "b.jpg")
    status = _main_with_deadline(["from-folder", "pets", "--to-json", "pets.json"],
                                 [tmp_path / "pets" / "cats" / "b.jpg"])
    assert status == 1
    err = capsys.readouterr().err
    assert "b.jpg: cannot read: not a regular file (a FIFO)" in err, err


@pytest.mark.parametrize("flag", ["--dataset_path", "--label-map"])
def test_a_fifo_as_a_dataset_or_label_map_file_is_refused_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], flag: str) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkfifo("pipe.json")
    if flag == "--dataset_path":
        argv = ["create", "--dataset_path", "pipe.json", "--prefix", "t", "--output_dir", "out"]
    else:
        _csv(tmp_path / "data")
        argv = ["from-csv", "data/labels.csv", "--images", "data/images", "--label-map",
                "pipe.json", "--to-json", "items.json"]
    assert _main_with_deadline(argv, [tmp_path / "pipe.json"]) == 2
    err = capsys.readouterr().err
    assert "pipe.json" in err and "not a regular file (a FIFO)" in err, err
    assert not Path("out").exists()


def test_label_image_files_go_through_the_same_door(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    Path("root").mkdir()
    Path("root/a.jpg").write_bytes(make_image_bytes("jpeg-rgb"))
    Image.fromarray(np.zeros((48, 64), np.uint8)).save("outside.png")
    os.mkfifo("root/pipe.png")
    items = [{"filename": "a.jpg", "id": "out", "segmentation": "../outside.png"},
             {"filename": "a.jpg", "id": "fifo", "segmentation": "pipe.png"}]
    summary = write_dataset(items, "s", "out", 1, 1, root="root", progress=False,
                            shuffle=False)
    failed = {f["id"]: f["error_msg"] for f in summary.failures}
    assert "../outside.png: outside the dataset root root" in failed["out"]
    assert "pipe.png: not a regular file (a FIFO)" in failed["fifo"]
