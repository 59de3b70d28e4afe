"""The command line: ``python -m tfrecord_lite`` / ``tfrecord-lite``.

The only module that prints or picks exit statuses:

* 0: every item was written;
* 1: some items failed (they are listed in ``{output_dir}/{prefix}.failures.json``);
* 2: usage error (bad flag, unreadable or malformed dataset file);
* 3: the output could not be written (nothing partial is left under a shard name);
* 70: an internal error, a bug: the traceback is printed, with a line asking to report it.

Only the documented errors become statuses 1 to 3 (see ``EXIT_FOR``): the library's own
(``TFRecordLiteError``), a usage mistake, and an input file that cannot be read.

The original tool's flags work unchanged, with or without the ``create`` word::

    python -m tfrecord_lite --dataset_path train.json --prefix train --output_dir out \\
        --shards 10 --threads 5 --shuffle --store_images
"""

from __future__ import annotations

import argparse
import difflib
import functools
import io
import json
import logging
import os
import re
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

# Modules that need Pillow (the runners, images, preview, the converters' readers) and
# Beam are imported by the commands that use them, so that --help starts fast.
from . import journal, sharding, storage
from ._version import __version__
from .accelerators import chosen
from .converters import count_phrase, label_map_json, label_map_pbtxt
from .dataset import open_dataset
from .errors import (
    DatasetError,
    ImageError,
    InterruptedRunError,
    RecordError,
    TFRecordLiteError,
    WriteError,
)
from .example import RECORD_FIELDS, feature_values
from .framing import DEFAULT_MAX_RECORD_SIZE
from .options import JobOptions
from .reader import default_index_path, iterate, parse_record, read_framed, write_index
from .sharding import failures_name, is_side_file
from .verify import report_dict, stats, verify_files

EXIT_OK, EXIT_FAILED_ITEMS, EXIT_USAGE, EXIT_WRITE = 0, 1, 2, 3
EXIT_PIPE = 141  # as a process that SIGPIPE ends: 128 + 13
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h): a bug
# The job options' defaults, declared once in JobOptions. (The original command line
# does not shuffle by default, and chooses whether to store images from the command word.)
_DEFAULT = JobOptions.defaults()
_SHOWN_FAILURES = 10
# Apache Beam from PyPI; the repository's own extra for someone with a clone.
BEAM_INSTALL = "pip install 'apache-beam>=2.50'"
BEAM_INSTALL_CLONE = "pip install '.[beam]'"


