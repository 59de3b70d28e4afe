"""Small hostile files given to the converters: bounded reads, and one bad entry failing
alone (a YAML of aliases, an endless label line, XML entities and nesting, COCO entries
of the wrong type)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from test_convert_cli import _make_caltech
from test_converters import make_coco, make_voc
from test_odcsv import make_csv
from test_yolo import make_darknet, make_ultralytics

from tfrecord_lite import read_examples
from tfrecord_lite.cli import main
from tfrecord_lite.converters import limits


def _ids(out: Path, prefix: str = "t") -> list[str]:
    return sorted(r["id"] for path in sorted(out.glob(f"{prefix}-0*"))
                  for r in read_examples(path))


# -- item 5: bounded parsing ----------------------------------------------------------------

def test_data_yaml_aliases_are_refused_before_they_expand(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_ultralytics(Path("ds"))
    # Three levels of nine: 729 names from a few hundred bytes (nine more levels: TBs).
    Path("ds/data.yaml").write_text(
        'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "names: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "train: images/train\n")
    assert main(["from-yolo", "ds", "--prefix", "t", "--output_dir", "out"]) == 2
    err = capsys.readouterr().err
    assert "data.yaml, line 2: a YAML alias (*a): data.yaml may not use aliases" in err
    assert not Path("out").exists()
    # Anchors alone, without aliases, are plain YAML.
    Path("ds/data.yaml").write_text("names: &n [cat, dog, person]\ntrain: images/train\n")
    assert main(["from-yolo", "ds", "--prefix", "t", "--output_dir", "out", "-q"]) == 1
    assert json.loads(Path("out/label_map.json").read_text()) == {
        "1": "cat", "2": "dog", "3": "person"}


@pytest.mark.parametrize("text, message", [
    ("names: " + "[" * 5000 + "]" * 5000 + "\ntrain: images/train\n",
     "nested too deeply to be a data.yaml"),
    ("nc: 10000000000000\ntrain: images/train\n",
     "'nc' is 10000000000000, more classes than 1,048,576; give 'names'"),
    ("names: {.inf: cat}\ntrain: images/train\n", "'names' keys must be class ids"),
    ("names: [" + "a, " * 600_000 + "]\ntrain: images/train\n",
     "larger than 1 MiB, the most a data.yaml may hold"),
])
def test_data_yaml_that_would_cost_memory_is_a_usage_error(
        text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_ultralytics(Path("ds"))
    Path("ds/data.yaml").write_text(text)
    assert main(["from-yolo", "ds", "--prefix", "t", "--output_dir", "out"]) == 2
    assert message in capsys.readouterr().err
    assert not Path("out").exists()


def test_a_label_file_with_an_endless_line_fails_its_image_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_ultralytics(Path("ds"))
    labels = Path("ds/labels/train")
    # A polygon line just over the limit, and a file just over its limit of short lines.
    (labels / "rocket.txt").write_text("1 " + "0.5 " * (limits.LINE_CHARS // 4) + "\n")
    with (labels / "astronaut.txt").open("w") as f:
        line = "0 0.5 0.5 0.1 0.1\n"
        f.write(line * (limits.IMAGE_FILE_BYTES // len(line) + 1))
    assert main(["from-yolo", "ds", "--prefix", "t", "--output_dir", "out"]) == 1
    err = capsys.readouterr().err
    assert ("ds/labels/train/rocket.txt:1: a line longer than 1 MiB, the most a line may "
            "hold: the image is left out") in err
    assert ("ds/labels/train/astronaut.txt: larger than 16 MiB, the most a label file may "
            "hold: the image is left out") in err
    assert "2 images skipped" in err
    assert _ids(Path("out")) == ["images/train/camera.png"]


def test_list_and_names_files_are_read_within_bounds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_darknet(Path("data"))
    Path("data/train.txt").write_text("obj/coffee.jpg\n" + "x" * (limits.LINE_CHARS + 1))
    assert main(["from-yolo", "data", "--prefix", "t", "--output_dir", "out"]) == 2
    assert "data/train.txt:2: a line longer than 1 MiB" in capsys.readouterr().err
    Path("data/obj.names").write_text("cat\n" * (limits.NAMES_FILE_BYTES // 4 + 1))
    assert main(["from-yolo", "data", "--prefix", "t", "--output_dir", "out"]) == 2
    assert "obj.names: larger than 1 MiB, the most a names file may hold" in (
        capsys.readouterr().err)


_BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE annotation [
  <!ENTITY a "aaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<annotation><filename>2007_000001.jpg</filename>
  <object><name>&c;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax>
  </bndbox></object></annotation>
"""


