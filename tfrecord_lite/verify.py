"""Checking shards: ``verify``, is every byte and every field right?

It reads plain, GZIP and ZLIB files. Problems are collected, never raised, and each
names the file, the record index and the byte offset (in the uncompressed stream).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from . import compression as _compression
from . import journal, plural, sharding, storage
from .errors import ExampleDecodeError, RecordError, reason, record_place
from .features import GROUPS, Features, features
from .framing import DEFAULT_MAX_RECORD_SIZE
from .parallel import in_order
from .reader import read_framed
from .schema import BYTES, FLOAT, INT64, OPTIONAL_KEYS, RECORD_FIELDS, SCALAR_KEYS
from .validate import BOX_CORE, GROUPED_LISTS, length_problems

MANIFEST_SUFFIX = sharding.MANIFEST_SUFFIX  # (and sharding.OLD_MANIFEST_SUFFIX, still read)


@dataclass
class FileProblem:
    """What verify found wrong in a file, and where (record index, byte offset; with
    ``uncompressed``, an offset of a compressed file's uncompressed stream; with
    ``at_end``, a fault after the last record, ``index`` then the number of records).

    Not ``validate.Problem``, an item's annotation problem."""

    file: str
    index: int | None
    offset: int | None
    message: str
    uncompressed: bool = False
    at_end: bool = False

    def __str__(self) -> str:
        where = record_place(self.file, self.index, self.offset,
                             uncompressed=self.uncompressed, at_end=self.at_end)
        return f"{where}: {self.message}"


@dataclass
class VerifyReport:
    files: int = 0
    records: int = 0
    bytes: int = 0
    images: int = 0
    problems: list[FileProblem] = field(default_factory=list)
    cut_short: int = 0  # files read only up to damage: their later records are unchecked

    @property
    def ok(self) -> bool:
        return not self.problems


def _find_manifest(path: str, cache: dict[str, dict[str, Any] | None]) -> dict[str, Any] | None:
    """The manifest of the dataset ``path`` belongs to, if one lies beside it."""
    directory, name = storage.split(path)
    if directory not in cache:
        cache[directory] = None
        found: dict[str, Any] = {}
        with storage.folder(directory) as folder:
            names = folder.names("")
            # Older names first, so that a manifest under today's name wins for its shards.
            for manifest_name in ([n for n in names if n.endswith(sharding.OLD_MANIFEST_SUFFIX)]
                                  + [n for n in names if n.endswith(MANIFEST_SUFFIX)]):
                try:
                    manifest = json.loads(folder.read(manifest_name) or b"null")
                    for shard in manifest.get("shards", []):
                        found[shard["file"]] = shard
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    continue
        cache[directory] = found
    shards = cache[directory]
    return None if shards is None else shards.get(name)


_MISSING_LISTED = 10  # missing shards named one by one per dataset; the rest are counted


def _manifest_files(folder: storage.Folder, prefix: str,
                    names: set[str]) -> tuple[str | None, list[str]]:
    """The manifest of ``prefix`` in a folder (today's name, else an earlier version's)
    and the shard files it lists; (None, []) when there is none or it cannot be read."""
    for name in (sharding.manifest_name(prefix), prefix + sharding.OLD_MANIFEST_SUFFIX):
        if name in names:
            try:
                manifest = json.loads(folder.read(name) or b"null")
                return name, [str(shard["file"]) for shard in manifest["shards"]]
            except (OSError, ValueError, KeyError, TypeError):
                return None, []
    return None, []


