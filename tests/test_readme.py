"""The command lines of the README and of every page in docs/, run as written, so that the
documents cannot drift.

Every line of a ```-fenced block of README.md and docs/*.md that starts with
``python -m tfrecord_lite`` (continued across trailing backslashes) is run, README first,
then the pages in name order, each page's in its own order, all in one temporary directory
holding small fixtures made from the demo photos (``tests/data/demo``): the files and
folders the commands name, with the same local paths. Each must end with the exit status
in ``STATUS`` (0 unless listed).

When a document gains a command:
* an input it names (dataset file, COCO file, images folder, VOC or folder root, ...)
  needs a builder in ``FIXTURES``, keyed by the path as written; without one the test
  fails and says so;
* a command that cannot run here goes into ``SKIPPED``, with the reason.
"""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tfrecord_lite.cli import build_parser, main

from conftest import DEMO, ROOT

README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
PROGRAM = ["python", "-m", "tfrecord_lite"]

# Commands not run here, by a part of their text, and why.
SKIPPED: dict[str, str] = {
    "s3://": "needs an S3 bucket (object stores are tested with moto in test_storage.py)",
    "gs://": "needs a Google Cloud Storage bucket",
    "--runner=DataflowRunner": "a Beam cluster runner",
    "--runner=FlinkRunner": "a Beam cluster runner",
    "--runner=SparkRunner": "a Beam cluster runner",
}
# Commands that need an optional package, by a part of their text: (module, why).
NEEDS: dict[str, tuple[str, str]] = {
    "--runner beam": ("apache_beam", "the beam extra (tested by `make test-beam`)"),
}
# Exit statuses other than 0, by a part of the command's text.
STATUS: dict[str, int] = {}
# Commands known to fail, by a part of their text, with the bug (remove once fixed).
KNOWN_BUGS: dict[str, str] = {}

# How many copies of the demo items make train.json / train.jsonl: enough that shard 0
# of 10 holds more records than the README's `show --index 4` and `--grid 16` ask for.
COPIES = 32


# -- fixtures: the inputs the README names, made from the demo photos -----------------------

def _demo_items() -> list[dict[str, Any]]:
    return json.loads((DEMO / "dataset.json").read_text())


def _photo(item: dict[str, Any]) -> Path:
    return ROOT / item["filename"]


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def _class_name(item: dict[str, Any]) -> str:
    return str(item["class"]["text"])


def _boxes(item: dict[str, Any], width: int, height: int) -> list[tuple[str, list[int]]]:
    """(class name, [x0, y0, x1, y1] in pixels) of each object of a demo item."""
    bbox = item["object"]["bbox"]
    return [(text, [round(x0 * width), round(y0 * height), round(x1 * width),
                    round(y1 * height)])
            for x0, x1, y0, y1, text in zip(bbox["xmin"], bbox["xmax"], bbox["ymin"],
                                            bbox["ymax"], bbox["text"])]


def _dataset_items() -> list[dict[str, Any]]:
    """COPIES x the demo items, with distinct ids and paths relative to the workspace."""
    items = []
    for copy in range(COPIES):
        for item in _demo_items():
            item = dict(item, id=f"{item['id']}-{copy}",
                        filename=f"photos/{_photo(item).name}")
            items.append(item)
    return items


def _photos(work: Path) -> None:
    (work / "photos").mkdir(exist_ok=True)
    for item in _demo_items():
        shutil.copy(_photo(item), work / "photos" / _photo(item).name)


def make_json(work: Path, name: str) -> None:
    _photos(work)
    (work / name).write_text(json.dumps(_dataset_items()))


def make_jsonl(work: Path, name: str) -> None:
    _photos(work)
    (work / name).write_text("".join(json.dumps(i) + "\n" for i in _dataset_items()))


def make_coco(work: Path, name: str, images: str) -> None:
    """A COCO instances file ``name`` for the demo photos, copied into ``images``."""
    (work / images).mkdir(exist_ok=True)
    names = sorted({text for item in _demo_items() for text in item["object"]["bbox"]["text"]})
    data: dict[str, Any] = {"images": [], "annotations": [],
                            "categories": [{"id": n + 1, "name": text}
                                           for n, text in enumerate(names)]}
    for number, item in enumerate(_demo_items(), 1):
        shutil.copy(_photo(item), work / images / _photo(item).name)
        width, height = _size(_photo(item))
        data["images"].append({"id": number, "file_name": _photo(item).name, "width": width,
                               "height": height})
        for text, (x0, y0, x1, y1) in _boxes(item, width, height):
            data["annotations"].append({
                "id": len(data["annotations"]) + 1, "image_id": number,
                "category_id": names.index(text) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
                "segmentation": [_outline(x0, y0, x1, y1)]})
    (work / name).write_text(json.dumps(data))


