"""The from-* commands as the README runs them: from the parent folder, relative paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_converters import _image, make_coco, make_voc
from test_exit_status import assert_flags_exist

from tfrecord_lite import iterate
from tfrecord_lite.cli import main
from tfrecord_lite.converters import label_map_pbtxt


def _records(out: Path, prefix: str = "train") -> list[dict]:
    return list(iterate(sorted(out.glob(f"{prefix}-0*"))))


def _make_folder(root: Path) -> None:
    _image(root / "cats" / "a.jpg")
    _image(root / "cats" / "b.jpg")
    _image(root / "dogs" / "c.png", kind="png-rgb")


def _make_caltech(images: Path, anns: Path) -> None:
    _image(images / "set00_V000_I00001.jpg")
    _image(images / "set00_V000_I00002.jpg")
    anns.mkdir(parents=True)
    for stem in ("set00_V000_I00001", "set00_V000_I00002"):
        (anns / f"{stem}.txt").write_text("% bbGt version=3\nperson 20 10 100 50 0 0 0 0 0 0 0\n")


# (command line from tmp_path, files expected in the records, relative to tmp_path)
CASES = {
    "from-folder": (["from-folder", "pets"],
                    ["pets/cats/a.jpg", "pets/cats/b.jpg", "pets/dogs/c.png"]),
    "from-voc": (["from-voc", "VOCdevkit/VOC2007", "--split", "train"],
                 ["VOCdevkit/VOC2007/JPEGImages/2007_000001.jpg",
                  "VOCdevkit/VOC2007/JPEGImages/2007_000002.jpg"]),
    "from-coco": (["from-coco", "annotations/instances_val2017.json", "--images", "val2017"],
                  ["val2017/000001.jpg", "val2017/000002.jpg", "val2017/000003.jpg"]),
    "from-caltech": (["from-caltech", "caltech/images", "caltech/annotations"],
                     ["caltech/images/set00_V000_I00001.jpg",
                      "caltech/images/set00_V000_I00002.jpg"]),
    "from-yolo": (["from-yolo", "darknet/data"],
                  ["darknet/data/obj/1.jpg", "darknet/data/obj/2.jpg"]),
    "from-csv": (["from-csv", "labels.csv", "--images", "csvimages"],
                 ["csvimages/a.jpg", "csvimages/b.jpg"]),
    "from-segmentation": (["from-segmentation", "seg/images", "seg/labels"],
                          ["seg/images/a.jpg", "seg/images/sub/b.png"]),
}


def _make_darknet(root: Path) -> None:
    for stem in ("1", "2"):
        _image(root / "obj" / f"{stem}.jpg")
        (root / "obj" / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    (root / "obj.names").write_text("cat\n")
    (root / "train.txt").write_text("obj/1.jpg\nobj/2.jpg\n")


def _make_csv(csv: Path, images: Path) -> None:
    _image(images / "a.jpg")
    _image(images / "b.jpg")
    csv.write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n"
                   "a.jpg,200,100,cat,10,10,50,50\nb.jpg,200,100,dog,20,20,60,60\n")


def _make_all(tmp_path: Path) -> None:
    _make_folder(tmp_path / "pets")
    make_voc(tmp_path / "VOCdevkit" / "VOC2007")
    instances, _ = make_coco(tmp_path)  # val2017/ and instances_val2017.json
    (tmp_path / "annotations").mkdir()
    instances.rename(tmp_path / "annotations" / instances.name)
    _make_caltech(tmp_path / "caltech" / "images", tmp_path / "caltech" / "annotations")
    _make_darknet(tmp_path / "darknet" / "data")
    _make_csv(tmp_path / "labels.csv", tmp_path / "csvimages")
    _make_segmentation(tmp_path / "seg")


def _make_segmentation(root: Path) -> None:
    _image(root / "images" / "a.jpg")
    _image(root / "images" / "sub" / "b.png", kind="png-rgb")
    for stem in ("a", "sub/b"):
        _image(root / "labels" / f"{stem}.png", kind="png-gray")


@pytest.mark.parametrize("command", sorted(CASES))
def test_relative_paths_from_the_parent_folder(command: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _make_all(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv, files = CASES[command]
    status = main([*argv, "--prefix", "train", "--output_dir", "out", "--shards", "2", "-q"])
    assert status in (0, 1)  # the COCO fixture holds one bad annotation on purpose
    records = _records(tmp_path / "out")
    assert sorted(r["filename"] for r in records) == [str(tmp_path / f) for f in files]
    assert all("encoded" in r for r in records)


@pytest.mark.parametrize("command", sorted(CASES))
def test_relative_paths_with_root_and_to_json(command: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """--root keeps its meaning (the images must be inside it); --to-json items work
    from another directory."""
    _make_all(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv, files = CASES[command]
    assert main([*argv, "--prefix", "t", "--output_dir", "out", "--root", ".", "-q"]) in (0, 1)
    assert len(_records(tmp_path / "out", "t")) == len(files)
    assert main([*argv, "--to-json", "items.json"]) in (0, 1)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["create", "--dataset_path", "../items.json", "--prefix", "j", "--output_dir",
                 "out", "-q"]) == 0
    assert len(_records(tmp_path / "elsewhere" / "out", "j")) == len(files)


@pytest.mark.parametrize("argv, message", [
    (["from-folder", "pets"], "from-folder ROOT: no such directory: pets"),
    (["from-voc", "VOCdevkit/VOC2012"], "from-voc ROOT: no such directory: VOCdevkit/VOC2012"),
    (["from-coco", "instances.json", "--images", "val2017"],
     "from-coco INSTANCES.json: no such file: instances.json"),
    (["from-coco", "present.json", "--images", "train2017"],
     "from-coco --images: no such directory: train2017"),
    (["from-coco", "present.json", "--images", "present.json"],
     "from-coco --images: not a directory: present.json"),
    (["from-caltech", "images", "annotations"], "from-caltech IMAGES: no such directory: images"),
    (["from-caltech", ".", "annotations"],
     "from-caltech ANNOTATIONS: no such directory: annotations"),
    (["from-segmentation", "images", "labels"],
     "from-segmentation IMAGES: no such directory: images"),
    (["from-segmentation", ".", "labels"], "from-segmentation LABELS: no such directory: labels"),
])
def test_missing_inputs_are_usage_errors_before_any_work(
        argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "present.json").write_text('{"images": [], "annotations": []}')
    assert main([*argv, "--prefix", "t", "--output_dir", "out"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing was started


def _pbtxt(text: str) -> dict[int, str]:
    """id -> name of a label_map.pbtxt, as the Object Detection API reads it."""
    items = re.findall(r"item \{\s*id: (\d+)\s*name: '((?:[^'\\]|\\.)*)'\s*\}", text)
    assert len(items) == text.count("item {")
    return {int(i): name.replace("\\'", "'").replace("\\\\", "\\") for i, name in items}


def _labels_in_records(records: list[dict]) -> dict[int, str]:
    found: dict[int, str] = {}
    for record in records:
        bbox = record["object"]["bbox"]
        for label, text in zip(bbox["label"], bbox["text"]):
            assert found.setdefault(label, text) == text
    return found


@pytest.mark.parametrize("command", ["from-coco", "from-voc", "from-caltech"])
def test_default_label_map_pbtxt_agrees_with_the_records(
        command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _make_all(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv, _ = CASES[command]
    assert main([*argv, "--prefix", "train", "--output_dir", "out", "-q"]) in (0, 1)
    pbtxt = _pbtxt((tmp_path / "out" / "label_map.pbtxt").read_text())
    label_map = json.loads((tmp_path / "out" / "label_map.json").read_text())
    assert min(pbtxt) == 1 and sorted(pbtxt) == list(range(1, len(pbtxt) + 1))
    assert {str(k): v for k, v in pbtxt.items()} == label_map
    in_records = _labels_in_records(_records(tmp_path / "out"))
    assert in_records and all(pbtxt[label] == text for label, text in in_records.items())


def test_label_offset_0_writes_no_pbtxt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _make_all(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["from-voc", "VOCdevkit/VOC2007", "--label-offset", "0", "--prefix", "train",
                 "--output_dir", "out"]) == 0
    assert not (tmp_path / "out" / "label_map.pbtxt").exists()
    assert json.loads((tmp_path / "out" / "label_map.json").read_text()) == {"0": "cat",
                                                                             "1": "dog"}
    assert "no label_map.pbtxt written: the labels start at 0" in capsys.readouterr().err
    assert _labels_in_records(_records(tmp_path / "out")) == {0: "cat", 1: "dog"}
    with pytest.raises(ValueError, match="reserves id 0"):
        label_map_pbtxt(["cat", "dog"], 0)


def test_from_folder_class_labels_count_from_0(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Classification: class/label indexes the classifier's outputs, [0, num_classes)."""
    _make_folder(tmp_path / "pets")
    monkeypatch.chdir(tmp_path)
    assert main(["from-folder", "pets", "--prefix", "train", "--output_dir", "out", "-q"]) == 0
    assert sorted(r["class"]["label"] for r in _records(tmp_path / "out")) == [0, 0, 1]
    assert not (tmp_path / "out" / "label_map.pbtxt").exists()
    assert main(["from-folder", "pets", "--prefix", "train", "--output_dir", "o1",
                 "--label-offset", "1", "-q"]) == 0
    assert _pbtxt((tmp_path / "o1" / "label_map.pbtxt").read_text()) == {1: "cats", 2: "dogs"}


