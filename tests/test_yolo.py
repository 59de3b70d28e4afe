"""from-yolo: Ultralytics and Darknet layouts built from the sample photos."""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import read_examples
from tfrecord_lite.cli import main
from tfrecord_lite.converters.yolo import YoloConverter, label_path
from tfrecord_lite.errors import DatasetError
from tfrecord_lite.verify import verify_files

from conftest import DEMO

PHOTOS = DEMO / "images"


def _copy(photo: str, to: Path) -> None:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PHOTOS / photo, to)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_ultralytics(root: Path) -> Path:
    """``root``: data.yaml with a names map, train as a folder, val as a list file.

    train: astronaut.jpg (a box, a polygon, a box past the edge, a zero-size box, three
    bad lines), camera.png (no label file: background), rocket.jpg (one box);
    a README.txt in the image folder is not an image. val: coffee.jpg, chelsea.jpg.
    """
    _write(root / "data.yaml", "path: .\ntrain: images/train\nval: val.txt\n"
                               "names:\n  0: cat\n  1: dog\n  2: person\n")
    _copy("astronaut.jpg", root / "images" / "train" / "astronaut.jpg")
    _copy("camera.png", root / "images" / "train" / "camera.png")
    _copy("rocket.jpg", root / "images" / "train" / "rocket.jpg")
    _write(root / "images" / "train" / "notes.md", "not an image\n")
    _write(root / "labels" / "train" / "astronaut.txt",
           "2 0.5 0.5 0.2 0.4\n"                 # line 1: a box
           "0 0.1 0.2 0.3 0.2 0.2 0.6\n"         # line 2: a triangle -> its box
           "1 0.95 0.5 0.2 0.2\n"                # line 3: past the right edge -> clipped
           "\n"
           "1 0.5 0.5 0 0.1\n"                   # line 5: zero width -> dropped
           "7 0.5 0.5 0.1 0.1\n"                 # line 6: class 7 is not in names
           "1 0.5 0.5 0.1\n"                     # line 7: four fields
           "1 0.5 left 0.1 0.1\n")               # line 8: not a number
    _write(root / "labels" / "train" / "rocket.txt", "1 0.25 0.75 0.5 0.5\n")
    _copy("coffee.jpg", root / "images" / "val" / "coffee.jpg")
    _copy("chelsea.jpg", root / "images" / "val" / "chelsea.jpg")
    _write(root / "labels" / "val" / "coffee.txt", "0 0.5 0.5 0.5 0.5\n")
    _write(root / "labels" / "val" / "chelsea.txt", "")  # empty: a background image
    _write(root / "val.txt", "./images/val/coffee.jpg\n./images/val/chelsea.jpg\n"
                             "./images/val/gone.jpg\n")
    return root


def make_pose(root: Path, kpt_shape: tuple[int, int]) -> Path:
    """A names list and ``kpt_shape``; two people on astronaut.jpg."""
    k, d = kpt_shape
    _write(root / "data.yaml", f"train: images\nnames: [person]\nkpt_shape: [{k}, {d}]\n")
    _copy("astronaut.jpg", root / "images" / "astronaut.jpg")
    if d == 3:
        lines = "0 0.5 0.5 0.4 0.8 0.5 0.2 2 0.45 0.3 1 0 0 0\n" \
                "0 0.2 0.5 0.2 0.4 1.2 0.5 2 0.25 0.6 2 0.3 0.7 2\n"
    else:
        lines = "0 0.5 0.5 0.4 0.8 0.5 0.2 0.45 0.3 0 0\n" \
                "0 0.2 0.5 0.2 0.4 0.2 0.5 0.25 0.6 0.3 0.7\n"
    _write(root / "labels" / "astronaut.txt", lines + "0 0.5 0.5 0.1 0.1 0.5 0.5\n")
    return root


