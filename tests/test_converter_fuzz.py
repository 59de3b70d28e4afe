"""Every converter against malformed annotations: valid fixtures of each layout, mutated
where they are structured (a JSON or YAML value of the wrong type, a key or element
missing, huge and non-finite numbers, text where numbers belong, over-long lines, NUL
bytes, undecodable text), then converted with the command line.

A malformed entry is reported and left out, or fails its image: the conversion goes on
(exit 0 or 1). Only a file that describes the whole dataset (COCO's top level, data.yaml,
a list or names file, a CSV header, a label map) may make it a usage error (2). Never an
internal error (70). A short run in the test suite; `make fuzz` runs FUZZ_CONVERTERS
cases of each.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_convert_cli import _make_caltech, _make_folder
from test_converters import make_coco, make_voc
from test_masks_convert import POLYGON, _pairs, _voc, _yolo
from test_masks_convert import _coco as make_coco_masks
from test_odcsv import make_csv
from test_yolo import make_darknet, make_pose, make_ultralytics

from tfrecord_lite.cli import main

from conftest import make_image_bytes

EXAMPLES = int(os.environ.get("FUZZ_CONVERTERS", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

DEEP = "@DEEP@"  # replaced by JSON nested far deeper than the parser's recursion limit
HUGE = "@HUGE@"  # replaced by an integer of 400 digits (beyond a float)
VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**63, 10**30, -1e308, 1e308, float("inf"),
    float("-inf"), float("nan"), "", "x", "big", "1e400", "NaN", "a\x00b", "\ud800",
    "\u0663", [], {}, [1, 2], [[[[[[1]]]]]], {"id": 1}, [None, "a", {}], DEEP, HUGE,
]
TOKENS = ["nan", "inf", "-inf", "1e400", "-1e400", "1e308", "-0", "0x10", "abc", "",
          "\u0663", "1_0", "9" * 5000, "4294967296", "-1", "1.5", "\x00", "\ufeff1", '"',
          "'", ",", "#", "\r", "<", "&amp;", "&x;", "\udcff"]


def _run(argv: list[str], out: Path) -> tuple[int, str]:
    """``main(argv + output flags)``: its exit status and standard error."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([*argv, "--prefix", "f", "--output_dir", str(out), "-q"])
    shutil.rmtree(out, ignore_errors=True)
    return code, err.getvalue()


def _check(code: int, err: str, allowed: tuple[int, ...]) -> None:
    assert "Traceback" not in err, err
    assert code in allowed, f"exit {code}:\n{err}"


def _write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # a lone surrogate: invalid UTF-8


# -- structured values (JSON, YAML) --------------------------------------------------------

def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


def _mutate(data: st.DataObject, tree: Any) -> tuple[Any, int]:
    """One mutation of a JSON-like tree: a value replaced, a key or element removed, a
    value wrapped in a list, an object turned into a list; returns the tree and how deep
    the mutated value lies (0: the whole document)."""
    paths = list(_paths(tree))
    path = data.draw(st.sampled_from(paths))
    op = data.draw(st.sampled_from(["replace", "replace", "delete", "wrap", "retype"]))
    if not path:
        return data.draw(st.sampled_from(VALUES)), 0
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if op == "delete":
        del parent[key]
    elif op == "wrap":
        parent[key] = [parent[key]]
    elif op == "retype" and isinstance(parent[key], dict):
        parent[key] = list(parent[key].values())
    elif op == "retype" and isinstance(parent[key], list):
        parent[key] = {str(i): v for i, v in enumerate(parent[key])}
    else:
        parent[key] = data.draw(st.sampled_from(VALUES))
    return tree, len(path)


def _json_text(tree: Any) -> str:
    text = json.dumps(tree)
    return (text.replace(f'"{DEEP}"', "[" * 100_000 + "]" * 100_000)
            .replace(f'"{HUGE}"', "1" + "0" * 400))


# -- text lines (YOLO labels, CSV rows, bbGt, lists) --------------------------------------

