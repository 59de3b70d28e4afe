"""What a run's exit status and summary say when items fail: ``--max-failures`` for the
failures a CI step can live with, and a run where (nearly) everything fails says why and
publishes nothing."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import tokenize
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite.cli import build_parser, main

from conftest import DEMO, ROOT

PHOTOS = ("astronaut.jpg", "coffee.jpg")


def _item(ident: str, filename: str) -> dict[str, Any]:
    return {"filename": filename, "id": ident,
            "object": {"bbox": {"xmin": [0.1], "xmax": [0.5], "ymin": [0.2], "ymax": [0.6],
                                "label": [1]}}}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """data/train.json naming data/images/*, as a user keeps them; commands run here."""
    (tmp_path / "data" / "images").mkdir(parents=True)
    for name in PHOTOS:
        shutil.copy(DEMO / "images" / name, tmp_path / "data" / "images" / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _dataset(items: list[dict[str, Any]], name: str = "data/train.json") -> str:
    Path(name).write_text(json.dumps(items))
    return name


def _create(dataset: str, *more: str) -> int:
    return main(["create", "--dataset_path", dataset, "--prefix", "train", "--output_dir",
                 "out", "-q", *more])


def _four_with_one_broken() -> str:
    return _dataset([_item(str(n), f"data/images/{PHOTOS[n % 2]}") for n in range(3)]
                    + [_item("broken", "data/images/gone.jpg")])


@pytest.mark.parametrize("limit, status", [
    (None, 1), ("0", 1), ("1", 0), ("5", 0), ("25%", 0), ("24.9%", 1), ("100%", 0)])
def test_max_failures_lets_a_run_with_a_few_failures_exit_0(
        workspace: Path, limit: str | None, status: int,
        capsys: pytest.CaptureFixture[str]) -> None:
    more = [] if limit is None else ["--max-failures", limit]
    assert _create(_four_with_one_broken(), *more) == status
    failures = json.loads(Path("out/train.failures.json").read_text())
    assert [f["id"] for f in failures] == ["broken"]  # listed, whatever the status
    err = capsys.readouterr().err
    assert "1 of 4 items failed" in err
    if limit not in (None, "0"):
        verdict = "within" if status == 0 else "over"
        assert f"1 failure among 4 items: {verdict} --max-failures {limit}" in err


def test_max_failures_holds_for_validate_only_and_for_a_converters_bad_annotations(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = _four_with_one_broken()
    assert _create(dataset, "--validate-only") == 1
    assert _create(dataset, "--validate-only", "--max-failures", "1") == 0
    # A CSV with one row of an unknown class: one problem, the images all written.
    Path("labels.csv").write_text("filename,class,xmin,ymin,xmax,ymax\n"
                                  "astronaut.jpg,person,10,10,200,300\n"
                                  "coffee.jpg,cup,10,10,200,300\n")
    Path("names.json").write_text(json.dumps(["person"]))
    argv = ["from-csv", "labels.csv", "--images", "data/images", "--label-map", "names.json",
            "--prefix", "train", "--output_dir", "csv", "-q"]
    assert main(argv) == 1
    assert main([*argv, "--max-failures", "1"]) == 0
    assert main([*argv, "--to-json", "items.json", "--max-failures", "50%"]) == 0
    assert "class 'cup' is not in the label map" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("many", "expected a number of failures (25) or a percentage of the items (0.5%)"),
    ("1.5", "expected a number of failures"), ("%", "expected a number of failures"),
    ("-1", "must be 0 or more"), ("101%", "must be between 0% and 100%")])
def test_a_max_failures_that_is_not_a_count_or_a_percentage_is_a_usage_error(
        workspace: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _create(_four_with_one_broken(), f"--max-failures={text}") == 2
    err = capsys.readouterr().err
    assert "argument --max-failures" in err and message in err


def _digests(folder: str) -> dict[str, str]:
    return {name: hashlib.sha256((Path(folder) / name).read_bytes()).hexdigest()
            for name in sorted(os.listdir(folder)) if not name.endswith("failures.json")}


def test_a_run_where_every_item_fails_publishes_nothing_and_keeps_the_earlier_dataset(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _dataset([_item(str(n), f"data/images/{PHOTOS[n % 2]}") for n in range(4)])
    assert _create(good, "--shards", "2") == 0
    before = _digests("out")
    assert "train-00000-of-00002" in before and "train.manifest.json" in before
    capsys.readouterr()
    # The same dataset file, run from inside data/: every relative path is now wrong.
    os.chdir("data")
    status = main(["create", "--dataset_path", "train.json", "--prefix", "train",
                   "--output_dir", "../out", "-q", "--shards", "3"])
    os.chdir("..")
    assert status == 1
    assert _digests("out") == before  # no shard replaced, none added, the manifest kept
    unpublished = json.loads(Path("out/train.unpublished-failures.json").read_text())
    assert [f["id"] for f in unpublished] == ["0", "1", "2", "3"]
    assert not [n for n in os.listdir("out") if n.startswith(".")]  # nothing left hidden
    err = capsys.readouterr().err
    assert "nothing was written: every item failed. No shard was published" in err
    assert (f"relative filenames were read from the current directory, "
            f"{workspace / 'data'}; if they are relative to another folder, give it with "
            "--root DIR") in err
    assert main(["verify", "out/train-*"]) == 0  # the earlier dataset, whole


def test_most_files_not_found_names_where_paths_were_read_and_the_option_that_changes_it(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Paths relative to the dataset file's folder, run from its parent.
    items = [_item(str(n), f"images/{PHOTOS[n % 2]}") for n in range(3)]
    items.append(_item("here", f"data/images/{PHOTOS[0]}"))
    dataset = _dataset(items)
    assert _create(dataset) == 1
    err = capsys.readouterr().err
    assert ("3 of 4 items failed with 'file not found' (the first: images/astronaut.jpg): "
            f"relative filenames were read from the current directory, {workspace}") in err
    assert "(the dataset file's folder holds them: --root data)" in err
    # --validate-only says the same before anything is written.
    assert _create(dataset, "--validate-only") == 1
    assert "(the dataset file's folder holds them: --root data)" in capsys.readouterr().err
    # With --root, the hint names the root.
    assert _create(dataset, "--root", "elsewhere") == 1
    assert "relative filenames were read from the dataset root elsewhere (--root)" in \
        capsys.readouterr().err
    # A few missing files among many found: no hint.
    _dataset([_item(str(n), f"data/images/{PHOTOS[n % 2]}") for n in range(3)]
             + [_item("gone", "data/images/gone.jpg")], "data/few.json")
    assert _create("data/few.json") == 1
    assert "failed with 'file not found'" not in capsys.readouterr().err


def test_a_converter_whose_images_are_not_found_names_its_images_option(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coco = {"images": [{"id": 1, "file_name": "astronaut.jpg", "width": 512, "height": 512}],
            "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    Path("instances.json").write_text(json.dumps(coco))
    Path("wrong").mkdir()
    assert main(["from-coco", "instances.json", "--images", "wrong", "--prefix", "train",
                 "--output_dir", "out", "-q"]) == 1
    err = capsys.readouterr().err
    assert "the image paths come from --images; check that it names the folder" in err


def test_where_each_converters_image_paths_come_from_is_one_of_its_arguments() -> None:
    (commands,) = [a for a in build_parser()._actions
                   if isinstance(a, argparse._SubParsersAction)]
    for name, sub in dict(commands.choices).items():
        images_from = sub.get_default("images_from")
        if images_from is None:
            continue  # not a converter
        argument = images_from.split()[0]
        if argument.startswith("--"):
            assert argument in _options(name), (name, argument)
        else:  # a positional argument, as the help names it
            assert any(a.metavar == argument for a in sub._actions), (name, argument)


def _options(command: str | None = None) -> set[str]:
    """The flags of one command's parser, or of every command (and the root) for None."""
    root = build_parser()
    (commands,) = [a for a in root._actions if isinstance(a, argparse._SubParsersAction)]
    parsers = [commands.choices[command]] if command else [root, *commands.choices.values()]
    return {flag for parser in parsers for action in parser._actions
            for flag in action.option_strings}


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*[a-z0-9]")


def assert_flags_exist(command: str, text: str) -> None:
    """Every ``--option`` that ``text`` (what ``command`` printed) names is one of that
    command's own options."""
    unknown = set(FLAG.findall(text)) - _options(command)
    assert not unknown, f"{command} names options it lacks: {sorted(unknown)}\n{text}"


# Flags that messages and docstrings name but that are other programs' own: Apache Beam's
# pipeline options (given inside --beam-options), and the Object Detection API's script.
OTHER_PROGRAMS = {"--direct_num_workers", "--direct_running_mode", "--project", "--region",
                  "--include_masks"}


def test_every_option_the_package_names_is_an_option_of_the_command_line() -> None:
    known = _options() | OTHER_PROGRAMS
    named: dict[str, set[str]] = {}
    for path in (ROOT / "tfrecord_lite").rglob("*.py"):
        with tokenize.open(path) as f:
            for token in tokenize.generate_tokens(f.readline):
                if token.type in (tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", -1)):
                    for flag in FLAG.findall(token.string):
                        named.setdefault(flag, set()).add(path.name)
    assert named and {flag: where for flag, where in named.items() if flag not in known} == {}


def test_the_hints_of_a_failed_run_name_options_of_its_own_command(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = _dataset([_item("0", "images/astronaut.jpg")])
    assert _create(dataset) == 1
    assert_flags_exist("create", capsys.readouterr().err)
    coco = {"images": [{"id": 1, "file_name": "astronaut.jpg", "width": 512, "height": 512}],
            "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    Path("instances.json").write_text(json.dumps(coco))
    assert main(["create", "--dataset_path", "instances.json", "--prefix", "t",
                 "--output_dir", "out"]) == 2  # a COCO file: the from-coco command to run
    err = capsys.readouterr().err
    command = err[err.index("python -m tfrecord_lite from-coco"):].split()
    assert_flags_exist("from-coco", " ".join(command))
    Path("elsewhere").mkdir()
    command[command.index("IMAGE_DIR")] = "elsewhere"
    assert main(command[3:] + ["--validate-only"]) == 1  # it runs; the images: not there
    err = capsys.readouterr().err
    assert "the image paths come from --images" in err
    assert_flags_exist("from-coco", err)