def make_darknet(root: Path) -> Path:
    """``root`` = darknet/data: obj.names, train.txt listing 'data/obj/...' paths (Darknet
    runs from its parent folder) and 'obj/...' paths; labels beside the images."""
    _write(root / "obj.names", "cat\ndog\n\n")
    _copy("astronaut.jpg", root / "obj" / "astronaut.jpg")
    _copy("coffee.jpg", root / "obj" / "coffee.jpg")
    _write(root / "obj" / "astronaut.txt", "1 0.5 0.5 0.5 0.5\n0 0.25 0.25 0.1 0.1\n")
    _write(root / "obj" / "coffee.txt", "0 0.5 0.5 1 1\n")
    _write(root / "train.txt", "data/obj/astronaut.jpg\nobj/coffee.jpg\n")
    return root


def _records(out: Path, prefix: str, shards: int = 1) -> list[dict[str, Any]]:
    records = []
    for i in range(shards):
        records += read_examples(out / f"{prefix}-{i:05d}-of-{shards:05d}")
    return records


def test_label_path_replaces_the_last_images_component() -> None:
    assert label_path("d/images/train/images/a.b.jpg") == "d/images/train/labels/a.b.txt"
    assert label_path("/abs/images/x.png") == "/abs/labels/x.txt"
    assert label_path("images/x.png") == "labels/x.txt"
    assert label_path("d/images/x.jpg", beside=True) == "d/images/x.txt"
    assert label_path("d/pics/x.jpg") == "d/pics/x.txt"


def test_ultralytics_boxes_polygons_background_and_bad_lines(tmp_path: Path) -> None:
    root = make_ultralytics(tmp_path / "pets")
    strict = YoloConverter(str(root))
    assert [i["id"] for i in strict] == ["images/train/camera.png", "images/train/rocket.jpg"]
    assert strict.report["images left out (rejected annotations)"] == 1  # astronaut.jpg
    conv = YoloConverter(str(root))
    conv.keep_rejected = True  # --validation lenient: kept without its three bad lines
    items = list(conv)
    assert conv.labels == ["cat", "dog", "person"]  # the names map, in id order
    assert [i["id"] for i in items] == ["images/train/astronaut.jpg",
                                        "images/train/camera.png", "images/train/rocket.jpg"]
    obj = items[0]["object"]
    assert obj["count"] == 3 and obj["id"] == ["1", "2", "3"]
    assert obj["bbox"]["label"] == [2, 0, 1]  # ids as given
    assert obj["bbox"]["text"] == ["person", "cat", "dog"]
    assert obj["bbox"]["xmin"] == pytest.approx([0.4, 0.1, 0.85])
    assert obj["bbox"]["xmax"] == pytest.approx([0.6, 0.3, 1.0])
    assert obj["bbox"]["ymin"] == pytest.approx([0.3, 0.2, 0.4])
    assert obj["bbox"]["ymax"] == pytest.approx([0.7, 0.6, 0.6])
    assert obj["area"] == pytest.approx([0.08, 0.08, 0.03])
    assert "parts" not in obj
    assert items[1]["object"]["count"] == 0  # camera.png: no label file, kept
    labels = str(root / "labels" / "train" / "astronaut.txt")
    assert conv.problems == [
        f"{labels}:6: class id 7 is not in names (ids 0 to 2)",
        f"{labels}:7: expected 5 fields (class cx cy w h) or a polygon (class x1 y1 x2 y2 "
        "x3 y3 ...), got 4",
        f"{labels}:8: not a number: 'left'",
    ]
    assert conv.report["boxes clipped at the image edge"] == 1
    assert conv.report["boxes dropped (zero or negative size)"] == 1
    assert conv.report["polygons (as boxes)"] == 1
    assert conv.report["images without a label file"] == 1
    assert conv.report["files skipped (not images)"] == 1
    assert conv.report["boxes"] == 4 and conv.report["images"] == 3
    assert conv.report["annotations dropped (--validation lenient)"] == 3

    kept = YoloConverter(str(root), drop_empty=True)
    kept.keep_rejected = True
    assert [i["id"] for i in kept] == ["images/train/astronaut.jpg", "images/train/rocket.jpg"]