class UsageError(Exception):
    """A mistake in the command line or the dataset file: exit status 2, no traceback."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _quality(text: str) -> int:
    value = _positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, got {value}")
    return value


_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)$")


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: a misspelt flag is named with the closest valid one, under
    this subcommand's usage (argparse would show the top-level usage, or first complain
    about the required flag the typo was meant to be). Abbreviated flags are not taken:
    each flag is written in full, so a new flag never changes what an old command means."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if args is not None:
            self._check_flags(list(args))
        return super().parse_known_args(args, namespace)

    def _check_flags(self, args: list[str]) -> None:
        known = [flag for action in self._actions for flag in action.option_strings]
        unknown = []
        for token in args:
            if token == "--":
                break
            if not token.startswith("-") or token == "-" or " " in token or _NUMBER.match(token):
                continue
            flag = token.split("=", 1)[0] if token.startswith("--") else token
            if flag in known or (not token.startswith("--") and token[:2] in known):
                continue  # a short flag with its value (-n3) or several (-qh)
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            unknown.append(f"{token} (did you mean {close[0]}?)" if close else token)
        if unknown:
            self.error(f"unrecognized argument{'s' if len(unknown) > 1 else ''}: "
                       + ", ".join(unknown))


def _options(p: argparse.ArgumentParser) -> Any:
    """The subcommand's one "options" group (argparse's own, which holds -h): flags that
    belong to no named group go here, so the help shows no second, leftover group."""
    group = p._optionals  # argparse keeps its default group there; no public accessor
    group.title = "options"
    return group


def _add_create(sub: Any) -> None:
    p = sub.add_parser(
        "create",
        help="write a dataset (JSON list of items) as sharded TFRecord files",
        description="Write the items of a JSON (or JSON Lines) dataset file as sharded "
                    "TFRecord files of tf.train.Example records.",
        epilog="exit status: 0 all written, 1 some items failed (see "
               "{output_dir}/{prefix}.failures.json), 2 usage error, 3 output not writable",
    )
    files = p.add_argument_group("input and output (the original tool's flags)")
    files.add_argument("--dataset_path", "--dataset-path", required=True, metavar="FILE",
                       help="JSON file holding a list of item dicts (.jsonl: one item per "
                       "line)")
    _add_output_options(p, files)
    _add_runner_options(p)


def _add_runner_options(p: Any) -> None:
    beam = p.add_argument_group(f"Apache Beam ({BEAM_INSTALL})")
    beam.add_argument("--runner", choices=("local", "beam"), default="local",
                      help="local: threads in this process (default); beam: an Apache Beam "
                           "pipeline, which ignores --threads and spreads items over shards "
                           "by a seeded hash (records are the same)")
    beam.add_argument("--beam-options", "--beam_options", default=None, metavar="'FLAGS'",
                      help="Beam pipeline options, one quoted string, e.g. --beam-options="
                           "'--direct_num_workers=2 --direct_running_mode=multi_processing' "
                           "or '--runner=DataflowRunner --project=P --region=R ...' "
                           "(default: the DirectRunner)")


def _add_output_options(p: Any, files: Any) -> None:
    """The shard-writing options shared by create and the from-* converters (``files``:
    the group of the input and output flags)."""
    files.add_argument("--prefix", required=True, metavar="NAME",
                    help="shard name prefix, e.g. train -> train-00000-of-00010")
    files.add_argument("--output_dir", "--output-dir", required=True, metavar="DIR",
                    help="directory for the shards (created when missing)")
    files.add_argument("--shards", type=_positive_int, default=1, metavar="N",
                    help="number of shard files (default: 1)")
    files.add_argument("--threads", type=_positive_int, default=min(4, os.cpu_count() or 1),
                    metavar="N", help="worker threads (default: min(4, CPUs))")
    files.add_argument("--processes", type=_positive_int, default=None, metavar="N",
                    help="worker processes, each writing whole shards with --threads "
                         "threads; 1: all in this process (default: 1 on one core; else "
                         "one per core, up to the number of shards and one per 5,000 "
                         "items, the threads shared out among them)")
    files.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=False,
                    help="write the items in a seeded random order (default: input order)")
    files.add_argument("--store_images", "--store-images", action=argparse.BooleanOptionalAction,
                    default=None, help="store the image bytes in image/encoded (default: yes; "
                    "in the original command line, without a command word: no, as in the "
                    "original tool)")
    more = _options(p)
    more.add_argument("--compression", choices=("none", "gzip", "zlib"),
                      default=_DEFAULT["compression"],
                      help="compress each shard as a whole, as TFRecordOptions does")
    more.add_argument("--seed", type=int, default=_DEFAULT["seed"], metavar="N",
                      help="shuffle seed: equal input and seed give identical shards "
                           "(default: a random seed, recorded in the manifest)")
    more.add_argument("--quality", type=_quality, default=_DEFAULT["quality"], metavar="Q",
                      help="JPEG quality for converted images (default: %(default)s)")
    more.add_argument("--max-side", "--max_side", type=_positive_int,
                      default=_DEFAULT["max_side"],
                      metavar="PX", help="downscale images whose longer side exceeds PX")
    more.add_argument("--no-decode-check", dest="decode_check", action="store_false",
                      default=_DEFAULT["decode_check"],
                      help="do not decode each stored image to prove it decodes (faster)")
    more.add_argument("--validation", choices=("strict", "lenient", "off"),
                      default=_DEFAULT["validation"],
                      help="annotation checks (boxes in [0, 1] and not reversed, equal list "
                           "lengths, object/count, finite numbers, integer labels, unique "
                           "ids): strict fails the item, lenient writes it with a warning "
                           "(default: %(default)s)")
    more.add_argument("--validate-only", action="store_true",
                      help="check the items (annotations, ids, image paths) and write nothing; "
                           "exit status 1 when an item would fail")
    more.add_argument("--root", metavar="DIR", default=_DEFAULT["root"],
                      help="dataset root: relative filenames are read from DIR, and paths "
                           "that lead outside it are refused")
    more.add_argument("--resume", action="store_true", default=_DEFAULT["resume"],
                      help="finish an interrupted run in the output directory: keep its "
                           "complete shards, write the rest (same input and options; the "
                           "output is identical to an uninterrupted run)")
    more.add_argument("--restart", action="store_true",
                      help="start over where the output directory holds an interrupted run "
                           "of the prefix, discarding its complete shards (without --resume "
                           "or --restart, such a run is refused)")
    more.add_argument("--fsync", action="store_true", default=_DEFAULT["fsync"],
                      help="flush every shard, journal file and the manifest to the disk "
                           "before giving it its name: even a power failure leaves no "
                           "partial file under a final name (slower)")
    more.add_argument("-q", "--quiet", action="store_true",
                      help="no progress and no summary; errors only")
    more.add_argument("-v", "--verbose", action="store_true",
                      help="--runner beam: show Apache Beam's own log lines and its "
                           "workers' (hidden by default: a Beam run prints what a local "
                           "run prints)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrecord-lite",
        description="Turn image datasets into TFRecord files of tf.train.Example records, "
                    "without TensorFlow.",
        epilog="Without a command, the arguments are those of 'create' (the original "
               "create_tfrecords.py command line).",
    )
    parser.add_argument("--version", action="store_true",
                        help="print the version, the CRC32C backend and the image decoders, "
                        "then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    _add_create(sub)
    _add_readers(sub)
    _add_converters(sub)
    return parser


def _add_converters(sub: Any) -> None:
    def converter(name: str, help_text: str) -> Any:
        p = sub.add_parser(name, help=help_text, description=help_text + ". Writes shards "
                           "(with the create options) and the label map beside them, or, "
                           "with --to-json, the item list for editing.",
                           epilog="exit status: 0 all written, 1 some items or annotations "
                           "failed, 2 usage error, 3 output not writable")
        return p

    p = converter("from-coco", "convert a COCO instances JSON file")
    p.add_argument("annotations", metavar="INSTANCES.json")
    p.add_argument("--images", required=True, metavar="DIR", help="folder of the image files")
    p.add_argument("--drop-empty", action="store_true",
                   help="leave out images without annotations")
    _converter_options(p)
    p = converter("from-voc", "convert a Pascal VOC split")
    p.add_argument("source_dir", metavar="ROOT", help="folder with Annotations/, JPEGImages/, "
                   "ImageSets/Main/ (e.g. VOCdevkit/VOC2012)")
    p.add_argument("--split", default="train", help="ImageSets/Main/SPLIT.txt (default: train)")
    p.add_argument("--label-map", metavar="FILE", help="JSON list of class names in label "
                   "order, or a {label: name} object (default: sorted names found)")
    _converter_options(p)
    p = converter("from-folder", "convert image folders, one class per sub-folder")
    p.add_argument("source_dir", metavar="ROOT", help="folder with one sub-folder of images "
                   "per class")
    # A class label indexes a classifier's outputs: it counts from 0 (see the item format).
    _converter_options(p, label_offset=0)
    p = converter("from-caltech", "convert Caltech-style bbGt text annotations")
    p.add_argument("images", metavar="IMAGES", help="folder of the image files")
    p.add_argument("annotations", metavar="ANNOTATIONS",
                   help="folder of the .txt files, one per image, same name")
    _converter_options(p)
    p = converter("from-yolo", "convert YOLO text labels (an Ultralytics data.yaml, or the "
                  "Darknet obj.names + train.txt layout)")
    p.add_argument("yolo_root", metavar="ROOT", help="the dataset folder holding data.yaml "
                   "(or the YAML file itself), or the Darknet folder holding obj.names or "
                   "classes.txt")
    p.add_argument("--split", choices=("train", "val", "test"), default="train",
                   help="the split to convert (default: train)")
    p.add_argument("--drop-empty", action="store_true",
                   help="leave out background images (no label file, or no boxes)")
    _converter_options(p)
    p = converter("from-csv", "convert the Object Detection API tutorial CSV "
                  "(filename,width,height,class,xmin,ymin,xmax,ymax in pixels, one row per box)")
    p.add_argument("csv_file", metavar="FILE", help="the CSV file (the header gives the "
                   "column order)")
    p.add_argument("--images", dest="csv_images", required=True, metavar="DIR",
                   help="folder of the image files named in the filename column")
    p.add_argument("--label-map", metavar="FILE", help="JSON list of class names in label "
                   "order, or a {label: name} object (default: sorted names found)")
    _converter_options(p)


def _converter_options(p: Any, label_offset: int = 1) -> None:
    conv = p.add_argument_group("conversion")
    conv.add_argument("--to-json", metavar="FILE", help="write the items to FILE as JSON "
                      "instead of writing shards (then: create --dataset_path FILE)")
    if label_offset:
        offset_help = (f"store labels from K (default: {label_offset}, the ids of the "
                       "label_map.pbtxt written beside the shards: the Object Detection "
                       "API reserves 0 for the background; with 0, only label_map.json "
                       "is written)")
    else:
        offset_help = ("store labels from K (default: 0, the index of a classifier's "
                       "output; with K >= 1 a label_map.pbtxt is written too)")
    conv.add_argument("--label-offset", type=int, default=label_offset, metavar="K",
                      help=offset_help)
    files = p.add_argument_group("output (as for create)")
    _add_output_options(p, files)
    for action in files._group_actions:
        if action.dest in ("prefix", "output_dir"):
            action.required = False
    _add_runner_options(p)


def _add_readers(sub: Any) -> None:
    compression = {"choices": ("none", "gzip", "zlib"), "default": None,
                   "help": "the files' compression (default: detected per file)"}
    p = sub.add_parser("verify", help="check CRCs, Examples, images and the manifest",
                       description="Check every record of the files: both CRCs, that it "
                       "parses as an Example, that every scalar key is there with its type, "
                       "that the image decodes to image/width x image/height, and, when a "
                       "manifest lies beside the shards, the record counts and sha256.",
                       epilog="exit status: 0 all well, 1 problems found (each named with "
                       "file, record index and byte offset), 2 usage error")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--threads", type=_positive_int, default=min(4, os.cpu_count() or 1),
                   metavar="N", help="threads decoding images (default: min(4, CPUs))")
    p.add_argument("--no-decode", dest="decode", action="store_false",
                   help="skip decoding the images (CRCs and fields only; much faster)")
    p.add_argument("--compression", **compression)
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("inspect", help="print the first records, every key and value",
                       description="Print the first N records of the files (taken in "
                       "order), every key with its values; the image as its size, format "
                       "and dimensions.",
                       epilog="exit status: 0 printed, 1 a damaged file, 2 usage error")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-n", type=_positive_int, default=1, metavar="N",
                   help="records to show (default 1)")
    p.add_argument("--compression", **compression)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("stats", help="class histogram, box checks, keypoint counts",
                       description="Count images, boxes and classes over the files, check "
                       "the boxes as the original stat_tfrecords.py did (reversed, tiny, "
                       "object/count not matching, outside [0, 1]) and count keypoints by "
                       "visibility.",
                       epilog="exit status: 0 printed, 1 a damaged file, 2 usage error")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--compression", **compression)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("show", help="draw a record's boxes and keypoints on its image",
                       description="Draw a record's boxes with their text and its keypoints "
                       "(visible: filled dots, occluded: rings) on its image, or, with "
                       "--grid, the first N records of the files as one contact sheet.",
                       epilog="exit status: 0 written, 1 a damaged file, 2 usage error, 3 "
                       "the picture could not be written")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--index", type=int, default=0, metavar="I",
                   help="record number, counted over the files in order (default 0)")
    p.add_argument("--grid", type=_positive_int, default=None, metavar="N",
                   help="draw the first N records as one contact sheet instead")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="image to write")
    p.add_argument("--compression", **compression)

    p = sub.add_parser("index", help="write .FILE.idx (offset length per record) for each file",
                       description="Write .FILE.idx, hidden beside each plain TFRecord file "
                       "(so that the shard glob out/train-* never matches it): one "
                       "'offset length' line per record (length: the whole framed record), "
                       "the format of the tfrecord package and NVIDIA DALI, which take the "
                       "index path explicitly.",
                       epilog="exit status: 0 written, 1 a damaged file, 2 usage error, 3 "
                       "an index could not be written")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="write the index here instead (one FILE only)")

    for name in ("verify", "inspect", "stats", "show", "index"):
        sub.choices[name].add_argument(
            "--max-record-size", type=_byte_size, default=DEFAULT_MAX_RECORD_SIZE,
            metavar="BYTES", help="longest record accepted, e.g. 512M or 2G; a longer "
            "length field is reported as damage before anything is read (default: 256M)")


def _byte_size(text: str) -> int:
    """``1000``, ``512K``, ``512M``, ``2G`` (powers of 1024; ``MiB``/``MB`` spellings too)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    number = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = number[-1:] if number[-1:] in units else ""
    try:
        value = int(number[:len(number) - len(unit)]) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in bytes such as 512M, got "
                                         f"{text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte, got {text!r}")
    return value


