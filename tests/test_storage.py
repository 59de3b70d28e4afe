"""Image paths, dataset files and output directories as fsspec URLs.

memory:// runs everywhere fsspec is installed; s3:// talks to moto's S3 server, started
on 127.0.0.1 by the fixture below.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import WriteError, write_dataset
from tfrecord_lite.cli import main
from tfrecord_lite.storage import RemoteFolder, is_url, join_url

from conftest import detection_item, make_image_bytes

fsspec = pytest.importorskip("fsspec")

KINDS = ("jpeg-rgb", "png-rgb", "jpeg-gray")


def test_is_url_and_join() -> None:
    assert is_url("s3://bucket/key") and is_url("memory://x") and is_url("gs://b/o")
    assert not is_url("/data/a.jpg") and not is_url("C://x") and not is_url("a.jpg")
    assert join_url("s3://b/root", "images/../x.jpg") == "s3://b/root/x.jpg"
    assert join_url("s3://b/root", "../x.jpg") == "s3://b/x.jpg"


def _put_images(base: str, n: int) -> list[dict[str, Any]]:
    fs, root = fsspec.core.url_to_fs(base)
    items = []
    for i in range(n):
        fs.pipe_file(f"{root}/img{i}.bin", make_image_bytes(KINDS[i % len(KINDS)]))
        items.append(detection_item(f"{base}/img{i}.bin", f"u{i}"))
    return items


def _local_copy(tmp_path: Path, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same items with the images in local files (same file names as recorded)."""
    local = []
    for item in items:
        path = tmp_path / "local" / item["filename"].split("://", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        fs, inner = fsspec.core.url_to_fs(item["filename"])
        if fs.exists(inner):
            path.write_bytes(fs.cat_file(inner))
        local.append(dict(item, filename=str(path)))
    return local


def _remote_files(url: str) -> dict[str, bytes]:
    fs, root = fsspec.core.url_to_fs(url)
    return {os.path.basename(p): fs.cat_file(p) for p in fs.ls(root, detail=False)}


def _check_same_as_local(tmp_path: Path, items: list[dict[str, Any]], out_url: str) -> None:
    """Remote output equals a local run's, but for the file names inside the records."""
    from tfrecord_lite import decode_example, read_records

    local_out = tmp_path / "local-out"
    write_dataset(_local_copy(tmp_path, items), "s", local_out, 2, 2, seed=3, progress=False)
    remote = {n: data for n, data in _remote_files(out_url).items() if "-of-" in n}
    assert sorted(remote) == sorted(n for n in os.listdir(local_out) if "-of-" in n)
    for name in sorted(remote):
        mine = [decode_example(r) for r in read_records(local_out / name)]
        (tmp_path / name).write_bytes(remote[name])
        theirs = [decode_example(r) for r in read_records(tmp_path / name)]
        for a, b in zip(mine, theirs):
            assert a.pop("filename").endswith(b.pop("filename").split("://", 1)[1])
            assert a == b


def test_memory_urls_for_images_dataset_and_output(tmp_path: Path) -> None:
    items = _put_images("memory://in", 6)
    items.append(detection_item("memory://in/missing.jpg", "gone"))
    with fsspec.open("memory://in/d.jsonl", "w") as f:
        f.write("".join(json.dumps(i) + "\n" for i in items))
    out = "memory://out/run1"
    assert main(["--dataset_path", "memory://in/d.jsonl", "--prefix", "s", "--output_dir", out,
                 "--shards", "2", "--threads", "2", "--shuffle", "--seed", "3", "--store_images",
                 "-q"]) == 1
    files = _remote_files(out)
    assert sorted(files) == ["s-00000-of-00002", "s-00001-of-00002", "s.failures.json",
                             "s.manifest.json"]
    failures = json.loads(files["s.failures.json"])
    assert [f["id"] for f in failures] == ["gone"]
    assert "memory://in/missing.jpg: no file at this URL" in failures[0]["error_msg"]
    manifest = json.loads(files["s.manifest.json"])
    assert manifest["records"] == 6 and manifest["failed"] == 1
    _check_same_as_local(tmp_path, items, "memory://out/run1")


def test_memory_header_only_and_root(tmp_path: Path) -> None:
    items = _put_images("memory://rooted/images", 2)
    items.append(detection_item("memory://rooted/images/../../elsewhere/x.jpg", "escape"))
    relative = detection_item("img0.bin", "relative")
    summary = write_dataset(items + [relative], "h", "memory://out/h", 1, 1, shuffle=False,
                            store_images=False, root="memory://rooted/images", progress=False)
    assert summary.written == 3
    assert [f["id"] for f in summary.failures] == ["escape"]
    assert summary.failed_by_reason == {"outside root": 1}


def test_a_failed_upload_leaves_no_object_under_a_final_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items = _put_images("memory://up", 6)
    real_publish = RemoteFolder.publish
    calls = [0]

    def failing(self: RemoteFolder, temp: str, name: str) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise ConnectionError(104, "Connection reset by peer")
        real_publish(self, temp, name)

    monkeypatch.setattr(RemoteFolder, "publish", failing)
    with pytest.raises(WriteError, match="Connection reset"):
        write_dataset(items, "f", "memory://out/f", 3, 1, seed=1, progress=False)
    monkeypatch.undo()
    names = sorted(_remote_files("memory://out/f"))
    assert "f-00001-of-00003" not in names and "f.manifest.json" not in names
    summary = write_dataset(items, "f", "memory://out/f", 3, 1, seed=1, resume=True,
                            progress=False)
    assert summary.resumed_shards >= 1 and summary.written == 6
    write_dataset(items, "f", "memory://out/ref", 3, 1, seed=1, progress=False)
    assert _remote_files("memory://out/f") == _remote_files("memory://out/ref")


# -- a local S3 server ------------------------------------------------------------------------

@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with an empty bucket; yields the bucket's URL."""
    pytest.importorskip("s3fs")
    server_module = pytest.importorskip("moto.server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": {"endpoint_url": endpoint}})
    fsspec.filesystem("s3").clear_instance_cache()
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    bucket = f"test-{uuid.uuid4().hex[:12]}"  # moto keeps its buckets for the whole process
    fs.mkdir(bucket)
    try:
        yield f"s3://{bucket}"
    finally:
        fsspec.filesystem("s3").clear_instance_cache()
        server.stop()


