"""The job layer: one options object, the job core shared by both runners, and errors
that cannot hide bugs (issue 16)."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tfrecord_lite
from tfrecord_lite import JobOptions, OptionsError, cli, items, job, storage, write_dataset
from tfrecord_lite.cli import common, main
from tfrecord_lite.job import FailuresFile, failures_json

from conftest import ROOT, detection_item


def _dataset(tmp_path: Path, image_file: Any, n: int = 4) -> str:
    path = tmp_path / "train.json"
    path.write_text(json.dumps([detection_item(image_file("jpeg-rgb"), i) for i in range(n)]))
    return "train.json"


# -- one options object -----------------------------------------------------------------

def test_options_are_frozen_picklable_and_normalized() -> None:
    options = JobOptions(compression="GZIP", root=Path("images"), seed=3)  # type: ignore[arg-type]
    assert options.compression == "gzip" and options.root == "images"
    assert pickle.loads(pickle.dumps(options)) == options
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.quality = 10  # type: ignore[misc]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("quality", 0, "quality must be between 1 and 100, got 0"),
    ("max_side", 0, "max_side must be at least 1, got 0"),
    ("validation", "loose", "validation must be one of strict, lenient, off, got 'loose'"),
    ("compression", "lz4", "unknown compression 'lz4'"),
])
def test_options_check_themselves(option: str, value: Any, message: str) -> None:
    with pytest.raises(OptionsError, match=message) as caught:
        JobOptions(**{option: value})
    assert isinstance(caught.value, ValueError)  # callers' `except ValueError` still works


def test_manifest_records_the_recorded_fields_in_order() -> None:
    options = JobOptions(shuffle=False, seed=9, resume=True, fsync=True)
    assert options.manifest() == {"shuffle": False, "seed": None, "store_images": True,
                                  "compression": "none", "quality": 95, "max_side": None,
                                  "decode_check": True, "validation": "strict", "root": None}


def test_seeded_keeps_a_given_seed_else_the_earlier_one_else_a_new_one() -> None:
    assert JobOptions(seed=5).seeded(7).seed == 5
    assert JobOptions().seeded(7).seed == 7
    assert isinstance(JobOptions().seeded().seed, int)
    assert JobOptions(shuffle=False).seeded().seed is None


def test_every_option_is_a_flag_with_the_options_default(tmp_path: Path) -> None:
    """Adding a field to JobOptions without its flag (or with another default) fails."""
    parser = cli.build_parser()
    args = parser.parse_args(["create", "--dataset_path", "d.json", "--prefix", "p",
                              "--output_dir", "o"])
    for option in dataclasses.fields(JobOptions):
        assert hasattr(args, option.name), option.name
        if option.name not in ("shuffle", "store_images"):  # the original tool's defaults
            assert getattr(args, option.name) == option.default, option.name
    assert isinstance(common.job_options(argparse.Namespace(**{
        **vars(args), "store_images": True})), JobOptions)


def test_write_dataset_refuses_bad_options_before_touching_files(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="num_threads"):
        write_dataset([], "t", tmp_path / "out", 1, 0)
    with pytest.raises(OptionsError, match="quality"):
        write_dataset([], "t", tmp_path / "out", 1, 1, quality=101)
    assert not (tmp_path / "out").exists()


# -- the layers ---------------------------------------------------------------------------

@pytest.mark.slow
def test_the_package_imports_neither_pillow_nor_the_runner() -> None:
    code = ("import sys, tfrecord_lite; "
            "print(sorted({'PIL', 'tfrecord_lite.local'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.stdout.strip() == "[]", done.stderr
    assert tfrecord_lite.create is tfrecord_lite.local.create  # loaded on first use


def test_storage_error_is_the_library_error() -> None:
    assert storage.StorageError is tfrecord_lite.errors.StorageError
    assert issubclass(storage.StorageError, tfrecord_lite.TFRecordLiteError)


def test_version_has_one_definition() -> None:
    from tfrecord_lite import _version

    assert tfrecord_lite.__version__ == _version.__version__
    assert job.__version__ is _version.__version__


# -- errors that cannot hide bugs ------------------------------------------------------------

def _zero(*args: Any, **kwargs: Any) -> None:
    raise ZeroDivisionError("division by zero (an injected bug)")


@pytest.mark.parametrize("where", ["publish", "manifest"])
def test_a_bug_in_the_job_surfaces_with_its_traceback(
        tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], where: str) -> None:
    monkeypatch.chdir(tmp_path)
    dataset = _dataset(tmp_path, image_file)
    if where == "publish":  # on the pool, deep in a shard's finishing
        monkeypatch.setattr(storage.Folder, "publish", _zero)
    else:
        monkeypatch.setattr(job.JobSummary, "manifest_json", _zero)
    status = main(["--dataset_path", dataset, "--prefix", "t", "--output_dir", "out",
                   "--quiet"])
    err = capsys.readouterr().err
    assert status == common.EXIT_INTERNAL == 70
    assert "Traceback (most recent call last)" in err and "_zero" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("tfrecord-lite: internal error: ZeroDivisionError")
    assert "please report it" in last
    if where == "publish":
        assert not list(Path("out").glob("t-0*"))  # nothing under a final shard name
    assert not Path("out/t.manifest.json").exists()


def test_a_value_error_bug_is_not_a_usage_error(
        tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    dataset = _dataset(tmp_path, image_file)

    def bug(*args: Any, **kwargs: Any) -> None:
        raise ValueError("not a user's mistake")

    monkeypatch.setattr(job.JobSummary, "describe", bug)
    status = main(["--dataset_path", dataset, "--prefix", "t", "--output_dir", "out"])
    err = capsys.readouterr().err
    assert status == 70, err
    assert "Traceback" in err and "usage" not in err


def test_user_mistakes_still_exit_2_without_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.json").write_text("{not json")
    assert main(["--dataset_path", "bad.json", "--prefix", "t", "--output_dir", "o"]) == 2
    assert main(["--dataset_path", "none.json", "--prefix", "t", "--output_dir", "o"]) == 2
    Path("dir.tfrecord").mkdir()
    assert main(["inspect", "dir.tfrecord"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    assert "dir.tfrecord is a directory: give its files" in err


def test_show_of_a_record_without_image_is_reported_plainly(
        tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    dataset = _dataset(tmp_path, image_file, 1)
    assert main(["create", "--dataset_path", dataset, "--prefix", "t", "--output_dir", "out",
                 "--no-store-images", "--quiet"]) == 0
    assert main(["show", "out/t-00000-of-00001", "-o", "x.png"]) == 1
    err = capsys.readouterr().err
    assert "show: record 0 (id '0') stores no image (image/encoded" in err
    assert "Traceback" not in err and "error:" not in err and not Path("x.png").exists()


def test_a_bug_in_encoding_an_item_is_not_a_failed_item(
        tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """items.try_encode returns the library's errors as failed items; a bug propagates."""
    monkeypatch.chdir(tmp_path)
    dataset = _dataset(tmp_path, image_file)
    monkeypatch.setattr(items, "encode_example", _zero)  # deep in every item's encoding
    status = main(["--dataset_path", dataset, "--prefix", "t", "--output_dir", "out",
                   "--threads", "2", "--quiet"])
    err = capsys.readouterr().err
    assert status == 70, err
    assert "Traceback" in err and "_zero" in err
    assert err.strip().splitlines()[-1].startswith(
        "tfrecord-lite: internal error: ZeroDivisionError")
    assert not Path("out/t.failures.json").exists()  # not reported as failed items
    assert not list(Path("out").glob("t-0*"))


