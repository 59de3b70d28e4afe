from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import __version__, read_records
from tfrecord_lite.accelerators import chosen
from tfrecord_lite.cli import main

from conftest import ROOT, detection_item


def _write_dataset(tmp_path: Path, items: list[dict[str, Any]]) -> str:
    path = tmp_path / "train.json"
    path.write_text(json.dumps(items))
    return str(path)


def test_original_flags(tmp_path: Path, image_file: Any) -> None:
    items = [detection_item(image_file("jpeg-rgb"), i) for i in range(6)]
    out = tmp_path / "out"
    status = main(["--dataset_path", _write_dataset(tmp_path, items), "--prefix", "train",
                   "--output_dir", str(out), "--shards", "4", "--threads", "3", "--shuffle",
                   "--store_images", "--quiet"])
    assert status == 0
    shards = sorted(p.name for p in out.glob("train-0*"))
    assert shards == [f"train-{i:05d}-of-00004" for i in range(4)]
    assert sum(len(list(read_records(out / s))) for s in shards) == 6
    assert json.loads((out / "train.failures.json").read_text()) == []


def test_create_subcommand_and_new_options(tmp_path: Path, image_file: Any) -> None:
    items = [detection_item(image_file("png-rgb", width=300, height=200), i) for i in range(3)]
    out = tmp_path / "out"
    status = main(["create", "--dataset-path", _write_dataset(tmp_path, items), "--prefix", "v",
                   "--output-dir", str(out), "--compression", "gzip", "--seed", "5",
                   "--quality", "80", "--max-side", "150", "--no-decode-check", "--quiet"])
    assert status == 0
    manifest = json.loads((out / "v.manifest.json").read_text())
    assert manifest["options"] == {"shuffle": False, "seed": None, "store_images": True,
                                   "compression": "gzip", "quality": 80, "max_side": 150,
                                   "decode_check": False, "validation": "strict", "root": None}
    assert len(list(read_records(out / "v-00000-of-00001", compression="gzip"))) == 3


def test_fsync_flag(tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    import os

    flushed: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: flushed.append(fd) or real_fsync(fd))
    dataset = _write_dataset(tmp_path, [detection_item(image_file("jpeg-rgb"), "a")])
    argv = ["--dataset_path", dataset, "--prefix", "t", "--output_dir", str(tmp_path / "o"),
            "--quiet"]
    assert main(argv) == 0 and not flushed
    # shard, journal files, manifest and failures file: each file and the directory
    assert main([*argv, "--fsync"]) == 0 and len(flushed) >= 8
    assert main([*argv, "--fsync", "--runner", "beam"]) == 2
    assert "--fsync is for the local runner" in capsys.readouterr().err


def test_no_store_images(tmp_path: Path, image_file: Any) -> None:
    items = [detection_item(image_file("jpeg-rgb"), 0)]
    out = tmp_path / "o"
    assert main(["--dataset_path", _write_dataset(tmp_path, items), "--prefix", "t",
                 "--output_dir", str(out), "--no-store_images", "-q"]) == 0
    from tfrecord_lite import read_examples

    (record,) = read_examples(out / "t-00000-of-00001")
    assert "encoded" not in record and record["width"] == 64


