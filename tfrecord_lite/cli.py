"""The command line: ``python -m tfrecord_lite`` / ``tfrecord-lite``.

The only module that prints or picks exit statuses:

* 0: every item was written;
* 1: some items failed (they are listed in ``{output_dir}/{prefix}-failures.json``);
* 2: usage error (bad flag, unreadable or malformed dataset file);
* 3: the output could not be written (nothing partial is left under a shard name).

The original tool's flags work unchanged, with or without the ``create`` word::

    python -m tfrecord_lite --dataset_path train.json --prefix train --output_dir out \\
        --shards 10 --threads 5 --shuffle --store_images
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__, storage
from .errors import ImageError, RecordError, TFRecordLiteError, WriteError
from .framing import DEFAULT_MAX_RECORD_SIZE

EXIT_OK, EXIT_FAILED_ITEMS, EXIT_USAGE, EXIT_WRITE = 0, 1, 2, 3
_SHOWN_FAILURES = 10


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


def _add_create(sub: Any) -> None:
    p = sub.add_parser(
        "create",
        help="write a dataset (JSON list of items) as sharded TFRecord files",
        description="Write the items of a JSON (or JSON Lines) dataset file as sharded "
                    "TFRecord files of tf.train.Example records.",
        epilog="exit status: 0 all written, 1 some items failed (see "
               "{output_dir}/{prefix}-failures.json), 2 usage error, 3 output not writable",
    )
    io = p.add_argument_group("input and output (the original tool's flags)")
    io.add_argument("--dataset_path", "--dataset-path", required=True, metavar="FILE",
                    help="JSON file holding a list of item dicts (.jsonl: one item per line)")
    _add_output_options(p, io)
    _add_runner_options(p)


def _add_runner_options(p: Any) -> None:
    beam = p.add_argument_group("Apache Beam (pip install 'tfrecord-lite-writer[beam]')")
    beam.add_argument("--runner", choices=("local", "beam"), default="local",
                      help="local: threads in this process (default); beam: an Apache Beam "
                           "pipeline, which ignores --threads and spreads items over shards "
                           "by a seeded hash (records are the same)")
    beam.add_argument("--beam-options", "--beam_options", default=None, metavar="'FLAGS'",
                      help="Beam pipeline options, one quoted string, e.g. --beam-options="
                           "'--direct_num_workers=2 --direct_running_mode=multi_processing' "
                           "or '--runner=DataflowRunner --project=P --region=R ...' "
                           "(default: the DirectRunner)")


def _add_output_options(p: Any, io: Any) -> None:
    """The shard-writing options shared by create and the from-* converters."""
    io.add_argument("--prefix", required=True, metavar="NAME",
                    help="shard name prefix, e.g. train -> train-00000-of-00010")
    io.add_argument("--output_dir", "--output-dir", required=True, metavar="DIR",
                    help="directory for the shards (created when missing)")
    io.add_argument("--shards", type=_positive_int, default=1, metavar="N",
                    help="number of shard files (default: 1)")
    io.add_argument("--threads", type=_positive_int, default=min(4, os.cpu_count() or 1),
                    metavar="N", help="worker threads (default: min(4, CPUs))")
    io.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=False,
                    help="write the items in a seeded random order (default: input order)")
    io.add_argument("--store_images", "--store-images", action=argparse.BooleanOptionalAction,
                    default=True, help="store the image bytes in image/encoded (default: yes)")
    more = p.add_argument_group("options")
    more.add_argument("--compression", choices=("none", "gzip", "zlib"), default="none",
                      help="compress each shard as a whole, as TFRecordOptions does")
    more.add_argument("--seed", type=int, default=None, metavar="N",
                      help="shuffle seed: equal input and seed give identical shards "
                           "(default: a random seed, recorded in the manifest)")
    more.add_argument("--quality", type=_quality, default=95, metavar="Q",
                      help="JPEG quality for converted images (default: 95)")
    more.add_argument("--max-side", "--max_side", type=_positive_int, default=None,
                      metavar="PX", help="downscale images whose longer side exceeds PX")
    more.add_argument("--no-decode-check", dest="decode_check", action="store_false",
                      help="do not decode each stored image to prove it decodes (faster)")
    more.add_argument("--validation", choices=("strict", "lenient", "off"), default="strict",
                      help="annotation checks (boxes in [0, 1] and not reversed, equal list "
                           "lengths, object/count, finite numbers, integer labels, unique "
                           "ids): strict fails the item, lenient writes it with a warning "
                           "(default: strict)")
    more.add_argument("--validate-only", action="store_true",
                      help="check the items (annotations, ids, image paths) and write nothing; "
                           "exit status 1 when an item would fail")
    more.add_argument("--root", metavar="DIR", default=None,
                      help="dataset root: relative filenames are read from DIR, and paths "
                           "that lead outside it are refused")
    more.add_argument("--resume", action="store_true",
                      help="finish an interrupted run in the output directory: keep its "
                           "complete shards, write the rest (same input and options; the "
                           "output is identical to an uninterrupted run)")
    more.add_argument("--fsync", action="store_true",
                      help="flush every shard, journal file and the manifest to the disk "
                           "before giving it its name: even a power failure leaves no "
                           "partial file under a final name (slower)")
    more.add_argument("-q", "--quiet", action="store_true",
                      help="no progress and no summary; errors only")


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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    p.add_argument("root", metavar="ROOT", help="folder with Annotations/, JPEGImages/, "
                   "ImageSets/Main/ (e.g. VOCdevkit/VOC2012)")
    p.add_argument("--split", default="train", help="ImageSets/Main/SPLIT.txt (default: train)")
    p.add_argument("--label-map", metavar="FILE", help="JSON list of class names in label "
                   "order, or a {label: name} object (default: sorted names found)")
    _converter_options(p)
    p = converter("from-folder", "convert image folders, one class per sub-folder")
    p.add_argument("root", metavar="ROOT")
    _converter_options(p)
    p = converter("from-caltech", "convert Caltech-style bbGt text annotations")
    p.add_argument("images", metavar="IMAGES", help="folder of the image files")
    p.add_argument("annotations", metavar="ANNOTATIONS",
                   help="folder of the .txt files, one per image, same name")
    _converter_options(p)


def _converter_options(p: Any) -> None:
    conv = p.add_argument_group("conversion")
    conv.add_argument("--to-json", metavar="FILE", help="write the items to FILE as JSON "
                      "instead of writing shards (then: create --dataset_path FILE)")
    conv.add_argument("--label-offset", type=int, default=0, metavar="K",
                      help="store labels from K (default 0; 1 for the Object Detection API, "
                           "which reserves 0)")
    io = p.add_argument_group("output (as for create)")
    _add_output_options(p, io)
    for action in io._group_actions:
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

    p = sub.add_parser("inspect", help="print the first records, every key and value")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-n", type=int, default=1, metavar="N", help="records to show (default 1)")
    p.add_argument("--compression", **compression)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("stats", help="class histogram, box checks, keypoint counts")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--compression", **compression)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("show", help="draw a record's boxes and keypoints on its image")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--index", type=int, default=0, metavar="I", help="record number (default 0)")
    p.add_argument("--grid", type=_positive_int, default=None, metavar="N",
                   help="draw the first N records as one contact sheet instead")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="image to write")
    p.add_argument("--compression", **compression)

    p = sub.add_parser("index", help="write FILE.idx (offset length per record) for each file",
                       description="Write FILE.idx beside each plain TFRecord file: one "
                       "'offset length' line per record (length: the whole framed record), "
                       "the format of the tfrecord package and NVIDIA DALI.")
    p.add_argument("files", nargs="+", metavar="FILE")

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


def _write_failures(output_dir: str, prefix: str, failures: list[dict[str, Any]],
                    durable: bool = False) -> str:
    """Write ``{prefix}-failures.json`` whole; returns where it is."""
    from .dataset import json_default
    from .writer import FAILURES_SUFFIX

    out = storage.folder(output_dir, durable)
    name = prefix + FAILURES_SUFFIX
    try:
        out.write(name, (json.dumps(failures, indent=2, default=json_default) + "\n").encode())
    except OSError as exc:
        raise WriteError(f"cannot write {out.location(name)}: {exc.strerror or exc}") from exc
    finally:
        out.close()
    return out.location(name)


def _run_create(args: argparse.Namespace) -> int:
    from .dataset import open_dataset

    return _write_shards(args, open_dataset(args.dataset_path))


def _print_problems(kind: str, messages: list[str], where: str | None) -> None:
    for message in messages[:_SHOWN_FAILURES]:
        print(f"  {message}", file=sys.stderr)
    if len(messages) > _SHOWN_FAILURES:
        more = f"; all are in {where}" if where else ""
        print(f"  ... and {len(messages) - _SHOWN_FAILURES} more {kind}{more}", file=sys.stderr)


def _validate_only(args: argparse.Namespace, dataset: Any) -> int:
    from .writer import validate_dataset

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
        raise UsageError(f"--runner beam needs Apache Beam ({exc}): "
                         "pip install 'tfrecord-lite-writer[beam]'") from exc
    finally:
        root.setLevel(level)
    # Beam's progress lines stay out of our output; a worker's error reaches us and is
    # printed once, without the tracebacks Beam logs for it.
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    for name in ("apache_beam.runners.common", "apache_beam.runners.worker"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return beam.run(
        dataset, args.prefix, args.output_dir, args.shards, shuffle=args.shuffle,
        store_images=args.store_images, seed=args.seed, compression=args.compression,
        quality=args.quality, max_side=args.max_side, decode_check=args.decode_check,
        validation=args.validation, root=args.root, beam_options=args.beam_options)


def _write_shards(args: argparse.Namespace, dataset: Any) -> int:
    from .writer import write_dataset

    if args.validate_only:
        return _validate_only(args, dataset)
    if args.runner == "beam":
        if args.resume:
            raise UsageError("--resume is for the local runner (a Beam pipeline is retried "
                             "by its runner)")
        if args.fsync:
            raise UsageError("--fsync is for the local runner")
        summary = _run_beam(args, dataset)
    elif args.beam_options is not None:
        raise UsageError("--beam-options goes with --runner beam")
    else:
        summary = write_dataset(
            dataset, args.prefix, args.output_dir, args.shards, args.threads,
            shuffle=args.shuffle, store_images=args.store_images, seed=args.seed,
            compression=args.compression, quality=args.quality, max_side=args.max_side,
            decode_check=args.decode_check, validation=args.validation, root=args.root,
            resume=args.resume, fsync=args.fsync, progress=not args.quiet,
        )
    failures_path = _write_failures(args.output_dir, args.prefix, summary.failures,
                                    args.fsync)
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


def _run_verify(args: argparse.Namespace) -> int:
    from .verify import report_dict, verify_files

    report = verify_files(storage.expand(args.files), args.threads, args.decode,
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
        except Exception:
            return f"<{len(data):,} bytes, not an image Pillow reads>"
    from .example import RECORD_FIELDS

    out = [v.decode("utf-8", "replace") if isinstance(v, bytes)
           else float(f"{v:.7g}") if isinstance(v, float) else v for v in values]
    field = RECORD_FIELDS.get(key)
    return out[0] if field is not None and not field.is_list and len(out) == 1 else out


def _run_inspect(args: argparse.Namespace) -> int:
    from .example import feature_values
    from .reader import parse_record, read_framed

    shown = []
    for n, offset, data in read_framed(args.file, args.compression,
                                       max_record_size=args.max_record_size):
        if n >= args.n:
            break
        feats = parse_record(data, args.file, n, offset).features.feature
        shown.append({key: _summarize(key, feature_values(feats[key])[1])
                      for key in sorted(feats)})
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        for n, record in enumerate(shown):
            print(f"--- record {n} ({args.file})")
            width = max(map(len, record), default=0)
            for key, value in record.items():
                print(f"{key:<{width}}  {value}")
    return EXIT_OK


def _run_stats(args: argparse.Namespace) -> int:
    from .verify import stats

    result = stats(storage.expand(args.files), args.compression,
                   max_record_size=args.max_record_size)
    if args.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    print(f"images: {result['images']}, boxes: {result['boxes']}")
    print("classes: " + (", ".join(f"{k}: {v}" for k, v in result["classes"].items())
                         or "(no class labels)"))
    if result["missing_classes"]:
        print(f"classes missing in [0, max]: {result['missing_classes']}")
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
    from .preview import contact_sheet, draw
    from .reader import iterate

    if args.grid:
        items = []
        for item in iterate(args.file, args.compression,
                            max_record_size=args.max_record_size):
            items.append(item)
            if len(items) >= args.grid:
                break
        image = contact_sheet(items)
    else:
        if args.index < 0:
            raise UsageError("--index must be >= 0")
        seen = 0
        for seen, item in enumerate(iterate(args.file, args.compression,  # noqa: B007
                                            max_record_size=args.max_record_size), 1):
            if seen - 1 == args.index:
                image = draw(item)
                break
        else:
            raise UsageError(f"{args.file} has no record {args.index} (it holds {seen})")
    try:
        image.save(args.output)
    except (OSError, ValueError) as exc:
        raise WriteError(f"cannot write {args.output}: {exc}") from exc
    print(f"wrote {args.output}")
    return EXIT_OK


def _run_index(args: argparse.Namespace) -> int:
    from .reader import write_index

    for path in storage.expand(args.files):
        if storage.is_url(path):
            raise UsageError(f"{path}: index writes FILE.idx beside each file, so it needs "
                             "local files (copy the shards first)")
        target = write_index(path, max_record_size=args.max_record_size)
        print(f"wrote {target}")
    return EXIT_OK


def _make_converter(args: argparse.Namespace) -> Any:
    from .converters.caltech import CaltechConverter
    from .converters.coco import CocoConverter
    from .converters.folder import FolderConverter
    from .converters.voc import VocConverter

    offset = args.label_offset
    try:
        if args.command == "from-coco":
            return CocoConverter(args.annotations, args.images, args.drop_empty, offset)
        if args.command == "from-voc":
            names = None
            if args.label_map:
                with open(args.label_map, encoding="utf-8") as f:
                    loaded = json.load(f)
                names = ([loaded[k] for k in sorted(loaded, key=int)]
                         if isinstance(loaded, dict) else list(loaded))
            return VocConverter(args.root, args.split, names, offset)
        if args.command == "from-folder":
            return FolderConverter(args.root, offset)
        return CaltechConverter(args.images, args.annotations, offset)
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(str(exc)) from exc


def _write_label_maps(output_dir: str, labels: list[str], offset: int) -> None:
    from .converters import label_map_json, label_map_pbtxt

    out = storage.folder(output_dir)
    try:
        out.makedirs()
        text = json.dumps(label_map_json(labels, offset), indent=1) + "\n"
        out.write("label_map.json", text.encode())
        out.write("label_map.pbtxt", label_map_pbtxt(labels, offset).encode())
    except OSError as exc:
        raise WriteError(f"cannot write the label map: {exc.strerror or exc}") from exc
    finally:
        out.close()


def _run_convert(args: argparse.Namespace) -> int:
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
        print(f"wrote {len(items)} items to {args.to_json}", file=sys.stderr)
    else:
        if not args.prefix or not args.output_dir:
            raise UsageError("--prefix and --output_dir are required (or give --to-json)")
        status = _write_shards(args, converter)
        if not args.validate_only:
            _write_label_maps(args.output_dir, converter.labels, args.label_offset)
    counts = ", ".join(f"{n} {what}" for what, n in sorted(converter.report.items()))
    print(f"{args.command}: {len(converter.labels)} classes; {counts}", file=sys.stderr)
    for problem in converter.problems[:_SHOWN_FAILURES]:
        print(f"  problem: {problem}", file=sys.stderr)
    if len(converter.problems) > _SHOWN_FAILURES:
        print(f"  ... and {len(converter.problems) - _SHOWN_FAILURES} more", file=sys.stderr)
    return EXIT_FAILED_ITEMS if converter.problems and status == EXIT_OK else status


RUNNERS = {"create": _run_create, "from-coco": _run_convert, "from-voc": _run_convert,
           "from-folder": _run_convert, "from-caltech": _run_convert, "verify": _run_verify,
           "inspect": _run_inspect, "stats": _run_stats, "show": _run_show, "index": _run_index}


# A user's mistake or a damaged file -> a message and an exit status, never a traceback.
EXIT_FOR: tuple[tuple[type[BaseException], int], ...] = (
    (UsageError, EXIT_USAGE),
    (FileNotFoundError, EXIT_USAGE),
    (RecordError, EXIT_FAILED_ITEMS),
    (ImageError, EXIT_FAILED_ITEMS),  # an image in a shard (show) that does not decode
    (WriteError, EXIT_WRITE),
    (TFRecordLiteError, EXIT_USAGE),
    (ValueError, EXIT_USAGE),
)
_HANDLED = tuple(kind for kind, _ in EXIT_FOR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0].startswith("-") and args_list[0] not in (
            "-h", "--help", "--version"):
        args_list.insert(0, "create")  # the original tool's command line
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse has printed the problem (or the help)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.version:
        from .crc32c import BACKEND
        from .images import decoders

        print(f"tfrecord-lite {__version__} (CRC32C: {BACKEND}; {decoders()})")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    try:
        return RUNNERS[args.command](args)
    except _HANDLED as exc:
        if isinstance(exc, FileNotFoundError):  # fsspec gives the path as the only argument
            message = f"no such file: {exc.filename or (exc.args[0] if exc.args else '')}"
        else:
            message = str(exc)
        print(f"tfrecord-lite: error: {message}", file=sys.stderr)
        return next(code for kind, code in EXIT_FOR if isinstance(exc, kind))
    except KeyboardInterrupt:
        print("tfrecord-lite: interrupted; no partial shard was left", file=sys.stderr)
        return 130