def _write_failures(output_dir: str, prefix: str, failures: list[dict[str, Any]]) -> str:
    """Write ``{prefix}.failures.json`` whole (for the Beam runner: the local job writes
    its own); returns where it is."""
    from .job import failures_json  # the job core (Pillow): imported when a job runs

    out = storage.folder(output_dir)
    name = failures_name(prefix)
    try:
        out.write(name, failures_json(failures))
    except OSError as exc:
        raise WriteError(f"cannot write {out.location(name)}: {exc.strerror or exc}") from exc
    finally:
        out.close()
    return out.location(name)


def _remove_earlier_run(output_dir: str, prefix: str, keep: list[str]) -> None:
    """After a Beam run: the shards of an earlier run of the prefix go (as the local
    job does itself)."""
    from .job import remove_earlier_run

    out = storage.folder(output_dir)
    try:
        remove_earlier_run(out, prefix, keep)
    except OSError as exc:
        raise WriteError(f"cannot remove the shards of an earlier run of {prefix!r} in "
                         f"{out}: {exc.strerror or exc}") from exc
    finally:
        out.close()


def _failures_location(output_dir: str, prefix: str) -> str:
    out = storage.folder(output_dir)
    try:
        return out.location(failures_name(prefix))
    finally:
        out.close()


def _run_create(args: argparse.Namespace) -> int:
    try:
        dataset = open_dataset(args.dataset_path)
    except DatasetError as exc:
        hint = _converter_hint(args)
        if hint is None:
            raise
        raise UsageError(f"{exc}\n  {hint}") from exc
    return _write_shards(args, dataset)


