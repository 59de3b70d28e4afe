"""The commands that read shards: ``verify``, ``inspect``, ``stats``, ``show``, ``index``.

Each takes files or patterns (``out/train-*``); the files a job writes beside its shards
(manifest, failures, label maps, indexes), which ``out/*`` also matches, are skipped.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from .. import journal, storage
from ..decode import decode_value
from ..errors import (
    ExampleDecodeError,
    RecordDecodeError,
    TFRecordLiteError,
    WriteError,
    write_errors,
)
from ..features import Features, features, record_features
from ..framing import DEFAULT_MAX_RECORD_SIZE
from ..reader import default_index_path, read_framed, write_index
from ..schema import BYTES, RECORD_FIELDS
from ..sharding import is_side_file
from ..stats import stats
from ..verify import report_dict, verify_files
from .common import EXIT_FAILED_ITEMS, EXIT_OK, UsageError, byte_size, count, positive_int

# show: a record's image longer than this a side is drawn scaled down (--full-size: not).
SHOW_MAX_SIDE = 2048


def register(sub: Any) -> None:
    """Add the commands that read shards (verify, inspect, stats, show, index) to ``sub``."""
    compression = {"choices": ("none", "gzip", "zlib"), "default": None,
                   "help": "the files' compression (default: detected per file)"}
    p = sub.add_parser("verify", help="check CRCs, Examples, images and the manifest",
                       description="Check every record of the files: both CRCs, that it "
                       "parses as an Example, that every scalar key is there with its type, "
                       "that the image decodes to image/width x image/height, that masks "
                       "(one per object, 0 and 1) and label images decode as gray PNG of "
                       "that size, and, when a manifest lies beside the shards, the record "
                       "counts and sha256.",
                       epilog="exit status: 0 all well, 1 problems found (each named with "
                       "file, record index and byte offset), 2 usage error")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--threads", type=positive_int, default=min(4, os.cpu_count() or 1),
                   metavar="N", help="threads decoding images (default: min(4, CPUs))")
    p.add_argument("--no-decode", dest="decode", action="store_false",
                   help="skip decoding the images and masks (CRCs and fields only; much "
                   "faster)")
    p.add_argument("--compression", **compression)
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("inspect", help="print the first records, every key and value",
                       description="Print the first N records of the files (taken in "
                       "order), every key with its values; the image as its size, format "
                       "and dimensions.",
                       epilog="exit status: 0 printed, 1 a damaged file, 2 usage error")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-n", type=positive_int, default=1, metavar="N",
                   help="records to show (default 1)")
    p.add_argument("--compression", **compression)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("stats", help="class histogram, box checks, keypoint and mask counts",
                       description="Count images, boxes and classes over the files, check "
                       "the boxes as the original stat_tfrecords.py did (reversed, tiny, "
                       "object/count not matching, outside [0, 1]), count keypoints by "
                       "visibility, and objects with and without a mask.",
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
    which = p.add_mutually_exclusive_group()
    which.add_argument("--index", type=int, default=None, metavar="I",
                       help="record number, counted over the files in order (default 0)")
    which.add_argument("--id", default=None, metavar="ID",
                       help="the (first) record whose image/id is ID")
    which.add_argument("--grid", type=positive_int, default=None, metavar="N",
                       help="draw the first N records as one contact sheet instead")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="image to write")
    p.add_argument("--full-size", action="store_true",
                   help=f"draw a record's image at its full size (default: one longer than "
                        f"{SHOW_MAX_SIDE} px a side is drawn scaled down to {SHOW_MAX_SIDE})")
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

    for name, run in READERS.items():
        sub.choices[name].set_defaults(run=run)
        sub.choices[name].add_argument(
            "--max-record-size", type=byte_size, default=DEFAULT_MAX_RECORD_SIZE,
            metavar="BYTES", help="longest record accepted, e.g. 512M or 2G; a longer "
            "length field is reported as damage before anything is read (default: 256M)")


def _expand_patterns(patterns: list[str]) -> list[str]:
    """The patterns expanded; a wildcard that matches nothing, or a directory, is a usage
    error naming it (a file that does not exist is left to the command: "cannot read")."""
    paths: list[str] = []
    for pattern in patterns:
        try:
            files, folders = storage.expand_files(pattern)
        except IsADirectoryError as exc:
            raise UsageError(str(exc)) from exc
        except FileNotFoundError as exc:
            raise UsageError(f"{exc}{_pending_runs(storage.split(pattern)[0])}") from exc
        if folders:
            print(f"skipped {count(len(folders), 'folders')}: {', '.join(folders)}",
                  file=sys.stderr)
        paths += files
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
        folders = sorted({storage.split(p)[0] for p in patterns})
        raise UsageError(f"no shard files among {' '.join(patterns)}"
                         + "".join(map(_pending_runs, folders)))
    return shards


def _pending_runs(folder: str) -> str:
    """For a pattern that matched no shard: the interrupted runs its folder holds, whose
    shards wait under hidden names, and how to finish them ("" when none)."""
    try:
        with storage.folder(folder or os.curdir) as out:
            runs = journal.pending(out)
    except (OSError, TFRecordLiteError):
        return ""
    if not runs:
        return ""
    listed = ", ".join(f"{prefix!r} ({complete} of {count(total, 'shards')} complete)"
                       for prefix, complete, total in runs)
    return (f"; {folder or os.curdir} holds an interrupted run of {listed}, whose shards are "
            "kept under hidden names until the run finishes: run the command that started "
            "it again with --resume to finish it (or with --restart to start over)")


def _run_verify(args: argparse.Namespace) -> int:
    report = verify_files(_shard_paths(args.files), args.threads, args.decode,
                          args.compression, args.max_record_size)
    if args.json:
        print(json.dumps(report_dict(report), indent=2))
    else:
        for problem in report.problems:
            print(f"PROBLEM {problem}")
        records = count(report.records, "records")
        if report.cut_short:
            records += (f" read (reading stopped at the damage in "
                        f"{count(report.cut_short, 'files')}: what follows it is unchecked)")
        print(f"{'OK' if report.ok else 'FAILED'}: {count(report.files, 'files')}, "
              f"{records}, {count(report.images, 'images decoded')}, "
              f"{count(len(report.problems), 'problems')}")
    return EXIT_OK if report.ok else EXIT_FAILED_ITEMS


def _describe_image(data: bytes) -> str:
    """An image's bytes as inspect shows them: size, format, dimensions and mode."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # only the header is read
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return f"<{len(data):,} bytes, {im.format} {im.width}x{im.height} {im.mode}>"
    except (OSError, ValueError, Image.DecompressionBombError):  # not opened as an image
        return f"<{len(data):,} bytes, not an image Pillow reads>"


