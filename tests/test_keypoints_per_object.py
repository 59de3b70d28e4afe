"""The item format's keypoint rule: each object holds the same number K of points, so
the points are a multiple of the objects (object j: points j*K to j*K + K - 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import iterate
from tfrecord_lite.cli import main
from tfrecord_lite.validate import check_item

from conftest import detection_item, make_image_bytes


def _items(points: int) -> list[dict[str, Any]]:
    Path("a.jpg").write_bytes(make_image_bytes("jpeg-rgb", 64, 48))
    item = detection_item("a.jpg", "pose-1")  # two objects
    item["object"]["parts"] = {"x": [0.5] * points, "y": [0.5] * points, "v": [2] * points}
    return [item]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_create_fails_an_item_whose_objects_cannot_hold_the_same_number_of_points(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("items.json").write_text(json.dumps(_items(3)))
    assert main(["--dataset_path", "items.json", "--prefix", "t", "--output_dir", "out",
                 "-q"]) == 1
    err = capsys.readouterr().err
    assert ("id 'pose-1': object/parts: 3 points for 2 objects: each object holds the same "
            "number K of points") in err
    assert main(["--dataset_path", "items.json", "--prefix", "t", "--output_dir", "out",
                 "--validation", "lenient"]) == 0
    assert "object/parts: 3 points for 2 objects" in capsys.readouterr().err
    assert [r["id"] for r in iterate(sorted(Path("out").glob("t-*")))] == ["pose-1"]


@pytest.mark.parametrize("points", [0, 2, 4, 34])
def test_k_points_for_each_object_pass(work: Path, points: int) -> None:
    assert check_item(_items(points)[0]) == []