def test_s3_images_and_output(tmp_path: Path, s3: str) -> None:
    items = _put_images(f"{s3}/images", 5)
    summary = write_dataset(items, "s", f"{s3}/out", 2, 2, seed=3, progress=False)
    assert summary.written == 5 and summary.failed == 0
    files = _remote_files(f"{s3}/out")
    assert sorted(files) == ["s-00000-of-00002", "s-00001-of-00002", "s.failures.json",
                             "s.manifest.json"]
    manifest = json.loads(files["s.manifest.json"])
    import hashlib

    for shard in manifest["shards"]:
        assert hashlib.sha256(files[shard["file"]]).hexdigest() == shard["sha256"]
        assert len(files[shard["file"]]) == shard["bytes"]
    _check_same_as_local(tmp_path, items, f"{s3}/out")
    from tfrecord_lite import verify_files
    from tfrecord_lite.storage import expand

    shards = expand([f"{s3}/out/s-0*"])
    assert shards == [f"{s3}/out/s-0000{i}-of-00002" for i in range(2)]
    report = verify_files(shards)  # read back from S3, manifest checked
    assert report.ok and (report.files, report.records, report.images) == (2, 5, 5)


def test_s3_resume_after_an_interruption(tmp_path: Path, s3: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tfrecord_lite import journal

    items = _put_images(f"{s3}/images", 6)
    real_add = journal.add

    def interrupted(out: Any, name: str, entry: dict[str, Any]) -> None:
        if entry["shard"] == 1:
            raise KeyboardInterrupt
        real_add(out, name, entry)

    with monkeypatch.context() as patch:  # (undo() would also undo the fixture's settings)
        patch.setattr(journal, "add", interrupted)
        with pytest.raises(KeyboardInterrupt):
            write_dataset(items, "r", f"{s3}/out", 3, 1, seed=5, progress=False)
    assert "r.manifest.json" not in _remote_files(f"{s3}/out")
    assert main(["create", "--dataset_path", _dataset_file(tmp_path, items), "--prefix", "r",
                 "--output_dir", f"{s3}/out", "--shards", "3", "--threads", "1", "--shuffle",
                 "--resume", "-q"]) == 0
    write_dataset(items, "r", f"{s3}/ref", 3, 1, seed=5, progress=False)
    resumed, reference = _remote_files(f"{s3}/out"), _remote_files(f"{s3}/ref")
    assert resumed == reference


def _dataset_file(tmp_path: Path, items: list[dict[str, Any]]) -> str:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items))
    return str(path)