def dataset_problems(paths: list[str]) -> list[FileProblem]:
    """Check the files given as datasets: are they all there, and of one dataset each?

    Files whose names are shard names (``{prefix}-{i:05d}-of-{N:05d}``) are grouped into
    datasets by directory, prefix and ``N``; other names are checked as single files.
    For each dataset:

    * every shard ``0 .. N-1`` must exist, and every shard its manifest lists (when
      ``{prefix}.manifest.json`` lies beside them): a missing one is a problem naming it,
      even when a single shard was given (its siblings are missing from its dataset);
    * an interrupted run's journal (``.{prefix}-journal.json``) is a problem: the
      dataset is incomplete, and ``--resume`` finishes it.

    Two datasets among the files of one directory are a problem when a reader's shard
    glob would mix them: the same prefix with different ``N`` (shards of two runs), or
    prefixes where one's glob matches the other's shards (``train`` and ``train-a``:
    ``train-*`` matches both). Unrelated datasets (``verify out/*`` over ``train`` and
    ``val``) are fine.
    """
    datasets: dict[tuple[str, str, int], str] = {}  # (directory, prefix, N) -> as given
    for path in paths:
        directory, name = storage.split(path)
        parsed = sharding.parse_shard_name(name)
        if parsed is not None:
            datasets.setdefault((directory, parsed[0], parsed[2]), path[:len(path) - len(name)])
    problems: list[FileProblem] = []
    for directory in sorted({key[0] for key in datasets}):
        here = sorted((prefix, count, shown) for (d, prefix, count), shown in datasets.items()
                      if d == directory)
        problems += _mixed(here)
        try:
            with storage.folder(directory) as folder:
                names = set(folder.names(""))
                for prefix, count, shown in here:
                    problems += _missing(folder, names, prefix, count, shown)
        except (OSError, storage.StorageError):
            continue
    return problems


def _mixed(here: list[tuple[str, int, str]]) -> list[FileProblem]:
    """Problems for datasets of one directory that a shard glob would mix, each named by
    the directory as given (the glob that mixes them is the reader's, maybe not the
    user's)."""
    problems = []
    for (p1, n1, shown), (p2, n2, _) in itertools.combinations(here, 2):
        folder = shown.rstrip("/") or "."
        if p1 == p2:
            problems.append(FileProblem(
                folder, None, None,
                f"the files given mix two runs of {p1!r}: shards of {n1} and of {n2}; "
                f"a reader of {p1}-* trains on both (rerun to replace them, or verify "
                f"{shown}{p1}-?????-of-{n2:05d})"))
        elif p2.startswith(p1 + "-") or p1.startswith(p2 + "-"):
            short, long_ = (p1, p2) if p2.startswith(p1 + "-") else (p2, p1)
            problems.append(FileProblem(
                folder, None, None,
                f"the files given mix two datasets, {short!r} and {long_!r}: the shard "
                f"glob {short}-* matches the shards of both; verify (and read) each with "
                f"{shown}{short}-?????-of-????? and {shown}{long_}-*, or rename one"))
    return problems


def _missing(folder: storage.Folder, names: set[str], prefix: str, count: int,
             shown: str) -> list[FileProblem]:
    """Problems for the shards of one dataset that are not there, and for an
    interrupted run of its prefix."""
    problems = []
    progress = journal.progress(folder, prefix)
    if progress is not None:
        complete, total = progress
        problems.append(FileProblem(
            f"{shown}{prefix}-*", None, None,
            f"incomplete: an interrupted run of {prefix!r} is pending ({complete} of {total} "
            "shards complete, kept under hidden names until it finishes); the shards here "
            "are an earlier run's, or a mix if it stopped while renaming them: run the same "
            "command again with --resume (resume=True) to finish it"))
    manifest, listed = _manifest_files(folder, prefix, names)
    present = {parsed[1] for parsed in map(sharding.parse_shard_name, names)
               if parsed is not None and parsed[0] == prefix and parsed[2] == count
               and parsed[1] < count}
    n_missing = count - len(present)
    missing: list[tuple[str, str]] = []
    i = 0
    while len(missing) < _MISSING_LISTED and i < count:  # at most len(names) + 10 steps
        name = sharding.shard_name(prefix, i, count)
        if i not in present:
            where = f", listed in {manifest}" if name in listed else ""
            missing.append((name, f"missing from the dataset (shard {i} of {count}{where})"))
        i += 1
    # Shards the manifest lists under other names (another N: of another run).
    for name in sorted(set(listed) - names):
        parsed = sharding.parse_shard_name(name)
        if parsed is None or parsed[0] != prefix or parsed[2] != count or parsed[1] >= count:
            if len(missing) < _MISSING_LISTED:
                missing.append((name, f"missing from the dataset (listed in {manifest})"))
            n_missing += 1
    problems += [FileProblem(shown + name, None, None, message) for name, message in missing]
    if n_missing > len(missing):
        problems.append(FileProblem(
            f"{shown}{prefix}-*", None, None,
            f"... and {plural.count(n_missing - len(missing), 'more shards')} of {count} "
            "missing"))
    return problems


