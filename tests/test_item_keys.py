"""Every level of an item is checked: a misspelt key fails its item, a key of the user's
own is written around and reported once per key path, and lists that go together must
agree in length, in the item (validation) and in the record (verify)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import keys, read_examples, validate_dataset
from tfrecord_lite.cli import main
from tfrecord_lite.schema import ITEM_PATHS
from tfrecord_lite.validate import check_item

from conftest import DEMO


def _box_item(ident: str) -> dict[str, Any]:
    return {"filename": "images/astronaut.jpg", "id": ident,
            "object": {"bbox": {"xmin": [0.1], "xmax": [0.5], "ymin": [0.2], "ymax": [0.6],
                                "label": [1], "text": ["person"]}}}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder as a user has it: images/ beside the dataset file, commands run there."""
    (tmp_path / "images").mkdir()
    shutil.copy(DEMO / "images" / "astronaut.jpg", tmp_path / "images" / "astronaut.jpg")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _dataset(items: list[dict[str, Any]], name: str = "train.json") -> str:
    Path(name).write_text(json.dumps(items))
    return name


def _create(dataset: str, *more: str) -> int:
    return main(["create", "--dataset_path", dataset, "--prefix", "train", "--output_dir",
                 "out", "-q", *more])


def _renamed(item: dict[str, Any], path: str, new: str) -> dict[str, Any]:
    """``item`` with the key at ``path`` (``object/bbox/xmin``) renamed to ``new``."""
    item = copy.deepcopy(item)
    *parents, last = path.split("/")
    node = item
    for part in parents:
        node = node[part]
    node[new] = node.pop(last)
    return item


TYPOS = [("object/bbox/xmin", "x_min"), ("object/bbox", "bboxes"), ("object", "objects"),
         ("object/bbox/label", "lable"), ("object/bbox/ymax", "yMax"),
         ("object/bbox/text", "texts")]


