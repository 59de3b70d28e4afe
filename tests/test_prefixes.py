"""Prefixes side by side in one folder: the files of one prefix are never another's, even
when one prefix begins the other (``a`` and ``a-journal``) and both runs write at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfrecord_lite import journal, sharding, write_dataset
from tfrecord_lite.cli import main
from tfrecord_lite.errors import OptionsError
from tfrecord_lite.shards import complete_name
from tfrecord_lite.storage import Folder

from conftest import detection_item

# Prefixes whose names, read as text, begin or end another's.
PAIRS = [("a", "a-journal"), ("a-journal", "a"), ("a", "a-journal-00000"),
         ("a", "a.manifest.json.tmp-1"), ("a", "a-00001-of-00003"), ("a.lock", "a")]


def _items(image_file: Any, n: int = 6) -> list[dict[str, Any]]:
    return [detection_item(image_file("jpeg-rgb"), f"i{i}") for i in range(n)]


def _files(folder: Path, prefix: str) -> dict[str, bytes]:
    """The shards, manifest and failures of ``prefix`` in ``folder``, by name."""
    names = [sharding.shard_name(prefix, i, 3) for i in range(3)]
    names += [sharding.manifest_name(prefix), sharding.failures_name(prefix)]
    return {n: (folder / n).read_bytes() for n in names}


def _pause_at(done_at: int, paused: threading.Event, go_on: threading.Event,
              interrupt: bool = False) -> Callable[[int, int], None]:
    """A progress callback that stops the run after ``done_at`` items: waits until
    ``go_on`` (or raises KeyboardInterrupt, as Ctrl-C would)."""
    def progress(done: int, total: int) -> None:
        if done == done_at:
            paused.set()
            if interrupt:
                raise KeyboardInterrupt
            assert go_on.wait(60), "never told to go on"
    return progress


@pytest.mark.parametrize("first, second", PAIRS)
def test_a_run_beside_another_prefix_in_progress_leaves_its_files_alone(
        tmp_path: Path, image_file: Any, first: str, second: str) -> None:
    # ``second`` is stopped in the middle of its run (two shards complete, the third
    # being written) while a whole run of ``first`` starts, finishes and tidies up.
    items = _items(image_file)
    reference = tmp_path / "reference"
    for prefix in (first, second):
        write_dataset(items, prefix, reference, 3, 1, seed=5, progress=False)
    out = tmp_path / "out"
    paused, go_on = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run_second() -> None:
        try:
            write_dataset(items, second, out, 3, 1, seed=5,
                          progress=_pause_at(5, paused, go_on))
        except BaseException as exc:  # reported by the test, not by the thread
            errors.append(exc)

    runner = threading.Thread(target=run_second)
    runner.start()
    assert paused.wait(60)
    try:
        lock = out / journal.lock_name(second)
        assert lock.exists()
        write_dataset(items, first, out, 3, 1, seed=5, progress=False)
        assert lock.exists(), "the other prefix's lock was removed"
    finally:
        go_on.set()
        runner.join(60)
    assert not errors, errors
    for prefix in (first, second):
        assert _files(out, prefix) == _files(reference, prefix)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("first, second", PAIRS)
def test_an_interrupted_run_resumes_after_another_prefix_ran_beside_it(
        tmp_path: Path, image_file: Any, first: str, second: str) -> None:
    items = _items(image_file)
    reference = tmp_path / "reference"
    write_dataset(items, second, reference, 3, 1, seed=5, progress=False)
    out = tmp_path / "out"
    paused = threading.Event()
    with pytest.raises(KeyboardInterrupt):
        write_dataset(items, second, out, 3, 1, seed=5,
                      progress=_pause_at(5, paused, threading.Event(), interrupt=True))
    write_dataset(items, first, out, 3, 1, seed=5, progress=False)
    summary = write_dataset(items, second, out, 3, 1, resume=True, progress=False)
    assert summary.resumed_shards == 2
    assert _files(out, second) == _files(reference, second)


@pytest.mark.parametrize("prefix", [".", "..", ".train", "..a"])
def test_prefixes_that_would_hide_the_shards_are_refused(
        tmp_path: Path, image_file: Any, prefix: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(OptionsError, match="must not begin with '.'"):
        write_dataset(_items(image_file, 1), prefix, tmp_path / "out", 1, 1, progress=False)
    dataset = tmp_path / "d.json"
    dataset.write_text("[]")
    assert main(["--dataset_path", str(dataset), "--prefix", prefix, "--output_dir",
                 str(tmp_path / "out")]) == 2
    assert "must not begin with '.'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# Every name a job of one prefix writes, as the writers name them.
def _names_of(prefix: str) -> list[str]:
    shard = sharding.shard_name(prefix, 3, 12)
    folder = Folder("out")
    names = [shard, sharding.manifest_name(prefix), sharding.failures_name(prefix),
             prefix + sharding.FAILURES_JSONL_SUFFIX, complete_name(shard),
             sharding.index_name(shard), journal.lock_name(prefix),
             journal.header_name(prefix), journal.entry_name(prefix, 3),
             journal.entry_name(prefix, 123456)]
    temps = [Path(folder.temp_path(n)).name for n in names[:3] + names[6:]]
    return names + temps + [f"{Path(folder.temp_path(shard)).name}-{'ab12' * 8}"]


_PIECES = st.sampled_from(["a", "b", "-", ".", "0", "00000", "00001", "-of-", "journal",
                           "json", "tmp", "tmp-1", "lock", "complete", "idx", "manifest",
                           "failures", "_"])
PREFIXES = st.lists(_PIECES, min_size=1, max_size=8).map("".join).filter(
    lambda p: not p.startswith("."))


@given(PREFIXES)
def test_every_name_of_a_prefix_is_owned_by_that_prefix_alone(prefix: str) -> None:
    # Each name has one owner: no other prefix, however it begins or ends, can take
    # (and so remove) it.
    for name in _names_of(prefix):
        assert sharding.owner(name) == prefix, name