_SHOWN_VALUES = 1000  # inspect: a longer list is summarized, with its first values
_SHOWN_FIRST = 10
_SHOWN_CHARS = 10_000  # inspect: a longer text value is cut


def _text(value: bytes) -> str:
    text = value[:_SHOWN_CHARS + 4].decode("utf-8", "replace")
    if len(value) <= _SHOWN_CHARS:
        return text
    return (f"<{len(value):,} bytes, too long to show; it starts: "
            f"{text[:100]!r}>")


def _shown(values: list[Any], picture: bool) -> list[Any]:
    """Values as inspect shows them: an image or mask (``picture``) described, text cut
    when long, floats to 7 digits."""
    return [(_describe_image(v) if picture else _text(v)) if isinstance(v, bytes)
            else float(f"{v:.7g}") if isinstance(v, float) else v for v in values]


def _summarize(key: str, feats: Features) -> Any:
    """A feature as inspect shows it: its values (images and masks described, long text
    cut), or, for a list too long to show, its length and first values."""
    field = RECORD_FIELDS.get(key)
    kind = feats.kind(key)
    n = feats.count(key)
    picture = field is not None and field.kind == BYTES and not field.text  # images, masks
    if n > _SHOWN_VALUES:
        first = _shown(_first_values(feats, key, kind, _SHOWN_FIRST), picture)
        return (f"<{n:,} {kind} values, too many to show; the first {_SHOWN_FIRST}: "
                f"{', '.join(map(str, first))}>")
    out = _shown(_first_values(feats, key, kind, n), picture)
    return out[0] if field is not None and not field.is_list and len(out) == 1 else out


def _first_values(feats: Features, key: str, kind: str | None, n: int) -> list[Any]:
    if kind == BYTES:
        return list(feats.bytes_values(key, n))
    if kind is None or n == 0:
        return []
    return next(feats.numbers(key, n)).tolist()  # (float32 values as Python floats)


def _run_inspect(args: argparse.Namespace) -> int:
    shown: list[dict[str, Any]] = []
    where: list[str] = []
    for path in _shard_paths(args.files):
        for n, offset, data in read_framed(path, args.compression,
                                           max_record_size=args.max_record_size):
            if len(shown) >= args.n:
                break
            try:
                feats = features(data)
            except ExampleDecodeError as exc:
                raise RecordDecodeError(str(exc), path=path, index=n, offset=offset) from exc
            record = {key: _summarize(key, feats) for key in sorted(feats)}
            if feats.more_keys:
                record["..."] = f"<{feats.more_keys:,} more features, too many to show>"
            shown.append(record)
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
        print(f"{_BOX_CHECKS.get(name, name)}: {check['images']}{examples}")
    for name in ("box_width", "box_height"):
        s = result[name]
        if s:
            print(f"{name.replace('_', ' ')} (normalized): min {s['min']:.3f}, "
                  f"mean {s['mean']:.3f}, max {s['max']:.3f}")
    vis = result["keypoint_visibility"]
    if vis:
        print("keypoints by visibility: " + ", ".join(f"v={k}: {n}" for k, n in vis.items()))
    masks = result["masks"]
    if masks["objects_with_mask"] or masks["images_with_label_image"]:
        print(f"masks: {count(masks['objects_with_mask'], 'objects')} with a mask, "
              f"{masks['objects_without_mask']} without; label images: "
              f"{masks['images_with_label_image']} of {count(result['images'], 'images')}")
    return EXIT_OK


