"""Writing TFRecord files: one file (``TFRecordWriter``), and the sharded job (``create``).

The job reads items in a seeded order, encodes them on a pool of threads and writes
the records in that order, so the output bytes do not depend on the thread count.
Each shard is written under a hidden temporary name and renamed when complete: no
file ever carries a final shard name while partial.
"""

from __future__ import annotations

import collections
import concurrent.futures
import errno
import functools
import glob
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Callable, Optional

from . import __version__, journal, sharding, storage
from . import compression as _compression
from .crc32c import CrcFn, crc32c
from .dataset import ParseFailure
from .errors import DatasetError, ResumeError, TFRecordLiteError, WriteError
from .framing import RecordFramer
from .parallel import in_order
from .progress import make_progress
from .validate import IdTracker, Problem

logger = logging.getLogger(__name__)

MANIFEST_SUFFIX = "-manifest.json"
FAILURES_SUFFIX = "-failures.json"


class TFRecordWriter:
    """Writes records to one TFRecord file, plain or compressed as a whole stream.

    Use as a context manager::

        with TFRecordWriter("data.tfrecord", compression="gzip") as w:
            w.write(example_bytes)

    Args:
        path: the file to write (truncated if it exists).
        compression: None / "none", "gzip" or "zlib" (TensorFlow's names work too).
        crc_fn: the CRC32C function (tests swap it).
    """

    def __init__(self, path: str | os.PathLike[str], compression: str | None = None,
                 crc_fn: CrcFn = crc32c) -> None:
        self.path = os.fspath(path)
        self.compression = _compression.normalize(compression)
        self._file: IO[bytes] = _compression.open_file(self.path, "w", self.compression)
        self._framer = RecordFramer(self._file, crc_fn)
        # write(data: bytes) -> int frames and writes one record, returning the framed
        # size; bound directly to the framer to keep per-record overhead minimal.
        self.write = self._framer.write

    def flush(self) -> None:
        """Push every record written so far to the operating system."""
        self._framer.flush()
        self._file.flush()

    def close(self) -> None:
        """Flush and close; idempotent."""
        if not self._file.closed:
            try:
                self._framer.flush()
            finally:
                self._file.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the sharded job --------------------------------------------------------------------

@dataclass
class ShardInfo:
    file: str
    records: int
    bytes: int
    sha256: str


@dataclass
class JobSummary:
    """What a ``write_dataset`` run did."""

    name: str
    output_directory: str
    total: int
    written: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    shards: list[ShardInfo] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    resumed_shards: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": "tfrecord",
            "records": self.written,
            "failed": self.failed,
            "warned": len(self.warnings),
            "num_shards": len(self.shards),
            "bytes": self.bytes,
            "shards": [asdict(s) for s in self.shards],
            "options": self.options,
            "tfrecord_lite_version": __version__,
        }

    def describe(self) -> str:
        """A few lines for people: written, failed by reason, shards, bytes, time."""
        rate = self.total / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"wrote {self.written} of {self.total} items to {len(self.shards)} shards "
            f"({_human_bytes(self.bytes)}) in {self.output_directory} "
            f"in {self.seconds:.1f} s ({rate:.0f} items/s)",
        ]
        if self.resumed_shards:
            lines.append(f"resumed: {self.resumed_shards} shards were already complete")
        if self.failures:
            reasons = ", ".join(f"{n} {reason}" for reason, n in
                                sorted(self.failed_by_reason.items(), key=lambda kv: -kv[1]))
            lines.append(f"failed: {self.failed} ({reasons})")
        if self.warnings:
            lines.append(f"written with warnings (lenient validation): {len(self.warnings)}")
        return "\n".join(lines)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def failure_copy(item: Any, error: BaseException | str) -> dict[str, Any]:
    """What the failure list holds for an item: a copy with ``error_msg`` added."""
    if isinstance(item, ParseFailure):
        return item.as_failure()
    failed = dict(item) if isinstance(item, Mapping) else {"item": item}
    failed["error_msg"] = error if isinstance(error, str) else str(error) or type(error).__name__
    return failed