def _mutate_lines(data: st.DataObject, text: str, sep: str | None, first: int = 0) -> str:
    """Mutate one line from ``first`` on: a field replaced, removed or added, the line
    doubled, replaced, made huge, or cut."""
    lines = text.splitlines()
    n = data.draw(st.integers(first, max(first, len(lines) - 1)))
    line = lines[n] if n < len(lines) else ""
    fields = line.split(sep)
    op = data.draw(st.sampled_from(["field", "field", "drop", "add", "double", "line",
                                    "long", "cut"]))
    token = data.draw(st.sampled_from(TOKENS))
    if op == "field" and fields:
        fields[data.draw(st.integers(0, len(fields) - 1))] = token
    elif op == "drop" and fields:
        del fields[data.draw(st.integers(0, len(fields) - 1))]
    elif op == "add":
        fields += [token] * data.draw(st.integers(1, 40))
    elif op == "line":
        fields = [token]
    elif op == "long":  # past every line limit: a huge polygon, a runaway field
        fields += ["0.5"] * 300_000
    elif op == "cut":
        fields = [(sep or " ").join(fields)[:data.draw(st.integers(0, max(0, len(line))))]]
    joined = (sep or " ").join(fields)
    if op == "double":
        joined = line + "\n" + line
    lines[n:n + 1] = [joined]
    return "\n".join(lines) + "\n"


# -- the converters -------------------------------------------------------------------------

@FUZZ
@given(st.data())
def test_from_coco_survives_malformed_entries(coco_fixture: tuple[Path, Path],
                                              data: st.DataObject) -> None:
    instances, images = coco_fixture
    tree, depth = _mutate(data, json.loads(instances.read_text()))
    mutated = instances.with_name("mutated.json")
    _write(mutated, _json_text(tree))
    code, err = _run(["from-coco", str(mutated), "--images", str(images)],
                     instances.parent / "out")
    # Inside an entry of images, annotations or categories, the conversion goes on;
    # unless the entry nests deeper than Python's JSON parser goes (no entry is read).
    entry = depth >= 2 and DEEP not in json.dumps(tree)
    _check(code, err, (0, 1) if entry else (0, 1, 2))


@FUZZ
@given(st.data())
def test_from_coco_include_masks_survives_malformed_segmentations(
        coco_masks_fixture: Path, data: st.DataObject) -> None:
    instances = coco_masks_fixture / "instances.json"
    tree = json.loads(instances.read_text())
    ann = data.draw(st.sampled_from(tree["annotations"]))
    # Mutate inside a segmentation (polygons, RLE counts and size), or replace it whole.
    segmentation, _ = _mutate(data, {"segmentation": ann["segmentation"]})
    ann["segmentation"] = segmentation.get("segmentation") if isinstance(
        segmentation, dict) else segmentation
    mutated = instances.with_name("mutated.json")
    _write(mutated, _json_text(tree))
    code, err = _run(["from-coco", str(mutated), "--images", str(coco_masks_fixture /
                                                                  "images"),
                      "--include-masks"], coco_masks_fixture / "out")
    _check(code, err, (0, 1) if DEEP not in json.dumps(tree) else (0, 1, 2))


@FUZZ
@given(st.data())
def test_from_yolo_include_masks_survives_malformed_polygons(yolo_masks_fixture: Path,
                                                             data: st.DataObject) -> None:
    labels = yolo_masks_fixture / "seg" / "labels" / "train" / "a.txt"
    original = labels.read_text()
    try:
        _write(labels, _mutate_lines(data, original, None))
        code, err = _run(["from-yolo", str(yolo_masks_fixture / "seg"), "--include-masks"],
                         yolo_masks_fixture / "out")
    finally:
        labels.write_text(original)
    _check(code, err, (0, 1))


@FUZZ
@given(st.data())
def test_label_images_survive_hostile_files(segmentation_fixture: Path,
                                            data: st.DataObject) -> None:
    """from-voc --segmentation and from-segmentation, with a label image replaced by a
    hostile file."""
    voc = data.draw(st.booleans())
    label = (segmentation_fixture / "VOC2012" / "SegmentationClass" / "2007_000032.png"
             if voc else segmentation_fixture / "masks" / "a_mask.png")
    original = label.read_bytes()
    kind = data.draw(st.sampled_from(sorted(_FOLDER_FILES)))
    try:
        label.write_bytes(_FOLDER_FILES[kind]())
        argv = (["from-voc", str(segmentation_fixture / "VOC2012"), "--segmentation"] if voc
                else ["from-segmentation", str(segmentation_fixture / "photos"),
                      str(segmentation_fixture / "masks"), "--label-suffix", "_mask"])
        code, err = _run(argv, segmentation_fixture / "out")
    finally:
        label.write_bytes(original)
    _check(code, err, (0, 1))