def test_ultralytics_val_list_file_and_label_offset(tmp_path: Path) -> None:
    root = make_ultralytics(tmp_path / "pets")
    conv = YoloConverter(str(root / "data.yaml"), "val", label_offset=1)
    items = list(conv)
    assert [i["id"] for i in items] == ["images/val/coffee.jpg", "images/val/chelsea.jpg"]
    assert items[0]["object"]["bbox"]["label"] == [1]  # id 0 + offset 1
    assert items[1]["object"]["count"] == 0  # an empty label file: background
    assert len(conv.problems) == 1
    assert conv.problems[0].startswith(f"{root / 'val.txt'}:3: image ")
    assert "gone.jpg" in conv.problems[0]


def test_roboflow_style_yaml(tmp_path: Path) -> None:
    """Roboflow puts data.yaml inside the dataset with 'train: ../train/images'."""
    root = tmp_path / "export"
    _write(root / "data.yaml", "train: ../train/images\nval: ../valid/images\nnc: 1\n"
                               "names: ['rocket']\n")
    _copy("rocket.jpg", root / "train" / "images" / "r.jpg")
    _write(root / "train" / "labels" / "r.txt", "0 0.5 0.5 0.5 0.5\n")
    items = list(YoloConverter(str(root)))
    assert len(items) == 1 and items[0]["object"]["bbox"]["text"] == ["rocket"]


@pytest.mark.parametrize("d", [3, 2])
def test_pose_keypoints(tmp_path: Path, d: int) -> None:
    conv = YoloConverter(str(make_pose(tmp_path / "pose", (3, d))))
    conv.keep_rejected = True  # its third line has a box and no keypoints
    (item,) = list(conv)
    obj = item["object"]
    assert conv.labels == ["person"] and obj["count"] == 2
    parts = obj["parts"]
    assert parts["x"] == pytest.approx([0.5, 0.45, 0.0, 1.0 if d == 3 else 0.2, 0.25, 0.3])
    assert parts["y"] == pytest.approx([0.2, 0.3, 0.0, 0.5, 0.6, 0.7])
    assert parts["v"] == ([2, 1, 0, 2, 2, 2] if d == 3 else [2, 2, 0, 2, 2, 2])
    assert conv.report["keypoints clipped at the image edge"] == (1 if d == 3 else 0)
    assert len(conv.problems) == 1 and f"expected {5 + 3 * d} fields" in conv.problems[0]


def test_darknet_layout(tmp_path: Path) -> None:
    root = make_darknet(tmp_path / "darknet" / "data")
    conv = YoloConverter(str(root))
    items = list(conv)
    assert conv.labels == ["cat", "dog"] and conv.problems == []
    assert [i["id"] for i in items] == ["obj/astronaut.jpg", "obj/coffee.jpg"]
    assert items[0]["object"]["bbox"]["label"] == [1, 0]
    assert items[0]["object"]["bbox"]["xmin"] == pytest.approx([0.25, 0.2])
    assert items[1]["object"]["bbox"]["xmax"] == [1.0]


def test_usage_errors_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="ROOT .*missing.*no such folder"):
        YoloConverter(str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="neither data.yaml"):
        YoloConverter(str(tmp_path))
    root = make_ultralytics(tmp_path / "pets")
    with pytest.raises(DatasetError, match="no 'test' split \\(it has: train, val\\)"):
        YoloConverter(str(root), "test")
    _write(root / "data.yaml", "train: images/train\nnames: {0: a, 2: c}\n")
    with pytest.raises(DatasetError, match="every class id from 0 to 1"):
        YoloConverter(str(root))
    _write(root / "data.yaml", "train: images/nowhere\nnames: [a]\n")
    with pytest.raises(DatasetError, match="nowhere' does not exist"):
        YoloConverter(str(root))
    _write(root / "data.yaml", "train: images/train\nnames: [a, b\n")
    with pytest.raises(DatasetError, match="data.yaml: not valid YAML"):
        YoloConverter(str(root))
    _write(root / "data.yaml", "train: images/train\nnames: [a]\nkpt_shape: [17, 4]\n")
    with pytest.raises(DatasetError, match="kpt_shape must be \\[keypoints, 2 or 3\\]"):
        YoloConverter(str(root))
    _write(root / "data.yaml", "train: images/train\nnc: 3\nnames: [a, b]\n")
    with pytest.raises(DatasetError, match="'nc' is 3 but 'names' has 2 classes"):
        YoloConverter(str(root))