def _converter_hint(args: argparse.Namespace) -> str | None:
    """When the dataset file that ``create`` refused is a COCO annotation file, the
    ``from-coco`` command that converts it (None otherwise). Runs only after the refusal,
    so reading the file again costs nothing on the way that works."""
    try:
        with storage.open_read(args.dataset_path) as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # the refusal said why; no hint
        return None
    if not (isinstance(data, dict) and "images" in data and "annotations" in data):
        return None
    return (f"{args.dataset_path} is a COCO annotation file (a JSON object with 'images' and "
            "'annotations'), not a list of items; convert it with: python -m tfrecord_lite "
            f"from-coco {args.dataset_path} --images IMAGE_DIR --prefix {args.prefix} "
            f"--output_dir {args.output_dir}")


def _print_problems(kind: str, messages: list[str], where: str | None) -> None:
    for message in messages[:_SHOWN_FAILURES]:
        print(f"  {message}", file=sys.stderr)
    if len(messages) > _SHOWN_FAILURES:
        more = f"; all are in {where}" if where else ""
        print(f"  ... and {len(messages) - _SHOWN_FAILURES} more {kind}{more}", file=sys.stderr)


def _validate_only(args: argparse.Namespace, dataset: Any) -> int:
    from .writer import validate_dataset  # the local runner (Pillow)

    report = validate_dataset(dataset, validation=args.validation, root=args.root,
                              store_images=args.store_images)
    if report.warnings:
        print(f"{len(report.warnings)} items have warnings (written in lenient mode):",
              file=sys.stderr)
        _print_problems("warnings", report.warnings, None)
    if report.failures:
        print(f"{len(report.failures)} of {report.total} items would fail:", file=sys.stderr)
        _print_problems("failures", [f["error_msg"] for f in report.failures], None)
    print(f"validated {report.total} items: {report.total - len(report.failures)} would be "
          f"written, {len(report.failures)} would fail, {len(report.warnings)} with warnings "
          f"({args.validation} mode); nothing was written", file=sys.stderr)
    return EXIT_FAILED_ITEMS if report.failures else EXIT_OK