def _temp_patterns(name: str) -> list[str]:
    """The job's file names (globs) whose temporary files a killed run may leave."""
    shard = glob.escape(name) + "-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]"
    return [shard, glob.escape(name + MANIFEST_SUFFIX), glob.escape(name + FAILURES_SUFFIX),
            *journal.temp_patterns(glob.escape(name))]


def finish_shard(out: storage.Folder, temp: str, name: str) -> str:
    """Hash a complete temporary shard and give it its final name; returns the sha256."""
    try:
        digest = _compression.file_sha256(temp)
        out.publish(temp, name)
    except OSError as exc:
        storage.remove_quietly(temp)
        raise write_error(f"shard {out.location(name)}", exc) from exc
    return digest


def write_error(what: str, exc: OSError) -> WriteError:
    full = " (disk full?)" if exc.errno == errno.ENOSPC else ""
    return WriteError(f"cannot write {what}: {exc.strerror or exc}{full}; "
                      "no partial shard was left under a final name")


class _Input:
    """The items in the order they are written, without holding more than needed.

    A shuffled job needs every item in memory; an unshuffled one streams a sized
    iterable (such as ``JsonLines``) once, in its order.
    """

    def __init__(self, dataset: Iterable[Any], shuffle: bool, seed: int | None,
                 track_ids: bool) -> None:
        self._items: Sequence[Any] | None = None
        self._stream: Iterable[Any] | None = None
        if not shuffle and not isinstance(dataset, Sequence) and isinstance(dataset, Sized):
            self._stream = dataset
            self.total = len(dataset)
        else:
            self._items = dataset if isinstance(dataset, Sequence) else list(dataset)
            self.total = len(self._items)
        self.order = (sharding.item_order(self.total, True, seed)
                      if shuffle and self._items is not None else None)
        self._track_ids = track_ids

    def tasks(self, skip: bytearray) -> Iterator[tuple[int, Any, Problem | None, bool]]:
        """``(position, item, duplicate-id problem, skip)`` in write order.

        Duplicate ids are found in input order, whatever the write order.
        """
        tracker = (IdTracker(self._items if self._items is not None else self._stream)
                   if self._track_ids else None)
        if self.order is not None:
            assert self._items is not None
            items = self._items
            dups = {}
            if tracker is not None:
                for index, item in enumerate(items):
                    problem = tracker.check(index, item)
                    if problem is not None:
                        dups[index] = problem
            for position, index in enumerate(self.order):
                yield position, items[index], dups.get(index), bool(skip[position])
            return
        source = self._items if self._items is not None else self._stream
        assert source is not None
        position = -1
        for position, item in enumerate(source):
            if position >= self.total:
                raise DatasetError(f"the dataset grew while being read (more than "
                                   f"{self.total} items)")
            dup = tracker.check(position, item) if tracker is not None else None
            yield position, item, dup, bool(skip[position])
        if position + 1 != self.total:
            raise DatasetError(f"the dataset shrank while being read ({position + 1} of "
                               f"{self.total} items)")


@dataclass
class _Finishing:
    """A complete shard being hashed and published on the pool."""

    info: ShardInfo
    entry: dict[str, Any]
    temp: str
    future: concurrent.futures.Future[str]


def _settle(pending: collections.deque[_Finishing], out: storage.Folder, name: str) -> None:
    """After an error or an interruption: journal the shards that did get published,
    and remove the temporary files of those that did not."""
    for shard in pending:
        try:
            shard.entry["sha256"] = shard.future.result()
            journal.add(out, name, shard.entry)
        except BaseException:  # noqa: BLE001 - the first error is the one reported
            logger.debug("shard %s was not completed", shard.info.file, exc_info=True)
        storage.remove_quietly(shard.temp)
    pending.clear()


_Result = tuple[Any, Optional[bytes], Optional[BaseException], Optional[list[str]]]