@FUZZ
@given(st.data())
def test_from_voc_survives_malformed_annotations(voc_fixture: Path,
                                                 data: st.DataObject) -> None:
    root = voc_fixture
    xml = root / "Annotations" / "2007_000001.xml"
    original = xml.read_text()
    tree = ET.fromstring(original)
    elements = list(tree.iter())
    element = data.draw(st.sampled_from(elements))
    op = data.draw(st.sampled_from(["text", "text", "remove", "double", "deep", "entity",
                                    "tag"]))
    token = data.draw(st.sampled_from(TOKENS))
    parents = {child: parent for parent in tree.iter() for child in parent}
    if op == "text":
        element.text = token.replace("\x00", "").replace("\r", "").replace(
            "\udcff", "") or None
    elif op == "remove" and element in parents:
        parents[element].remove(element)
    elif op == "double" and element in parents:
        parents[element].append(element)
    elif op == "tag":
        element.tag = data.draw(st.sampled_from(["object", "name", "bndbox", "size", "x"]))
    text = ET.tostring(tree, encoding="unicode")
    if op == "deep":
        text = text.replace("</annotation>", "<a>" * 5000 + "</a>" * 5000 + "</annotation>")
    elif op == "entity":
        text = ('<?xml version="1.0"?><!DOCTYPE annotation [<!ENTITY a "aaaaaaaaaa">'
                '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                + text.replace("<name>dog</name>", "<name>&b;</name>"))
    try:
        xml.write_text(text)
        code, err = _run(["from-voc", str(root)], root / "out")
    finally:
        xml.write_text(original)
    _check(code, err, (0, 1))


@FUZZ
@given(st.data())
def test_from_voc_and_csv_survive_malformed_label_maps(voc_fixture: Path,
                                                       data: st.DataObject) -> None:
    tree, _ = _mutate(data, {"1": "cat", "2": "dog"} if data.draw(st.booleans())
                      else ["cat", "dog"])
    label_map = voc_fixture.parent / "labels.json"
    _write(label_map, _json_text(tree))
    code, err = _run(["from-voc", str(voc_fixture), "--label-map", str(label_map)],
                     voc_fixture.parent / "out")
    _check(code, err, (0, 1, 2))


@FUZZ
@given(st.data())
def test_from_yolo_survives_malformed_label_files(yolo_fixture: Path,
                                                  data: st.DataObject) -> None:
    root = yolo_fixture
    labels = root / "labels" / "train" / "astronaut.txt"
    original = labels.read_text()
    try:
        _write(labels, _mutate_lines(data, original, None))
        code, err = _run(["from-yolo", str(root)], root / "out")
    finally:
        labels.write_text(original)
    _check(code, err, (0, 1))


@FUZZ
@given(st.data())
def test_from_yolo_survives_malformed_pose_labels(pose_fixture: Path,
                                                  data: st.DataObject) -> None:
    labels = pose_fixture / "labels" / "astronaut.txt"
    original = labels.read_text()
    try:
        _write(labels, _mutate_lines(data, original, None))
        code, err = _run(["from-yolo", str(pose_fixture)], pose_fixture / "out")
    finally:
        labels.write_text(original)
    _check(code, err, (0, 1))


@FUZZ
@given(st.data())
def test_from_yolo_survives_malformed_data_yaml(yolo_fixture: Path,
                                                data: st.DataObject) -> None:
    import yaml

    root = yolo_fixture
    data_yaml = root / "data.yaml"
    original = data_yaml.read_text()
    tree, _ = _mutate(data, yaml.safe_load(original))
    text = yaml.safe_dump(tree, allow_unicode=True)
    text = text.replace(DEEP, "[" * 5000 + "]" * 5000).replace(HUGE, "1" + "0" * 400)
    try:
        _write(data_yaml, text)
        code, err = _run(["from-yolo", str(root)], root / "out")
    finally:
        data_yaml.write_text(original)
    _check(code, err, (0, 1, 2))


@FUZZ
@given(st.data())
def test_from_yolo_darknet_survives_malformed_lists_and_names(darknet_fixture: Path,
                                                              data: st.DataObject) -> None:
    root = darknet_fixture
    name = data.draw(st.sampled_from(["train.txt", "obj.names", "obj/astronaut.txt"]))
    original = (root / name).read_text()
    try:
        _write(root / name, _mutate_lines(data, original, None))
        code, err = _run(["from-yolo", str(root)], root / "out")
    finally:
        (root / name).write_text(original)
    _check(code, err, (0, 1) if name.endswith("astronaut.txt") else (0, 1, 2))


@FUZZ
@given(st.data())
def test_from_csv_survives_malformed_rows(csv_fixture: Path, data: st.DataObject) -> None:
    csv_file = csv_fixture
    original = csv_file.read_text()
    header = data.draw(st.booleans())
    try:
        _write(csv_file, _mutate_lines(data, original, ",", first=0 if header else 1))
        code, err = _run(["from-csv", str(csv_file), "--images", str(csv_file.parent /
                                                                      "images")],
                         csv_file.parent / "out")
    finally:
        csv_file.write_text(original)
    _check(code, err, (0, 1, 2) if header else (0, 1))


@FUZZ
@given(st.data())
def test_from_caltech_survives_malformed_lines(caltech_fixture: tuple[Path, Path],
                                               data: st.DataObject) -> None:
    images, annotations = caltech_fixture
    ann = annotations / "set00_V000_I00001.txt"
    original = ann.read_text()
    try:
        _write(ann, _mutate_lines(data, original, None))
        code, err = _run(["from-caltech", str(images), str(annotations)],
                         images.parent / "out")
    finally:
        ann.write_text(original)
    _check(code, err, (0, 1))


_FOLDER_FILES: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "text": lambda: b"not an image\n",
    "cut jpeg": lambda: make_image_bytes("jpeg-rgb")[:200],
    "cut png": lambda: make_image_bytes("png-rgb")[:100],
    "jpeg header only": lambda: b"\xff\xd8\xff",
    "bmp": lambda: make_image_bytes("bmp"),
    "png lying about its size": lambda: make_image_bytes("png-rgb").replace(
        b"\x00\x00\x00\x40\x00\x00\x00\x30", b"\x7f\xff\xff\xff\x7f\xff\xff\xff", 1),
}