def _run_beam(args: argparse.Namespace, dataset: Any) -> Any:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # importing Beam warns about cloud clients it does not need
    try:
        from . import beam
    except ImportError as exc:
        raise UsageError(f"--runner beam needs Apache Beam ({exc}): {BEAM_INSTALL} (or, "
                         f"in a clone of this repository, {BEAM_INSTALL_CLONE})") from exc
    finally:
        root.setLevel(level)
    # Beam's progress lines stay out of our output; a worker's error reaches us and is
    # printed once, without the tracebacks Beam logs for it.
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    for name in ("apache_beam.runners.common", "apache_beam.runners.worker"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    run = functools.partial(beam.run, dataset, args.prefix, args.output_dir, args.shards,
                            **_job_options(args).keywords(local=False),
                            beam_options=args.beam_options)
    if getattr(args, "verbose", False):
        logging.getLogger("apache_beam").setLevel(logging.INFO)
        return run()
    _warn_glob_clashes(args.output_dir, args.prefix)  # (the quiet run sets its log aside)
    summary = _quiet_beam(run)
    # The runner logged its summary with the lines set aside: it ends the output here,
    # as a local run's does.
    logging.getLogger("tfrecord_lite.beam").info("%s", summary.describe())
    return summary


def _warn_glob_clashes(output_dir: str, prefix: str) -> None:
    """Warn when another prefix in the output directory shares the shard glob."""
    from .job import warn_glob_clashes

    try:
        out = storage.folder(output_dir)
    except (OSError, TFRecordLiteError):
        return
    try:
        warn_glob_clashes(out, prefix)
    finally:
        out.close()


def _quiet_beam(run: Callable[[], Any]) -> Any:
    """Run a Beam pipeline with what Beam itself prints set aside: the lines of its
    worker processes (which write to this process's standard error, file descriptor 2),
    and the lines its runner logs for them. They go to a temporary file, named when the
    run fails (with -v they are shown)."""
    import tempfile

    handle, path = tempfile.mkstemp(prefix="tfrecord-lite-beam-", suffix=".log")
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(handle, 2)
    failed = True
    try:
        result = run()
        failed = False
        return result
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(handle)
        if failed:
            print(f"tfrecord-lite: Apache Beam's own log of this run: {path} (-v shows "
                  "it as it runs)", file=sys.stderr)
        else:
            os.remove(path)


def _job_options(args: argparse.Namespace) -> JobOptions:
    """The job options given on the command line (every field of JobOptions is a flag)."""
    return JobOptions(**{name: getattr(args, name) for name in _DEFAULT})


def _write_shards(args: argparse.Namespace, dataset: Any) -> int:
    from .writer import write_dataset  # the local runner (Pillow)

    if args.validate_only:
        return _validate_only(args, dataset)
    if args.resume and args.restart:
        raise UsageError("--resume keeps an interrupted run's shards, --restart discards "
                         "them: give one of them")
    if args.runner == "beam":
        if args.resume:
            raise UsageError("--resume is for the local runner (a Beam pipeline is retried "
                             "by its runner)")
        if args.fsync:
            raise UsageError("--fsync is for the local runner")
        summary = _run_beam(args, dataset)
        failures_path = _write_failures(args.output_dir, args.prefix, summary.failures)
        _remove_earlier_run(args.output_dir, args.prefix, [s.file for s in summary.shards])
    elif args.beam_options is not None:
        raise UsageError("--beam-options goes with --runner beam")
    else:
        try:
            summary = write_dataset(
                dataset, args.prefix, args.output_dir, args.shards, args.threads,
                **_job_options(args).keywords(), progress=not args.quiet,
                interrupted="restart" if args.restart else "refuse",
                num_processes=args.processes,
            )
        except InterruptedRunError as exc:
            raise UsageError(
                f"{args.output_dir} holds an interrupted run of {exc.name!r}: {exc.complete} "
                f"of {exc.total} shards are complete. To keep them, run the same command "
                f"with --resume: {_resume_command(args)}; to start over, add --restart "
                "instead.") from exc
        failures_path = _failures_location(args.output_dir, args.prefix)
    if summary.warnings and not args.quiet:
        print(f"{len(summary.warnings)} items were written with warnings (lenient "
              "validation):", file=sys.stderr)
        _print_problems("warnings", summary.warnings, None)
    if summary.failures:
        print(f"{summary.failed} of {summary.total} items failed and were not written; "
              f"they are listed in {failures_path}:", file=sys.stderr)
        _print_problems("failures", [f["error_msg"] for f in summary.failures], failures_path)
        return EXIT_FAILED_ITEMS
    return EXIT_OK


def _resume_command(args: argparse.Namespace) -> str:
    """The command line that was run, with --resume (and without --restart)."""
    argv = [a for a in getattr(args, "argv", []) if a != "--restart"]
    if "--resume" not in argv:
        argv.append("--resume")
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    prog = ["tfrecord-lite"] if program.startswith("tfrecord-lite") else [
        "python", "-m", "tfrecord_lite"]
    return shlex.join([*prog, *argv])


def _interrupted_message(args: argparse.Namespace | None) -> str:
    """After Ctrl-C: how many shards are complete, and the command that keeps them."""
    plain = "interrupted; no partial shard was left"
    prefix, output_dir = getattr(args, "prefix", None), getattr(args, "output_dir", None)
    if (args is None or not prefix or not output_dir or getattr(args, "validate_only", False)
            or getattr(args, "to_json", None) or getattr(args, "runner", "local") != "local"):
        return plain
    try:
        out = storage.folder(output_dir)
        try:
            found = journal.progress(out, prefix)
        finally:
            out.close()
    except (OSError, TFRecordLiteError):
        found = None
    if found is None:
        return plain
    complete, total = found
    message = (f"interrupted: {complete} of {total} shards of {prefix!r} are complete in "
               f"{output_dir}; no partial shard was left.")
    if complete:
        message += f" To keep them: {_resume_command(args)}"
    return message


def _expand_patterns(patterns: list[str]) -> list[str]:
    """The patterns expanded; a wildcard that matches nothing, or a directory, is a usage
    error naming it (a file that does not exist is left to the command: "cannot read")."""
    paths: list[str] = []
    for pattern in patterns:
        expanded = storage.expand([pattern])
        wildcard = any(c in pattern for c in "*?[")
        if wildcard and expanded == [pattern] and not storage.is_file(pattern):
            raise UsageError(f"{pattern}: no file matches this pattern")
        folders = [p for p in expanded if not storage.is_url(p) and os.path.isdir(p)]
        if folders and not wildcard:
            where = pattern.rstrip("/" + os.sep) or pattern
            raise UsageError(f"{pattern} is a directory: give its files, e.g. {where}/* or "
                             f"{where}/PREFIX-*")
        if folders:  # out/* also matches the folders of other datasets (out/coco)
            print(f"skipped {_count(len(folders), 'folders')}: {', '.join(folders)}",
                  file=sys.stderr)
        paths += [p for p in expanded if p not in folders]
    return paths


def _shard_paths(patterns: list[str]) -> list[str]:
    """The files the reader commands read: the patterns expanded, less the files a job
    writes beside its shards (manifest, failures, label maps, ``.idx``), which a user's
    ``out/*`` also matches. Those are skipped with a note on stderr (``verify`` still
    checks the manifest, which it finds itself)."""
    shards: list[str] = []
    skipped: list[str] = []
    for path in _expand_patterns(patterns):
        name = storage.split(path)[1]
        if is_side_file(name):
            skipped.append(name)
        else:
            shards.append(path)
    if skipped:
        what = "file that is not a shard" if len(skipped) == 1 else "files that are not shards"
        print(f"skipped {len(skipped)} {what}: {', '.join(skipped)}", file=sys.stderr)
    if not shards:
        raise UsageError(f"no shard files among {' '.join(patterns)}")
    return shards


def _count(n: int, noun: str) -> str:
    """``1 file``, ``2 files``: ``noun`` is the plural phrase, its first word made singular
    for one (``boxes dropped`` -> ``1 box dropped``)."""
    return count_phrase(n, noun)


def _run_verify(args: argparse.Namespace) -> int:
    report = verify_files(_shard_paths(args.files), args.threads, args.decode,
                          args.compression, args.max_record_size)
    if args.json:
        print(json.dumps(report_dict(report), indent=2))
    else:
        for problem in report.problems:
            print(f"PROBLEM {problem}")
        print(f"{'OK' if report.ok else 'FAILED'}: {report.files} files, {report.records} "
              f"records, {report.images} images decoded, {len(report.problems)} problems")
    return EXIT_OK if report.ok else EXIT_FAILED_ITEMS


def _summarize(key: str, values: list[Any]) -> Any:
    if key == "image/encoded" and values and isinstance(values[0], bytes):
        from PIL import Image

        data = values[0]
        try:
            with Image.open(io.BytesIO(data)) as im:
                return f"<{len(data):,} bytes, {im.format} {im.width}x{im.height} {im.mode}>"
        except (OSError, ValueError, Image.DecompressionBombError):  # not opened as an image
            return f"<{len(data):,} bytes, not an image Pillow reads>"
    out = [v.decode("utf-8", "replace") if isinstance(v, bytes)
           else float(f"{v:.7g}") if isinstance(v, float) else v for v in values]
    field = RECORD_FIELDS.get(key)
    return out[0] if field is not None and not field.is_list and len(out) == 1 else out


def _run_inspect(args: argparse.Namespace) -> int:
    shown: list[dict[str, Any]] = []
    where: list[str] = []
    for path in _shard_paths(args.files):
        for n, offset, data in read_framed(path, args.compression,
                                           max_record_size=args.max_record_size):
            if len(shown) >= args.n:
                break
            feats = parse_record(data, path, n, offset).features.feature
            shown.append({key: _summarize(key, feature_values(feats[key])[1])
                          for key in sorted(feats)})
            where.append(f"record {n} of {path}")
        if len(shown) >= args.n:
            break
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        for record, place in zip(shown, where):
            print(f"--- {place}")
            width = max(map(len, record), default=0)
            for key, value in record.items():
                print(f"{key:<{width}}  {value}")
    return EXIT_OK


def _run_stats(args: argparse.Namespace) -> int:
    result = stats(_shard_paths(args.files), args.compression,
                   max_record_size=args.max_record_size)
    if args.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    print(f"images: {result['images']}, boxes: {result['boxes']}")
    print("classes: " + (", ".join(f"{k}: {v}" for k, v in result["classes"].items())
                         or "(no class labels)"))
    if result["missing_classes"]:
        print(f"classes missing in [0, max]: {result['missing_classes']}")
    if result["box_labels"]:
        named = {k: f"{k} ({v['text']})" if v["text"] else k
                 for k, v in result["box_labels"].items()}
        print("box labels: " + ", ".join(f"{named[k]}: {v['boxes']}"
                                         for k, v in result["box_labels"].items()))
    for name, check in result["box_checks"].items():
        examples = f" (e.g. ids {', '.join(check['examples'])})" if check["examples"] else ""
        print(f"images with {name} boxes: {check['images']}{examples}")
    for name in ("box_width", "box_height"):
        s = result[name]
        if s:
            print(f"{name.replace('_', ' ')} (normalized): min {s['min']:.3f}, "
                  f"mean {s['mean']:.3f}, max {s['max']:.3f}")
    vis = result["keypoint_visibility"]
    if vis:
        print("keypoints by visibility: " + ", ".join(f"v={k}: {n}" for k, n in vis.items()))
    return EXIT_OK


def _run_show(args: argparse.Namespace) -> int:
    from .preview import contact_sheet, draw  # Pillow

    paths = _shard_paths(args.files)
    files = "the file holds" if len(paths) == 1 else "the files hold"
    if args.grid:
        items = []
        for item in iterate(paths, args.compression, max_record_size=args.max_record_size):
            items.append(item)
            if len(items) >= args.grid:
                break
        if not items:
            raise UsageError(f"no records to draw ({files} none)")
        image = contact_sheet(items)
        drawn = (_count(len(items), "records") if len(items) == args.grid else
                 f"{len(items)} of {_count(args.grid, 'records')} ({files} {len(items)})")
    else:
        if args.index < 0:
            raise UsageError("--index must be >= 0")
        seen = 0
        for seen, item in enumerate(iterate(paths, args.compression,  # noqa: B007
                                            max_record_size=args.max_record_size), 1):
            if seen - 1 == args.index:
                image = draw(item)
                break
        else:
            raise UsageError(f"there is no record {args.index} ({files} {seen})")
        drawn = f"record {args.index} (id {item.get('id')!r})"
    try:
        image.save(args.output)
    except (OSError, ValueError) as exc:
        raise WriteError(f"cannot write {args.output}: {exc}") from exc
    print(f"wrote {args.output}: {drawn}, {image.width}x{image.height} px")
    return EXIT_OK


def _run_index(args: argparse.Namespace) -> int:
    paths = _shard_paths(args.files)
    if args.output is not None and len(paths) != 1:
        raise UsageError(f"--output takes one FILE, got {len(paths)}: {' '.join(paths)}")
    for path in paths:
        if storage.is_url(path):
            raise UsageError(f"{path}: index writes .FILE.idx beside each file, so it needs "
                             "local files (copy the shards first)")
        target = args.output or default_index_path(path)
        try:
            target = write_index(path, target, max_record_size=args.max_record_size)
        except FileNotFoundError:
            if os.path.exists(path):  # the index's directory, not the shard
                raise WriteError(f"cannot write {target}: no such directory") from None
            raise
        except OSError as exc:
            raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from exc
        print(f"wrote {target}")
    return EXIT_OK


# Each converter's input paths, as (dest, how the help names it, "file" or "dir"). They are
# checked before any work (a missing one is a usage error naming it) and made absolute, so
# a relative path is read from the current directory whatever --root says, and the items
# of --to-json work from any directory.
CONVERTER_INPUTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "from-coco": (("annotations", "INSTANCES.json", "file"), ("images", "--images", "dir")),
    "from-voc": (("source_dir", "ROOT", "dir"),),
    "from-folder": (("source_dir", "ROOT", "dir"),),
    "from-caltech": (("images", "IMAGES", "dir"), ("annotations", "ANNOTATIONS", "dir")),
    "from-yolo": (("yolo_root", "ROOT", "path"),),  # the dataset folder or its YAML file
    "from-csv": (("csv_file", "FILE", "file"), ("csv_images", "--images", "dir")),
}
_IS_KIND = {"file": os.path.isfile, "dir": os.path.isdir, "path": os.path.exists}
_KIND_NAME = {"file": "file", "dir": "directory", "path": "file or directory"}