def test_an_item_error_is_still_a_failed_item(tmp_path: Path, image_file: Any) -> None:
    good = detection_item(image_file("jpeg-rgb"), "good")
    missing = detection_item(str(tmp_path / "missing.jpg"), "missing")
    data, error, _ = items.try_encode(good)
    assert data is not None and error is None
    data, error, _ = items.try_encode(missing)
    assert data is None and isinstance(error, tfrecord_lite.ImageError)


def test_the_local_runner_takes_the_options_as_one_object(tmp_path: Path,
                                                          image_file: Any) -> None:
    from tfrecord_lite import local

    from conftest import detection_item

    items = [detection_item(image_file("jpeg-rgb"), i) for i in range(5)]
    options = JobOptions(seed=4, compression="gzip", quality=80)
    summary = local.run(items, "t", tmp_path / "a", 2, options, num_threads=2,
                        progress=False)
    facade = write_dataset(items, "t", tmp_path / "b", 2, 2, seed=4, compression="gzip",
                           quality=80, progress=False)
    assert summary.options == facade.options == options.manifest()
    for shard in ("t-00000-of-00002", "t-00001-of-00002"):
        assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()
    with pytest.raises(TypeError):  # a runner takes no option as a keyword
        local.run(items, "t", tmp_path / "c", 2, seed=4)  # type: ignore[call-arg]


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                     | st.text(max_size=8) | st.binary(max_size=4),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)


