"""The converter commands: ``from-coco``, ``from-voc``, ``from-folder``, ``from-caltech``,
``from-yolo``, ``from-csv``, ``from-segmentation``. Each reads a dataset layout through
its converter (``converters``) and writes shards with the ``create`` options, plus the
label map beside them (``converters.label_map``); or, with ``--to-json``, the item list
for editing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .. import storage
from ..converters import label_map
from ..errors import DatasetError, write_errors
from .common import (
    SHOWN_FAILURES,
    UsageError,
    add_output_options,
    add_runner_options,
    count,
    failure_status,
    failures_location,
    run_job,
)


def register(sub: Any) -> None:
    """Add the converter commands (``from-coco``, ``from-voc``, ...) to ``sub``."""
    def converter(name: str, help_text: str) -> Any:
        p = sub.add_parser(name, help=help_text, description=help_text + ". Writes shards "
                           "(with the create options) and the label map beside them, or, "
                           "with --to-json, the item list for editing.",
                           epilog="exit status: 0 all written, 1 some items or annotations "
                           "failed (beyond --max-failures), 2 usage error, 3 output not "
                           "writable")
        p.set_defaults(run=_run_convert, images_from=IMAGES_FROM[name])
        return p

    p = converter("from-coco", "convert a COCO instances JSON file")
    p.add_argument("annotations", metavar="INSTANCES.json")
    p.add_argument("--images", required=True, metavar="DIR", help="folder of the image files")
    p.add_argument("--drop-empty", action="store_true",
                   help="leave out images without annotations (default: kept, with no "
                        "boxes)")
    p.add_argument("--include-masks", action="store_true",
                   help="store each object's segmentation (polygons, RLE, crowd RLE) as "
                   "its mask, image/object/mask: one PNG of 0 and 1 per object")
    _converter_options(p)
    p = converter("from-voc", "convert a Pascal VOC split")
    p.add_argument("source_dir", metavar="ROOT", help="folder with Annotations/, JPEGImages/, "
                   "ImageSets/Main/ (e.g. VOCdevkit/VOC2012)")
    p.add_argument("--split", default="train", help="ImageSets/Main/SPLIT.txt (default: train)")
    p.add_argument("--segmentation", action="store_true",
                   help="convert the segmentation split instead: the images of "
                   "ImageSets/Segmentation/SPLIT.txt, each with its label image "
                   "SegmentationClass/ID.png as image/segmentation/class/encoded")
    _converter_options(p, default_labels="sorted names found")
    p = converter("from-folder", "convert image folders, one class per sub-folder")
    p.add_argument("source_dir", metavar="ROOT", help="folder with one sub-folder of images "
                   "per class")
    # A class label indexes a classifier's outputs: it counts from 0 (see the item format).
    _converter_options(p, label_offset=0, default_labels="sorted sub-folder names")
    p = converter("from-caltech", "convert Caltech-style bbGt text annotations")
    p.add_argument("images", metavar="IMAGES", help="folder of the image files")
    p.add_argument("annotations", metavar="ANNOTATIONS",
                   help="folder of the .txt files, one per image, same name")
    _converter_options(p, default_labels="sorted names found")
    p = converter("from-yolo", "convert YOLO text labels (an Ultralytics data.yaml, or the "
                  "Darknet obj.names + train.txt layout)")
    p.add_argument("yolo_root", metavar="ROOT", help="the dataset folder holding data.yaml "
                   "(or the YAML file itself), or the Darknet folder holding obj.names or "
                   "classes.txt")
    p.add_argument("--split", choices=("train", "val", "test"), default="train",
                   help="the split to convert (default: train)")
    p.add_argument("--drop-empty", action="store_true",
                   help="leave out background images (no label file, or no boxes; "
                        "default: kept, with no boxes)")
    p.add_argument("--include-masks", action="store_true",
                   help="store each polygon (segmentation) line as its object's mask, "
                   "image/object/mask, besides its box")
    _converter_options(p, default_labels="the class ids of names, as they are")
    p = converter("from-csv", "convert the Object Detection API tutorial CSV "
                  "(filename,width,height,class,xmin,ymin,xmax,ymax in pixels, one row per box)")
    p.add_argument("csv_file", metavar="FILE", help="the CSV file (the header gives the "
                   "column order)")
    p.add_argument("--images", dest="csv_images", required=True, metavar="DIR",
                   help="folder of the image files named in the filename column")
    _converter_options(p, default_labels="sorted names found")
    p = converter("from-segmentation", "convert images paired with label images of class "
                  "ids (semantic segmentation), matched by file name")
    p.add_argument("images", metavar="IMAGES", help="folder of the images (with sub-folders)")
    p.add_argument("labels", metavar="LABELS", help="folder of the label images, in the same "
                   "sub-folders: PNG of class ids, or palette PNG whose indices are the ids")
    p.add_argument("--label-suffix", default="", metavar="TEXT",
                   help="the label image of a.jpg is aTEXT.* (default: a.*, any extension)")
    _converter_options(p, label_offset=None)



def _converter_options(p: Any, label_offset: int | None = 1,
                       default_labels: str = "the categories in ascending id order") -> None:
    conv = p.add_argument_group("conversion")
    conv.add_argument("--to-json", metavar="FILE", help="write the items to FILE as JSON "
                      "instead of writing shards (then: create --dataset_path FILE)")
    if label_offset is None:  # no labels: a label image's pixels are its class ids
        conv.set_defaults(label_offset=0, label_map=None)
    else:
        conv.add_argument("--label-map", metavar="FILE",
                          help="the class names in label order: a JSON list of names, or a "
                               "{label: name} object such as the label_map.json written "
                               "beside the shards of another split, so that both store the "
                               "same labels; a class not in it is reported and left out "
                               f"(default: {default_labels})")
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
    add_output_options(p, files)
    for action in files._group_actions:
        if action.dest in ("prefix", "output_dir"):
            action.required = False
    add_runner_options(p)


# Where each converter's image paths come from, as its help names it: what a run whose
# images are not found should check (``common.paths_hint``).
IMAGES_FROM = {"from-coco": "--images", "from-voc": "ROOT (its JPEGImages/)",
               "from-folder": "ROOT", "from-caltech": "IMAGES",
               "from-yolo": "ROOT (the image folders or lists its data.yaml or train.txt "
                            "names)", "from-csv": "--images", "from-segmentation": "IMAGES"}

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
    "from-segmentation": (("images", "IMAGES", "dir"), ("labels", "LABELS", "dir")),
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


def _make_converter(args: argparse.Namespace) -> Any:
    from ..converters.caltech import CaltechConverter  # Pillow
    from ..converters.coco import CocoConverter
    from ..converters.folder import FolderConverter
    from ..converters.voc import VocConverter

    offset, root = args.label_offset, args.root
    if args.command in ("from-yolo", "from-csv", "from-segmentation"):
        return _make_text_converter(args, offset)
    try:
        names = label_map.read_names(args.label_map)
        if args.command == "from-coco":
            return CocoConverter(args.annotations, args.images, args.drop_empty, offset,
                                 names, include_masks=args.include_masks, dataset_root=root)
        if args.command == "from-voc":
            return VocConverter(args.source_dir, args.split, names, offset,
                                segmentation=args.segmentation, dataset_root=root)
        if args.command == "from-folder":
            return FolderConverter(args.source_dir, offset, names, dataset_root=root)
        return CaltechConverter(args.images, args.annotations, offset, names,
                                dataset_root=root)
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(str(exc)) from exc


def _make_text_converter(args: argparse.Namespace, offset: int) -> Any:
    """from-yolo, from-csv and from-segmentation: their paths resolve against the current
    directory, and a missing input is a usage error before anything is read."""
    from ..converters.odcsv import OdCsvConverter  # Pillow
    from ..converters.segmentation import SegmentationConverter
    from ..converters.yolo import YoloConverter

    try:
        names = label_map.read_names(args.label_map)
        if args.command == "from-yolo":
            return YoloConverter(args.yolo_root, args.split, args.drop_empty, offset, names,
                                 include_masks=args.include_masks, dataset_root=args.root)
        if args.command == "from-segmentation":
            return SegmentationConverter(args.images, args.labels, args.label_suffix,
                                         dataset_root=args.root)
        return OdCsvConverter(args.csv_file, args.csv_images, names, offset,
                              dataset_root=args.root)
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror or exc}") from exc
    except (DatasetError, ValueError, TypeError) as exc:
        raise UsageError(f"{args.command}: {exc}") from exc


def _write_label_maps(output_dir: str, labels: list[str], offset: int) -> list[str]:
    """Write the label map files beside the shards (see ``converters.label_map``);
    returns their names.

    Raises:
        WriteError: a file could not be written.
    """
    files = label_map.files(labels, offset)
    with storage.folder(output_dir) as out, write_errors("cannot write the label map"):
        out.makedirs()
        for name, text in files.items():
            out.write(name, text.encode())
    return list(files)


def _run_convert(args: argparse.Namespace) -> int:
    if not args.to_json and (not args.prefix or not args.output_dir):
        raise UsageError("--prefix and --output_dir are required (or give --to-json)")
    _check_inputs(args)
    converter = _make_converter(args)
    converter.keep_rejected = args.validation != "strict"
    published = False
    if args.to_json:
        items = list(converter)
        with write_errors(f"cannot write {args.to_json}"), open(args.to_json, "w",
                                                                encoding="utf-8") as f:
            json.dump(items, f, indent=1)
            f.write("\n")
        if not args.quiet:
            print(f"wrote {count(len(items), 'items')} to {args.to_json}", file=sys.stderr)
    else:
        if not args.validate_only and converter.label_map:
            label_map.check_folder(args.output_dir, args.prefix, converter.labels,
                                   args.label_offset)
        status, published = run_job(args, converter, converter.problems)
        # Only beside a dataset this run published: a run that published nothing leaves
        # an earlier run's files, label maps included, as they were.
        if published and converter.label_map:
            written = _write_label_maps(args.output_dir, converter.labels, args.label_offset)
            if label_map.PBTXT_NAME not in written and not args.quiet:
                print(f"no label_map.pbtxt written: the labels start at {args.label_offset}, "
                      "and the Object Detection API reserves id 0 for the background "
                      "(--label-offset 1 stores labels from 1 and writes it)",
                      file=sys.stderr)
    counts = ", ".join(count(n, what) for what, n in sorted(converter.report.items()))
    classes = f"{count(len(converter.labels), 'classes')}; " if converter.label_map else ""
    if not args.quiet:  # -q: errors only (the problems below)
        print(f"{args.command}: {classes}{counts}", file=sys.stderr)
        for note in converter.notes:
            print(f"  note: {note}", file=sys.stderr)
    for problem in converter.problems[:SHOWN_FAILURES]:
        print(f"  problem: {problem}", file=sys.stderr)
    if len(converter.problems) > SHOWN_FAILURES:
        listed = ("" if args.to_json or args.validate_only or args.runner == "beam"
                  else "; all are listed in "
                  + failures_location(args.output_dir, args.prefix, published))
        print(f"  ... and {count(len(converter.problems) - SHOWN_FAILURES, 'more problems')}"
              f"{listed}", file=sys.stderr)
    left_out = converter.report["images left out (rejected annotations)"]
    if left_out:
        print(f"{count(left_out, 'images were')} left out for annotations that cannot be "
              "converted; --validation lenient writes them without those annotations",
              file=sys.stderr)
    if args.to_json:
        return failure_status(args, len(converter.problems), len(items))
    return status