@pytest.mark.parametrize("xml, message", [
    (_BILLION_LAUGHS, "declares the entity 'a' (line 3): entity declarations are refused"),
    ("<annotation>" + "<a>" * 100 + "</a>" * 100 + "</annotation>",
     "elements nested deeper than 64 (line 1)"),
    ("<annotation>" + " " * limits.IMAGE_FILE_BYTES + "</annotation>",
     "larger than 16 MiB, the most an annotation file may hold"),
])
def test_voc_annotation_that_would_expand_fails_its_image_alone(
        xml: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_voc(Path("VOC"))
    Path("VOC/Annotations/2007_000001.xml").write_text(xml)
    assert main(["from-voc", "VOC", "--prefix", "t", "--output_dir", "out", "-q"]) == 1
    err = capsys.readouterr().err
    assert "problem: image '2007_000001': " in err and message in err
    assert _ids(Path("out")) == ["2007_000002"]


def test_voc_boxes_must_be_finite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_voc(Path("VOC"))
    xml = Path("VOC/Annotations/2007_000001.xml")
    xml.write_text(xml.read_text().replace("<xmax>120</xmax>", "<xmax>1e400</xmax>"))
    assert main(["from-voc", "VOC", "--prefix", "t", "--output_dir", "out", "-q"]) == 1
    assert ("image '2007_000001': object 0: bndbox holds a number that is not finite: the "
            "image is left out" in capsys.readouterr().err)
    records = [r for path in sorted(Path("out").glob("t-0*")) for r in read_examples(path)]
    assert [r["id"] for r in records] == ["2007_000002"]
    assert main(["from-voc", "VOC", "--prefix", "t", "--output_dir", "out", "-q",
                 "--validation", "lenient"]) == 1
    (first, _) = [r for path in sorted(Path("out").glob("t-0*")) for r in read_examples(path)]
    assert first["object"]["bbox"]["text"] == ["cat"]  # the dog with the infinite box is out


def test_csv_lines_over_the_limit_or_not_utf8_fail_their_row_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    csv_file = make_csv(Path("."))
    rows = csv_file.read_bytes().splitlines(keepends=True)
    rows[2] = b"coffee.jpg,600,400,cup," + b"9" * (limits.CSV_LINE_CHARS + 1) + b",1,2,3\n"
    rows[5] = b"rocket.jpg,640,427,rock\xe9t,0,0,64,42.7\n"  # Latin-1, not UTF-8
    csv_file.write_bytes(b"".join(rows))
    assert main(["from-csv", str(csv_file), "--images", "images", "--prefix", "t",
                 "--output_dir", "out", "-q"]) == 1
    err = capsys.readouterr().err
    assert "train_labels.csv:3: a line longer than 64 KiB, the most a line may hold: the " \
           "row is left out" in err
    assert "train_labels.csv:6: not UTF-8 text: the row is left out" in err
    assert _ids(Path("out")) == ["astronaut.jpg"]  # camera.png: its line 7 does not parse


@pytest.mark.parametrize("line, message", [
    ("person 1e400 10 100 50", "line 2: a number that is not finite"),
    ("person " + "1 " * (limits.LINE_CHARS // 2), "a line longer than 1 MiB"),
])
def test_caltech_lines_that_cannot_be_boxes_are_reported(
        line: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    _make_caltech(Path("images"), Path("annotations"))
    Path("annotations/set00_V000_I00001.txt").write_text(f"% bbGt version=3\n{line}\n")
    assert main(["from-caltech", "images", "annotations", "--prefix", "t", "--output_dir",
                 "out", "-q"]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "label map labels.json: nested too deeply; expected"),
    ('"cat"', "label map labels.json: a JSON str; expected"),
    (json.dumps(["cat"] * 200_000),
     "label map labels.json: larger than 1 MiB, the most a label map may hold"),
])
def test_a_label_map_that_is_not_one_is_a_usage_error(
        text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_voc(Path("VOC"))
    Path("labels.json").write_text(text)
    assert main(["from-voc", "VOC", "--label-map", "labels.json", "--prefix", "t",
                 "--output_dir", "out"]) == 2
    assert message in capsys.readouterr().err


def test_coco_file_nested_too_deeply_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    instances, images = make_coco(tmp_path)
    instances.write_text('{"images": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert main(["from-coco", str(instances), "--images", str(images), "--prefix", "t",
                 "--output_dir", str(tmp_path / "out")]) == 2
    assert "nested too deeply to be a COCO annotation file" in capsys.readouterr().err


# -- item 8: one bad entry fails alone -------------------------------------------------------

def _set(*path: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


# (edit of make_coco's file, the problem reported, the image ids written)
COCO_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str, list[str]]] = {
    "an image entry that is not an object": (
        lambda d: d["images"].insert(1, 5),
        "images[1]: not an object but a number: left out", ["1", "2", "3"]),
    "an annotation that is not an object": (
        lambda d: d["annotations"].insert(0, "box"),
        "annotations[0]: not an object but a string: left out", ["1", "2", "3"]),
    "annotations: 5": (
        _set("annotations", value=5),
        "annotations: expected a list of annotation objects, got a number: none converted",
        ["1", "2", "3"]),
    "keypoints holding text": (
        _set("annotations", 0, "keypoints", value=["x", 1, 2]),
        "image id 1, annotation 10 (annotations[0]): keypoints must be a list of numbers "
        "(x, y, v triplets): "
        "the image is left out", ["2", "3"]),
    'area: "big"': (
        _set("annotations", 0, "area", value="big"),
        "image id 1, annotation 10 (annotations[0]): area must be a finite number >= 0, "
        "not 'big': the image is left out", ["2", "3"]),
    "width: 1e400": (
        _set("images", 0, "width", value=float("inf")),
        "image id 1: width must be a whole number of pixels from 1 to 2,147,483,647, not "
        "inf: the image is left out", ["2", "3"]),
    "a list as category_id": (
        _set("annotations", 0, "category_id", value=[1]),
        "image id 1, annotation 10 (annotations[0]): category_id must be a number or a "
        "string, not a list: the image is left out", ["2", "3"]),
    "a list as image id": (
        _set("images", 1, "id", value=[2]),
        "images[1]: id must be a number or a string, not a list: left out", ["1", "3"]),
    "a list as annotation image_id": (
        _set("annotations", 1, "image_id", value=[1]),
        "annotations[1] (id 11): image_id must be a number or a string, not a list: left out",
        ["1", "2", "3"]),
    "a category that is not an object": (
        lambda d: d["categories"].append("cat"),
        "categories[3]: not an object but a string: left out", ["1", "2", "3"]),
    "a file_name that is not a string": (
        _set("images", 2, "file_name", value={"path": "x.jpg"}),
        "image id 3: file_name must be a string, not an object: the image is left out",
        ["1", "2"]),
}


@pytest.mark.parametrize("case", sorted(COCO_CASES))
def test_coco_malformed_entry_is_reported_and_the_conversion_goes_on(
        case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    edit, problem, written = COCO_CASES[case]
    monkeypatch.chdir(tmp_path)
    instances, _ = make_coco(Path("."))
    data = json.loads(instances.read_text())
    edit(data)
    instances.write_text(json.dumps(data))
    assert main(["from-coco", instances.name, "--images", "val2017", "--prefix", "t",
                 "--output_dir", "out", "-q"]) == 1
    err = capsys.readouterr().err
    assert f"problem: {problem}" in err
    assert _ids(Path("out")) == written