# How stats names the images each of its box checks finds.
_BOX_CHECKS = {"reversed": "images with reversed boxes",
               "tiny (< 10 px²)": "images with tiny boxes (< 10 px²)",
               "count mismatch": "images whose object/count is not their number of boxes",
               "outside [0, 1]": "images with boxes outside [0, 1]",
               "not finite": "images with coordinates that are NaN or infinite"}


def _drawable_records(paths: list[str], args: argparse.Namespace
                      ) -> Iterator[tuple[int, Features]]:
    """Each record's number (over the files) and what ``show`` draws of it (its types
    checked as the readers check them)."""
    from ..preview import DRAWN_KEYS

    number = 0
    for path in paths:
        for index, offset, data in read_framed(path, args.compression,
                                               max_record_size=args.max_record_size):
            yield number, record_features(data, path, index, offset, DRAWN_KEYS)
            number += 1


def _run_show(args: argparse.Namespace) -> int:
    from ..preview import contact_sheet, draw, drawable, stored_size  # Pillow

    paths = _shard_paths(args.files)
    files = "the file holds" if len(paths) == 1 else "the files hold"
    scaled = disagree = ""
    notes: list[str] = []
    if args.grid:
        items = []
        for _, feats in _drawable_records(paths, args):
            item, cut = drawable(feats)
            items.append(item)
            notes += [f"record {len(items) - 1}: {note}" for note in cut]
            if len(items) >= args.grid:
                break
        if not items:
            raise UsageError(f"no records to draw ({files} none)")
        image = contact_sheet(items)
        drawn = (count(len(items), "records") if len(items) == args.grid else
                 f"{len(items)} of {count(args.grid, 'records')} ({files} {len(items)})")
    else:
        index = 0 if args.index is None and args.id is None else args.index
        if index is not None and index < 0:
            raise UsageError("--index must be >= 0")
        records = 0
        for number, feats in _drawable_records(paths, args):
            records = number + 1
            if number == index or (args.id is not None and str(_id(feats)) == args.id):
                item, notes = drawable(feats)
                if not isinstance(item.get("encoded"), bytes):
                    print(f"show: record {number} (id {item.get('id')!r}) stores no image "
                          "(image/encoded; written without --store_images?): nothing to "
                          f"draw, {args.output} not written", file=sys.stderr)
                    return EXIT_FAILED_ITEMS
                image = draw(item, None if args.full_size else SHOW_MAX_SIDE)
                break
        else:
            if args.id is not None:
                raise UsageError(f"no record has the id {args.id!r} ({files} "
                                 f"{count(records, 'records')})")
            raise UsageError(f"there is no record {index} ({files} {records})")
        drawn = f"record {number} (id {item.get('id')!r})"
        stored = stored_size(item)  # the decoded size, whatever the record says
        if stored is not None and max(stored) > max(image.size):
            scaled = f" (scaled down from {stored[1]}x{stored[0]}; --full-size draws it whole)"
        said = (item.get("height"), item.get("width"))
        if stored is not None and said != stored:
            disagree = (f"  image/width x image/height say {said[1]}x{said[0]}, but the image "
                        f"is {stored[1]}x{stored[0]}: drawn at its own size")
    try:
        with write_errors(f"cannot write {args.output}"):
            image.save(args.output)
    except ValueError as exc:  # Pillow: no format for the file name's extension
        raise WriteError(f"cannot write {args.output}: {exc}") from exc
    print(f"wrote {args.output}: {drawn}, {image.width}x{image.height} px{scaled}")
    if disagree:
        print(disagree)
    for note in notes:
        print(f"  {note}: too many to draw")
    return EXIT_OK


def _id(feats: Features) -> Any:
    """A record's id as the item holds it (text, or bytes that are not UTF-8)."""
    raw = feats.first("image/id") if "image/id" in feats else None
    return decode_value(RECORD_FIELDS["image/id"], BYTES, [] if raw is None else [raw])


def _run_index(args: argparse.Namespace) -> int:
    paths = _shard_paths(args.files)
    if args.output is not None and len(paths) != 1:
        raise UsageError(f"--output takes one FILE, got {len(paths)}: {' '.join(paths)}")
    for path in paths:
        if storage.is_url(path):
            raise UsageError(f"{path}: index writes .FILE.idx beside each file, so it needs "
                             "local files (copy the shards first)")
        target = args.output or default_index_path(path)
        if not storage.is_file(path):  # a missing shard is the input's error, not the index's
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        with write_errors(f"cannot write {target}"):
            target = write_index(path, target, max_record_size=args.max_record_size)
        print(f"wrote {target}")
    return EXIT_OK


READERS = {"verify": _run_verify, "inspect": _run_inspect, "stats": _run_stats,
           "show": _run_show, "index": _run_index}
