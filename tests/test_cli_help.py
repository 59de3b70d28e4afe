"""Help and typos: each subcommand describes itself, and a misspelt flag is named with
the closest valid one under that subcommand's usage."""

from __future__ import annotations

import argparse

import pytest

from tfrecord_lite.cli import build_parser, main

TOP_USAGE = "usage: tfrecord-lite [-h] [--version] COMMAND"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_subcommand_has_a_description_and_one_options_group(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = _subcommands()[name]
    assert parser.description and len(parser.description) > 40
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert parser.description.split()[0] in out
    headings = [line for line in out.splitlines() if line.endswith(":")
                and not line.startswith(" ")]
    assert headings.count("options:") == 1, headings
    assert "optional arguments:" not in headings
    assert len(headings) == len(set(headings))
    assert "exit status" in out


@pytest.mark.parametrize("argv, command, hint", [
    (["create", "--dataset-pth", "d.json", "--prefix", "p", "--output_dir", "o"], "create",
     "--dataset-pth (did you mean --dataset-path?)"),
    (["verify", "--no-decod", "x"], "verify", "--no-decod (did you mean --no-decode?)"),
    # the original command line: no subcommand, so create's flags
    (["--dataset_pth", "d.json", "--prefix", "p", "--output_dir", "o"], "create",
     "--dataset_pth (did you mean --dataset_path?)"),
    (["--dataset_path", "d.json", "--prefix", "p", "--output_dir", "o", "--shufle"], "create",
     "--shufle (did you mean --shuffle?)"),
    (["from-coco", "i.json", "--image", "x", "--to-json", "o.json"], "from-coco",
     "--image (did you mean --images?)"),
    (["show", "f", "-o", "x.png", "--grid=4", "--indx=2"], "show",
     "--indx=2 (did you mean --index?)"),
    (["stats", "f", "--jsn", "--compresion", "gzip"], "stats",
     "unrecognized arguments: --jsn (did you mean --json?), --compresion (did you mean "
     "--compression?)"),
])
def test_typo_names_the_closest_flag_under_the_subcommand_usage(
        argv: list[str], command: str, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: tfrecord-lite {command} ")
    assert TOP_USAGE not in err
    assert f"tfrecord-lite {command}: error: " in err and hint in err


def test_abbreviations_are_not_taken(capsys: pytest.CaptureFixture[str]) -> None:
    """--no-decod is not quietly read as --no-decode: flags are written in full."""
    assert main(["verify", "--no-dec", "x"]) == 2
    assert "did you mean --no-decode?" in capsys.readouterr().err


def test_values_that_look_like_flags_still_parse() -> None:
    args = build_parser().parse_args(
        ["show", "f", "-o", "x.png", "--index", "-1"])
    assert args.index == -1
    args = build_parser().parse_args(
        ["create", "--dataset_path", "d", "--prefix", "p", "--output_dir", "o", "--runner",
         "beam", "--beam-options", "--direct_num_workers=2 --direct_running_mode=x", "-q"])
    assert args.beam_options.startswith("--direct_num_workers=2") and args.quiet
    args = build_parser().parse_args(["inspect", "f", "-n3", "--json"])
    assert args.n == 3 and args.json


def test_the_processes_and_runner_help_say_the_real_rules(
        capsys: pytest.CaptureFixture[str]) -> None:
    from tfrecord_lite.processes import (
        MAX_ITEMS_PER_SHARD_FOR_PROCESSES,
        MIN_ITEMS_PER_PROCESS,
        default_processes,
    )

    # The rule the help states: fewer than 10,000 items (two processes' worth) run on
    # threads in one process, as do shards of more than 10,000 items on average.
    assert 2 * MIN_ITEMS_PER_PROCESS == MAX_ITEMS_PER_SHARD_FOR_PROCESSES == 10_000
    assert default_processes(8, 9_999, cores=8) == 1
    assert default_processes(8, 10_000, cores=8) == 2
    assert default_processes(2, 20_001, cores=8) == 1
    assert main(["create", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "so 1, threads only, on one core, for fewer than 10,000 items, and when the " \
           "shards average more than 10,000 items" in text
    assert "threads in this process" not in text
    assert "local: this machine, on threads and worker processes as --threads and " \
           "--processes say" in text


def test_the_python_defaults_that_differ_from_the_command_line_are_documented() -> None:
    import inspect

    from tfrecord_lite import create, write_dataset

    from conftest import ROOT

    for function in (create, write_dataset):
        defaults = inspect.signature(function).parameters
        assert defaults["shuffle"].default is True and defaults["store_images"].default
    doc = " ".join((inspect.getdoc(create) or "").split())
    assert "the command line writes input order unless ``--shuffle`` is given" in doc
    assert "the command line's defaults differ" in " ".join(
        (inspect.getdoc(write_dataset) or "").split())
    usage = " ".join((ROOT / "docs" / "usage.md").read_text().split())
    assert "Its defaults are the original function's, `shuffle=True` and " \
           "`store_images=True`, and differ from the command line's" in usage