def test_coco_annotations_of_unlisted_images_are_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    instances, images = make_coco(tmp_path)
    data = json.loads(instances.read_text())
    data["annotations"] += [
        {"id": 20, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"id": 21, "image_id": 99, "category_id": 1, "bbox": [2, 2, 5, 5]},
        {"id": 22, "image_id": "1", "category_id": 1, "bbox": [2, 2, 5, 5]},  # a str id
    ]
    instances.write_text(json.dumps(data))
    assert main(["from-coco", str(instances), "--images", str(images), "--prefix", "t",
                 "--output_dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "image_id 99 is not among the images: 2 annotations not converted (ids 20, 21)" in err
    assert "image_id '1' is not among the images: 1 annotation not converted (ids 22)" in err
    assert "3 annotations whose image_id is not among the images" in err


def test_converter_summaries_use_plurals(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    _image(images / "a.jpg")
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 100}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 50, 50]}]}
    (tmp_path / "one.json").write_text(json.dumps(data))
    assert main(["from-coco", str(tmp_path / "one.json"), "--images", str(images),
                 "--to-json", str(tmp_path / "items.json")]) == 0
    err = capsys.readouterr().err
    assert "wrote 1 item to" in err
    assert "from-coco: 1 class; 1 box, 1 image" in err


def test_create_with_a_coco_file_suggests_from_coco(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    instances, _ = make_coco(tmp_path)
    assert main(["create", "--dataset_path", str(instances), "--prefix", "val",
                 "--output_dir", "out"]) == 2
    err = capsys.readouterr().err
    assert "expected a JSON list of items" in err
    assert (f"is a COCO annotation file (a JSON object with 'images' and 'annotations'), not a "
            f"list of items; convert it with: python -m tfrecord_lite from-coco {instances} "
            "--images IMAGE_DIR --prefix val --output_dir out") in err
    assert main(["--dataset_path", str(instances), "--prefix", "v", "--output_dir", "o"]) == 2
    assert "from-coco" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"items": []}')
    assert main(["create", "--dataset_path", str(other), "--prefix", "v", "--output_dir",
                 "o"]) == 2
    assert "from-coco" not in capsys.readouterr().err