_ONEOF = {BYTES: "bytes_list", FLOAT: "float_list", INT64: "int64_list"}
_EXPECTED = [(key, _ONEOF[RECORD_FIELDS[key].kind]) for key in SCALAR_KEYS]
# Scalar keys a record may leave out (the label image's), checked when present.
_OPTIONAL = [(key, _ONEOF[RECORD_FIELDS[key].kind]) for key in OPTIONAL_KEYS
             if not RECORD_FIELDS[key].is_list]
_LIST_KINDS = {key: _ONEOF[f.kind] for key, f in RECORD_FIELDS.items() if f.is_list}


def _check_scalars(shape: dict[str, tuple[str | None, int]]) -> list[str]:
    """What in a record's features (each key's kind and count) has the wrong kind: a
    known key of another type, a key where a group of keys belongs, a scalar key missing
    or holding other than one value."""
    problems = []
    for key in sorted(shape):
        if key in GROUPS:
            problems.append(f"{key} holds values, where {key}/... keys are a group")
        elif key in _LIST_KINDS:
            kind = shape[key][0]
            if kind is not None and _ONEOF[kind] != _LIST_KINDS[key]:
                problems.append(f"{key} is {_ONEOF[kind]}, expected {_LIST_KINDS[key]}")
    for key, oneof in _EXPECTED + [k for k in _OPTIONAL if k[0] in shape]:
        if key not in shape:
            if key != "image/encoded":  # absent when written with store_images=False
                problems.append(f"{key} is missing")
            continue
        kind, n = shape[key]
        if kind is None or _ONEOF[kind] != oneof:
            problems.append(f"{key} is {_ONEOF[kind] if kind else 'empty'}, expected {oneof}")
        elif n != 1:
            problems.append(f"{key} holds {n} values, expected 1")
    return problems


_BOX_LABEL, _CLASS_LABEL = "image/object/bbox/label", "image/object/class/label"


def _check_lengths(feats: Features, shape: dict[str, tuple[str | None, int]]) -> list[str]:
    """The record's per-object lists (and keypoint lists) that disagree in length, as
    validation finds them in an item (``validate.length_problems``), and an
    ``image/object/count`` that is not the number of objects listed. The box labels may
    be given as ``image/object/class/label`` alone, as the Object Detection API's own
    tools write them."""
    lengths = {path: shape["image/" + path][1] for path in GROUPED_LISTS
               if "image/" + path in shape}
    if not lengths.get("object/bbox/label") and _CLASS_LABEL in shape:
        lengths["object/bbox/label"] = shape[_CLASS_LABEL][1]
    problems = [f"image/{p.path}: {p.message}" for p in length_problems(lengths)]
    if shape.get("image/object/count") == (INT64, 1):
        declared = feats.first("image/object/count")
        listed = max((lengths.get(path, 0) for path in BOX_CORE), default=0)
        if declared != listed:
            problems.append(f"image/object/count is {declared}, but the record holds "
                            f"{plural.count(listed, 'boxes')}")
    return problems


_COORDINATES = tuple(f"image/object/bbox/{edge}" for edge in ("xmin", "xmax", "ymin", "ymax")) \
    + ("image/object/parts/x", "image/object/parts/y")


def _check_finite(feats: Features) -> list[str]:
    """The box and keypoint coordinate lists that hold NaN or infinite values (which
    ``create`` refuses, and other writers may store)."""
    import numpy as np

    problems = []
    for key in _COORDINATES:
        if key in feats and feats.kind(key) == FLOAT:
            bad = sum(int(np.count_nonzero(~np.isfinite(chunk)))
                      for chunk in feats.numbers(key))
            if bad:
                problems.append(f"{key}: {plural.count(bad, 'values are')} not finite "
                                "(NaN or infinite)")
    return problems


