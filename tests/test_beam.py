"""The Apache Beam pipeline on the DirectRunner (run by `make test-beam`, in its own venv)."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import (
    JobOptions,
    WriteError,
    read_records,
    storage,
    verify_files,
    write_dataset,
)
from tfrecord_lite.cli import main
from tfrecord_lite.sharding import shard_name

from conftest import ROOT, detection_item, make_image_bytes

pytestmark = pytest.mark.beam

# Skipped where Beam is absent; `make test-beam` imports it first, so there a missing
# Beam fails instead.
pytest.importorskip("apache_beam")

from tfrecord_lite import beam as tfl_beam  # noqa: E402

KINDS = ("jpeg-rgb", "png-rgb", "jpeg-gray", "png-rgba", "gif")
# Two worker processes: the output must not depend on the runner's parallelism.
# (Not multi_threading: that mode loses elements, see test_lost_items_are_detected.)
PARALLEL = "--direct_num_workers=2 --direct_running_mode=multi_processing"


def _items(image_file: Any, n: int = 10) -> list[dict[str, Any]]:
    items = [detection_item(image_file(KINDS[i % len(KINDS)]), str(i)) for i in range(n)]
    items.append({"filename": image_file("jpeg-rgb"), "id": "minimal", "class": {"label": "1"}})
    items.append({"filename": "given.png", "id": "given", "encoded": make_image_bytes("png-rgb"),
                  "height": 48, "width": 64, "format": "PNG", "colorspace": "RGB",
                  "channels": 3})
    return items


def _records_by_id(out: Path, name: str, shards: int, compression: str | None = None
                   ) -> dict[str, bytes]:
    from tfrecord_lite import decode_example

    records: dict[str, bytes] = {}
    for i in range(shards):
        for data in read_records(out / shard_name(name, i, shards), compression=compression):
            records[str(decode_example(data)["id"])] = data
    return records


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_records_equal_create_records_byte_for_byte(tmp_path: Path, image_file: Any) -> None:
    items = _items(image_file)
    options = {"seed": 3, "quality": 80, "max_side": 40}  # converted images depend on them
    local = write_dataset(items, "train", tmp_path / "local", 3, 2, progress=False, **options)
    summary = tfl_beam.run(items, "train", tmp_path / "beam", 3, JobOptions(**options))
    assert local.failed == summary.failed == 0
    ours = _records_by_id(tmp_path / "beam", "train", 3)
    assert sorted(ours) == sorted(str(i["id"]) for i in items)
    assert ours == _records_by_id(tmp_path / "local", "train", 3)
    assert summary.written == len(items) == summary.total
    assert [s.file for s in summary.shards] == [s.file for s in local.shards]


def test_tensorflow_reads_beam_output(tmp_path: Path, image_file: Any) -> None:
    import test_tensorflow  # skips this test where TensorFlow is absent

    items = _items(image_file)
    summary = tfl_beam.run(items, "train", tmp_path, 4, JobOptions(seed=1, compression="gzip"),
                           beam_options=PARALLEL)
    assert summary.failed == 0
    files = [str(tmp_path / s.file) for s in summary.shards]
    test_tensorflow.check_tensorflow_reads(files, items, "GZIP")


def test_failures_side_output_and_cli_failures_file(tmp_path: Path, image_file: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    items = [detection_item(image_file("jpeg-rgb"), "ok"),
             detection_item(str(tmp_path / "missing.jpg"), "gone"),
             detection_item(image_file(b"\xff\xd8\xff\xe0 not really"), "cut"),
             {"filename": image_file("jpeg-rgb"), "id": "bad", "class": {"label": "left"}}]
    dataset = tmp_path / "train.json"
    dataset.write_text(json.dumps(items))
    statuses = {}
    for runner in ("local", "beam"):
        statuses[runner] = main(["--dataset_path", str(dataset), "--prefix", "train",
                                 "--output_dir", str(tmp_path / runner), "--shards", "2",
                                 "--runner", runner, "-q"])
    assert statuses == {"local": 1, "beam": 1}
    err = capsys.readouterr().err
    assert "3 of 4 items failed" in err and "missing.jpg: file not found" in err
    assert "Traceback" not in err

    def by_id(failures: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {f["id"]: f for f in failures}

    beam_failures = json.loads((tmp_path / "beam" / "train.failures.json").read_text())
    local_failures = json.loads((tmp_path / "local" / "train.failures.json").read_text())
    assert by_id(beam_failures) == by_id(local_failures)
    assert set(by_id(beam_failures)) == {"gone", "cut", "bad"}
    lines = (tmp_path / "beam" / "train.failures.jsonl").read_text().splitlines()
    assert by_id([json.loads(line) for line in lines]) == by_id(beam_failures)
    manifest = json.loads((tmp_path / "beam" / "train.manifest.json").read_text())
    assert (manifest["records"], manifest["failed"]) == (1, 3)


def test_failure_reasons_and_bytes_in_failures_file(tmp_path: Path, image_file: Any) -> None:
    items = [{"filename": str(tmp_path / "nope.jpg"), "id": "a"},
             {"filename": "x.jpg", "id": "b", "encoded": b"\x00" * 10}]
    summary = tfl_beam.run(items, "t", tmp_path, 1, JobOptions(shuffle=False))
    assert summary.failed_by_reason == {"missing": 1, "invalid item": 1}
    assert summary.written == 0 and summary.total == 2
    failed = {f["id"]: f for f in summary.failures}
    assert failed["b"]["encoded"] == "<10 bytes>"
    assert "height, width, format, colorspace, channels must be given" in failed["b"]["error_msg"]
    assert list(read_records(tmp_path / "t-00000-of-00001")) == []


def test_manifest_matches_the_files(tmp_path: Path, image_file: Any) -> None:
    items = _items(image_file)
    items.append({"filename": str(tmp_path / "missing.jpg"), "id": "lost"})
    summary = tfl_beam.run(items, "train", tmp_path / "beam", 3,
                           JobOptions(seed=9, compression="zlib"))
    local = write_dataset(items, "train", tmp_path / "local", 3, 1, seed=9,
                          compression="zlib", progress=False)
    files = sorted((tmp_path / "beam").glob("train-0*"))
    report = verify_files(files)
    assert report.ok, report.problems
    assert report.records == summary.written == len(items) - 1
    manifest = json.loads((tmp_path / "beam" / "train.manifest.json").read_text())
    assert manifest == summary.manifest()
    expected = local.manifest()
    for key in ("name", "format", "records", "failed", "num_shards", "options",
                "tfrecord_lite_version"):
        assert manifest[key] == expected[key], key
    assert manifest["bytes"] == sum(f.stat().st_size for f in files)
    # verify compares each file with the manifest: a wrong count is found.
    manifest["shards"][0]["records"] += 1
    (tmp_path / "beam" / "train.manifest.json").write_text(json.dumps(manifest))
    assert any("the manifest says" in str(p) for p in verify_files(files).problems)


def test_every_shard_written_even_empty_and_gzip(tmp_path: Path, image_file: Any) -> None:
    items = _items(image_file, 1)[:2]
    summary = tfl_beam.run(items, "tiny", tmp_path, 5, JobOptions(seed=0, compression="gzip"))
    names = [shard_name("tiny", i, 5) for i in range(5)]
    assert sorted(p.name for p in tmp_path.glob("tiny-0*")) == names
    counts = [len(list(read_records(tmp_path / n, compression="gzip"))) for n in names]
    assert sum(counts) == 2 and counts.count(0) >= 3
    assert [s.records for s in summary.shards] == counts
    assert all((tmp_path / n).read_bytes()[:2] == b"\x1f\x8b" for n in names)  # gzip, even empty
    assert verify_files([tmp_path / n for n in names]).ok
    assert not list(tmp_path.glob(".*")), "temporary files were left"


def test_same_seed_same_bytes_whatever_the_parallelism(tmp_path: Path, image_file: Any) -> None:
    items = _items(image_file, 14)
    tfl_beam.run(items, "train", tmp_path / "a", 3, JobOptions(seed=5))
    tfl_beam.run(list(reversed(items)), "train", tmp_path / "b", 3, JobOptions(seed=5),
                 beam_options=PARALLEL)
    tfl_beam.run(items, "train", tmp_path / "c", 3, JobOptions(seed=6))
    first = _files(tmp_path / "a")
    assert first == _files(tmp_path / "b")
    other = _files(tmp_path / "c")
    assert first.keys() == other.keys()
    assert any(first[name] != other[name] for name in first if "-of-" in name)


def test_without_shuffle_records_ordered_by_id(tmp_path: Path, image_file: Any) -> None:
    items = [detection_item(image_file("jpeg-rgb"), i) for i in (12, 3, 100, 7, 25, 1, 30, 9)]
    summary = tfl_beam.run(items, "train", tmp_path, 2, JobOptions(shuffle=False, seed=4))
    assert summary.options["shuffle"] is False and summary.options["seed"] is None
    from tfrecord_lite import read_examples

    for shard in summary.shards:
        ids = [int(r["id"]) for r in read_examples(tmp_path / shard.file)]
        assert ids == sorted(ids) and len(ids) == shard.records
    assert sum(s.records for s in summary.shards) == len(items)


def test_duplicate_ids_fail_as_in_create_and_the_kept_one_does_not_depend_on_order(
        tmp_path: Path, image_file: Any) -> None:
    files = [image_file("jpeg-rgb") for _ in range(4)]
    items = [detection_item(files[0], "a"), detection_item(files[1], "b"),
             detection_item(files[2], "a"), detection_item(files[3], "a"),
             {"filename": files[0], "id": None}]
    outputs = []
    for order, name in (([0, 1, 2, 3, 4], "one"), ([3, 4, 2, 1, 0], "two")):
        summary = tfl_beam.run([items[i] for i in order], "t", tmp_path / name, 2,
                               JobOptions(seed=3), beam_options=PARALLEL)
        assert summary.written == 2 and summary.failed_by_reason == {
            "failed validation": 2, "invalid item": 1}
        duplicates = [f for f in summary.failures if f.get("id") == "a"]
        assert len(duplicates) == 2
        for failed in duplicates:
            assert "'a' is also the id of the item with filename" in failed["error_msg"]
        outputs.append({p.name: p.read_bytes() for p in (tmp_path / name).glob("t-0*")})
    assert outputs[0] == outputs[1]  # the same item kept, whatever the input order

    local = write_dataset(items, "t", tmp_path / "local", 2, 1, progress=False)
    assert local.written == 2 and local.failed_by_reason == summary.failed_by_reason
    lenient = tfl_beam.run(items, "t", tmp_path / "lenient", 2,
                           JobOptions(validation="lenient"))
    assert lenient.written == 4 and lenient.failed_by_reason == {"invalid item": 1}
    unchecked = tfl_beam.run(items, "t", tmp_path / "off", 2, JobOptions(validation="off"))
    assert unchecked.written == 4


def test_converters_run_on_beam(tmp_path: Path, image_file: Any) -> None:
    root = tmp_path / "flowers"
    for i, kind in enumerate(("jpeg-rgb", "png-rgb", "jpeg-gray")):
        (root / ("tulip" if i else "daisy")).mkdir(parents=True, exist_ok=True)
        (root / ("tulip" if i else "daisy") / f"{i}.img").write_bytes(make_image_bytes(kind))
    for runner in ("local", "beam"):
        assert main(["from-folder", str(root), "--prefix", "f", "--output_dir",
                     str(tmp_path / runner), "--shards", "1", "--runner", runner, "-q"]) == 0
    assert (_records_by_id(tmp_path / "beam", "f", 1)
            == _records_by_id(tmp_path / "local", "f", 1))
    assert (tmp_path / "beam" / "label_map.json").read_text() == (
        tmp_path / "local" / "label_map.json").read_text()


def test_transform_in_a_users_pipeline(tmp_path: Path, image_file: Any) -> None:
    import apache_beam as beam

    items = _items(image_file, 4)
    source = tmp_path / "items.jsonl"
    source.write_text("".join(json.dumps(i) + "\n"
                              for i in items if "encoded" not in i))
    with beam.Pipeline(options=tfl_beam.pipeline_options(None)) as pipeline:
        _ = (pipeline
             | beam.io.ReadFromText(str(source))
             | beam.Map(json.loads)
             | tfl_beam.WriteDataset("val", tmp_path / "out", 2, seed=1))
    manifest = json.loads((tmp_path / "out" / "val.manifest.json").read_text())
    assert manifest["records"] == len(items) - 1 and manifest["num_shards"] == 2
    local = write_dataset(items[:-1], "val", tmp_path / "local", 2, 1, seed=1, progress=False)
    assert _records_by_id(tmp_path / "out", "val", 2) == _records_by_id(
        tmp_path / "local", "val", 2)
    assert local.written == manifest["records"]


def test_write_error_leaves_no_partial_shard(tmp_path: Path, image_file: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(self: Any, temp: str, name: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage.Folder, "publish", disk_full)
    with pytest.raises(WriteError, match="cannot write shard .*train-0000.-of-00002"):
        tfl_beam.run(_items(image_file, 3), "train", tmp_path / "out", 2, JobOptions(seed=1))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_output_to_an_fsspec_url(tmp_path: Path, image_file: Any) -> None:
    fsspec = pytest.importorskip("fsspec")
    items = _items(image_file, 5)
    summary = tfl_beam.run(items, "train", "memory://beam-out/run", 2, JobOptions(seed=4),
                           beam_options=["--direct_running_mode=in_memory"])
    fs = fsspec.filesystem("memory")
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls("/beam-out/run", detail=False))
    assert names == ["train-00000-of-00002", "train-00001-of-00002", "train.failures.json",
                     "train.failures.jsonl", "train.manifest.json"]
    local = tfl_beam.run(items, "train", tmp_path / "local", 2, JobOptions(seed=4),
                         beam_options=["--direct_running_mode=in_memory"])
    for shard, expected in zip(summary.shards, local.shards):
        assert shard == expected
        assert fs.cat_file(f"/beam-out/run/{shard.file}") == (
            tmp_path / "local" / shard.file).read_bytes()


def test_lost_items_are_detected_exit_3(tmp_path: Path, image_file: Any,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    encode = tfl_beam._EncodeFn.process

    def lose_one(self: Any, element: Any) -> Any:
        item, _ = element  # (item, duplicate-id problem)
        return iter(()) if item["id"] == "1" else encode(self, element)

    monkeypatch.setattr(tfl_beam._EncodeFn, "process", lose_one)
    dataset = tmp_path / "train.json"
    dataset.write_text(json.dumps(_items(image_file, 4)[:4]))
    out = tmp_path / "out"
    assert main(["--dataset_path", str(dataset), "--prefix", "train", "--output_dir", str(out),
                 "--runner", "beam", "-q"]) == 3
    err = capsys.readouterr().err
    assert "the runner lost items: 4 went in, 3 reached" in err and "Traceback" not in err
    assert not (out / "train.manifest.json").exists()


def test_bad_arguments_and_pipeline_options(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="num_shards"):
        tfl_beam.WriteDataset("train", tmp_path, 0)
    with pytest.raises(ValueError, match="quality"):
        tfl_beam.run([], "train", tmp_path, 1, JobOptions(quality=101))
    with pytest.raises(ValueError, match="--direct_num_workers: invalid int value: 'two'"):
        tfl_beam.pipeline_options("--direct_num_workers=two")
    assert capsys.readouterr().err == ""  # Beam's parser printed nothing of its own
    status = main(["--dataset_path", str(ROOT / "tests/data/demo/dataset.json"), "--prefix",
                   "t", "--output_dir", str(tmp_path), "--runner", "beam",
                   "--beam-options=--direct_running_mode=everywhere"])
    assert status == 2
    err = capsys.readouterr().err
    assert "invalid Beam pipeline options" in err and "usage:" not in err


def test_importing_the_package_does_not_import_beam() -> None:
    code = ("import sys, tfrecord_lite, tfrecord_lite.cli, tfrecord_lite.local; "
            "sys.exit('apache_beam' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_run_from_python_leaves_the_files_of_the_command_line(
        tmp_path: Path, image_file: Any) -> None:
    items = _items(image_file, 4)[:4] + [detection_item(str(tmp_path / "gone.jpg"), "gone")]
    dataset = tmp_path / "train.json"
    dataset.write_text(json.dumps(items))
    earlier = tmp_path / "python"
    earlier.mkdir()
    (earlier / "train-00000-of-00005").write_bytes(b"an earlier run's shard")
    (earlier / ".train-00000-of-00005.idx").write_text("0 10\n")
    summary = tfl_beam.run(items, "train", earlier, 2, JobOptions(seed=2))
    assert main(["--dataset_path", str(dataset), "--prefix", "train", "--output_dir",
                 str(tmp_path / "cli"), "--shards", "2", "--seed", "2", "--shuffle",
                 "--store_images",
                 "--runner", "beam", "-q"]) == 1
    python_files, cli_files = _files(earlier), _files(tmp_path / "cli")
    assert sorted(python_files) == sorted(cli_files) == [
        "train-00000-of-00002", "train-00001-of-00002", "train.failures.json",
        "train.failures.jsonl", "train.manifest.json"]
    failures = json.loads(python_files["train.failures.json"])
    assert [f["id"] for f in failures] == [f["id"] for f in summary.failures] == ["gone"]
    for name in ("train-00000-of-00002", "train-00001-of-00002", "train.failures.json"):
        assert python_files[name] == cli_files[name], name


def test_run_takes_the_job_options_as_one_object(tmp_path: Path, image_file: Any) -> None:
    with pytest.raises(TypeError):
        tfl_beam.run([], "train", tmp_path, 1, seed=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="resume is for the local runner"):
        tfl_beam.run([], "train", tmp_path, 1, JobOptions(resume=True))
    transform = tfl_beam.WriteDataset.from_options("train", tmp_path, 2, JobOptions(seed=8))
    assert transform.plan == tfl_beam.WriteDataset("train", tmp_path, 2, seed=8).plan