def test_coco_keypoints_keep_k_points_per_object(tmp_path: Path) -> None:
    """object/parts holds K points per object, object after object (the item format)."""
    from tfrecord_lite.converters.coco import CocoConverter

    images = tmp_path / "images"
    _image(images / "a.jpg")
    three = [10, 10, 2, 20, 20, 1, 0, 0, 0]
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 100}],
            "categories": [{"id": 1, "name": "person", "keypoints": ["a", "b", "c"]}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 50, 50]},
                {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 1, 50, 50],
                 "keypoints": three},
                {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 50, 50],
                 "keypoints": three[:6]}]}
    (tmp_path / "k.json").write_text(json.dumps(data))
    conv = CocoConverter(str(tmp_path / "k.json"), str(images))
    (item,) = conv
    parts = item["object"]["parts"]
    assert parts["v"] == [0, 0, 0, 2, 1, 0, 2, 1, 0]
    assert parts["x"][3:5] == [0.05, 0.1] and parts["y"][3:5] == [0.1, 0.2]
    assert conv.problems == ["image id 1, annotation '3': 2 keypoints where the image's "
                             "others have 3"]


def test_a_second_prefix_with_other_labels_does_not_replace_the_label_map(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # train and val converted into one folder: a val split lacking a class got other
    # labels, and its label_map.json silently replaced train's.
    _make_all(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "val.csv").write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n"
                                      "b.jpg,200,100,dog,20,20,60,60\n")
    base = ["--images", "csvimages", "--output_dir", "split", "-q"]
    assert main(["from-csv", "labels.csv", "--prefix", "train", *base]) == 0
    train_map = (tmp_path / "split" / "label_map.json").read_text()
    assert main(["from-csv", "val.csv", "--prefix", "val", *base]) == 2
    err = capsys.readouterr().err
    assert "label_map.json maps the labels of train" in err and "--label-map" in err
    assert (tmp_path / "split" / "label_map.json").read_text() == train_map
    assert not list((tmp_path / "split").glob("val-*"))
    # With the same classes it goes through; a rerun of train itself may change them.
    (tmp_path / "names.json").write_text(json.dumps(["cat", "dog"]))
    assert main(["from-csv", "val.csv", "--prefix", "val", "--label-map", "names.json",
                 *base]) == 0
    assert main(["from-csv", "labels.csv", "--prefix", "train", "--label-offset", "0",
                 *base]) == 2  # val's shards use the map too


