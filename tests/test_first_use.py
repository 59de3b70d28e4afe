"""A user's first runs, as the README shows them: relative paths, shard globs, reruns.

Each test runs from a temporary directory (``monkeypatch.chdir``) with the output in a
relative ``out/``, as a user typing the README's commands would.
"""

from __future__ import annotations

import glob
import json
import logging
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


def _complete(shard: str) -> str:
    """The hidden name a complete shard has until every shard of its run is complete."""
    folder, _, name = shard.rpartition("/")
    return f"{folder}/.{name}.complete"


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


def test_a_rerun_replaces_the_dataset(dataset: list[dict[str, Any]],
                                      capsys: pytest.CaptureFixture[str],
                                      caplog: pytest.LogCaptureFixture) -> None:
    others = ["out/train2-00000-of-00003", "out/val-00000-of-00003", "out/train-notes.txt",
              "out/train2-00000-of-00003.idx", "out/.train-notes"]
    Path("out").mkdir()
    for other in others:
        Path(other).write_text("not ours")
    assert _create("--shards", "3") == 1
    assert main(["index", "out/train-00000-of-00003", "out/train-00001-of-00003"]) == 0
    Path("out/train-00002-of-00003.idx").write_text("0 16\n")  # an earlier version's name
    stale_indexes = ["out/.train-00000-of-00003.idx", "out/.train-00001-of-00003.idx",
                     "out/train-00002-of-00003.idx"]
    caplog.set_level(logging.INFO, "tfrecord_lite")
    assert _create("--shards", "2") == 1
    for old in _shards("train", 3) + stale_indexes:
        assert f"removed {old} (from an earlier run of 'train')" in caplog.messages
    assert sorted(glob.glob("out/train-?????-of-?????")) == _shards("train", 2)
    assert all(Path(other).read_text() == "not ours" for other in others)
    capsys.readouterr()
    assert main(["verify", "out/train-0*"]) == 0
    assert "OK: 2 files, 11 records" in capsys.readouterr().out


def test_earlier_shards_go_only_once_the_new_dataset_is_complete(
        dataset: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    from tfrecord_lite import journal, storage

    assert _create("--shards", "3") == 1
    real_add = journal.add

    def interrupted(out: Any, name: str, entry: dict[str, Any]) -> None:
        if entry["shard"] == 1:
            raise KeyboardInterrupt
        real_add(out, name, entry)

    with monkeypatch.context() as patch:
        patch.setattr(journal, "add", interrupted)
        assert _create("--shards", "2", "--restart") == 130
    assert set(_shards("train", 3)) <= set(glob.glob("out/train-*"))  # still there
    removed_when: list[bool] = []
    real_remove = storage.Folder.remove

    def remove(folder: Any, name: str) -> None:
        if name.startswith("train-"):
            # The new shards are all in place, and the manifest comes after: a manifest
            # is only ever beside the dataset it describes, and nothing else.
            removed_when.append(all(Path(p).exists() for p in _shards("train", 2))
                                and not Path("out/train.manifest.json").exists())
        real_remove(folder, name)

    monkeypatch.setattr(storage.Folder, "remove", remove)
    assert _create("--shards", "2", "--resume") == 1
    assert removed_when == [True, True, True]  # each once the new shards are complete
    assert sorted(glob.glob("out/train-*")) == _shards("train", 2)
    manifest = json.loads(Path("out/train.manifest.json").read_text())
    assert [s["file"] for s in manifest["shards"]] == [Path(p).name for p in _shards("train", 2)]


def _interrupt_at_shard(monkeypatch: pytest.MonkeyPatch, at_shard: int) -> Any:
    """Ctrl-C as shard ``at_shard`` is being journaled (shards before it are complete)."""
    from tfrecord_lite import journal

    real_add = journal.add

    def interrupted(out: Any, name: str, entry: dict[str, Any]) -> None:
        if entry["shard"] == at_shard:
            raise KeyboardInterrupt
        real_add(out, name, entry)

    return monkeypatch.context(), interrupted


def test_ctrl_c_and_a_rerun_say_how_to_keep_complete_shards(
        dataset: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tfrecord_lite import journal

    argv = ["--dataset_path", "train.json", "--prefix", "train", "--output_dir", "out",
            "--shards", "4", "--store_images", "-q"]
    patch, interrupted = _interrupt_at_shard(monkeypatch, 3)
    with patch as p:
        p.setattr(journal, "add", interrupted)
        assert main(argv) == 130
    keep = ("python -m tfrecord_lite --dataset_path train.json --prefix train --output_dir "
            "out --shards 4 --store_images -q --resume")
    assert capsys.readouterr().err == (
        "tfrecord-lite: interrupted: 3 of 4 shards of 'train' are complete in out; no "
        f"partial shard was left. To keep them: {keep}\n")
    # Shard 3 was published but not journaled: it is written again.
    # Complete shards wait under hidden names until every shard is complete.
    before = {p: Path(_complete(p)).stat().st_mtime_ns for p in _shards("train", 4)[:3]}
    # A rerun without --resume is refused before anything is overwritten.
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "tfrecord-lite: error: out holds an interrupted run of 'train': 3 of 4 shards are "
        f"complete. To keep them, run the same command with --resume: {keep}; to start "
        "over, add --restart instead.\n")
    assert {p: Path(_complete(p)).stat().st_mtime_ns for p in before} == before
    assert main([*argv, "--resume", "--restart"]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 1  # one item fails
    assert {p: Path(p).stat().st_mtime_ns for p in before} == before  # kept: renamed
    assert sorted(glob.glob("out/train-*")) == _shards("train", 4)


def test_restart_starts_over(dataset: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    from tfrecord_lite import journal

    argv = ["--dataset_path", "train.json", "--prefix", "train", "--output_dir", "out",
            "--shards", "4", "-q"]  # the original command line: --restart is kept out
    patch, interrupted = _interrupt_at_shard(monkeypatch, 2)
    with patch as p:
        p.setattr(journal, "add", interrupted)
        assert main([*argv, "--restart"]) == 130
    assert capsys.readouterr().err.endswith(
        "To keep them: python -m tfrecord_lite --dataset_path train.json --prefix train "
        "--output_dir out --shards 4 -q --resume\n")
    assert main([*argv, "--restart"]) == 1
    assert not glob.glob("out/.train-journal*")
    assert sorted(glob.glob("out/train-*")) == _shards("train", 4)


def test_python_starts_over_with_a_warning(dataset: list[dict[str, Any]],
                                           monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    from tfrecord_lite import InterruptedRunError, journal

    patch, interrupted = _interrupt_at_shard(monkeypatch, 3)
    with patch as p:
        p.setattr(journal, "add", interrupted)
        with pytest.raises(KeyboardInterrupt):
            create(dataset, "train", "out", 4, 2, progress=False)
    with pytest.raises(InterruptedRunError, match="3 of 4 shards are complete"):
        create(dataset, "train", "out", 4, 2, progress=False, interrupted="refuse")
    caplog.set_level(logging.WARNING, "tfrecord_lite")
    assert len(create(dataset, "train", "out", 4, 2, progress=False)) == 1
    assert caplog.messages == [
        "out holds an interrupted run of 'train': 3 of 4 shards are complete; starting over, "
        "they are written again (to keep them, run again with resume=True)"]