def _encode_task(try_encode: Callable[..., Any], options: Any,
                 task: tuple[int, Any, Problem | None, bool]) -> _Result:
    _, item, duplicate, skip = task
    if skip:
        return item, None, None, None
    return (item, *try_encode(item, options, duplicate))


def manifest_options(shuffle: bool, seed: int | None, compression: str | None,
                     options: Any) -> dict[str, Any]:
    """The job's ``options`` as the manifest (and the resume journal) records them."""
    image = options.image
    return {"shuffle": shuffle, "seed": seed if shuffle else None,
            "store_images": options.store_images, "compression": compression,
            "quality": image.quality, "max_side": image.max_side,
            "decode_check": image.decode_check, "validation": options.validation,
            "root": options.root}


def check_job_arguments(dataset_name: str, num_shards: int, quality: int,
                        max_side: int | None) -> None:
    """Raise ValueError for an argument of a sharded job that is out of range."""
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"num_shards must be a whole number >= 1, got {num_shards!r}")
    if not dataset_name or "/" in dataset_name or os.sep in dataset_name:
        raise ValueError(f"dataset_name must be a plain file name prefix, got {dataset_name!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")


def write_dataset(
    dataset: Iterable[Any],
    dataset_name: str,
    output_directory: str | os.PathLike[str],
    num_shards: int,
    num_threads: int,
    shuffle: bool = True,
    store_images: bool = True,
    *,
    seed: int | None = None,
    compression: str | None = None,
    quality: int = 95,
    max_side: int | None = None,
    decode_check: bool = True,
    validation: str = "strict",
    root: str | os.PathLike[str] | None = None,
    resume: bool = False,
    fsync: bool = False,
    progress: bool | Callable[[int, int], Any] = True,
) -> JobSummary:
    """Write ``dataset`` as ``num_shards`` TFRecord files; the engine behind ``create``.

    Args:
        dataset: the items: a list, or any sized iterable (``JsonLines``), which is
            streamed when ``shuffle`` is off, so memory does not grow with its length.
        validation: "strict" (an item with a doubtful annotation fails), "lenient"
            (written, with a warning), "off".
        root: read relative filenames from here; refuse paths that lead outside it.
        resume: finish an interrupted run of the same job in this directory: shards it
            completed are kept (checked against its journal), the rest are written.
            With the same input and seed the output is byte-identical to an
            uninterrupted run; the seed of the interrupted run is reused when not given.
        fsync: flush each shard, journal file and the manifest to the disk before it
            gets its final name, so that not even a power failure leaves a partial file
            under a final name (slower: the job waits for the disk).
        (the other arguments: see ``create``.)
    Returns:
        A JobSummary: counts, failures (copies of the items, each with
        ``error_msg``), shard names with their counts, bytes and sha256.
    Raises:
        ValueError: an argument is out of range.
        ResumeError: ``resume`` with arguments other than the interrupted run's.
        WriteError: the output could not be written (no partial shard is left).
    """
    from .images import ImageOptions  # Pillow: imported when a job runs, not with the package
    from .items import ItemOptions

    check_job_arguments(dataset_name, num_shards, quality, max_side)
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a whole number >= 1, got {num_threads!r}")
    comp = _compression.normalize(compression)
    options = ItemOptions(store_images, ImageOptions(quality, max_side, decode_check),
                          validation, None if root is None else os.fspath(root))
    out = storage.folder(os.fspath(output_directory), durable=fsync)
    try:
        return _run_job(out, dataset, dataset_name, num_shards, num_threads, shuffle, seed,
                        comp, options, resume, progress)
    finally:
        out.close()