def _outline(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    """A diamond inside a box: a polygon, in the box's coordinates."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return [cx, y0, x1, cy, cx, y1, x0, cy]


def _label_image(item: dict[str, Any], width: int, height: int) -> Image.Image:
    """A palette label image of the item's boxes: each box's class id (1 + its index in
    the class names), its outline 255 (VOC's boundary)."""
    from PIL import ImageDraw

    image = Image.new("P", (width, height))
    draw = ImageDraw.Draw(image)
    for text, box in _boxes(item, width, height):
        draw.rectangle(box, fill=_class_names().index(text) + 1, outline=255)
    image.putpalette([(40 * i) % 256 for i in range(768)])
    return image


def make_voc(work: Path, name: str) -> None:
    """A Pascal VOC tree (JPEGImages, Annotations, ImageSets/Main/train.txt)."""
    root = work / name
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids = []
    for item in _demo_items():
        photo = _photo(item)
        if photo.suffix != ".jpg":
            continue
        shutil.copy(photo, root / "JPEGImages" / photo.name)
        width, height = _size(photo)
        objects = "".join(
            f"<object><name>{text}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin>"
            f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            for text, (x0, y0, x1, y1) in _boxes(item, width, height))
        (root / "Annotations" / f"{photo.stem}.xml").write_text(
            f"<annotation><filename>{photo.name}</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size>{objects}</annotation>")
        (root / "SegmentationClass").mkdir(exist_ok=True)
        _label_image(item, width, height).save(root / "SegmentationClass" / f"{photo.stem}.png")
        ids.append(photo.stem)
    (root / "ImageSets" / "Main" / "train.txt").write_text("".join(i + "\n" for i in ids))
    (root / "ImageSets" / "Segmentation").mkdir(exist_ok=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text(
        "".join(i + "\n" for i in ids))


def make_class_folders(work: Path, name: str) -> None:
    """One sub-folder per class of the demo items, holding its photos."""
    for item in _demo_items():
        folder = work / name / _class_name(item)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(_photo(item), folder / _photo(item).name)


def make_caltech(work: Path, images: str, annotations: str) -> None:
    """Caltech-style ``bbGt`` text files, one per photo, beside an images folder."""
    (work / images).mkdir(exist_ok=True)
    (work / annotations).mkdir(exist_ok=True)
    for item in _demo_items():
        photo = _photo(item)
        shutil.copy(photo, work / images / photo.name)
        width, height = _size(photo)
        rows = [f"{text.replace(' ', '_')} {x0} {y0} {x1 - x0} {y1 - y0} 0 0 0 0 0 0 0"
                for text, (x0, y0, x1, y1) in _boxes(item, width, height)]
        (work / annotations / f"{photo.stem}.txt").write_text(
            "% bbGt version=3\n" + "".join(row + "\n" for row in rows))


def _class_names() -> list[str]:
    return sorted({t for item in _demo_items() for t in item["object"]["bbox"]["text"]})


def _yolo_lines(item: dict[str, Any]) -> str:
    """The demo item's boxes as YOLO label lines (``class cx cy w h``, normalized)."""
    bbox, names = item["object"]["bbox"], _class_names()
    return "".join(
        f"{names.index(text)} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} "
        f"{y1 - y0:.6f}\n"
        for x0, x1, y0, y1, text in zip(bbox["xmin"], bbox["xmax"], bbox["ymin"],
                                        bbox["ymax"], bbox["text"]))


def make_ultralytics(work: Path, name: str) -> None:
    """An Ultralytics layout: data.yaml, images/{train,val}, labels/{train,val}; the last
    photo of val has no label file (a background image)."""
    root = work / name
    photos = _demo_items()
    splits = {"train": photos[:3], "val": photos[3:]}
    for split, items in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for n, item in enumerate(items):
            shutil.copy(_photo(item), root / "images" / split / _photo(item).name)
            if split == "val" and n == len(items) - 1:
                continue
            (root / "labels" / split / f"{_photo(item).stem}.txt").write_text(_yolo_lines(item))
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n"
        + "".join(f"  - {n}\n" for n in _class_names()))


def make_ultralytics_segments(work: Path, name: str) -> None:
    """An Ultralytics segmentation layout: each object a polygon (normalized)."""
    root = work / name
    (root / "images" / "train").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
    names = _class_names()
    for item in _demo_items():
        shutil.copy(_photo(item), root / "images" / "train" / _photo(item).name)
        bbox = item["object"]["bbox"]
        lines = [f"{names.index(text)} " + " ".join(
                     f"{v:.6f}" for v in _outline(x0, y0, x1, y1)) + "\n"
                 for x0, x1, y0, y1, text in zip(bbox["xmin"], bbox["xmax"], bbox["ymin"],
                                                 bbox["ymax"], bbox["text"])]
        (root / "labels" / "train" / f"{_photo(item).stem}.txt").write_text("".join(lines))
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nnames:\n"
                                    + "".join(f"  - {n}\n" for n in names))


def make_label_images(work: Path, name: str) -> None:
    """A label image per demo photo (``name/{stem}.png``), for the photos folder."""
    _photos(work)
    (work / name).mkdir(exist_ok=True)
    for item in _demo_items():
        _label_image(item, *_size(_photo(item))).save(work / name / f"{_photo(item).stem}.png")


def make_darknet(work: Path, name: str) -> None:
    """The Darknet layout: obj.names, train.txt, the labels beside the images."""
    root = work / name
    (root / "obj").mkdir(parents=True, exist_ok=True)
    (root / "obj.names").write_text("".join(n + "\n" for n in _class_names()))
    listed = []
    for item in _demo_items():
        shutil.copy(_photo(item), root / "obj" / _photo(item).name)
        (root / "obj" / f"{_photo(item).stem}.txt").write_text(_yolo_lines(item))
        listed.append(f"obj/{_photo(item).name}\n")
    (root / "train.txt").write_text("".join(listed))


def make_csv(work: Path, name: str, images: str) -> None:
    """The Object Detection API tutorial CSV of the demo photos, copied into ``images``."""
    (work / images).mkdir(exist_ok=True)
    rows = ["filename,width,height,class,xmin,ymin,xmax,ymax"]
    for item in _demo_items():
        photo = _photo(item)
        shutil.copy(photo, work / images / photo.name)
        width, height = _size(photo)
        rows += [f"{photo.name},{width},{height},{text},{x0},{y0},{x1},{y1}"
                 for text, (x0, y0, x1, y1) in _boxes(item, width, height)]
    (work / name).write_text("\n".join(rows) + "\n")


# Each input path the README names (as written, without a trailing slash) -> its builder.
FIXTURES: dict[str, Callable[[Path], None]] = {
    "train.json": lambda w: make_json(w, "train.json"),
    "train.jsonl": lambda w: make_jsonl(w, "train.jsonl"),
    "instances_train2017.json": lambda w: make_coco(w, "instances_train2017.json", "train2017"),
    "train2017": lambda w: make_coco(w, "instances_train2017.json", "train2017"),
    "instances_val2017.json": lambda w: make_coco(w, "instances_val2017.json", "val2017"),
    "val2017": lambda w: make_coco(w, "instances_val2017.json", "val2017"),
    "VOCdevkit/VOC2012": lambda w: make_voc(w, "VOCdevkit/VOC2012"),
    "flowers": lambda w: make_class_folders(w, "flowers"),
    "pets": lambda w: make_class_folders(w, "pets"),
    "images": lambda w: make_caltech(w, "images", "annotations"),
    "annotations": lambda w: make_caltech(w, "images", "annotations"),
    "datasets/pets": lambda w: make_ultralytics(w, "datasets/pets"),
    "datasets/cells": lambda w: make_ultralytics_segments(w, "datasets/cells"),
    "photos": _photos,
    "labels": lambda w: make_label_images(w, "labels"),
    "darknet/data": lambda w: make_darknet(w, "darknet/data"),
    "train_labels.csv": lambda w: make_csv(w, "train_labels.csv", "images"),
    "names.json": lambda w: (w / "names.json").write_text(json.dumps(_class_names())),
    # The demo dataset, whose paths are relative to the repository's top folder.
    "tests/data/demo/dataset.json": lambda w: shutil.copytree(DEMO, w / "tests/data/demo",
                                                              dirs_exist_ok=True),
}


# -- the README's commands ----------------------------------------------------------------

def readme_commands(text: str) -> list[tuple[int, str]]:
    """(line number, command) of each ``python -m tfrecord_lite`` line in fenced blocks,
    continuation lines joined."""
    commands: list[tuple[int, str]] = []
    fenced = False
    pending: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            pending = None
            continue
        if not fenced:
            continue
        if pending is not None:
            start, joined = pending
            line = joined + " " + line.strip()
            number = start
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1].rstrip())
            continue
        pending = None
        if line.strip().startswith(" ".join(PROGRAM)):
            commands.append((number, line.strip()))
    return commands


