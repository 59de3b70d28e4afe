"""One shard's life (tfrecord_lite/shards.py): written under a temporary name, hashed,
published, journaled; nothing partial when a step fails. And the two context managers
every runner uses: ``storage.folder(...)`` and ``errors.write_errors(...)``."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import OutputBusyError, ResumeError, WriteError, read_records, shards
from tfrecord_lite import storage as storage_
from tfrecord_lite.errors import ExampleError, write_errors
from tfrecord_lite.records import TFRecordWriter
from tfrecord_lite.shards import ShardResult, ShardWriter, complete_name


def _outcomes() -> list[tuple[int, Any, bytes | None, BaseException | None, list[str]]]:
    return [(10, {"id": "a", "filename": "a.jpg"}, b"record a", None, []),
            (11, {"id": "b", "filename": "b.jpg"}, None, ExampleError("id 'b': bad"), []),
            (12, {"id": "c", "filename": "c.jpg"}, b"record c", None, ["id 'c': odd"])]


def test_a_shard_is_written_hashed_published_and_journaled(tmp_path: Path) -> None:
    with storage_.folder(str(tmp_path)) as out:
        name = "t-00001-of-00002"
        result = shards.write_shard(out.temp_path(name), 1, name, "none", _outcomes())
        assert Path(result.temp).name.startswith(".t-00001-of-00002.tmp-")
        assert (result.records, result.warnings) == (2, ["id 'c': odd"])
        assert result.failed == [(11, "invalid item", "id 'b': bad")]
        assert result.copies == [{"id": "b", "filename": "b.jpg", "error_msg": "id 'b': bad"}]
        shards.finish(out, result, complete_name(name))
        shards.record(out, "t", result)
        published = tmp_path / ".t-00001-of-00002.complete"
        assert list(read_records(published)) == [b"record a", b"record c"]
        assert not Path(result.temp).exists()
        assert result.sha256 == hashlib.sha256(published.read_bytes()).hexdigest()
        assert result.bytes == published.stat().st_size
    entry = json.loads((tmp_path / ".t-journal-00001.json").read_text())
    assert entry == {**result.journal_entry(), "failures": [[11, "invalid item",
                                                                  "id 'b': bad"]]}
    assert (entry["file"], entry["final"]) == (".t-00001-of-00002.complete", name)


def test_a_kept_shard_is_read_back_from_its_journal_entry(tmp_path: Path) -> None:
    name = "t-00000-of-00001"
    written = shards.write_shard(str(tmp_path / "temp"), 0, name, None, _outcomes())
    written.sha256 = "0" * 64
    entry = {**written.journal_entry(), "failures": [list(f) for f in written.failed]}
    seen: list[int] = []
    kept = shards.kept(entry, [o[1] for o in _outcomes()], 10, seen.append)
    assert kept == ShardResult(0, name, "", written.records, written.bytes, written.sha256,
                               written.fingerprint, written.failed, written.copies,
                               written.warnings)
    assert seen == [1, 1, 1]
    other = [o[1] for o in _outcomes()][::-1]
    with pytest.raises(ResumeError, match=f"the items of shard {name} are not those"):
        shards.kept(entry, other, 10)


def test_a_disk_full_while_writing_names_the_shard_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / ".t-00000-of-00001.tmp-1"

    def full(self: Any, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    writer = ShardWriter(str(temp), 0, "t-00000-of-00001", None, "out/t-00000-of-00001")
    with pytest.raises(WriteError) as caught, writer:
        monkeypatch.setattr(writer._writer, "write", full.__get__(writer._writer))
        writer.add(0, {"id": 1, "filename": "x"}, b"data", None, None)
    assert str(caught.value) == (
        "cannot write shard out/t-00000-of-00001: No space left on device (disk full?); "
        "no partial shard was left under a final name")
    assert isinstance(caught.value.__cause__, OSError)
    assert not temp.exists()


def test_an_interruption_while_writing_removes_the_temporary_file(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    with pytest.raises(KeyboardInterrupt), ShardWriter(str(temp), 0, "t", None) as writer:
        writer.add_record(b"x")
        raise KeyboardInterrupt
    assert not temp.exists()


def test_a_failed_publish_removes_the_temporary_file(tmp_path: Path) -> None:
    result = shards.write_shard(str(tmp_path / "temp"), 0, "t", None, _outcomes())
    missing = storage_.folder(str(tmp_path / "missing"))  # a folder that is not there
    with missing as out, pytest.raises(WriteError, match="cannot write shard .*missing.*t: "):
        shards.finish(out, result, "t")
    assert not (tmp_path / "temp").exists()


def test_write_errors_maps_os_errors_only() -> None:
    with pytest.raises(WriteError, match=r"^cannot write x: denied; hint$") as caught, \
            write_errors("cannot write x", "; hint"):
        raise PermissionError(errno.EACCES, "denied")
    assert not isinstance(caught.value, OSError)  # the library's `except OSError` passes it
    busy = OutputBusyError("another run")  # an OSError too: the library's own, unchanged
    with pytest.raises(OutputBusyError), write_errors("cannot write x"):
        raise busy
    with pytest.raises(ValueError), write_errors("cannot write x"):
        raise ValueError("a bug is not a write error")


def test_a_folder_is_released_at_the_end_of_its_block() -> None:
    pytest.importorskip("fsspec")
    with storage_.folder("memory://shards-test/out") as out:
        local = out.temp_path("x")
        with TFRecordWriter(local) as writer:
            writer.write(b"x")
        assert os.path.exists(local)
    assert not os.path.exists(os.path.dirname(local))  # its local temporary folder is gone
