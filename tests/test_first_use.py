"""A user's first runs, as the README shows them: relative paths, shard globs, reruns.

Each test runs from a temporary directory (``monkeypatch.chdir``) with the output in a
relative ``out/``, as a user typing the README's commands would.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import create, read_records, verify_files
from tfrecord_lite.cli import main
from tfrecord_lite.sharding import shard_name

from conftest import detection_item


@pytest.fixture
def dataset(tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch
            ) -> list[dict[str, Any]]:
    """12 items (one failing) in ``train.json``, with the current directory at tmp_path."""
    items = [detection_item(image_file("jpeg-rgb"), f"i{n}") for n in range(11)]
    items.append(detection_item(str(tmp_path / "missing.jpg"), "gone"))
    (tmp_path / "train.json").write_text(json.dumps(items))
    monkeypatch.chdir(tmp_path)
    return items


def _create(*extra: str) -> int:
    return main(["--dataset_path", "train.json", "--prefix", "train", "--output_dir", "out",
                 "--store_images", "-q", *extra])


def _shards(prefix: str, count: int) -> list[str]:
    return [f"out/{shard_name(prefix, i, count)}" for i in range(count)]


def test_the_shard_glob_matches_only_shards(dataset: list[dict[str, Any]],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _create("--shards", "3") == 1  # one item fails: a failures file is written
    assert sorted(glob.glob("out/train-*")) == _shards("train", 3)
    assert sorted(glob.glob("out/train-?????-of-?????")) == _shards("train", 3)
    assert json.loads(Path("out/train.failures.json").read_text())[0]["id"] == "gone"
    assert json.loads(Path("out/train.manifest.json").read_text())["records"] == 11
    capsys.readouterr()
    assert main(["verify", "out/train-*"]) == 0  # the pattern, quoted: expanded by the tool
    assert "OK: 3 files, 11 records" in capsys.readouterr().out
    assert main(["verify", *sorted(glob.glob("out/train-*"))]) == 0  # expanded by a shell
    assert main(["stats", "out/train-*"]) == 0
    assert "images: 11" in capsys.readouterr().out


def test_verify_checks_the_manifest_under_both_names(dataset: list[dict[str, Any]]) -> None:
    assert _create("--shards", "2") == 1
    shards = _shards("train", 2)
    manifest = json.loads(Path("out/train.manifest.json").read_text())
    manifest["shards"][1]["records"] += 1
    Path("out/train.manifest.json").write_text(json.dumps(manifest))
    report = verify_files(shards, decode_images=False)
    assert [p.message for p in report.problems] == ["holds 5 records, the manifest says 6"]
    # A dataset written by an earlier version: its manifest is still found and checked.
    Path("out/train.manifest.json").rename("out/train-manifest.json")
    assert "manifest says 6" in str(verify_files(shards, decode_images=False).problems)
    manifest["shards"][1]["records"] -= 1
    Path("out/train-manifest.json").write_text(json.dumps(manifest))
    assert verify_files(shards, decode_images=False).ok


def test_create_writes_the_failures_file_always(dataset: list[dict[str, Any]]) -> None:
    failed = create(dataset, "train", "out", num_shards=2, num_threads=2, progress=False)
    assert [f["id"] for f in failed] == ["gone"]
    listed = json.loads(Path("out/train.failures.json").read_text())
    assert listed == failed
    # A rerun where nothing fails leaves an empty list, not the earlier run's.
    assert create(dataset[:-1], "train", "out", 2, 2, progress=False) == []
    assert json.loads(Path("out/train.failures.json").read_text()) == []
    assert sum(len(list(read_records(p))) for p in _shards("train", 2)) == 11


def test_the_cli_names_the_failures_file_the_job_wrote(
        dataset: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert _create() == 1
    err = capsys.readouterr().err
    assert "they are listed in out/train.failures.json" in err
    assert [f["id"] for f in json.loads(Path("out/train.failures.json").read_text())] == ["gone"]