def test_reading_shards_at_urls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tfrecord_lite import RecordError, iterate, read_records, verify_files
    from tfrecord_lite.stats import stats

    items = _put_images("memory://readback/in", 5)
    out = f"memory://readback/out-{uuid.uuid4().hex}"
    for compression in (None, "gzip"):
        name = f"s{compression or ''}"
        write_dataset(items, name, out, 2, 2, seed=1, compression=compression,
                      progress=False)
        shards = [f"{out}/{name}-0000{i}-of-00002" for i in range(2)]
        assert sorted(r["id"] for r in iterate(shards)) == [f"u{i}" for i in range(5)]
        report = verify_files(shards)
        assert report.ok and (report.records, report.images) == (5, 5), report.problems
        assert report.bytes == sum(len(fsspec.open(s, "rb").open().read()) for s in shards)
        assert stats(shards)["images"] == 5
    shards = [f"{out}/s-0000{i}-of-00002" for i in range(2)]  # not compressed

    # The manifest beside the shards is found and checked, as for local files.
    fs, inner = fsspec.core.url_to_fs(shards[0])
    data = bytearray(fs.cat_file(inner))
    data[-1] ^= 1
    fs.pipe_file(inner, bytes(data))
    report = verify_files(shards, decode_images=False)
    assert any("sha256 differs from the manifest" in str(p) for p in report.problems)
    with pytest.raises(RecordError, match="CRC"):
        list(read_records(shards[0]))

    # The command line expands wildcards in URLs itself; a missing URL is named.
    assert main(["verify", f"{out}/sgzip-*-of-00002"]) == 0
    assert "OK: 2 files, 5 records, 5 images decoded" in capsys.readouterr().out
    assert main(["verify", "--no-decode", f"{out}/s-*-of-00002"]) == 1
    assert "sha256 differs from the manifest" in capsys.readouterr().out
    assert main(["stats", f"{out}/sgzip-0*"]) == 0
    assert "images: 5" in capsys.readouterr().out
    assert main(["inspect", f"{out}/sgzip-00000-of-00002"]) == 0
    assert "image/object/bbox/xmin" in capsys.readouterr().out
    assert main(["show", f"{out}/sgzip-00001-of-00002", "-o", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").stat().st_size > 0
    assert main(["verify", f"{out}/nothing-here"]) == 1
    assert "nothing-here: cannot read: no such file" in capsys.readouterr().out
    assert main(["inspect", f"{out}/nothing-here"]) == 2
    assert "no such file: " in capsys.readouterr().err
    assert main(["index", shards[1]]) == 2
    assert "needs local files" in capsys.readouterr().err


def test_expand_patterns(tmp_path: Path) -> None:
    from tfrecord_lite.storage import expand

    for name in ("a-1", "a-2", "b-1", "odd[1]"):
        (tmp_path / name).write_bytes(b"")
    local = str(tmp_path)
    assert expand([f"{local}/a-*"]) == [f"{local}/a-1", f"{local}/a-2"]
    assert expand([f"{local}/odd[1]"]) == [f"{local}/odd[1]"]  # the file with that name
    assert expand([f"{local}/z-*", f"{local}/b-1"]) == [f"{local}/z-*", f"{local}/b-1"]
    fs = fsspec.filesystem("memory")
    for name in ("a-1", "a-2", "b-1"):
        fs.pipe_file(f"/expand/{name}", b"x")
    assert expand(["memory://expand/a-*"]) == ["memory:///expand/a-1", "memory:///expand/a-2"]
    assert expand(["memory://expand/z*"]) == ["memory://expand/z*"]
