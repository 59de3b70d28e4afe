"""Interrupted runs: kill -9 at any moment leaves no partial shard; resume finishes the job.

The reference is an uninterrupted run with the same items and seed: after any
interruption, a resumed run must leave exactly the same files, byte for byte.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import ResumeError, WriteError, journal, read_records, write_dataset
from tfrecord_lite.cli import main

from conftest import ROOT, detection_item

SHARDS = 6
# Run by a child process: write the items, maybe dying (os._exit, as kill -9 would
# leave it) at the N-th call of a function of the job.
CHILD = """
import itertools, json, os, sys
sys.path.insert(0, {tests!r})
from tfrecord_lite import journal, local

items_path, out, die_in, die_at, resume = sys.argv[1:6]
items = json.load(open(items_path))
calls = itertools.count(1)  # next() is atomic: shards are published on pool threads

def dying(module, name, after):
    real = getattr(module, name)
    def wrapper(*args, **kwargs):
        call = next(calls)
        if call == int(die_at) and not after:
            os._exit(137)
        result = real(*args, **kwargs)
        if call == int(die_at) and after:
            os._exit(137)
        return result
    setattr(module, name, wrapper)

if die_in != "none":
    where, when = die_in.split(":")
    module, function = {{"replace": (local.storage.os, "replace"), "journal": (journal, "add"),
                        "rename": (local.storage.Folder, "rename")}}[where]
    dying(module, function, when == "after")
print("started", flush=True)
local.write_dataset(items, "t", out, {shards}, 2, shuffle=True, seed=11,
                     resume=resume == "1", progress=False)
"""


@pytest.fixture
def job(tmp_path: Path, image_file: Any) -> dict[str, Any]:
    """60 items (a few failing), their reference output, and a way to run the job."""
    kinds = ("png-rgb", "jpeg-rgb", "png-palette", "jpeg-gray")
    items = [detection_item(image_file(kinds[i % 4], width=96, height=72), f"i{i}")
             for i in range(60)]
    items[7]["filename"] = str(tmp_path / "missing.jpg")
    items[33]["object"]["bbox"]["xmin"][0] = 1.5  # fails validation
    items_path = tmp_path / "items.json"
    items_path.write_text(json.dumps(items))
    reference = tmp_path / "reference"
    write_dataset(items, "t", reference, SHARDS, 2, shuffle=True, seed=11, progress=False)
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(ROOT / "tests"), shards=SHARDS))

    def run(out: Path, die_in: str = "none", die_at: int = 0, resume: bool = False,
            kill_after: float | None = None) -> int:
        args = [sys.executable, str(script), str(items_path), str(out), die_in, str(die_at),
                "1" if resume else "0"]
        child = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=ROOT)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"started"
        if kill_after is not None:
            time.sleep(kill_after)
            child.send_signal(signal.SIGKILL)
        return child.wait(timeout=120)

    return {"items": items, "reference": reference, "run": run}


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _assert_no_partial_shard(out: Path, reference: Path) -> None:
    """Every file under a final shard name is complete: equal to the reference's."""
    expected = _files(reference)
    if not out.exists():  # killed before the job began
        return
    for path in out.iterdir():
        if path.name.startswith("t-0"):
            assert path.read_bytes() == expected[path.name], path.name
            assert len(list(read_records(path))) >= 0  # and it reads, CRCs checked


@pytest.mark.slow
@pytest.mark.parametrize("die_in, die_at", [
    ("replace:before", 1), ("replace:after", 1), ("replace:before", 4), ("replace:after", 4),
    ("replace:after", 6), ("journal:before", 3), ("journal:after", 3), ("journal:after", 6),
    ("rename:before", 1), ("rename:after", 3),  # while the shards get their final names
])
def test_killed_at_a_step_then_resumed_is_byte_identical(tmp_path: Path, job: dict[str, Any],
                                                         die_in: str, die_at: int) -> None:
    out = tmp_path / "out"
    assert job["run"](out, die_in, die_at) == 137
    _assert_no_partial_shard(out, job["reference"])
    assert not (out / "t.manifest.json").exists()
    assert job["run"](out, resume=True) == 0
    assert _files(out) == _files(job["reference"])


@pytest.mark.slow
def test_killed_at_random_moments_then_resumed_is_byte_identical(
        tmp_path: Path, job: dict[str, Any]) -> None:
    # How long a whole run takes here, to spread the kills over it.
    started = time.perf_counter()
    assert job["run"](tmp_path / "timing") == 0
    duration = time.perf_counter() - started
    rng = random.Random(5)
    for attempt in range(4):
        out = tmp_path / f"out{attempt}"
        job["run"](out, kill_after=duration * (attempt + rng.random()) / 4)
        _assert_no_partial_shard(out, job["reference"])
        # Resume may itself be killed; a second resume still finishes the job.
        job["run"](out, resume=True, kill_after=rng.uniform(0, duration / 2))
        _assert_no_partial_shard(out, job["reference"])
        assert job["run"](out, resume=True) == 0
        assert _files(out) == _files(job["reference"])