@FUZZ
@given(st.data())
def test_from_folder_survives_hostile_files(folder_fixture: Path, data: st.DataObject) -> None:
    root = folder_fixture
    made: list[Path] = []
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(sorted(_FOLDER_FILES)))
        name = data.draw(st.sampled_from(["x.jpg", "x.png", "\udcff.jpg", "sub/y.jpg",
                                          ".hidden.jpg", "x"]))
        folder = data.draw(st.sampled_from(["cats", "dogs", "\udcfe", "new"]))
        path = Path(os.fsdecode(os.path.join(os.fsencode(str(root)), os.fsencode(folder),
                                             os.fsencode(name))))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_FOLDER_FILES[kind]())
        made.append(path)
    offset = data.draw(st.sampled_from(["0", "1"]))
    try:
        code, err = _run(["from-folder", str(root), "--label-offset", offset],
                         root.parent / "out")
    finally:
        for path in made:
            path.unlink(missing_ok=True)
        for folder in ("\udcfe", "new", "cats/sub", "dogs/sub"):
            shutil.rmtree(root / folder, ignore_errors=True)
    _check(code, err, (0, 1))


# -- fixtures, made once per module ---------------------------------------------------------

@pytest.fixture(scope="module")
def coco_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_coco(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="module")
def coco_masks_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("coco_masks")
    make_coco_masks(work)
    return work


@pytest.fixture(scope="module")
def yolo_masks_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("yolo_masks")
    _yolo(work, "0 " + " ".join(map(str, POLYGON)) + "\n1 0.9 0.1 0.95 0.2 0.8 0.3\n")
    return work


@pytest.fixture(scope="module")
def segmentation_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("segmentation")
    _voc(work / "VOC2012")
    _pairs(work)
    return work


@pytest.fixture(scope="module")
def voc_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("voc") / "VOC2007"
    make_voc(root)
    return root


@pytest.fixture(scope="module")
def yolo_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ultralytics(tmp_path_factory.mktemp("yolo"))


@pytest.fixture(scope="module")
def pose_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pose(tmp_path_factory.mktemp("pose"), (3, 3))


@pytest.fixture(scope="module")
def darknet_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_darknet(tmp_path_factory.mktemp("darknet") / "data")


@pytest.fixture(scope="module")
def csv_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_csv(tmp_path_factory.mktemp("csv"))


@pytest.fixture(scope="module")
def caltech_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("caltech")
    _make_caltech(root / "images", root / "annotations")
    return root / "images", root / "annotations"


@pytest.fixture(scope="module")
def folder_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("folder") / "pets"
    _make_folder(root)
    return root
