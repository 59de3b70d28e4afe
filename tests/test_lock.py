"""One run per prefix and directory at a time, and Ctrl-C on a running job.

A long job runs in a child process (``python -m tfrecord_lite``, as a user runs it),
from a temporary directory with a relative output directory.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tfrecord_lite import create, journal, read_records
from tfrecord_lite.cli import main
from tfrecord_lite.sharding import shard_name

from conftest import ROOT, detection_item

SHARDS = 20
LONG_JOB = ["--dataset_path", "big.json", "--prefix", "train", "--output_dir", "out",
            "--shards", str(SHARDS), "--threads", "2", "--store_images"]


@pytest.fixture
def long_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``big.json``: 1200 items of noisy 640x480 PNG photos (each converted to JPEG), which
    take well over 5 s on two threads; and a way to start the job on them."""
    rng = np.random.default_rng(0)
    for n in range(3):
        pixels = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"noise{n}.png")
    items = [detection_item(f"noise{n % 3}.png", f"i{n}") for n in range(1200)]
    (tmp_path / "big.json").write_text(json.dumps(items))
    small = [detection_item("noise0.png", "s0")]
    (tmp_path / "small.json").write_text(json.dumps(small))
    monkeypatch.chdir(tmp_path)
    children: list[subprocess.Popen[str]] = []

    def start(*more: str) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        child = subprocess.Popen(
            [sys.executable, "-m", "tfrecord_lite", *LONG_JOB, *more], cwd=tmp_path, env=env,
            stderr=subprocess.PIPE, text=True)
        children.append(child)
        # Complete shards wait under hidden names until every shard is complete.
        first = Path("out") / f".{shard_name('train', 0, SHARDS)}.complete"
        deadline = time.monotonic() + 60
        while not first.exists():  # the job is under way: a shard is complete
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


def _no_temporary_files(out: Path) -> None:
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]


def _no_partial_shard(out: Path) -> None:
    """Every file under a shard name reads whole."""
    for path in out.glob("train-*"):
        assert len(list(read_records(path))) == 60, path.name


@pytest.mark.slow
def test_ctrl_c_stops_the_job_before_it_ends(long_job: Any) -> None:
    child = long_job()  # under way: a shard is complete
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)  # (a generous bound: it stops at once)
    assert child.returncode == 130, err
    complete = journal.progress(__import__("tfrecord_lite").storage.folder("out"), "train")
    assert complete is not None and 1 <= complete[0] < SHARDS
    assert (f"interrupted: {complete[0]} of {SHARDS} shards of 'train' are complete in out; "
            "no partial shard was left. To keep them: python -m tfrecord_lite --dataset_path "
            f"big.json --prefix train --output_dir out --shards {SHARDS} --threads 2 "
            "--store_images --resume") in err
    assert "Traceback" not in err
    _no_temporary_files(Path("out"))
    _no_partial_shard(Path("out"))


@pytest.mark.slow
@pytest.mark.parametrize("processes", ["1", "2"])
def test_sigterm_stops_the_job_as_ctrl_c_does_and_resume_finishes_it(
        long_job: Any, processes: str) -> None:
    # SIGTERM (kill, a service manager stopping the job) used to end it at once: exit
    # status 143 without a word, temporary files left behind.
    child = long_job("--processes", processes)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143, err
    complete = journal.progress(__import__("tfrecord_lite").storage.folder("out"), "train")
    assert complete is not None and 1 <= complete[0] < SHARDS
    assert (f"tfrecord-lite: interrupted: {complete[0]} of {SHARDS} shards of 'train' are "
            "complete in out; no partial shard was left. To keep them: python -m "
            f"tfrecord_lite {' '.join(LONG_JOB)} --processes {processes} --resume") in err
    assert "Traceback" not in err
    _no_temporary_files(Path("out"))
    _no_partial_shard(Path("out"))
    assert main([*LONG_JOB, "--processes", processes, "--resume", "-q"]) == 0
    assert main([*LONG_JOB, "--output_dir", "clean", "-q"]) == 0
    for name in [shard_name("train", i, SHARDS) for i in range(SHARDS)] + [
            "train.failures.json"]:
        assert (Path("out") / name).read_bytes() == (Path("clean") / name).read_bytes(), name
    assert not [p.name for p in Path("out").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_second_run_of_the_prefix_is_refused(long_job: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    child = long_job()
    assert main(["--dataset_path", "small.json", "--prefix", "train", "--output_dir", "out",
                 "--restart", "-q"]) == 2
    assert capsys.readouterr().err == (
        "tfrecord-lite: error: another run is writing 'train' in out (it holds "
        "out/.train.lock): wait for it to end, or write another prefix or directory\n")
    # Another prefix in the same directory is not held up.
    assert main(["--dataset_path", "small.json", "--prefix", "train2", "--output_dir", "out",
                 "-q"]) == 0
    assert child.poll() is None  # the first run goes on, its files untouched
    child.send_signal(signal.SIGKILL)  # killed: the kernel releases the lock
    child.wait(timeout=30)
    assert Path("out/.train.lock").exists()
    _no_partial_shard(Path("out"))  # (temporary files are left, removed by the next run)
    assert main(["--dataset_path", "small.json", "--prefix", "train", "--output_dir", "out",
                 "--restart", "-q"]) == 0
    assert sorted(p.name for p in Path("out").glob("train-*")) == ["train-00000-of-00001"]
    assert not Path("out/.train.lock").exists()  # removed at the end of a run
    _no_temporary_files(Path("out"))


def test_without_fcntl_the_job_runs_unlocked(tmp_path: Path, image_file: Any,
                                            monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    items = [detection_item(image_file("jpeg-rgb"), f"i{n}") for n in range(6)]
    create(items, "t", tmp_path / "ref", 2, 2, seed=1, progress=False)
    monkeypatch.setattr(journal, "fcntl", None)  # as on Windows
    caplog.set_level(logging.WARNING, "tfrecord_lite")
    assert create(items, "t", tmp_path / "out", 2, 2, seed=1, progress=False) == []
    assert "no file lock in" in caplog.text and "no fcntl on this system" in caplog.text
    for n in range(2):
        name = shard_name("t", n, 2)
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "t-00000-of-00002", "t-00001-of-00002", "t.failures.json", "t.manifest.json"]