def test_the_label_map_policy_is_the_converters_with_their_own_error(tmp_path: Path) -> None:
    from tfrecord_lite.converters import label_map
    from tfrecord_lite.errors import DatasetError, LabelMapError

    assert label_map.files(["cat", "dog"], 0) == {"label_map.json": '{\n "0": "cat",\n '
                                                                      '"1": "dog"\n}\n'}
    assert set(label_map.files(["cat"], 1)) == {"label_map.json", "label_map.pbtxt"}
    out = tmp_path / "out"
    out.mkdir()
    (out / "label_map.json").write_text(json.dumps({"1": "cat", "2": "dog"}))
    label_map.check_folder(str(out), "val", ["bird"], 1)  # no other prefix's shards yet
    (out / "train-00000-of-00001").write_bytes(b"")
    label_map.check_folder(str(out), "val", ["cat", "dog"], 1)  # the same map
    with pytest.raises(LabelMapError, match="maps the labels of train") as caught:
        label_map.check_folder(str(out), "val", ["dog"], 1)
    assert isinstance(caught.value, DatasetError)


def _label_pairs(items: list[dict]) -> set[tuple[str, int]]:
    """(class name, stored label) of every box, and of the class of a classification, of
    records read back or of items."""
    pairs = set()
    for item in items:
        bbox = item.get("object", {}).get("bbox", {})
        pairs |= set(zip(bbox.get("text", []), bbox.get("label", [])))
        if item.get("class", {}).get("label", -1) >= 0:
            pairs.add((item["class"]["text"], item["class"]["label"]))
    return pairs


def _label_pairs_of_items(path: str) -> set[tuple[str, int]]:
    return _label_pairs(json.loads(Path(path).read_text()))


# The converters that store class labels (from-segmentation stores class-id images).
LABELLED = sorted(set(CASES) - {"from-segmentation"})


@pytest.mark.parametrize("command", LABELLED)
def test_every_converter_takes_the_label_map_of_another_split(
        command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Train converted with a class its val split lacks: val is refused with a hint that
    names an option of its own command, and following the hint gives val train's labels."""
    _make_all(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = CASES[command][0]
    status = main([*argv, "--to-json", "found.json", "-q"])  # 1: the fixture's bad annotations
    found = sorted({name for name, _ in _label_pairs_of_items("found.json")})
    Path("names.json").write_text(json.dumps(["zebra", *found]))
    assert main([*argv, "--prefix", "train", "--output_dir", "split", "-q",
                 "--label-map", "names.json"]) == status
    train = _label_pairs(_records(tmp_path / "split"))
    offset = 0 if command == "from-folder" else 1  # the default --label-offset
    assert train and all(label == found.index(name) + 1 + offset
                         for name, label in train)  # zebra holds the first label
    capsys.readouterr()
    assert main([*argv, "--prefix", "val", "--output_dir", "split", "-q"]) == 2
    err = capsys.readouterr().err
    assert_flags_exist(command, err)
    hint = re.search(r"--label-map (\S+),", err)
    assert hint is not None, err
    assert main([*argv, "--prefix", "val", "--output_dir", "split", "-q",
                 "--label-map", hint.group(1)]) == status
    assert _label_pairs(_records(tmp_path / "split", "val")) == train


@pytest.mark.parametrize("command", LABELLED)
def test_a_class_missing_from_the_label_map_is_reported_and_left_out(
        command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _make_all(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = CASES[command][0]
    main([*argv, "--to-json", "found.json", "-q"])
    found = sorted({name for name, _ in _label_pairs_of_items("found.json")})
    kept, dropped = found[:-1], found[-1]
    Path("names.json").write_text(json.dumps(kept))
    capsys.readouterr()
    assert main([*argv, "--label-map", "names.json", "--to-json", "some.json"]) == 1
    err = capsys.readouterr().err
    assert f"class {dropped!r}" in err and "is not in the label map" in err
    assert {name for name, _ in _label_pairs_of_items("some.json")} == set(kept)


def test_drop_empty_says_once_what_became_of_images_without_annotations(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    _image(images / "a.jpg")
    _image(images / "b.jpg")
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 100},
                       {"id": 2, "file_name": "b.jpg", "width": 200, "height": 100}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 50, 50]}]}
    (tmp_path / "c.json").write_text(json.dumps(data))
    argv = ["from-coco", str(tmp_path / "c.json"), "--images", str(images), "--to-json",
            str(tmp_path / "items.json")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "1 image without annotations (kept)" in err and "dropped" not in err
    assert main([*argv, "--drop-empty"]) == 0
    err = capsys.readouterr().err
    assert "1 image dropped (no annotations)" in err and "without annotations" not in err