def test_failed_items_exit_1_and_failures_file(tmp_path: Path, image_file: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    items = [detection_item(image_file("jpeg-rgb"), "ok"),
             detection_item(str(tmp_path / "missing.jpg"), "gone")]
    out = tmp_path / "out"
    status = main(["--dataset_path", _write_dataset(tmp_path, items), "--prefix", "train",
                   "--output_dir", str(out), "-q"])
    assert status == 1
    failures = json.loads((out / "train.failures.json").read_text())
    assert [f["id"] for f in failures] == ["gone"]
    assert "file not found" in failures[0]["error_msg"]
    err = capsys.readouterr().err
    assert "1 of 2 items failed" in err and "missing.jpg: file not found" in err


@pytest.mark.parametrize("argv, message", [
    (["--prefix", "x", "--output_dir", "o"], "--dataset_path"),
    (["--dataset_path", "d.json", "--prefix", "x", "--output_dir", "o", "--shards", "0"],
     "must be at least 1"),
    (["--dataset_path", "d.json", "--prefix", "x", "--output_dir", "o", "--threads", "two"],
     "expected a whole number"),
    (["--dataset_path", "d.json", "--prefix", "x", "--output_dir", "o", "--compression", "lz4"],
     "invalid choice"),
    (["--dataset_path", "d.json", "--prefix", "x", "--output_dir", "o", "--quality", "101"],
     "between 1 and 100"),
])
def test_usage_errors_exit_2(argv: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (None, "cannot read dataset file"),
    ("[{\"id\": 1,}", "not valid JSON"),
    ("{\"id\": 1}", "expected a JSON list of items"),
])
def test_bad_dataset_file_exit_2_without_traceback(tmp_path: Path, content: str | None,
                                                   message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "d.json"
    if content is not None:
        path.write_text(content)
    assert main(["--dataset_path", str(path), "--prefix", "x", "--output_dir",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unwritable_output_exit_3(tmp_path: Path, image_file: Any,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    items = [detection_item(image_file("jpeg-rgb"), 0)]
    assert main(["--dataset_path", _write_dataset(tmp_path, items), "--prefix", "x",
                 "--output_dir", str(blocker / "sub"), "-q"]) == 3
    assert "cannot create output directory" in capsys.readouterr().err


def test_jsonl_dataset(tmp_path: Path, image_file: Any) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(detection_item(image_file("jpeg-rgb"), i))
                              for i in range(3)) + "\n")
    assert main(["--dataset_path", str(path), "--prefix", "j", "--output_dir",
                 str(tmp_path / "o"), "-q"]) == 0


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out == f"tfrecord-lite {__version__} ({chosen().report()})\n"
    assert "CRC32C: google-crc32c (C)" in out and "JPEG check: simplejpeg 1." in out


def test_help_lists_original_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--dataset_path", "--prefix", "--output_dir", "--shards", "--threads",
                 "--shuffle", "--store_images", "--compression", "--seed", "--quality",
                 "--max-side", "--no-decode-check", "--quiet", "exit status"):
        assert flag in out


@pytest.mark.slow
def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tfrecord_lite", "--version"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and __version__ in result.stdout


@pytest.mark.slow
def test_progress_logs_summary(tmp_path: Path, image_file: Any) -> None:
    items = [detection_item(image_file("jpeg-rgb"), i) for i in range(2)]
    result = subprocess.run(
        [sys.executable, "-m", "tfrecord_lite", "--dataset_path", _write_dataset(tmp_path, items),
         "--prefix", "s", "--output_dir", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "wrote 2 of 2 items to 1 shard (" in result.stderr


def test_urls_without_fsspec_are_a_clear_error(tmp_path: Path, image_file: Any,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as if not installed
    items = [detection_item("s3://bucket/a.jpg", "remote"),
             detection_item(image_file("jpeg-rgb"), "local")]
    dataset = _write_dataset(tmp_path, items)
    assert main(["--dataset_path", dataset, "--prefix", "u", "--output_dir",
                 "s3://bucket/out", "-q"]) == 2
    assert "pip install fsspec s3fs (for s3://)" in capsys.readouterr().err
    assert main(["--dataset_path", dataset, "--prefix", "u", "--output_dir",
                 str(tmp_path / "out"), "-q"]) == 1
    failures = json.loads((tmp_path / "out" / "u.failures.json").read_text())
    assert [f["id"] for f in failures] == ["remote"]
    assert "URLs need fsspec" in failures[0]["error_msg"]
    from tfrecord_lite import write_dataset

    summary = write_dataset(items, "v", tmp_path / "out", 1, 1, progress=False)
    assert summary.failed_by_reason == {"unreadable": 1}


def test_runner_beam_without_beam_installed_exit_2(tmp_path: Path, image_file: Any,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import tfrecord_lite

    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam fails
    monkeypatch.delitem(sys.modules, "tfrecord_lite.beam", raising=False)
    monkeypatch.delattr(tfrecord_lite, "beam", raising=False)
    dataset = _write_dataset(tmp_path, [detection_item(image_file("jpeg-rgb"), 0)])
    out = tmp_path / "out"
    assert main(["--dataset_path", dataset, "--prefix", "t", "--output_dir", str(out),
                 "--runner", "beam", "-q"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'apache-beam>=2.50'" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["--dataset_path", dataset, "--prefix", "t", "--output_dir", str(out),
                 "--beam-options=--runner=DirectRunner", "-q"]) == 2
    assert "--beam-options goes with --runner beam" in capsys.readouterr().err
    folder = Path(dataset).parent / "images"
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "a.jpg").write_bytes(Path(image_file("jpeg-rgb")).read_bytes())
    assert main(["from-folder", str(folder), "--prefix", "t", "--output_dir", str(out),
                 "--runner", "beam", "-q"]) == 2  # the converters take --runner too
    assert "pip install 'apache-beam>=2.50'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, stored", [
    ([], False),  # the original command line: images only with --store_images
    (["--store_images"], True),
    (["--no-store_images"], False),
    (["create"], True),  # the create command stores them unless told not to
    (["create", "--store_images"], True),
    (["create", "--no-store_images"], False),
])
def test_store_images_defaults_of_both_forms(tmp_path: Path, image_file: Any,
                                             monkeypatch: pytest.MonkeyPatch,
                                             argv: list[str], stored: bool) -> None:
    from tfrecord_lite import read_examples

    items = [detection_item(image_file("jpeg-rgb"), "here")]
    # The original's users list images they do not store: a missing file is fine then,
    # when the item gives the size.
    items.append(detection_item(str(tmp_path / "elsewhere.jpg"), "absent", height=48,
                                width=64))
    _write_dataset(tmp_path, items)
    monkeypatch.chdir(tmp_path)
    command, flags = (argv[:1], argv[1:]) if argv[:1] == ["create"] else ([], argv)
    status = main([*command, "--dataset_path", "train.json", "--prefix", "t", "--output_dir",
                   "out", "-q", *flags])
    records = list(read_examples("out/t-00000-of-00001"))
    assert [("encoded" in r) for r in records] == [stored] * len(records)
    assert status == (1 if stored else 0)  # stored: the absent file fails its item
    assert len(records) == (1 if stored else 2)