def _check_inputs(args: argparse.Namespace) -> None:
    """Check and resolve the converter's input paths (see ``CONVERTER_INPUTS``).

    Raises:
        UsageError: a path does not exist or is not the kind of file expected.
    """
    for dest, name, kind in CONVERTER_INPUTS.get(args.command, ()):
        path = getattr(args, dest)
        if storage.is_url(path):
            continue  # read through fsspec; its own errors name it
        if not os.path.exists(path):
            raise UsageError(f"{args.command} {name}: no such {_KIND_NAME[kind]}: {path}")
        if not _IS_KIND[kind](path):
            raise UsageError(f"{args.command} {name}: not a {_KIND_NAME[kind]}: {path}")
        setattr(args, dest, os.path.abspath(path))


def _label_names(args: argparse.Namespace) -> list[str] | None:
    """The class names of ``--label-map``, in label order: a JSON list of names, or a
    ``{label: name}`` object; None without the flag.

    Raises:
        OSError: the file cannot be read.
        ValueError: not JSON, or a label that is not a number.
    """
    if not args.label_map:
        return None
    with open(args.label_map, encoding="utf-8") as f:
        loaded = json.load(f)
    if isinstance(loaded, dict):
        return [str(loaded[k]) for k in sorted(loaded, key=int)]
    return [str(name) for name in loaded]


