"""An annotation source that cannot be read as a whole (a bbGt file without its header or
not UTF-8, a VOC XML whose root is not <annotation>, a YOLO label file that is not UTF-8)
never turns its image into a background image: the image is left out and named, under
--validation lenient too, and the problem is in the failures file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_converters import _image, make_voc
from test_yolo import make_ultralytics

from tfrecord_lite import read_examples
from tfrecord_lite.cli import main


def _ids(out: Path, prefix: str = "t") -> list[str]:
    return sorted(r["id"] for p in sorted(out.glob(f"{prefix}-*")) for r in read_examples(p))


def _failures(out: Path, prefix: str = "t") -> list[str]:
    entries = json.loads((out / f"{prefix}.failures.json").read_text())
    return [e["error_msg"] for e in entries if e.get("kind") == "converter"]


@pytest.mark.parametrize("validation", ["strict", "lenient"])
def test_caltech_file_without_header_or_not_utf8_leaves_its_image_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], validation: str) -> None:
    monkeypatch.chdir(tmp_path)
    anns = Path("caltech/annotations")
    anns.mkdir(parents=True)
    for stem in ("a", "b", "c"):
        _image(Path("caltech/images") / f"{stem}.jpg")
    (anns / "a.txt").write_text("% bbGt version=3\nperson 20 10 100 50\n")
    (anns / "b.txt").write_text("person 20 10 100 50\n")  # no header
    (anns / "c.txt").write_bytes(b"% bbGt version=3\nperson\xff 20 10 100 50\n")
    assert main(["from-caltech", "caltech/images", "caltech/annotations", "--prefix", "t",
                 "--output_dir", "out", "--validation", validation]) == 1
    err = capsys.readouterr().err
    assert ("caltech/annotations/b.txt: not a bbGt file (the first line must be "
            "'% bbGt ...'): the image is left out") in err
    assert ("caltech/annotations/c.txt: cannot read: not UTF-8 text (invalid start byte "
            "at byte 23): the image is left out") in err
    assert "Traceback" not in err
    assert _ids(Path("out")) == ["a"]
    assert len(_failures(Path("out"))) == 2


@pytest.mark.parametrize("validation", ["strict", "lenient"])
def test_voc_xml_whose_root_is_not_annotation_leaves_its_image_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], validation: str) -> None:
    monkeypatch.chdir(tmp_path)
    make_voc(Path("VOC"))
    Path("VOC/Annotations/2007_000002.xml").write_text("<foo/>")
    assert main(["from-voc", "VOC", "--prefix", "t", "--output_dir", "out",
                 "--validation", validation]) == 1
    err = capsys.readouterr().err
    assert "image '2007_000002': " in err
    assert ("Annotations/2007_000002.xml: not a VOC annotation (its root element is <foo>, "
            "not <annotation>): the image is left out") in err
    assert _ids(Path("out")) == ["2007_000001"]
    assert len(_failures(Path("out"))) == 1


def test_voc_segmentation_image_whose_xml_cannot_be_read_is_left_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    make_voc(Path("VOC"))
    Path("VOC/ImageSets/Segmentation").mkdir(parents=True)
    Path("VOC/ImageSets/Segmentation/train.txt").write_text("2007_000001\n2007_000002\n")
    for stem in ("2007_000001", "2007_000002"):
        _image(Path("VOC/SegmentationClass") / f"{stem}.png", kind="png-gray")
    Path("VOC/Annotations/2007_000002.xml").write_text("<annotation><object>")
    assert main(["from-voc", "VOC", "--segmentation", "--prefix", "t", "--output_dir",
                 "out", "--validation", "lenient"]) == 1
    err = capsys.readouterr().err
    assert "image '2007_000002': cannot read " in err
    assert "Annotations/2007_000002.xml: " in err
    assert _ids(Path("out")) == ["2007_000001"]  # not kept as an image without boxes


@pytest.mark.parametrize("validation", ["strict", "lenient"])
def test_yolo_label_file_not_utf8_leaves_its_image_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], validation: str) -> None:
    monkeypatch.chdir(tmp_path)
    make_ultralytics(Path("pets"))
    Path("pets/labels/train/rocket.txt").write_bytes(b"1 0.25 0.75 0.5 0.5\n\xff\xfe\n")
    main(["from-yolo", "pets", "--prefix", "t", "--output_dir", "out", "--validation",
          validation])
    err = capsys.readouterr().err
    assert ("pets/labels/train/rocket.txt: cannot read: not UTF-8 text (invalid start byte "
            "at byte 20): the image is left out") in err
    assert "images/train/rocket.jpg" not in _ids(Path("out"))
    assert "images/train/camera.png" in _ids(Path("out"))