def _check_image(data: bytes, height: int, width: int) -> str | None:
    from .images import decoded_size

    try:
        size = decoded_size(data)
    except Exception as exc:  # any decoder failure is the finding itself
        return f"image/encoded does not decode: {reason(exc)}"
    if size != (width, height):
        return (f"image is {size[0]}x{size[1]} but image/width x image/height say "
                f"{width}x{height}")
    return None


_MASKS = "image/object/mask"
_LABELS = "image/segmentation/class/encoded"


def _check_png(data: bytes, key: str, height: int, width: int, binary: bool) -> str | None:
    """What is wrong with a stored mask (``binary``: its pixels must be 0 and 1) or label
    image: it must decode as an 8-bit gray PNG of the image's size."""
    from .errors import MaskError
    from .maskpng import decode

    try:
        pixels = decode(data, key, size=(height, width))  # the header's size first
    except MaskError as exc:
        return f"{exc} (image/width x image/height)" if exc.reason == "size" else str(exc)
    if binary and pixels.size and int(pixels.max()) > 1:
        return (f"{key} holds values other than 0 and 1 (up to {int(pixels.max())}); the "
                "Model Garden's decoder reads them as they are")
    return None


_SHOWN_MASKS = 10  # mask problems named one by one per record; the rest are counted
# The keys verify reads: the schema's and its groups (others are never kept).
_VERIFY_KEYS = frozenset(RECORD_FIELDS) | GROUPS
_DECODED_KEYS = ("image/encoded", _MASKS, _LABELS)
# The bytes of checks waiting for the pool: beyond the record at hand, this much at most.
_PENDING_BYTES = 64 << 20


class _Job(NamedTuple):
    """A record whose image, masks or label image the pool decodes (read from its
    features there), the size they must have, and the record's size in bytes."""

    feats: Features
    height: int
    width: int
    size: int


def _check_record(job: _Job) -> tuple[bool, list[str]]:
    """Whether the record stores an image, and what is wrong with what it stores."""
    feats = job.feats
    messages = []
    image = feats.first("image/encoded") if "image/encoded" in feats and feats.kind(
        "image/encoded") == BYTES else None
    if image is not None:
        messages.append(_check_image(image, job.height, job.width))
    bad = 0
    if _MASKS in feats:
        for i, data in enumerate(feats.bytes_values(_MASKS)):
            message = _check_png(data, f"{_MASKS}[{i}]", job.height, job.width, True)
            bad += message is not None
            if message is not None and bad <= _SHOWN_MASKS:
                messages.append(message)
    if bad > _SHOWN_MASKS:
        messages.append(f"{_MASKS}: ... and {plural.count(bad - _SHOWN_MASKS, 'masks')} more "
                        "with problems")
    labels = feats.first(_LABELS) if _LABELS in feats else None
    if isinstance(labels, bytes):
        messages.append(_check_png(labels, _LABELS, job.height, job.width, False))
    return image is not None, [m for m in messages if m]