@given(st.lists(st.dictionaries(st.text(max_size=6), _JSON, max_size=4), max_size=300))
def test_the_failures_file_written_as_failures_come_is_the_whole_list_s_json(
        failures: list[dict[str, Any]]) -> None:
    stream = io.BytesIO()
    file = FailuresFile(stream)
    for failed in failures:
        file.add(failed)
    file.close()
    assert stream.getvalue() == failures_json(failures)


# -- failures do not cost memory --------------------------------------------------------------

def test_without_keep_failures_only_the_file_holds_them(tmp_path: Path, image_file: Any) -> None:
    items = [detection_item(image_file("jpeg-rgb"), i) for i in range(3)]
    items += [detection_item(f"missing{i}.jpg", f"m{i}") for i in range(25)]
    kept = write_dataset(items, "k", tmp_path / "kept", 3, 2, shuffle=False, progress=False)
    lean = write_dataset(items, "k", tmp_path / "lean", 3, 2, shuffle=False, progress=False,
                         keep_failures=False)
    assert len(kept.failures) == kept.failed == lean.failed == 25
    assert lean.failures == [] and lean.failed_by_reason == kept.failed_by_reason
    assert lean.first_failures == kept.failures[:10]
    failures = (tmp_path / "lean" / "k.failures.json").read_bytes()
    assert failures == (tmp_path / "kept" / "k.failures.json").read_bytes()
    assert failures == job.failures_json(kept.failures)
    assert json.loads((tmp_path / "lean" / "k.manifest.json").read_text())["failed"] == 25


_PEAK = """
import json, re, sys
from tfrecord_lite.cli import main
status = main(sys.argv[1:])
peak = int(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read())[1])
print(json.dumps([status, peak * 1024]))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize("processes", ["1", "2"])
def test_the_command_line_s_memory_does_not_grow_with_failures(
        tmp_path: Path, processes: str) -> None:
    # Each failed item was held (and the whole list serialized at the end): about 14 KB
    # a failure here. Now they go to the failures file as they come. (250 items a shard in
    # both runs: worker processes hold the items of the shards in flight.)
    peaks = {}
    for count in (4000, 40000):
        dataset = tmp_path / f"fail-{count}.jsonl"
        with open(dataset, "w") as f:
            for i in range(count):
                item = detection_item(f"missing/{i:07d}.jpg", f"item-{i:07d}")
                item["extra"] = "x" * 200
                f.write(json.dumps(item) + "\n")
        done = subprocess.run(
            [sys.executable, "-c", _PEAK, "--dataset_path", str(dataset), "--prefix", "f",
             "--output_dir", str(tmp_path / f"out{count}"), "--shards", str(count // 250),
             "--threads",
             "2", "--processes", processes, "-q"],
            capture_output=True, text=True, cwd=ROOT, timeout=600, check=True)
        status, peaks[count] = json.loads(done.stdout.splitlines()[-1])
        assert status == 1
        failures = json.loads(
            (tmp_path / f"out{count}" / "f.unpublished-failures.json").read_text())
        assert len(failures) == count
    per_failure = (peaks[40000] - peaks[4000]) / 36000
    assert per_failure < 1000, f"{per_failure:.0f} bytes of peak memory per failed item"
