"""A rerun into the folder of an earlier run: the earlier dataset stays whole, under its
names, until the new one is complete; the shard glob never reads a mix of two runs.

A run's complete shards wait under hidden names (``.train-00003-of-00008.complete``);
only when all are complete are they renamed to their final names. An interruption of
that last step is finished by ``--resume``.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest

from tfrecord_lite import journal, storage, write_dataset
from tfrecord_lite.cli import main

from conftest import ROOT, detection_item

SHARDS = 8
ITEMS = 40


@pytest.fixture
def items(tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch
          ) -> list[dict[str, Any]]:
    """40 items (one failing) in ``train.json``, with the current directory at tmp_path."""
    kinds = ("jpeg-rgb", "png-rgb")
    found = [detection_item(image_file(kinds[n % 2]), f"i{n}") for n in range(ITEMS - 1)]
    found.append(detection_item(str(tmp_path / "missing.jpg"), "gone"))
    (tmp_path / "train.json").write_text(json.dumps(found))
    monkeypatch.chdir(tmp_path)
    return found


def _visible(directory: str) -> dict[str, bytes]:
    """What a user (and a glob) sees in a folder: the files whose names are not hidden."""
    return {name: Path(directory, name).read_bytes() for name in sorted(os.listdir(directory))
            if not name.startswith(".")}


def _hidden(directory: str) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith("."))


def _write(out: str, seed: int, **options: Any) -> None:
    write_dataset(json.loads(Path("train.json").read_text()), "train", out, SHARDS, 2,
                  shuffle=True, seed=seed, progress=False, **options)


def _interrupt_journal_at(monkeypatch: pytest.MonkeyPatch, shard: int) -> Any:
    """A patch raising KeyboardInterrupt (Ctrl-C) as ``shard`` is about to be journaled."""
    real_add = journal.add

    def interrupted(out: Any, name: str, entry: dict[str, Any]) -> None:
        if entry["shard"] == shard:
            raise KeyboardInterrupt
        real_add(out, name, entry)

    patch = monkeypatch.context()
    return patch, interrupted


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_an_interrupted_rerun_leaves_the_earlier_dataset_whole(
        items: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, processes: int) -> None:
    _write("out", seed=1, num_processes=processes)
    earlier = _visible("out")
    assert len([n for n in earlier if n.startswith("train-")]) == SHARDS
    patch, interrupted = _interrupt_journal_at(monkeypatch, 5)
    with patch as p:
        p.setattr(journal, "add", interrupted)
        with pytest.raises(KeyboardInterrupt):
            _write("out", seed=2, num_processes=processes)
    # The earlier run's shards, manifest and failures, byte for byte; the new run's
    # complete shards wait under hidden names.
    assert _visible("out") == earlier
    assert sorted(glob.glob("out/train-*")) == sorted(f"out/{n}" for n in earlier
                                                      if n.startswith("train-"))
    assert [n for n in _hidden("out") if n.endswith(".complete")]
    _write("out", seed=2, resume=True, num_processes=processes)
    _write("reference", seed=2, num_processes=processes)
    assert _visible("out") == _visible("reference")
    assert _hidden("out") == []  # no journal, lock or complete shard left


@pytest.mark.slow
def test_ctrl_c_during_a_rerun_of_the_original_command_line(items: list[dict[str, Any]],
                                                           tmp_path: Path) -> None:
    """The user's scenario: the original command line twice (each with a random seed),
    the second interrupted by a real SIGINT, then ``--resume``."""
    argv = ["--dataset_path", "train.json", "--prefix", "train", "--output_dir", "out",
            "--shards", str(SHARDS), "--shuffle", "--store_images", "-q", "--threads", "2"]
    assert main(argv) == 1  # one item fails
    earlier = _visible("out")
    # The rerun, held after its third journaled shard until the SIGINT lands.
    script = tmp_path / "rerun.py"
    script.write_text(
        "import sys, threading\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tfrecord_lite import journal\n"
        "from tfrecord_lite.cli import main\n"
        "real_add = journal.add\n"
        "added = []\n"
        "def add(*args):\n"
        "    real_add(*args)\n"
        "    added.append(args)\n"
        "    print('journaled', flush=True)\n"
        "    if len(added) == 3:\n"
        "        threading.Event().wait(600)  # here until the SIGINT\n"
        "journal.add = add\n"
        "sys.exit(main(sys.argv[1:]))\n")
    child = subprocess.Popen([sys.executable, str(script), *argv, "--processes", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert child.stdout is not None
    for _ in range(3):
        assert child.stdout.readline().strip() == b"journaled"
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert b"--resume" in err
    assert _visible("out") == earlier  # the earlier dataset, whole, with its manifest
    assert main([*argv, "--resume"]) == 1
    manifest = json.loads(Path("out/train.manifest.json").read_text())
    seed = manifest["options"]["seed"]
    assert seed != json.loads(earlier["train.manifest.json"])["options"]["seed"]
    reference = [*argv[:5], "ref", *argv[6:], "--seed", str(seed)]
    assert main(reference) == 1
    assert _visible("out") == _visible("ref")
    assert sorted(glob.glob("out/train-*")) == [
        f"out/{name}" for name in manifest_names(manifest)]


def manifest_names(manifest: dict[str, Any]) -> list[str]:
    return sorted(shard["file"] for shard in manifest["shards"])


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_an_interruption_while_renaming_is_finished_by_resume(
        items: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, processes: int) -> None:
    _write("out", seed=1, num_processes=processes)
    real_rename = storage.Folder.rename
    calls = [0]

    def killed_between_renames(folder: Any, name: str, new_name: str) -> None:
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        real_rename(folder, name, new_name)

    with monkeypatch.context() as patch:
        patch.setattr(storage.Folder, "rename", killed_between_renames)
        with pytest.raises(KeyboardInterrupt):
            _write("out", seed=2, num_processes=processes)
    _write("reference", seed=2, num_processes=processes)
    renamed = _visible("out")
    new = _visible("reference")
    # Three shards have their final names; the earlier manifest, which no longer
    # describes the files, is gone; the journal still lists every shard.
    assert sum(renamed[n] == new[n] for n in new if n.startswith("train-")) == 3
    assert "train.manifest.json" not in renamed
    assert glob.glob("out/.train-journal.json")
    _write("out", seed=2, resume=True, num_processes=processes)
    assert _visible("out") == new
    assert _hidden("out") == []


def test_a_restart_after_an_interrupted_rerun_removes_its_hidden_shards(
        items: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    _write("out", seed=1)
    patch, interrupted = _interrupt_journal_at(monkeypatch, 4)
    with patch as p:
        p.setattr(journal, "add", interrupted)
        with pytest.raises(KeyboardInterrupt):
            _write("out", seed=2)
    assert len([n for n in _hidden("out") if n.endswith(".complete")]) >= 4
    _write("out", seed=3, interrupted="restart")
    _write("reference", seed=3)
    assert _visible("out") == _visible("reference")
    assert _hidden("out") == []


def _remote(url: str) -> dict[str, bytes]:
    fs, root = fsspec.core.url_to_fs(url)
    return {os.path.basename(p): fs.cat_file(p) for p in sorted(fs.ls(root, detail=False))}


def test_an_object_store_rerun_keeps_the_earlier_dataset_until_complete(
        items: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    out = f"memory://rerun-{uuid.uuid4().hex}/out"
    _write(out, seed=1)
    earlier = _remote(out)
    patch, interrupted = _interrupt_journal_at(monkeypatch, 5)
    with patch as p:
        p.setattr(journal, "add", interrupted)
        with pytest.raises(KeyboardInterrupt):
            _write(out, seed=2)
    now = _remote(out)
    assert {n: d for n, d in now.items() if not n.startswith(".")} == earlier
    assert [n for n in now if n.endswith(".complete")]
    _write(out, seed=2, resume=True)
    _write("reference", seed=2)
    assert _remote(out) == _visible("reference")


def test_fsync_flushes_each_shard_before_its_first_name_and_the_names_after_renaming(
        items: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_rename = storage.fsync, storage.Folder.rename

    def fsync(path: str, directory: bool = False) -> None:
        events.append("sync-dir" if directory else f"sync {os.path.basename(path)}")
        real_fsync(path, directory)

    def rename(folder: Any, name: str, new_name: str) -> None:
        events.append(f"rename {new_name}")
        real_rename(folder, name, new_name)

    monkeypatch.setattr(storage, "fsync", fsync)
    monkeypatch.setattr(storage.Folder, "rename", rename)
    _write("out", seed=1, fsync=True)
    renames = [i for i, e in enumerate(events) if e.startswith("rename ")]
    assert len(renames) == SHARDS
    assert events[renames[-1] + 1] == "sync-dir"  # the final names reach the disk
    for i in renames:  # each shard's bytes were flushed under its temporary name
        shard = events[i].split()[1]
        assert any(e.startswith(f"sync .{shard}.tmp-") for e in events[:renames[0]])
    _write("reference", seed=1)
    assert _visible("out") == _visible("reference")