def _run_job(out: storage.Folder, dataset: Iterable[Any], dataset_name: str, num_shards: int,
             num_threads: int, shuffle: bool, seed: int | None, comp: str | None,
             options: Any, resume: bool, progress: bool | Callable[[int, int], Any]
             ) -> JobSummary:
    from .items import failure_reason, try_encode

    try:
        previous, completed = journal.read(out, dataset_name) if resume else (None, {})
    except OSError as exc:
        raise write_error(f"the job journal in {out}", exc) from exc
    if resume and previous is None:
        logger.info("no interrupted run of %s to resume in %s; writing every shard",
                    dataset_name, out)
    if shuffle and seed is None and previous is not None:
        seed = previous.get("options", {}).get("seed")
    if shuffle and seed is None:
        seed = sharding.new_seed()
    job_options = manifest_options(shuffle, seed, comp, options)
    source = _Input(dataset, shuffle, seed, options.validation != "off")
    this_run = journal.header(dataset_name, num_shards, source.total, job_options)
    try:
        out.makedirs()
    except OSError as exc:
        raise WriteError(
            f"cannot create output directory {out}: {exc.strerror or exc}") from exc
    try:
        out.remove_stale_temps(_temp_patterns(dataset_name))
        if previous is not None:
            journal.check_same(previous, this_run)
            completed = {i: e for i, e in completed.items()
                         if 0 <= i < num_shards and journal.intact(out, e)}
        else:
            completed = {}
        journal.start(out, dataset_name, this_run, set(completed))
    except OSError as exc:
        raise write_error(f"the job journal in {out}", exc) from exc

    summary = JobSummary(dataset_name, str(out), source.total, options=job_options,
                         resumed_shards=len(completed))
    ranges = sharding.shard_ranges(source.total, num_shards)
    skip = bytearray(source.total)
    for index in completed:
        start, stop = ranges[index]
        skip[start:stop] = b"\x01" * (stop - start)
    reasons: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    bar = make_progress(progress, source.total, f"{dataset_name}")

    pool = concurrent.futures.ThreadPoolExecutor(num_threads, thread_name_prefix="tfrecord-lite")
    results = in_order(pool, functools.partial(_encode_task, try_encode, options),
                       source.tasks(skip), window=3 * num_threads, chunk=8)
    tmp: str | None = None
    # Complete shards are hashed and published on the pool, beside the encoding of the
    # next ones; each is journaled once published.
    pending: collections.deque[_Finishing] = collections.deque()

    def record_finished(wait: bool) -> None:
        while pending and (wait or pending[0].future.done()):
            shard = pending.popleft()
            shard.info.sha256 = shard.entry["sha256"] = shard.future.result()
            journal.add(out, dataset_name, shard.entry)

    try:
        for index, (start, stop) in enumerate(ranges):
            name = sharding.shard_name(dataset_name, index, num_shards)
            fingerprint = journal.new_fingerprint()
            entry = completed.get(index)
            if entry is not None:
                failed_at = {f[0]: f[2] for f in entry["failures"]}
                for position in range(start, stop):
                    item = next(results)[0]
                    journal.item_fingerprint(fingerprint, item)
                    if position in failed_at:
                        summary.failures.append(failure_copy(item, failed_at[position]))
                    bar.update(1)
                if fingerprint.hexdigest() != entry["items"]:
                    raise ResumeError(
                        f"cannot resume: the items of shard {name} are not those of the "
                        "interrupted run (ids or filenames differ); resume with the same "
                        "input, or run without resume to start over")
                reasons.update(f[1] for f in entry["failures"])
                summary.warnings += entry["warnings"]
                info = ShardInfo(name, entry["records"], entry["bytes"], entry["sha256"])
                summary.shards.append(info)
                summary.written += info.records
                summary.bytes += info.bytes
                continue
            tmp = out.temp_path(name)
            records = 0
            failed: list[tuple[int, str, str]] = []
            warned: list[str] = []
            try:
                with TFRecordWriter(tmp, comp) as writer:
                    for position in range(start, stop):
                        item, data, error, warnings = next(results)
                        journal.item_fingerprint(fingerprint, item)
                        if data is not None:
                            writer.write(data)
                            records += 1
                            if warnings:
                                warned += warnings
                        else:
                            assert error is not None
                            copy = failure_copy(item, error)
                            summary.failures.append(copy)
                            failed.append((position, failure_reason(error), copy["error_msg"]))
                        bar.update(1)
                size = os.path.getsize(tmp)
            except OSError as exc:
                raise write_error(f"shard {out.location(name)}", exc) from exc
            reasons.update(f[1] for f in failed)
            summary.warnings += warned
            info = ShardInfo(name, records, size, "")
            summary.shards.append(info)
            summary.written += records
            summary.bytes += size
            entry = {"shard": index, "file": name, "records": records, "bytes": size,
                     "items": fingerprint.hexdigest(), "failures": failed, "warnings": warned}
            pending.append(_Finishing(info, entry, tmp,
                                      pool.submit(finish_shard, out, tmp, name)))
            tmp = None
            record_finished(wait=False)
        record_finished(wait=True)
        summary.failed_by_reason = dict(reasons)
        summary.seconds = time.perf_counter() - started
        out.write(dataset_name + MANIFEST_SUFFIX,
                  (json.dumps(summary.manifest(), indent=2) + "\n").encode())
        journal.remove(out, dataset_name)
    except WriteError:
        raise
    except OSError as exc:
        raise write_error(f"in {out}", exc) from exc
    finally:
        bar.close()
        if tmp is not None:
            storage.remove_quietly(tmp)
        _settle(pending, out, dataset_name)
        pool.shutdown(wait=True, cancel_futures=True)
    logger.info("%s", summary.describe())
    return summary


