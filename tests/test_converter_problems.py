"""Every converter problem (a rejected annotation, a skipped image) is listed in the
failures file, after the failed items; a run that publishes nothing leaves the earlier
run's files (shards, manifest, failures file, label maps) as they were."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from test_converters import _image, make_coco, make_voc

from tfrecord_lite.cli import main
from tfrecord_lite.converters import Problems


def _coco_with_bad_annotations(n: int) -> Path:
    instances, _ = make_coco(Path("."))
    data = json.loads(instances.read_text())
    for k in range(n):
        data["annotations"].append({"id": 100 + k, "image_id": 2, "category_id": 42,
                                    "bbox": [1, 1, 5, 5]})
    instances.write_text(json.dumps(data))
    return instances


def test_coco_problems_beyond_the_first_ten_are_in_the_failures_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Problems, "KEPT", 3)  # most of them go through the scratch file
    instances = _coco_with_bad_annotations(15)
    assert main(["from-coco", instances.name, "--images", "val2017", "--prefix", "t",
                 "--output_dir", "out"]) == 1
    err = capsys.readouterr().err
    assert "more problems; all are listed in out/t.failures.json" in err
    entries = json.loads(Path("out/t.failures.json").read_text())
    items = [e for e in entries if "kind" not in e]
    problems = [e for e in entries if e.get("kind") == "converter"]
    assert items == []  # image 4 (no file) is left out for its unknown category
    assert len(problems) == 16 and len(err.splitlines()) < 20  # 15 + image 4's
    wheres = [e["where"] for e in problems]
    assert "image id 2, annotation 114 (annotations[18])" in wheres
    assert all(e["source"] == str(tmp_path / instances.name) for e in problems)
    last = next(e for e in problems if e["where"].endswith("(annotations[18])"))
    assert last["error_msg"].endswith("unknown category_id 42: the image is left out")
    manifest = json.loads(Path("out/t.manifest.json").read_text())
    assert manifest["problems"] == len(problems)


def test_voc_skipped_image_is_in_the_failures_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_voc(Path("voc"), xml_size=(640, 480))
    assert main(["from-voc", "voc", "--prefix", "t", "--output_dir", "out", "-q"]) == 1
    entries = json.loads(Path("out/t.failures.json").read_text())
    assert [(e["kind"], e["where"]) for e in entries] == [("converter", "image '2007_000001'")]
    assert "the XML says 640x480, the image is 200x100" in entries[0]["error_msg"]


def test_rerun_that_publishes_nothing_leaves_the_earlier_files_as_they_were(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_voc(Path("voc"))
    args = ["from-voc", "voc", "--prefix", "t", "--output_dir", "out", "-q"]
    assert main(args) == 0
    before = {p.name: p.read_bytes() for p in Path("out").iterdir()}
    assert {"label_map.json", "t.failures.json", "t.manifest.json"} <= set(before)
    # Run 2: other classes, and every image is broken: nothing is published.
    for xml in Path("voc/Annotations").glob("*.xml"):
        xml.write_text(xml.read_text().replace("dog", "wolf").replace("cat", "lynx"))
    for jpg in Path("voc/JPEGImages").glob("*.jpg"):
        jpg.write_bytes(jpg.read_bytes()[:200])
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "this run's failures are listed in out/t.unpublished-failures.json" in err
    after = {p.name: p.read_bytes() for p in Path("out").iterdir()}
    assert {k: v for k, v in after.items() if k != "t.unpublished-failures.json"} == before
    assert len(json.loads(after["t.unpublished-failures.json"])) == 2
    # Run 3 publishes: the unpublished run's list goes.
    for name in ("2007_000001.jpg", "2007_000002.jpg"):
        _image(Path("voc/JPEGImages") / name)
    assert main(args) == 0
    assert not Path("out/t.unpublished-failures.json").exists()
    assert "wolf" in Path("out/label_map.json").read_text()


def test_coco_image_whose_size_disagrees_with_the_json_is_left_out_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    instances, images = make_coco(Path("."))
    _image(images / "000002.jpg", width=80, height=60)
    assert main(["from-coco", instances.name, "--images", "val2017", "--prefix", "t",
                 "--output_dir", "out"]) == 1
    err = capsys.readouterr().err
    assert ("image id 2: the annotation file says 200x100, the image 000002.jpg is 80x60: "
            "the image is left out") in err
    ids = [e.get("where") for e in json.loads(Path("out/t.failures.json").read_text())]
    assert "image id 2" in ids


def test_a_run_whose_every_image_was_left_out_says_so_not_that_the_dataset_is_empty(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    _image(Path("a.jpg"), width=10, height=10)
    Path("u.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [1, 1, 2, 2]}],
        "categories": [{"id": 1, "name": "x"}]}))
    caplog.set_level(logging.INFO, logger="tfrecord_lite")
    assert main(["from-coco", "u.json", "--images", ".", "--prefix", "u",
                 "--output_dir", "out"]) == 1
    err = capsys.readouterr().err
    assert ("wrote no record (0 items given: 1 problem with the dataset's files left every "
            "image out)") in caplog.text
    assert "nothing was written: every image was left out for the problems below" in err
    assert "the dataset holds no items" not in err
    assert "unknown category_id 9: the image is left out" in err