def _make_converter(args: argparse.Namespace) -> Any:
    from .converters.caltech import CaltechConverter  # Pillow
    from .converters.coco import CocoConverter
    from .converters.folder import FolderConverter
    from .converters.voc import VocConverter

    offset = args.label_offset
    if args.command in ("from-yolo", "from-csv"):
        return _make_text_converter(args, offset)
    try:
        if args.command == "from-coco":
            return CocoConverter(args.annotations, args.images, args.drop_empty, offset)
        if args.command == "from-voc":
            return VocConverter(args.source_dir, args.split, _label_names(args), offset)
        if args.command == "from-folder":
            return FolderConverter(args.source_dir, offset)
        return CaltechConverter(args.images, args.annotations, offset)
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(str(exc)) from exc


def _make_text_converter(args: argparse.Namespace, offset: int) -> Any:
    """from-yolo and from-csv: their paths resolve against the current directory, and a
    missing ROOT, FILE or --images folder is a usage error before anything is read."""
    from .converters.odcsv import OdCsvConverter  # Pillow
    from .converters.yolo import YoloConverter

    try:
        if args.command == "from-yolo":
            return YoloConverter(args.yolo_root, args.split, args.drop_empty, offset)
        return OdCsvConverter(args.csv_file, args.csv_images, _label_names(args), offset)
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror or exc}") from exc
    except (DatasetError, ValueError, TypeError) as exc:
        raise UsageError(f"{args.command}: {exc}") from exc


def _write_label_maps(output_dir: str, labels: list[str], offset: int) -> list[str]:
    """Write ``label_map.json`` and, when the labels start at 1 or more, the Object
    Detection API's ``label_map.pbtxt`` (the API reserves id 0 for the background, so a
    pbtxt of labels from 0 would not agree with the records). Returns the names written."""
    files = {"label_map.json": json.dumps(label_map_json(labels, offset), indent=1) + "\n"}
    if offset >= 1:
        files["label_map.pbtxt"] = label_map_pbtxt(labels, offset)
    out = storage.folder(output_dir)
    try:
        out.makedirs()
        for name, text in files.items():
            out.write(name, text.encode())
    except OSError as exc:
        raise WriteError(f"cannot write the label map: {exc.strerror or exc}") from exc
    finally:
        out.close()
    return list(files)