@dataclass
class ValidationReport:
    """What ``validate_dataset`` found: the items that would fail, and the warnings."""

    total: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def validate_dataset(dataset: Iterable[Any], *, validation: str = "strict",
                     root: str | os.PathLike[str] | None = None,
                     store_images: bool = True) -> ValidationReport:
    """Check every item as ``write_dataset`` would, without reading images or writing.

    Finds what fails an item in the given validation mode (see ``validate``), what the
    encoder refuses (wrong types), duplicate ids, missing image files and paths outside
    ``root``; images are not decoded.
    """
    from .example import ImageFields, encode_example
    from .items import ItemOptions, check, check_source, describe

    options = ItemOptions(store_images, validation=validation,
                          root=None if root is None else os.fspath(root))
    source = _Input(dataset, False, None, validation != "off")
    report = ValidationReport(source.total)
    for _, item, duplicate, _ in source.tasks(bytearray(source.total)):
        try:
            warnings = check(item, options, duplicate)
            encode_example(item, ImageFields(None, 1, 1))  # the encoder's own type checks
            check_source(item, options)
        except TFRecordLiteError as exc:
            report.failures.append(failure_copy(item, exc))
            continue
        if warnings:
            report.warnings.append(describe(item, warnings))
    return report


def create(
    dataset: Iterable[Mapping[str, Any]],
    dataset_name: str,
    output_directory: str | os.PathLike[str],
    num_shards: int,
    num_threads: int,
    shuffle: bool = True,
    store_images: bool = True,
    **options: Any,
) -> list[dict[str, Any]]:
    """Write a dataset of SPEC items as sharded TFRecord files (the original tool's call).

    Args:
        dataset: the items (nested dicts; see SPEC.md). Never reordered or modified.
        dataset_name: shard name prefix: ``{name}-{i:05d}-of-{num_shards:05d}``.
        output_directory: created when missing.
        num_shards: any number >= 1 (no longer a multiple of ``num_threads``).
        num_threads: encoding threads.
        shuffle: write items in a seeded random order.
        store_images: store the image bytes (``image/encoded``).
        **options: ``seed``, ``compression``, ``quality``, ``max_side``,
            ``decode_check``, ``validation``, ``root``, ``resume``, ``fsync``, ``progress``
            (see ``write_dataset``).
    Returns:
        The items that failed, each a copy with an added ``error_msg``.
    Raises:
        WriteError: the output could not be written.
    """
    return write_dataset(dataset, dataset_name, output_directory, num_shards, num_threads,
                         shuffle, store_images, **options).failures
