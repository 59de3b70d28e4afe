"""``verify`` checks datasets, not only files: missing shards, interrupted runs, two
datasets under one glob; and the job warns when two prefixes share a shard glob.

Each test runs from a temporary directory with the output in a relative ``out/``, as a
user typing the README's commands would.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import (
    journal,
    read_record_at,
    read_records,
    verify_files,
    write_dataset,
)
from tfrecord_lite.cli import main

from conftest import ROOT, detection_item


@pytest.fixture
def items(tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch
          ) -> list[dict[str, Any]]:
    """6 items in ``t.json``, with the current directory at tmp_path."""
    made = [detection_item(image_file("jpeg-rgb"), f"i{n}") for n in range(6)]
    (tmp_path / "t.json").write_text(json.dumps(made))
    monkeypatch.chdir(tmp_path)
    return made


def _create(prefix: str, shards: int, *extra: str) -> int:
    return main(["create", "--dataset_path", "t.json", "--prefix", prefix, "--output_dir",
                 "out", "--shards", str(shards), "-q", *extra])


def _verify(capsys: pytest.CaptureFixture[str], *files: str) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["verify", "--no-decode", *files])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


# -- missing shards ------------------------------------------------------------------------

def test_verify_reports_a_missing_shard(items: list[dict[str, Any]],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert _create("t", 3) == 0
    os.remove("out/t-00001-of-00003")
    status, out = _verify(capsys, "out/t-*")
    assert status == 1
    assert ("PROBLEM out/t-00001-of-00003: missing from the dataset (shard 1 of 3, listed in "
            "t.manifest.json)") in out
    assert "FAILED: 2 files" in out
    # Shell-expanded, the same.
    assert _verify(capsys, *sorted(glob.glob("out/t-*")))[0] == 1
    # One shard given on purpose: fine while its siblings exist ...
    assert _create("t", 3) == 0
    status, out = _verify(capsys, "out/t-00000-of-00003")
    assert status == 0 and "OK: 1 file," in out
    # ... and its missing siblings are reported: they are missing from its dataset.
    os.remove("out/t-00002-of-00003")
    status, out = _verify(capsys, "out/t-00000-of-00003")
    assert status == 1 and "out/t-00002-of-00003: missing from the dataset" in out


def test_verify_reports_shards_without_a_manifest(items: list[dict[str, Any]],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert _create("t", 3) == 0
    os.remove("out/t.manifest.json")
    os.remove("out/t-00002-of-00003")
    report = verify_files(sorted(glob.glob("out/t-*")), decode_images=False)
    assert [str(p) for p in report.problems] == [
        "out/t-00002-of-00003: missing from the dataset (shard 2 of 3)"]


def test_verify_reports_an_interrupted_run(items: list[dict[str, Any]],
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real_add = journal.add

    def interrupted(folder: Any, name: str, entry: dict[str, Any]) -> None:
        if entry["shard"] == 1:
            raise KeyboardInterrupt
        real_add(folder, name, entry)

    def run_interrupted() -> None:
        with monkeypatch.context() as patch:
            patch.setattr(journal, "add", interrupted)
            with pytest.raises(KeyboardInterrupt):
                write_dataset(items, "t", "out", 6, 1, shuffle=False, progress=False,
                              num_processes=1)
        assert Path("out/.t-journal.json").exists()

    # A first run that stops leaves no shard under a final name: nothing to verify.
    run_interrupted()
    for pattern in ("out/t-*", "out/*"):
        status, out = _verify(capsys, pattern)
        assert status == 2 and f"{pattern}: no file matches this pattern" in out
        assert re.search(r"out holds an interrupted run of 't' \([0-5] of 6 shards complete\), "
                         r"whose shards are kept under hidden names until the run finishes: "
                         r"run the command that started it again with --resume", out), out
    # A complete run, then an interrupted rerun: the shards are the earlier run's, and
    # verify says a run is pending.
    assert _create("t", 6, "--restart") == 0
    run_interrupted()
    status, out = _verify(capsys, "out/t-*")
    assert status == 1
    assert re.search(r"PROBLEM out/t-\*: incomplete: an interrupted run of 't' is pending "
                     r"\([0-5] of 6 shards complete, kept under hidden names until it "
                     r"finishes\).*--resume \(resume=True\) to finish it", out), out
    assert "missing from the dataset" not in out
    # --resume finishes it, and then verify is content.
    assert _create("t", 6, "--resume") == 0
    assert _verify(capsys, "out/t-*")[0] == 0


def test_many_missing_shards_are_counted(items: list[dict[str, Any]],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    Path("out").mkdir()
    Path("out/big-00000-of-99999").write_bytes(b"")
    status, out = _verify(capsys, "out/big-*")
    assert status == 1
    assert out.count("missing from the dataset") == 10
    assert "out/big-*: ... and 99988 more shards of 99999 missing" in out


# -- two datasets under one glob ----------------------------------------------------------

def test_two_prefixes_sharing_a_glob(items: list[dict[str, Any]],
                                     capsys: pytest.CaptureFixture[str],
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "tfrecord_lite")
    assert _create("train", 2) == 0
    assert not caplog.messages
    assert _create("train-a", 1) == 0  # its shards will match train-*
    assert ("out holds the dataset 'train', whose shard glob out/train-* will also match the "
            "shards of 'train-a'") in caplog.text
    assert "out/train-?????-of-?????" in caplog.text
    caplog.clear()
    assert _create("train", 2) == 0  # a rerun of train: train-* matches train-a's files
    assert ("the shard glob out/train-* also matches files that are not shards of 'train': "
            "train-a-00000-of-00001, train-a.failures.json, train-a.manifest.json"
            ) in caplog.text
    status, out = _verify(capsys, "out/train-*")
    assert status == 1
    assert ("PROBLEM out: the files given mix two datasets, 'train' and 'train-a': "
            "the shard glob train-* matches the shards of both") in out
    status, out = _verify(capsys, "out/train-00000-of-00002", "out/train-a-00000-of-00001")
    assert status == 1 and "PROBLEM out: the files given mix two datasets" in out
    assert "out/train-*" not in out  # a glob the user did not give
    # Each alone is fine, and so are unrelated prefixes together.
    assert _verify(capsys, "out/train-?????-of-?????")[0] == 0
    assert _verify(capsys, "out/train-a-*")[0] == 0
    assert _create("val", 1) == 0
    assert _verify(capsys, "out/train-?????-of-?????", "out/val-*")[0] == 0


@pytest.mark.slow
def test_the_cli_shows_the_glob_warning(items: list[dict[str, Any]]) -> None:
    assert _create("train-a", 1) == 0
    done = subprocess.run(
        [sys.executable, "-m", "tfrecord_lite", "create", "--dataset_path", "t.json",
         "--prefix", "train", "--output_dir", "out", "--shards", "1", "-q"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False)
    assert done.returncode == 0, done.stderr
    # Shown even with -q.
    assert "out/train-* also matches files that are not shards of 'train'" in done.stderr


def test_verify_reports_shards_of_two_runs(items: list[dict[str, Any]],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _create("t", 2) == 0
    Path("out/t-00000-of-00003").write_bytes(Path("out/t-00000-of-00002").read_bytes())
    status, out = _verify(capsys, "out/t-*")
    assert status == 1
    assert "PROBLEM out: the files given mix two runs of 't': shards of 2 and of 3" in out
    assert "out/t-00001-of-00003: missing from the dataset (shard 1 of 3)" in out


# -- record indexes stay out of the shard glob ---------------------------------------------

def test_index_leaves_the_shard_glob_to_the_shards(items: list[dict[str, Any]],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert _create("train", 2) == 0
    capsys.readouterr()
    assert main(["index", "out/train-*"]) == 0
    assert sorted(glob.glob("out/train-*")) == ["out/train-00000-of-00002",
                                                "out/train-00001-of-00002"]
    assert "wrote out/.train-00001-of-00002.idx" in capsys.readouterr().out
    assert read_record_at("out/train-00001-of-00002", 1) == list(
        read_records("out/train-00001-of-00002"))[1]
    assert _verify(capsys, "out/train-*")[0] == 0
    # One file may take an explicit path (the tfrecord package and DALI take it anyway).
    assert main(["index", "out/train-00000-of-00002", "-o", "t0.idx"]) == 0
    assert Path("t0.idx").read_text() == Path("out/.train-00000-of-00002.idx").read_text()
    assert main(["index", "out/train-*", "-o", "t.idx"]) == 2
    assert "--output takes one FILE, got 2" in capsys.readouterr().err


# -- what is not a file ---------------------------------------------------------------------

@pytest.mark.parametrize("command", ["verify", "stats", "inspect", "index"])
def test_a_pattern_matching_nothing_or_a_directory_is_a_usage_error(
        items: list[dict[str, Any]], capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert _create("t", 1) == 0
    capsys.readouterr()
    assert main([command, "nope/train-*"]) == 2
    assert "error: nope/train-*: no file matches this pattern" in capsys.readouterr().err
    assert main([command, "out"]) == 2
    assert ("error: out is a directory: give its files, e.g. out/* or out/PREFIX-*"
            in capsys.readouterr().err)
    assert main([command, "out/"]) == 2
    assert "e.g. out/* or out/PREFIX-*" in capsys.readouterr().err
