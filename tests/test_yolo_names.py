"""from-yolo: data.yaml's class names must be text. YAML reads an unquoted on, off, yes,
no as true or false, ~ as null and digits as a number; such a name is a usage error
naming data.yaml and the entry, and saying that quoting keeps it as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_yolo import make_ultralytics

from tfrecord_lite import read_examples
from tfrecord_lite.cli import main


@pytest.mark.parametrize(("names", "message"), [
    ("[on, off, no, ~]", "pets/data.yaml: names[0] is true, not a class name"),
    ("[cat, ~, dog]", "pets/data.yaml: names[1] is null, not a class name"),
    ("[cat, [a, b], dog]", "pets/data.yaml: names[1] is a list, not a class name"),
    ("{0: cat, 1: {x: 1}, 2: dog}", "pets/data.yaml: names[1] is a mapping, not a class name"),
    ("{0: 1, 1: cat, 2: dog}", "pets/data.yaml: names[0] is 1, not a class name"),
    ("[cat, 007, dog]", "pets/data.yaml: names[1] is 7, not a class name"),
])
def test_names_that_are_not_text_are_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], names: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    make_ultralytics(Path("pets"))
    yaml_file = Path("pets/data.yaml")
    yaml_file.write_text(yaml_file.read_text().split("names:")[0] + f"names: {names}\n")
    assert main(["from-yolo", "pets", "--prefix", "t", "--output_dir", "out"]) == 2
    err = capsys.readouterr().err
    assert message in err
    # the hint about YAML's plain scalars only where it applies
    assert ('quote the name ("on", "007") to keep it as text' in err) == (
        "a list" not in message and "a mapping" not in message)
    assert "Traceback" not in err and not Path("out").exists()


def test_two_classes_of_one_name_are_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # with one name for two classes, a --label-map run would store both as one
    monkeypatch.chdir(tmp_path)
    make_ultralytics(Path("pets"))
    yaml_file = Path("pets/data.yaml")
    yaml_file.write_text(yaml_file.read_text().split("names:")[0] + "names: [cat, 'cat']\n")
    assert main(["from-yolo", "pets", "--prefix", "t", "--output_dir", "out"]) == 2
    err = capsys.readouterr().err
    assert "pets/data.yaml: classes 0 and 1 are both named 'cat'" in err
    Path("map.json").write_text(json.dumps({"1": "cat", "2": "dog", "3": "cat"}))
    yaml_file.write_text(yaml_file.read_text().split("names:")[0] + "names: [cat, dog]\n")
    assert main(["from-yolo", "pets", "--prefix", "t", "--output_dir", "out",
                 "--label-map", "map.json"]) == 2
    assert "label map map.json: the class name 'cat' is given twice" in capsys.readouterr().err


def test_quoted_names_are_kept_as_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_ultralytics(Path("pets"))
    yaml_file = Path("pets/data.yaml")
    yaml_file.write_text(yaml_file.read_text().split("names:")[0]
                         + "names: ['on', \"007\", '~']\n")
    assert main(["from-yolo", "pets", "--prefix", "t", "--output_dir", "out", "-q",
                 "--validation", "lenient"]) == 1  # the fixture's bad lines
    assert list(json.loads(Path("out/label_map.json").read_text()).values()) == [
        "on", "007", "~"]
    texts = {t for r in read_examples(next(Path("out").glob("t-*")))
             for t in r["object"]["bbox"]["text"]}
    assert texts == {"on", "007", "~"}
