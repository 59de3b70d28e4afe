from __future__ import annotations

import copy
import errno
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import tfrecord_lite
from tfrecord_lite import WriteError, create, read_examples, read_records, write_dataset
from tfrecord_lite.sharding import shard_name

from conftest import KINDS, detection_item, make_image_bytes


def _dataset(image_file: Any, n: int, kinds: tuple[str, ...] = ("jpeg-rgb", "png-rgb")
             ) -> list[dict[str, Any]]:
    return [detection_item(image_file(kinds[i % len(kinds)]), f"item-{i}") for i in range(n)]


def _all_records(out: Path, name: str, shards: int) -> list[dict[str, Any]]:
    records = []
    for i in range(shards):
        records += list(read_examples(out / shard_name(name, i, shards)))
    return records


def test_shards_named_balanced_and_complete(tmp_path: Path, image_file: Any) -> None:
    items = _dataset(image_file, 11)
    failures = create(items, "train", tmp_path / "out", num_shards=3, num_threads=2,
                      progress=False)
    assert failures == []
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["train-00000-of-00003", "train-00001-of-00003", "train-00002-of-00003",
                     "train.failures.json", "train.manifest.json"]
    counts = [len(list(read_records(out / n))) for n in names[:3]]
    assert sorted(counts) == [3, 4, 4]
    ids = {r["id"] for r in _all_records(out, "train", 3)}
    assert ids == {f"item-{i}" for i in range(11)}


def test_every_image_kind_is_written_and_decodes(tmp_path: Path, image_file: Any) -> None:
    items = _dataset(image_file, len(KINDS), KINDS)
    assert create(items, "kinds", tmp_path, 2, 2, progress=False) == []
    for record in _all_records(tmp_path, "kinds", 2):
        im = Image.open(io.BytesIO(record["encoded"]))
        im.load()
        assert im.format == "JPEG" and im.mode == "RGB"
        assert (record["width"], record["height"]) == im.size == (64, 48)
        assert (record["channels"], record["colorspace"], record["format"]) == (3, "RGB", "JPEG")


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_output_bytes_do_not_depend_on_threads(tmp_path: Path, image_file: Any,
                                               threads: int) -> None:
    items = _dataset(image_file, 9)
    ref = tmp_path / "ref"
    write_dataset(items, "d", ref, 4, 1, shuffle=True, seed=123, progress=False)
    out = tmp_path / f"t{threads}"
    write_dataset(items, "d", out, 4, threads, shuffle=True, seed=123, progress=False)
    for i in range(4):
        name = shard_name("d", i, 4)
        assert (out / name).read_bytes() == (ref / name).read_bytes()
    assert (out / "d.manifest.json").read_text() == (ref / "d.manifest.json").read_text()


def test_seed_changes_order_and_caller_list_untouched(tmp_path: Path, image_file: Any) -> None:
    items = _dataset(image_file, 20)
    before = copy.deepcopy(items)
    write_dataset(items, "a", tmp_path / "a", 1, 2, shuffle=True, seed=1, progress=False)
    write_dataset(items, "b", tmp_path / "b", 1, 2, shuffle=True, seed=2, progress=False)
    write_dataset(items, "c", tmp_path / "c", 1, 2, shuffle=False, progress=False)
    assert items == before
    order = {k: [r["id"] for r in _all_records(tmp_path / k, k, 1)] for k in "abc"}
    assert order["c"] == [i["id"] for i in items]
    assert order["a"] != order["b"] and sorted(order["a"]) == sorted(order["c"])