def _check_label_map(args: argparse.Namespace, labels: list[str]) -> None:
    """Refuse a conversion whose labels differ from the ``label_map.json`` that the output
    folder holds for shards of another prefix (``train`` beside a new ``val``): the one
    label map left would contradict the other prefix's records.

    Raises:
        UsageError: the folder's label map is another one, and other shards use it.
    """
    from .converters import label_map_json

    out = storage.folder(args.output_dir)
    try:
        existing = out.read("label_map.json")
        others = sorted({parsed[0] for parsed in map(sharding.parse_shard_name, out.names(""))
                         if parsed is not None and parsed[0] != args.prefix})
    finally:
        out.close()
    if existing is None or not others:
        return
    try:
        old = json.loads(existing)
    except ValueError:
        old = None
    new = label_map_json(labels, args.label_offset)
    if old != new:
        def shown(mapping: Any) -> str:
            if not isinstance(mapping, dict):
                return "unreadable"
            return ", ".join(f"{k}: {v}" for k, v in list(mapping.items())[:6]) + (
                ", ..." if len(mapping) > 6 else "")

        raise UsageError(
            f"{out.location('label_map.json')} maps the labels of {', '.join(others)} "
            f"({shown(old)}), and this conversion's differ ({shown(new)}): one label map "
            "cannot describe both. Convert with the same classes in the same order "
            "(--label-map FILE where the converter takes it, the same --label-offset), or "
            "write to another --output_dir")


def _run_convert(args: argparse.Namespace) -> int:
    if not args.to_json and (not args.prefix or not args.output_dir):
        raise UsageError("--prefix and --output_dir are required (or give --to-json)")
    _check_inputs(args)
    converter = _make_converter(args)
    if args.to_json:
        items = list(converter)
        try:
            with open(args.to_json, "w", encoding="utf-8") as f:
                json.dump(items, f, indent=1)
                f.write("\n")
        except OSError as exc:
            raise WriteError(f"cannot write {args.to_json}: {exc.strerror or exc}") from exc
        status = EXIT_OK
        print(f"wrote {_count(len(items), 'items')} to {args.to_json}", file=sys.stderr)
    else:
        if not args.validate_only:
            _check_label_map(args, converter.labels)
        status = _write_shards(args, converter)
        if not args.validate_only:
            written = _write_label_maps(args.output_dir, converter.labels, args.label_offset)
            if "label_map.pbtxt" not in written and not args.quiet:
                print(f"no label_map.pbtxt written: the labels start at {args.label_offset}, "
                      "and the Object Detection API reserves id 0 for the background "
                      "(--label-offset 1 stores labels from 1 and writes it)",
                      file=sys.stderr)
    counts = ", ".join(_count(n, what) for what, n in sorted(converter.report.items()))
    print(f"{args.command}: {_count(len(converter.labels), 'classes')}; {counts}",
          file=sys.stderr)
    for problem in converter.problems[:_SHOWN_FAILURES]:
        print(f"  problem: {problem}", file=sys.stderr)
    if len(converter.problems) > _SHOWN_FAILURES:
        print(f"  ... and {len(converter.problems) - _SHOWN_FAILURES} more", file=sys.stderr)
    return EXIT_FAILED_ITEMS if converter.problems and status == EXIT_OK else status


RUNNERS = {"create": _run_create, "from-coco": _run_convert, "from-voc": _run_convert,
           "from-folder": _run_convert, "from-caltech": _run_convert,
           "from-yolo": _run_convert, "from-csv": _run_convert, "verify": _run_verify,
           "inspect": _run_inspect, "stats": _run_stats, "show": _run_show, "index": _run_index}


# A user's mistake or a damaged file -> a message and an exit status, never a traceback.
# Anything else is a bug: its traceback is printed, then an internal-error line (70).
EXIT_FOR: tuple[tuple[type[BaseException], int], ...] = (
    (UsageError, EXIT_USAGE),
    (FileNotFoundError, EXIT_USAGE),
    (RecordError, EXIT_FAILED_ITEMS),
    (ImageError, EXIT_FAILED_ITEMS),  # an image in a shard (show) that does not decode
    (WriteError, EXIT_WRITE),
    (TFRecordLiteError, EXIT_USAGE),
    (OSError, EXIT_USAGE),  # an input file that cannot be read (output errors: WriteError)
)
_HANDLED = tuple(kind for kind, _ in EXIT_FOR)


def _message(exc: BaseException) -> str:
    """The error line's text for one of the errors of ``EXIT_FOR``."""
    if isinstance(exc, FileNotFoundError):  # fsspec gives the path as the only argument
        return f"no such file: {exc.filename or (exc.args[0] if exc.args else '')}"
    if type(exc) is not WriteError and isinstance(exc, OSError) and exc.filename:
        return f"cannot read {exc.filename}: {exc.strerror or exc}"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    given = list(args_list)
    legacy = bool(args_list and args_list[0].startswith("-") and args_list[0] not in (
        "-h", "--help", "--version"))
    if legacy:
        args_list.insert(0, "create")  # the original tool's command line
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse has printed the problem (or the help)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    args.argv = given
    if getattr(args, "store_images", False) is None:
        # The original stores images only with --store_images; the commands store them.
        args.store_images = not legacy
    if args.version:
        print(f"tfrecord-lite {__version__} ({chosen().report()})")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    try:
        return RUNNERS[args.command](args)
    except BrokenPipeError:  # the output's reader stopped (`| head`): nothing to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit's flush is quiet too
        return EXIT_PIPE
    except _HANDLED as exc:
        print(f"tfrecord-lite: error: {_message(exc)}", file=sys.stderr)
        return next(code for kind, code in EXIT_FOR if isinstance(exc, kind))
    except KeyboardInterrupt:
        print(f"tfrecord-lite: {_interrupted_message(args)}", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: shown whole, never as a user's mistake
        traceback.print_exc()
        print(f"tfrecord-lite: internal error: {type(exc).__name__}: {exc}; please report "
              "it, with the traceback above", file=sys.stderr)
        return EXIT_INTERNAL