def verify_files(paths: Iterable[str | os.PathLike[str]], threads: int = 1,
                 decode_images: bool = True, compression: str | None = None,
                 max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> VerifyReport:
    """Check every record of every file; returns the problems found, never raises for them.

    Checks: both CRCs of every record, and its length within ``max_record_size``; every
    record parses as an Example; every key this package knows has its type, every
    scalar key is present once; a record's masks are one per box; with
    ``decode_images`` every image decodes to ``image/width`` x ``image/height``, and
    every mask and label image to an 8-bit gray PNG of that size, a mask's pixels 0
    and 1 (on ``threads`` threads); when a manifest lies beside a shard, its record
    count and sha256 match. The set of files as a whole is
    checked by :func:`dataset_problems` (missing shards, an interrupted run, two
    datasets mixed).
    """
    report = VerifyReport()
    manifests: dict[str, dict[str, Any] | None] = {}
    files = [os.fspath(p) for p in paths]
    report.problems += dataset_problems(files)
    # The manifest's sha256 is computed on a thread of its own, beside the record checks
    # (hashing releases the GIL; the second read comes from the page cache).
    with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool, \
            concurrent.futures.ThreadPoolExecutor(1) as hasher:
        for raw_path in files:
            path = os.fspath(raw_path)
            report.files += 1
            try:
                report.bytes += storage.size(path)
            except storage.NoCredentialsError:
                raise  # no file of the store can be read: the command's error, not a file's
            except (OSError, storage.StorageError) as exc:
                reason = getattr(exc, "strerror", None) or (
                    "no such file" if isinstance(exc, FileNotFoundError) else exc)
                report.problems.append(FileProblem(path, None, None, f"cannot read: {reason}"))
                continue
            shard = _find_manifest(path, manifests)
            has_sha = shard is not None and shard.get("sha256")
            digest = hasher.submit(storage.file_sha256, path) if has_sha else None
            count = _verify_one(path, pool, threads, decode_images, compression, report,
                                max_record_size)
            report.cut_short += count is None
            if shard is not None:
                if count is not None and shard.get("records") != count:
                    report.problems.append(FileProblem(path, None, None,
                        f"holds {plural.count(count, 'records')}, the manifest says "
                        f"{shard.get('records')}"))
                if digest is not None and shard["sha256"] != digest.result():
                    report.problems.append(FileProblem(path, None, None,
                        "sha256 differs from the manifest's (the file changed since it was "
                        "written)"))
    return report


def _verify_one(path: str, pool: concurrent.futures.Executor, threads: int,
                decode_images: bool, compression: str | None, report: VerifyReport,
                max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> int | None:
    """Verify one file; returns its record count, or None when it could not be read whole."""
    count = 0
    uncompressed = False  # offsets are of a compressed file's uncompressed stream

    def records() -> Iterator[tuple[int, int, _Job]]:
        nonlocal count, uncompressed
        comp = (_compression.normalize(compression) if compression is not None
                else _compression.detect(path))
        uncompressed = comp != "none"
        for index, offset, data in read_framed(path, comp, max_record_size=max_record_size):
            count += 1
            try:
                feats = features(data, _VERIFY_KEYS)
            except ExampleDecodeError as exc:
                report.problems.append(FileProblem(path, index, offset, str(exc),
                                                   uncompressed))
                continue
            shape = feats.shape()
            for message in [*_check_scalars(shape), *_check_lengths(feats, shape),
                            *_check_finite(feats)]:
                report.problems.append(FileProblem(path, index, offset, message,
                                                   uncompressed))
            if not decode_images:
                continue
            h = feats.first("image/height") if shape.get("image/height", (None,))[0] == INT64 \
                else None
            w = feats.first("image/width") if shape.get("image/width", (None,))[0] == INT64 \
                else None
            if h is None or w is None:
                continue
            if any(shape.get(key, (None, 0))[0] == BYTES and shape[key][1]
                   for key in _DECODED_KEYS):
                yield index, offset, _Job(feats, h, w, len(data))

    def check(job: tuple[int, int, _Job]) -> tuple[int, int, bool, list[str]]:
        return (job[0], job[1], *_check_record(job[2]))

    try:
        for index, offset, has_image, messages in in_order(
                pool, check, records(), window=4 * threads, chunk=4,
                cost=lambda job: job[2].size, budget=_PENDING_BYTES):
            report.images += has_image
            for message in messages:
                report.problems.append(FileProblem(path, index, offset, message,
                                                   uncompressed))
    except RecordError as exc:
        report.problems.append(FileProblem(path, exc.index, exc.offset, exc.reason,
                                           exc.uncompressed, exc.at_end))
        report.records += count
        return None
    except OSError as exc:
        report.problems.append(FileProblem(path, None, None, f"cannot read: {exc.strerror or exc}"))
        return None
    report.records += count
    return count


def report_dict(report: VerifyReport) -> dict[str, Any]:
    return {"ok": report.ok, "files": report.files, "records": report.records,
            "bytes": report.bytes, "images_decoded": report.images,
            "files_read_up_to_damage": report.cut_short,
            "problems": [asdict(p) for p in report.problems]}

