"""from-csv: a row that cannot be converted (a number that does not parse, an empty class
name) rejects its image as the other converters do (left out, named, under strict
validation; kept without the row under lenient); a quote that is never closed is named
by the line that opens it."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_converters import _image

from tfrecord_lite import read_examples
from tfrecord_lite.cli import main

HEADER = "filename,width,height,class,xmin,ymin,xmax,ymax\n"


def _records(out: Path) -> dict[str, list[str]]:
    return {r["id"]: r["object"]["bbox"]["text"]
            for p in sorted(out.glob("t-*")) for r in read_examples(p)}


def _csv(rows: str) -> list[str]:
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        _image(Path("images") / name)
    Path("labels.csv").write_text(HEADER + rows)
    return ["from-csv", "labels.csv", "--images", "images", "--prefix", "t", "--output_dir",
            "out"]


ROWS = ("a.jpg,200,100,cat,10,10,50,50\n"
        "a.jpg,200,100,dog,10,10,fifty,50\n"      # line 3: not a number
        "b.jpg,200,100,cat,10,10,50,50\n"
        "b.jpg,200,100,,20,20,60,60\n"            # line 5: no class name
        "c.jpg,200,100,dog,20,20,60,60\n")


def test_rows_that_do_not_convert_leave_their_image_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    args = _csv(ROWS)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert ("labels.csv:3: image 'a.jpg': xmax: not a number: 'fifty': the image is left "
            "out") in err
    assert "labels.csv:5: image 'b.jpg': the class name is empty: the image is left out" in err
    assert _records(Path("out")) == {"c.jpg": ["dog"]}
    assert main([*args, "--validation", "lenient"]) == 1
    err = capsys.readouterr().err
    assert "labels.csv:5: image 'b.jpg': the class name is empty\n" in err
    assert _records(Path("out")) == {"a.jpg": ["cat"], "b.jpg": ["cat"], "c.jpg": ["dog"]}


def test_a_quote_never_closed_is_named_by_the_line_that_opens_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    args = _csv("a.jpg,200,100,cat,10,10,50,50\n"
                '"b.jpg,200,100,cat,10,10,50,50\n'
                "c.jpg,200,100,dog,20,20,60,60\n")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert ("labels.csv:3: a quote opened on line 3 is never closed: lines 3 to 4 (the end "
            "of the file) are read as one field and left out") in err
    assert "expected 8 fields" not in err
    assert _records(Path("out")) == {"a.jpg": ["cat"]}


def test_an_image_whose_row_is_lost_to_a_bad_line_is_left_out_not_written_without_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    # a.jpg's second box is on line 5, inside the quote line 3 opens: a.jpg is not
    # written with its first box alone
    args = _csv("a.jpg,200,100,cat,10,10,50,50\n"
                'b.jpg,200,100,"dog,10,10,50,50\n'
                "c.jpg,200,100,cat,20,20,60,60\n"
                "a.jpg,200,100,dog,20,20,60,60\n")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert ("labels.csv:5: image 'a.jpg': inside a quote opened on line 3 and never closed: "
            "the image is left out") in err
    assert not Path("out/t-00000-of-00001").exists()  # every image lost a row
    # a row of the wrong length names its image too
    args = _csv("a.jpg,200,100,cat,10,10,50,50\n"
                "a.jpg,200,100,dog,20,20,60\n"
                "b.jpg,200,100,cat,20,20,60,60\n")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert ("labels.csv:3: image 'a.jpg': expected 8 fields (filename,width,height,class,"
            "xmin,ymin,xmax,ymax), got 7: the image is left out") in err
    assert _records(Path("out")) == {"b.jpg": ["cat"]}
    assert main([*args, "--validation", "lenient"]) == 1  # kept without the bad row
    assert _records(Path("out")) == {"a.jpg": ["cat"], "b.jpg": ["cat"]}
