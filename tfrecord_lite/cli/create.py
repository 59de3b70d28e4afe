"""The ``create`` command: a dataset file (JSON or JSON Lines) -> sharded TFRecord files.

Without a command word, the command line is the original tool's, and means ``create``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import storage
from ..dataset import open_dataset
from ..errors import DatasetError
from .common import UsageError, add_output_options, add_runner_options, run_job


def register(sub: Any) -> None:
    """Add the ``create`` command to the subcommands ``sub``."""
    p = sub.add_parser(
        "create",
        help="write a dataset (JSON list of items) as sharded TFRecord files",
        description="Write the items of a JSON (or JSON Lines) dataset file as sharded "
                    "TFRecord files of tf.train.Example records.",
        epilog="exit status: 0 all written, 1 some items failed (see "
               "{output_dir}/{prefix}.failures.json), 2 usage error, 3 output not writable, "
               "70 internal error (a bug), 130 interrupted, 141 output pipe closed, 143 "
               "stopped by SIGTERM",
    )
    files = p.add_argument_group("input and output (the original tool's flags)")
    files.add_argument("--dataset_path", "--dataset-path", required=True, metavar="FILE",
                       help="JSON file holding a list of item dicts (.jsonl: one item per "
                       "line)")
    add_output_options(p, files)
    add_runner_options(p)
    p.set_defaults(run=_run_create)


def _run_create(args: argparse.Namespace) -> int:
    try:
        dataset = open_dataset(args.dataset_path)
    except DatasetError as exc:
        hint = _converter_hint(args)
        if hint is None:
            raise
        raise UsageError(f"{exc}\n  {hint}") from exc
    return run_job(args, dataset)[0]


def _converter_hint(args: argparse.Namespace) -> str | None:
    """When the dataset file that ``create`` refused is a COCO annotation file, the
    ``from-coco`` command that converts it (None otherwise). Runs only after the refusal,
    so reading the file again costs nothing on the way that works."""
    try:
        with storage.open_input(args.dataset_path) as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # the refusal said why; no hint
        return None
    if not (isinstance(data, dict) and "images" in data and "annotations" in data):
        return None
    return (f"{args.dataset_path} is a COCO annotation file (a JSON object with 'images' and "
            "'annotations'), not a list of items; convert it with: python -m tfrecord_lite "
            f"from-coco {args.dataset_path} --images IMAGE_DIR --prefix {args.prefix} "
            f"--output_dir {args.output_dir}")