@pytest.mark.parametrize("path, typo", TYPOS)
def test_a_misspelt_key_fails_its_item_naming_the_key_path_and_the_key_it_resembles(
        workspace: Path, path: str, typo: str, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = _dataset([_box_item("good"), _renamed(_box_item("typo"), path, typo)])
    assert _create(dataset) == 1
    (failed,) = json.loads(Path("out/train.failures.json").read_text())
    misspelt = path.rsplit("/", 1)[0] + "/" + typo if "/" in path else typo
    assert failed["id"] == "typo"
    assert f"{misspelt}: not a key of the item format, but like {path}" in failed["error_msg"]
    assert f"{misspelt}: not a key" in capsys.readouterr().err
    assert [r["id"] for r in read_examples("out/train-00000-of-00001")] == ["good"]
    # --validate-only finds it too, and says so in its exit status.
    assert _create(dataset, "--validate-only") == 1
    assert f"{misspelt}: not a key of the item format" in capsys.readouterr().err


def test_a_misspelt_key_is_a_warning_under_lenient_and_unchecked_under_off(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = _dataset([_renamed(_box_item("typo"), "object/bbox/xmin", "x_min")])
    assert main(["create", "--dataset_path", dataset, "--prefix", "train", "--output_dir",
                 "out", "--validation", "lenient"]) == 0
    err = capsys.readouterr().err
    assert "1 item was written with warnings" in err
    assert "object/bbox/x_min: not a key of the item format, but like object/bbox/xmin" in err
    assert _create(dataset, "--validation", "off") == 0
    (record,) = read_examples("out/train-00000-of-00001")
    assert record["object"]["bbox"]["xmin"] == []  # what "off" writes, as before


def test_keys_of_ones_own_are_written_around_and_reported_once_per_key_path_with_a_count(
        workspace: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    items = []
    for n in range(3):
        item = _box_item(str(n))
        item["source"] = "camera 2"
        if n == 0:
            item["object"]["review"] = {"by": "ana"}
        items.append(item)
    dataset = _dataset(items)
    with caplog.at_level("INFO"):
        assert main(["create", "--dataset_path", dataset, "--prefix", "train",
                     "--output_dir", "out"]) == 0
    reported = [line for line in caplog.text.splitlines() if "not in the item format" in line]
    assert reported == ["keys not in the item format, not written: source (3 items), "
                        "object/review (1 item) (the item format lists the keys: "
                        "docs/item-format.md)"]
    assert len(list(read_examples("out/train-00000-of-00001"))) == 3
    assert _create(dataset, "--validate-only") == 0
    err = capsys.readouterr().err
    assert err.count("source (3 items), object/review (1 item)") == 1
    report = validate_dataset(items)
    assert report.unknown_keys == {"source": 3, "object/review": 1}


@pytest.mark.parametrize("drop, message", [
    ("object/bbox/xmin", "object: lists of unequal lengths (bbox/xmin missing, bbox/xmax 1, "
                         "bbox/ymin 1, bbox/ymax 1, bbox/label 1, bbox/text 1)"),
    ("object/bbox/label", "object: lists of unequal lengths (bbox/xmin 1, bbox/xmax 1, "
                          "bbox/ymin 1, bbox/ymax 1, bbox/label missing, bbox/text 1)"),
    ("object/parts/v", "object/parts: lists of unequal lengths (x 2, y 2, v missing)"),
])
def test_a_list_missing_beside_its_siblings_fails_the_item(
        workspace: Path, drop: str, message: str) -> None:
    item = _box_item("short")
    item["object"]["parts"] = {"x": [0.2, 0.3], "y": [0.3, 0.4], "v": [2, 2]}
    *parents, last = drop.split("/")
    node: Any = item
    for part in parents:
        node = node[part]
    node[last] = []  # an empty list is as missing as an absent one
    assert _create(_dataset([item])) == 1
    (failed,) = json.loads(Path("out/train.unpublished-failures.json").read_text())
    assert message in failed["error_msg"]
    del node[last]
    assert [str(p) for p in check_item(item)] == [message]


def test_object_count_when_given_must_be_the_number_of_boxes(workspace: Path) -> None:
    item = _box_item("counted")
    item["object"]["count"] = 2
    assert _create(_dataset([item])) == 1
    (failed,) = json.loads(Path("out/train.unpublished-failures.json").read_text())
    assert "object/count: 2, but 1 box is listed" in failed["error_msg"]


def test_verify_reports_records_whose_per_object_lists_disagree(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counted = _box_item("counted")
    counted["object"]["count"] = 3
    dataset = _dataset([_box_item("good"),
                        _renamed(_box_item("typo"), "object/bbox/xmin", "x_min"), counted])
    assert _create(dataset, "--validation", "off") == 0
    capsys.readouterr()
    assert main(["verify", "out/train-*"]) == 1
    out = capsys.readouterr().out
    assert ("record 1, byte offset " in out and "image/object: lists of unequal lengths "
            "(bbox/xmin missing, bbox/xmax 1" in out)
    assert "record 2" in out and "image/object/count is 3, but the record holds " \
        "1 box" in out
    assert "record 0" not in out
    assert "FAILED: 1 file, 3 records, 3 images decoded, 2 problems" in out
    # stats finds the same records.
    assert main(["stats", "out/train-*"]) == 0
    out = capsys.readouterr().out
    assert "images whose object/count is not their number of boxes: 2 (e.g. ids typo, " \
        "counted)" in out


def test_every_key_path_of_the_schema_table_is_known() -> None:
    item: dict[str, Any] = {}
    for path in ITEM_PATHS:
        *parents, last = path.split("/")
        node = item
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = 1
    assert keys.unknown(item) == []


def test_keys_added_to_the_table_are_known_and_their_misspellings_found() -> None:
    # The mask keys being added to the table: known from it, nothing else to change.
    table = keys.levels((*ITEM_PATHS, "object/mask", "segmentation/class/encoded"))
    assert "mask" in table["object"] and "segmentation" in table[""]
    assert "encoded" in table["segmentation/class"]
    assert keys.resembles("object", "masks", table) == "mask"
    assert keys.resembles("", "segmentaton", table) == "segmentation"


@pytest.mark.parametrize("level, name, like", [
    ("object/bbox", "x_min", "xmin"), ("object/bbox", "XMIN", "xmin"),
    ("object", "objects", None), ("", "objects", "object"), ("object", "bboxes", "bbox"),
    ("class", "lable", "label"), ("", "heigth", "height"), ("", "file_name", "filename"),
    ("object", "iscrowd", "is_crowd"), ("", "classes", "class"),
    # keys of one's own, not typos
    ("", "name", None), ("", "text", None), ("", "source", None), ("", "split", None),
    ("object/parts", "z", None), ("", "image", None), ("", "label", None),
])
def test_what_resembles_a_known_key(level: str, name: str, like: str | None) -> None:
    assert keys.resembles(level, name) == like