def test_resume_after_a_write_error_keeps_complete_shards(
        tmp_path: Path, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    items = job["items"]
    real_writev = os.writev
    calls = [0]

    def full_disk(fd: int, buffers: Any) -> int:
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "writev", full_disk)
    out = tmp_path / "out"
    with pytest.raises(WriteError):
        write_dataset(items, "t", out, SHARDS, 2, shuffle=True, seed=11, progress=False)
    monkeypatch.undo()
    # Complete shards wait under hidden names until every shard is complete.
    assert not [n for n in os.listdir(out) if n.startswith("t-0")]
    kept = {n[1:-len(".complete")]: (out / n).stat().st_mtime_ns
            for n in os.listdir(out) if n.startswith(".t-0") and n.endswith(".complete")}
    assert len(kept) == 2
    summary = write_dataset(items, "t", out, SHARDS, 2, shuffle=True, seed=11, resume=True,
                            progress=False)
    assert summary.resumed_shards == 2
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == kept  # not rewritten: renamed
    assert _files(out) == _files(job["reference"])
    reference = json.loads((job["reference"] / "t.manifest.json").read_text())
    assert summary.failed == reference["failed"] == 2
    assert [f["id"] for f in summary.failures] == [
        f["id"] for f in write_dataset(items, "t", tmp_path / "again", SHARDS, 2, seed=11,
                                       progress=False).failures]


def _interrupted(tmp_path: Path, items: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
                 at_shard: int = 3, seed: int | None = 11) -> Path:
    """Run the job until Ctrl-C arrives as shard ``at_shard`` is being journaled."""
    out = tmp_path / "out"
    real_add = journal.add

    def interrupted(folder: Any, name: str, entry: dict[str, Any]) -> None:
        if entry["shard"] == at_shard:
            raise KeyboardInterrupt
        real_add(folder, name, entry)

    with monkeypatch.context() as patch:
        patch.setattr(journal, "add", interrupted)
        with pytest.raises(KeyboardInterrupt):
            write_dataset(items, "t", out, SHARDS, 2, shuffle=True, seed=seed, progress=False)
    return out


def test_resume_reuses_the_seed_of_the_interrupted_run(tmp_path: Path, job: dict[str, Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    items = job["items"]
    out = _interrupted(tmp_path, items, monkeypatch, at_shard=2, seed=None)  # a random seed
    summary = write_dataset(items, "t", out, SHARDS, 2, shuffle=True, resume=True,
                            progress=False)
    assert 2 <= summary.resumed_shards < SHARDS
    seed = summary.options["seed"]
    write_dataset(items, "t", tmp_path / "ref", SHARDS, 2, shuffle=True, seed=seed,
                  progress=False)
    assert _files(out) == _files(tmp_path / "ref")


@pytest.mark.parametrize("change, message", [
    ({"seed": 12}, "seed = 11, this one 12"),
    ({"num_shards": 5}, "num_shards = 6, this one 5"),
    ({"quality": 80}, "quality = 95, this one 80"),
    ({"validation": "lenient"}, "validation"),
])
def test_resume_refuses_other_arguments(tmp_path: Path, job: dict[str, Any],
                                        monkeypatch: pytest.MonkeyPatch,
                                        change: dict[str, Any], message: str) -> None:
    out = _interrupted(tmp_path, job["items"], monkeypatch)
    args: dict[str, Any] = {"num_shards": SHARDS, "seed": 11}
    args.update(change)
    with pytest.raises(ResumeError, match=message):
        write_dataset(job["items"], "t", out, args.pop("num_shards"), 2, shuffle=True,
                      resume=True, progress=False, **args)


def test_resume_refuses_changed_items(tmp_path: Path, job: dict[str, Any],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    items = job["items"]
    out = _interrupted(tmp_path, items, monkeypatch)
    changed = [dict(item, id=f"other-{n}") for n, item in enumerate(items)]
    with pytest.raises(ResumeError, match="not those of the interrupted run"):
        write_dataset(changed, "t", out, SHARDS, 2, shuffle=True, seed=11, resume=True,
                      progress=False)


def test_resume_rewrites_a_damaged_shard(tmp_path: Path, job: dict[str, Any],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = _interrupted(tmp_path, job["items"], monkeypatch)
    shard = out / ".t-00001-of-00006.complete"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    summary = write_dataset(job["items"], "t", out, SHARDS, 2, shuffle=True, seed=11,
                            resume=True, progress=False)
    assert 2 <= summary.resumed_shards < SHARDS - 1  # not shard 1 (damaged), nor shard 3
    assert _files(out) == _files(job["reference"])


def test_resume_without_a_journal_writes_everything(tmp_path: Path,
                                                    job: dict[str, Any]) -> None:
    out = tmp_path / "out"
    summary = write_dataset(job["items"], "t", out, SHARDS, 2, shuffle=True, seed=11,
                            resume=True, progress=False)
    assert summary.resumed_shards == 0
    assert _files(out) == _files(job["reference"])


def test_cli_resume_and_its_errors(tmp_path: Path, job: dict[str, Any],
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = _interrupted(tmp_path, job["items"], monkeypatch)
    dataset = tmp_path / "items.json"
    base = ["--dataset_path", str(dataset), "--prefix", "t", "--output_dir", str(out),
            "--shards", str(SHARDS), "--shuffle", "--store_images", "--resume", "-q"]
    assert main(base + ["--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err
    assert "--restart" in err and "without resume" not in err.replace("from Python, without", "")
    assert main(base) == 1  # the seed comes from the journal; two items fail
    failures = json.loads((out / "t.failures.json").read_text())
    assert sorted(f["id"] for f in failures) == ["i33", "i7"]
    for name, data in _files(job["reference"]).items():
        assert (out / name).read_bytes() == data, name