def test_cli_writes_shards_verify_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    make_ultralytics(tmp_path / "datasets" / "pets")
    monkeypatch.chdir(tmp_path)
    status = main(["from-yolo", "datasets/pets", "--split", "train", "--prefix", "train",
                   "--output_dir", "out", "--shards", "2", "-q", "--validation", "lenient"])
    assert status == 1  # three bad lines; every image written, without them
    err = capsys.readouterr().err
    assert "datasets/pets/labels/train/astronaut.txt:8: not a number: 'left'" in err
    shards = [str(p) for p in sorted(Path("out").glob("train-0000?-of-00002"))]
    report = verify_files(shards, 1)
    assert report.ok and report.records == 3, report.problems
    records = _records(Path("out"), "train", 2)
    by_id = {r["id"]: r for r in records}
    assert by_id["images/train/astronaut.jpg"]["object"]["bbox"]["text"] == [
        "person", "cat", "dog"]
    assert by_id["images/train/camera.png"]["object"]["count"] == 0
    # filenames are absolute, as the other converters give them (--to-json works anywhere)
    assert by_id["images/train/rocket.jpg"]["filename"] == str(
        tmp_path / "datasets/pets/images/train/rocket.jpg")
    # The label map and the records agree, whatever the default --label-offset.
    label_map = json.loads(Path("out/label_map.json").read_text())
    offset = min(map(int, label_map))
    assert label_map == {str(i + offset): n for i, n in enumerate(["cat", "dog", "person"])}
    assert by_id["images/train/astronaut.jpg"]["object"]["bbox"]["label"] == [
        2 + offset, 0 + offset, 1 + offset]
    assert f"id: {2 + offset}\n  name: 'person'" in Path("out/label_map.pbtxt").read_text()

    # The val split (a list file) into the same folder; the empty-label image left out.
    assert main(["from-yolo", "datasets/pets", "--split", "val", "--drop-empty",
                 "--prefix", "val", "--output_dir", "out", "-q"]) == 1  # gone.jpg
    (record,) = _records(Path("out"), "val")
    assert record["id"] == "images/val/coffee.jpg"


def test_cli_darknet_to_json_and_label_offset(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    make_darknet(tmp_path / "darknet" / "data")
    monkeypatch.chdir(tmp_path / "darknet")
    assert main(["from-yolo", "data", "--to-json", "items.json"]) == 0
    items = json.loads(Path("items.json").read_text())
    assert [i["filename"] for i in items] == [
        str(tmp_path / "darknet" / f) for f in ("data/obj/astronaut.jpg", "data/obj/coffee.jpg")]
    assert main(["from-yolo", "data", "--label-offset", "1", "--prefix", "train",
                 "--output_dir", "out", "-q"]) == 0
    records = _records(Path("out"), "train")
    assert records[0]["object"]["bbox"]["label"] == [2, 1]
    assert json.loads(Path("out/label_map.json").read_text()) == {"1": "cat", "2": "dog"}


def test_cli_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["from-yolo", "nowhere", "--prefix", "p", "--output_dir", "out"]) == 2
    assert main(["from-yolo", ".", "--split", "dev", "--prefix", "p",
                 "--output_dir", "out"]) == 2
    err = capsys.readouterr().err
    assert "from-yolo ROOT: no such file or directory: nowhere" in err
    assert "invalid choice: 'dev'" in err
    assert "Traceback" not in err and not Path("out").exists()


def test_missing_pyyaml_gives_an_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = make_ultralytics(tmp_path / "pets")
    real_import = builtins.__import__

    def no_yaml(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "yaml":
            raise ModuleNotFoundError("No module named 'yaml'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yaml)
    assert main(["from-yolo", str(root), "--to-json", str(tmp_path / "i.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("needs PyYAML: pip install PyYAML")
    # The Darknet layout needs no YAML.
    assert main(["from-yolo", str(make_darknet(tmp_path / "darknet" / "data")), "--to-json",
                 str(tmp_path / "i.json")]) == 0