COMMANDS = [(f"{path.relative_to(ROOT)}:{number}", command) for path in DOCUMENTS
            for number, command in readme_commands(path.read_text(encoding="utf-8"))]


def _argv(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    assert words[:3] == PROGRAM
    return words[3:]


def _inputs(argv: list[str]) -> list[str]:
    """The input paths a command names (those a fixture must provide)."""
    words = list(argv)
    if words and words[0].startswith("-") and words[0] not in ("-h", "--help", "--version"):
        words.insert(0, "create")  # the original command line, as main() reads it
    try:
        args = build_parser().parse_args(words)
    except SystemExit:
        return []  # the command itself will fail, and say why
    found = []
    for key in ("dataset_path", "annotations", "images", "source_dir", "yolo_root", "csv_file",
                "csv_images", "label_map", "labels"):
        value = getattr(args, key, None)
        if isinstance(value, str):
            found.append(value.rstrip("/"))
    return found


def _first(table: dict[str, Any], command: str) -> Any:
    return next((value for part, value in table.items() if part in command), None)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


def test_the_documents_have_command_lines() -> None:
    assert readme_commands(README.read_text(encoding="utf-8")), "README.md: no commands"
    pages = {where.split(":")[0] for where, _ in COMMANDS}
    for page in ("docs/usage.md", "docs/converters.md", "docs/reading.md"):
        assert page in pages, f"{page}: no `python -m tfrecord_lite` lines found"
    assert len(COMMANDS) >= 25


@pytest.mark.parametrize("where, command", COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command(where: str, command: str, workspace: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    reason = _first(SKIPPED, command)
    if reason:
        pytest.skip(reason)
    needed = _first(NEEDS, command)
    if needed:
        pytest.importorskip(needed[0], reason=f"needs {needed[1]}")
    bug = _first(KNOWN_BUGS, command)
    argv = _argv(command)
    monkeypatch.chdir(workspace)
    for path in _inputs(argv):
        if not (workspace / path).exists():
            build = FIXTURES.get(path)
            if build is None:
                pytest.fail(f"{where} names {path!r}, for which "
                            "tests/test_readme.py has no fixture: add a builder to FIXTURES "
                            f"(or the line to SKIPPED, with the reason): {command}")
            build(workspace)
    expected = _first(STATUS, command) or 0
    status = main(argv)
    if bug:
        if status == expected:
            pytest.fail(f"{where} now works: remove it from KNOWN_BUGS "
                        f"({bug})")
        pytest.xfail(bug)
    assert status == expected, f"{where}: {command}"


def test_fixtures_are_what_the_converters_read(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # The fixtures hold every demo photo and box, so that the commands above convert
    # real annotations (not empty folders that would pass for the wrong reason).
    monkeypatch.chdir(tmp_path)
    for build in FIXTURES.values():
        build(tmp_path)
    boxes = sum(len(i["object"]["bbox"]["xmin"]) for i in _demo_items())
    coco = json.loads(Path("instances_val2017.json").read_text())
    assert len(coco["images"]) == 5 and len(coco["annotations"]) == boxes
    assert len(list(Path("VOCdevkit/VOC2012/Annotations").iterdir())) == 4  # the JPEGs
    assert len(list(Path("pets").rglob("*.*"))) == 5 == len(list(Path("annotations").iterdir()))
    assert len(json.loads(Path("train.json").read_text())) == 5 * COPIES


MASK_COMMANDS = [(where, command) for where, command in COMMANDS
                 if any(flag in command for flag in ("--include-masks", "--segmentation",
                                                     "from-segmentation"))]


def test_the_mask_commands_write_masks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The documents' mask lines convert every object's mask or every label image."""
    from tfrecord_lite import iterate

    assert len(MASK_COMMANDS) >= 4
    monkeypatch.chdir(tmp_path)
    for build in FIXTURES.values():
        build(tmp_path)
    for where, command in MASK_COMMANDS:
        argv = _argv(command)
        assert main([*argv, "-q"]) == 0, where
        out = Path(argv[argv.index("--output_dir") + 1])
        prefix = argv[argv.index("--prefix") + 1]
        records = list(iterate(sorted(out.glob(f"{prefix}-*")), decode_masks=True))
        assert records, where
        for record in records:
            if "--include-masks" in command:
                assert len(record["masks"]) == record["object"]["count"] > 0, where
                assert all(mask.any() for mask in record["masks"]), where
            else:
                assert len(set(record["class_ids"].ravel().tolist())) >= 3, where  # 0, 255, ids