def test_failures_are_returned_never_written(tmp_path: Path, image_file: Any) -> None:
    good = _dataset(image_file, 4)
    jpeg = make_image_bytes("jpeg-rgb", width=120, height=90)
    bad = [
        detection_item(str(tmp_path / "nope.jpg"), "missing"),
        detection_item(image_file(b""), "empty"),
        detection_item(image_file(jpeg[: len(jpeg) // 2]), "truncated"),
        detection_item(image_file(b"<html>not an image</html>"), "not-image"),
        detection_item(str(tmp_path), "directory"),
        detection_item(image_file("jpeg-rgb"), "bad-label", **{"class": {"label": "cat"}}),
        {"id": "no-filename"},
    ]
    items = good[:2] + bad + good[2:]
    summary = write_dataset(items, "f", tmp_path / "out", 3, 2, progress=False)
    assert summary.written == 4 and summary.failed == len(bad)
    failed = {f.get("id"): f["error_msg"] for f in summary.failures}
    assert "file not found" in failed["missing"]
    assert "empty file" in failed["empty"]
    assert "truncated" in failed["truncated"]
    assert "not an image" in failed["not-image"]
    assert "directory" in failed["directory"]
    assert "class/label" in failed["bad-label"] and "bad-label" in failed["bad-label"]
    assert "filename: missing" in failed["no-filename"]
    assert summary.failed_by_reason == {"missing": 1, "empty": 1, "truncated": 1,
                                        "not an image": 1, "unreadable": 1, "invalid item": 2}
    assert "error_msg" not in items[2]  # copies are returned; the caller's dicts untouched
    written = {r["id"] for r in _all_records(tmp_path / "out", "f", 3)}
    assert written == {f"item-{i}" for i in range(4)}
    manifest = json.loads((tmp_path / "out" / "f.manifest.json").read_text())
    assert manifest["failed"] == len(bad) and manifest["records"] == 4
    assert "failed: 7" in summary.describe()


def test_manifest(tmp_path: Path, image_file: Any) -> None:
    import hashlib

    write_dataset(_dataset(image_file, 5), "m", tmp_path, 2, 1, compression="gzip",
                  shuffle=True, seed=9, progress=False)
    manifest = json.loads((tmp_path / "m.manifest.json").read_text())
    assert manifest["records"] == 5 and manifest["num_shards"] == 2
    assert manifest["options"]["seed"] == 9 and manifest["options"]["compression"] == "gzip"
    for shard in manifest["shards"]:
        data = (tmp_path / shard["file"]).read_bytes()
        assert shard["bytes"] == len(data)
        assert shard["sha256"] == hashlib.sha256(data).hexdigest()
        assert shard["records"] == len(list(read_records(tmp_path / shard["file"])))
    assert manifest["tfrecord_lite_version"] == tfrecord_lite.__version__


def test_more_shards_than_items(tmp_path: Path, image_file: Any) -> None:
    create(_dataset(image_file, 2), "s", tmp_path, 4, 3, progress=False)
    counts = [len(list(read_records(tmp_path / shard_name("s", i, 4)))) for i in range(4)]
    assert counts == [1, 1, 0, 0]


def test_encoded_given_is_stored_as_is(tmp_path: Path) -> None:
    png = make_image_bytes("png-rgb")
    item = {"filename": "mem.png", "id": 1, "encoded": png, "height": 48, "width": 64,
            "format": "PNG", "colorspace": "RGB", "channels": 3}
    incomplete = {"filename": "mem2.png", "id": 2, "encoded": png, "height": 48}
    failures = create([item, incomplete], "e", tmp_path, 1, 1, progress=False)
    assert [f["id"] for f in failures] == [2]
    assert "width, format, colorspace, channels must be given" in failures[0]["error_msg"]
    (record,) = _all_records(tmp_path, "e", 1)
    assert record["encoded"] == png and record["format"] == "PNG"


def test_store_images_false(tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch
                            ) -> None:
    from_header = detection_item(image_file("png-rgb"), "header")
    given = detection_item(str(tmp_path / "never-opened.jpg"), "given", height=10, width=20)
    opened = []
    real_open = open

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(os.fspath(path) if isinstance(path, (str, os.PathLike)) else path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    failures = create([from_header, given], "n", tmp_path / "o", 1, 1, store_images=False,
                      shuffle=False, progress=False)
    monkeypatch.undo()
    assert failures == []
    assert str(tmp_path / "never-opened.jpg") not in opened
    records = _all_records(tmp_path / "o", "n", 1)
    assert "encoded" not in records[0]
    assert (records[0]["width"], records[0]["height"], records[0]["format"]) == (64, 48, "PNG")
    assert (records[1]["width"], records[1]["height"]) == (20, 10)


def test_max_side_keeps_normalized_boxes(tmp_path: Path, image_file: Any) -> None:
    item = detection_item(image_file("jpeg-rgb", width=400, height=300), "big")
    create([item], "b", tmp_path, 1, 1, max_side=100, progress=False)
    (record,) = _all_records(tmp_path, "b", 1)
    assert (record["width"], record["height"]) == (100, 75)
    assert record["object"]["bbox"]["xmin"] == pytest.approx(item["object"]["bbox"]["xmin"])


def test_injected_write_failure_leaves_no_partial_shard(tmp_path: Path, image_file: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    items = _dataset(image_file, 10)
    calls = [0]
    real_writev = os.writev

    def failing_writev(fd: int, buffers: Any) -> int:
        calls[0] += 1
        if calls[0] == 2:  # the second shard's write: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "writev", failing_writev)
    out = tmp_path / "out"
    with pytest.raises(WriteError, match="disk full"):
        create(items, "w", out, 3, 2, progress=False)
    monkeypatch.undo()
    assert calls[0] == 2
    names = sorted(p.name for p in out.iterdir())
    # Shard 0 (4 records) was complete and renamed (to a hidden name: the shards get
    # their final names only when all are complete); shard 1 failed: nothing else is
    # left, neither a partial shard nor a temporary file, nor a manifest; the journal
    # stays for a resumed run.
    assert names == [".w-00000-of-00003.complete", ".w-journal-00000.json", ".w-journal.json"]
    assert len(list(read_records(out / names[0]))) == 4


def test_unwritable_output_is_a_clear_error(tmp_path: Path, image_file: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WriteError, match="cannot create output directory"):
        create(_dataset(image_file, 1), "x", blocker / "sub", 1, 1, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_shards": 0}, "num_shards"), ({"num_threads": 0}, "num_threads"),
    ({"dataset_name": "a/b"}, "dataset_name"), ({"quality": 0}, "quality"),
])
def test_argument_errors(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"dataset": [], "dataset_name": "x", "output_directory": tmp_path,
                            "num_shards": 1, "num_threads": 1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        create(**args)


def test_progress_callback(tmp_path: Path, image_file: Any) -> None:
    seen: list[tuple[int, int]] = []
    create(_dataset(image_file, 3), "p", tmp_path, 1, 1,
           progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_demo_dataset(tmp_path: Path, demo_items: list[dict[str, Any]]) -> None:
    summary = write_dataset(demo_items, "demo", tmp_path, 2, 2, seed=3, progress=False)
    assert summary.failed == 0 and summary.written == len(demo_items)
    records = {r["id"]: r for r in _all_records(tmp_path, "demo", 2)}
    camera = records["4"]  # the grayscale PNG was converted
    assert camera["format"] == "JPEG" and camera["channels"] == 3
    rocket = records["3"]  # a colour JPEG is stored byte for byte
    rocket_path = [i for i in demo_items if i["id"] == "3"][0]["filename"]
    assert rocket["encoded"] == Path(rocket_path).read_bytes()


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Log os.fsync (by path) and os.replace calls, in order, from every thread."""
    events: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        real_replace(src, dst)
        events.append(("replace", os.path.realpath(src), os.path.realpath(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names fds through /proc")
def test_fsync_flushes_each_file_before_it_gets_its_name(tmp_path: Path, image_file: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    items = [detection_item(image_file("jpeg-rgb"), str(i)) for i in range(6)]
    events = _record_fsyncs(monkeypatch)
    write_dataset(items, "t", tmp_path / "plain", 3, 2, seed=1, progress=False)
    assert not [e for e in events if e[0] == "fsync"]  # off by default

    events.clear()
    out = tmp_path / "durable"
    write_dataset(items, "t", out, 3, 2, seed=1, fsync=True, progress=False)
    renamed = [e for e in events if e[0] == "replace"]
    names = {os.path.basename(e[2]) for e in renamed}
    assert {shard_name("t", i, 3) for i in range(3)} | {"t.manifest.json"} <= names
    assert any(name.startswith(".t-journal") for name in names)
    directory = os.path.realpath(out)
    for event in renamed:
        at = events.index(event)
        # A shard's final name is its second: its bytes were flushed before its first.
        first = (next(e for e in renamed if e[2] == event[1])
                 if event[1].endswith(".complete") else event)
        assert ("fsync", first[1]) in events[:events.index(first)], (
            f"{event[2]} named before its bytes were flushed")
        assert ("fsync", directory) in events[at:], f"{event[2]}'s name was not flushed"
    assert [p.read_bytes() for p in sorted(out.glob("t-0*"))] == [
        p.read_bytes() for p in sorted((tmp_path / "plain").glob("t-0*"))]
