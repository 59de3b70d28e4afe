"""The local runner: ``write_dataset`` (and the original tool's ``create``) on a pool of
threads, and ``validate_dataset``.

The job reads items in a seeded order, encodes them on a pool of threads and writes
the records in that order, so the output bytes do not depend on the thread count.
Each shard is written under a hidden temporary name and renamed when complete to a
hidden name of its own (``.train-00003-of-00008.complete``); only when every shard is
complete are they given their final names. So no file ever carries a final shard name
while partial, and an interrupted run leaves an earlier run's dataset as it was. What
a job is, whichever runner runs it (options, summary, manifest, failures, publishing a
shard), is in ``job``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import itertools
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import items, journal, processes, sharding, storage
from .errors import (
    DatasetError,
    InterruptedRunError,
    OptionsError,
    OutputBusyError,
    ResumeError,
    TFRecordLiteError,
    WriteError,
)
from .example import ImageFields, encode_example
from .items import ItemOptions
from .job import (
    JobSummary,
    ShardInfo,
    check_job,
    complete_name,
    failure_copy,
    failures_json,
    finish_shard,
    item_options,
    put_in_place,
    remove_abandoned,
    remove_earlier_run,
    temp_patterns,
    warn_glob_clashes,
    write_error,
)
from .options import JobOptions, fspath_or_none
from .parallel import in_order
from .progress import Progress, make_progress
from .records import TFRecordWriter
from .validate import IdTracker, Problem

logger = logging.getLogger(__name__)

__all__ = ["JobSummary", "TFRecordWriter", "ValidationReport", "create", "validate_dataset",
           "write_dataset"]


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


# (item, record or None, error or None, lenient validation's warnings or None)
_Result = tuple[Any, Optional[bytes], Optional[BaseException], Optional[list[str]]]


def _encode_task(options: ItemOptions, task: tuple[int, Any, Problem | None, bool]) -> _Result:
    _, item, duplicate, skip = task
    if skip:
        return item, None, None, None
    return (item, *items.try_encode(item, options, duplicate))


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
    interrupted: str = "warn",
    num_processes: int | None = None,
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
        interrupted: without ``resume``, what to do when the directory holds an
            interrupted run of ``dataset_name`` with complete shards: "warn" (log a
            warning with their count, then start over), "restart" (start over), "refuse"
            (raise InterruptedRunError before touching any file).
        num_processes: worker processes writing whole shards beside each other, each
            with ``num_threads`` threads; 1: everything in this process. None (the
            default): see ``default_processes`` (the machine's cores, when the job is
            large enough to gain from them, each process then with
            ``num_threads // processes`` threads, at least 1). The output bytes are the
            same whatever the numbers.
        (the other arguments: see ``create``.)
    Returns:
        A JobSummary: counts, failures (copies of the items, each with
        ``error_msg``), shard names with their counts, bytes and sha256.
    Raises:
        ValueError: an argument is out of range.
        ResumeError: ``resume`` with arguments other than the interrupted run's.
        InterruptedRunError: ``interrupted="refuse"`` and an interrupted run was found.
        OutputBusyError: another run is writing ``dataset_name`` in this directory.
        WriteError: the output could not be written (no partial shard is left).

    After the job, the shard glob of the prefix (``train-*``) matches exactly its shards:
    until every new shard is complete (each waits under ``.{shard}.complete``), an
    earlier run's shards, manifest and failures stay as they were; then the new shards
    get their final names, and those of an earlier run that remain are removed once the
    manifest is written. Beside the shards: ``{name}.failures.json`` (the failed
    items, an empty list when none failed), then ``{name}.manifest.json``.
    """
    check_job(dataset_name, num_shards)
    options = JobOptions(shuffle=shuffle, seed=seed, store_images=store_images,
                         compression=compression, quality=quality, max_side=max_side,
                         decode_check=decode_check, validation=validation,
                         root=fspath_or_none(root), resume=resume, fsync=fsync)
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise OptionsError(f"num_threads must be a whole number >= 1, got {num_threads!r}")
    if num_processes is not None and (isinstance(num_processes, bool)
                                      or not isinstance(num_processes, int)
                                      or num_processes < 1):
        raise OptionsError(f"num_processes must be a whole number >= 1 or None, got "
                           f"{num_processes!r}")
    if interrupted not in _ON_INTERRUPTED:
        raise OptionsError(f"interrupted must be one of {', '.join(_ON_INTERRUPTED)}, got "
                           f"{interrupted!r}")
    out = storage.folder(os.fspath(output_directory), durable=fsync)
    try:
        try:
            out.makedirs()
        except OSError as exc:
            raise WriteError(
                f"cannot create output directory {out}: {exc.strerror or exc}") from exc
        with contextlib.ExitStack() as held:
            try:  # before any file of the job is touched
                held.enter_context(journal.lock(out, dataset_name))
            except OutputBusyError:
                raise
            except OSError as exc:
                raise write_error(f"the lock file in {out}", exc) from exc
            warn_glob_clashes(out, dataset_name)
            return _run_job(out, dataset, dataset_name, num_shards, num_threads, options,
                            progress, interrupted, num_processes)
    finally:
        out.close()


_ON_INTERRUPTED = ("warn", "restart", "refuse")


def _check_interrupted(out: storage.Folder, name: str, interrupted: str) -> None:
    """Before a run that starts over: an interrupted run with complete shards is
    refused, or named in a warning."""
    found = journal.progress(out, name)
    if found is None or found[0] == 0:
        return
    complete, total = found
    what = (f"{out} holds an interrupted run of {name!r}: {complete} of {total} shards are "
            "complete")
    if interrupted == "refuse":
        raise InterruptedRunError(
            f"{what}. To keep them, resume it (resume=True); to start over, "
            "interrupted='restart'", name=name, directory=str(out), complete=complete,
            total=total)
    log = logger.warning if interrupted == "warn" else logger.info
    log("%s; starting over, they are written again (to keep them, run again with "
        "resume=True)", what)


def _run_job(out: storage.Folder, dataset: Iterable[Any], name: str, num_shards: int,
             num_threads: int, options: JobOptions,
             progress: bool | Callable[[int, int], Any], interrupted: str,
             num_processes: int | None = 1) -> JobSummary:
    """The job, in the output directory it holds the lock of: find what an interrupted
    run completed, start the journal, write the shards, then the files beside them."""
    previous, completed = _read_journal(out, name, options.resume, interrupted)
    earlier = previous.get("options", {}).get("seed") if previous is not None else None
    options = options.seeded(earlier)
    source = _Input(dataset, options.shuffle, options.seed, options.validation != "off")
    completed = _start_journal(out, name, num_shards, source.total, options, previous,
                               completed)
    summary = JobSummary(name, str(out), source.total, options=options.manifest(),
                         resumed_shards=len(completed))
    processes_, threads = _processes_and_threads(
        num_processes, num_threads, num_shards - len(completed), source.total)
    started = time.perf_counter()
    try:
        if processes_ > 1:
            _write_shards_in_processes(out, name, num_shards, threads, processes_, options,
                                       source, completed, summary, progress)
        else:
            _write_shards(out, name, num_shards, threads, options, source, completed,
                          summary, progress)
        summary.seconds = time.perf_counter() - started
        _publish(out, name, summary, completed)
    except WriteError:
        raise
    except OSError as exc:
        raise write_error(f"in {out}", exc) from exc
    logger.info("%s", summary.describe())
    return summary


def _read_journal(out: storage.Folder, name: str, resume: bool, interrupted: str
                  ) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]]]:
    """An interrupted run's journal: its header and its completed shards by index
    (``None, {}`` without ``resume``, after checking what ``interrupted`` says)."""
    try:
        if not resume:
            _check_interrupted(out, name, interrupted)
        previous, completed = journal.read(out, name) if resume else (None, {})
    except OSError as exc:
        raise write_error(f"the job journal in {out}", exc) from exc
    if resume and previous is None:
        logger.info("no interrupted run of %s to resume in %s; writing every shard", name, out)
    return previous, completed


def _start_journal(out: storage.Folder, name: str, num_shards: int, total: int,
                   options: JobOptions, previous: dict[str, Any] | None,
                   completed: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Remove a killed run's temporary files and start this run's journal; returns the
    interrupted run's shards that are kept (same job, files intact), each with ``at``:
    the name that holds it (hidden, or final when the run was interrupted while giving
    the shards their final names). Hidden complete shards that are not kept go.

    Raises:
        ResumeError: the interrupted run had other arguments.
        WriteError: the journal cannot be written.
    """
    this_run = journal.header(name, num_shards, total, options.manifest())
    try:
        out.remove_stale_temps(temp_patterns(name))
        if previous is not None:
            journal.check_same(previous, this_run)
            found = {i: journal.locate(out, e) for i, e in completed.items()
                     if 0 <= i < num_shards}
            completed = {i: dict(completed[i], at=at) for i, at in found.items()
                         if at is not None}
        else:
            completed = {}
        remove_abandoned(out, name, (str(e["at"]) for e in completed.values()))
        journal.start(out, name, this_run, set(completed))
    except OSError as exc:
        raise write_error(f"the job journal in {out}", exc) from exc
    return completed


def _write_shards(out: storage.Folder, name: str, num_shards: int, num_threads: int,
                  options: JobOptions, source: _Input, completed: dict[int, dict[str, Any]],
                  summary: JobSummary, progress: bool | Callable[[int, int], Any]) -> None:
    """Encode the items on a pool of threads and write (or, resuming, keep) each shard
    under its hidden name, journaled; the summary lists them."""
    ranges = sharding.shard_ranges(source.total, num_shards)
    bar = make_progress(progress, source.total, f"{name}")
    pool = concurrent.futures.ThreadPoolExecutor(num_threads, thread_name_prefix="tfrecord-lite")
    results = in_order(pool, functools.partial(_encode_task, item_options(options)),
                       source.tasks(_skip_mask(ranges, completed, source.total)),
                       window=3 * num_threads, chunk=8)
    shards = _Shards(out, name, num_shards, options.compression, summary, results, bar, pool)
    try:
        for index, (start, stop) in enumerate(ranges):
            entry = completed.get(index)
            if entry is not None:
                shards.keep(index, start, stop, entry)
            else:
                shards.write(index, start, stop)
        shards.record_finished(wait=True)
        summary.failed_by_reason = dict(shards.reasons)
    finally:
        bar.close()
        shards.close()


def _skip_mask(ranges: list[tuple[int, int]], completed: dict[int, dict[str, Any]],
               total: int) -> bytearray:
    """One byte per item position: 1 where the item's shard is kept from an interrupted
    run (it is read, for the fingerprint, but not encoded)."""
    skip = bytearray(total)
    for index in completed:
        start, stop = ranges[index]
        skip[start:stop] = b"\x01" * (stop - start)
    return skip


def _journal_entry(index: int, name: str, records: int, size: int, items_: str,
                   failed: list[tuple[int, str, str]], warnings: list[str]) -> dict[str, Any]:
    """What the journal records of a complete shard (``sha256`` is added once known)."""
    return {"shard": index, "file": complete_name(name), "final": name, "records": records,
            "bytes": size, "items": items_, "failures": failed, "warnings": warnings}


def _publish(out: storage.Folder, name: str, summary: JobSummary,
             completed: dict[int, dict[str, Any]]) -> None:
    """Every shard being complete under its hidden name: the earlier run's manifest goes
    (it no longer describes the files), each shard gets its final name (replacing the
    earlier run's file of that name), then the files beside them: the failures (always,
    so that no earlier run's list is left). Then what an earlier run left is removed (its
    other shards and the record indexes, which may describe replaced files), and only
    then the manifest is written: a manifest means the whole dataset is there, and
    nothing else under the shard glob. The journal goes last, so that an interruption
    anywhere here is finished by a resume.

    Raises:
        OSError: a file could not be written, renamed or removed.
    """
    shards = [info.file for info in summary.shards]
    out.remove(sharding.manifest_name(name))
    put_in_place(out, shards, (str(entry["at"]) for entry in completed.values()))
    out.write(sharding.failures_name(name), failures_json(summary.failures))
    remove_earlier_run(out, name, shards)
    out.write(sharding.manifest_name(name), summary.manifest_json())
    journal.remove(out, name)


@dataclass
class _Outcome:
    """One shard's part of the summary, added in shard order."""

    info: ShardInfo
    failures: list[dict[str, Any]]
    reasons: list[str]
    warnings: list[str]

    def add_to(self, summary: JobSummary, reasons: collections.Counter[str]) -> None:
        summary.failures += self.failures
        reasons.update(self.reasons)
        summary.warnings += self.warnings
        summary.add_shard(self.info)


def _kept_shard(name: str, entry: dict[str, Any], items_: Iterable[Any], start: int,
                bar: Progress) -> _Outcome:
    """A shard the interrupted run completed, checked against the items it should hold
    (their failures are listed again).

    Raises:
        ResumeError: the items are not those of the interrupted run.
    """
    fingerprint = journal.new_fingerprint()
    failed_at = {f[0]: f[2] for f in entry["failures"]}
    failures = []
    for position, item in enumerate(items_, start):
        journal.item_fingerprint(fingerprint, item)
        if position in failed_at:
            failures.append(failure_copy(item, failed_at[position]))
        bar.update(1)
    if fingerprint.hexdigest() != entry["items"]:
        raise ResumeError(
            f"cannot resume: the items of shard {name} are not those of the "
            "interrupted run (ids or filenames differ); resume with the same "
            "input, or start over (--restart; from Python, without resume)")
    return _Outcome(ShardInfo(name, entry["records"], entry["bytes"], entry["sha256"]),
                    failures, [f[1] for f in entry["failures"]], list(entry["warnings"]))


# When a job uses worker processes by default. Threads run the image decoding (the
# decode check, PNG) in parallel but share one interpreter lock for the rest, about
# 150 µs of a JPEG photo's CPU time: one process of 2 threads is capped below what 2
# cores can do without the check, and far below it from 4 cores. A worker's start-up (a
# fresh interpreter importing the encoder) costs about 0.11 s of CPU, 0.15 s with the
# decode check (numpy), so a process gets at least MIN_ITEMS_PER_PROCESS items. Measured
# on 2 cores (README, Performance): on 12,000 JPEG photos, 2 processes x 1 thread against
# 1 process x 2 threads, 1.11x to 1.47x without the check and 0.98x to 1.28x with it; on
# 2,400, 0.66x to 1.03x without it and 0.92x to 1.01x with it.
# The calling process holds the items of up to one shard more than there are workers (a
# stream is read in order, so a shard is read whole before the next one starts): with
# large shards that grows with the dataset, so by default a job whose shards average more
# than MAX_ITEMS_PER_SHARD_FOR_PROCESSES items stays in one process, where streamed
# memory does not grow (README, Performance: the soak's growth per item).
MIN_CORES_FOR_PROCESSES = 2
MIN_ITEMS_PER_PROCESS = 5000
MAX_ITEMS_PER_SHARD_FOR_PROCESSES = 10_000


def default_processes(shards: int, items_: int, cores: int | None = None) -> int:
    """How many worker processes a job uses when ``num_processes`` is not given: with
    fewer than ``MIN_CORES_FOR_PROCESSES`` cores (CPU affinity), 1; with shards of more
    than ``MAX_ITEMS_PER_SHARD_FOR_PROCESSES`` items on average, 1 (memory); else one per
    core, no more than the shards to write, and no more than one per
    ``MIN_ITEMS_PER_PROCESS`` items (a small job stays in this process)."""
    cores = processes.cores() if cores is None else cores
    if cores < MIN_CORES_FOR_PROCESSES or items_ > shards * MAX_ITEMS_PER_SHARD_FOR_PROCESSES:
        return 1
    return max(1, min(cores, shards, items_ // MIN_ITEMS_PER_PROCESS))


def _processes_and_threads(num_processes: int | None, num_threads: int, shards: int,
                           items_: int) -> tuple[int, int]:
    """The processes and threads per process of a job: as given, or by default
    ``default_processes``, each with ``num_threads // processes`` threads (at least 1),
    so that the job runs about ``max(num_threads, processes)`` encoders at once."""
    if num_processes is not None:
        return min(num_processes, max(1, shards)), num_threads
    count = default_processes(shards, items_)
    return count, max(1, num_threads // count)


def _write_shards_in_processes(out: storage.Folder, name: str, num_shards: int,
                               num_threads: int, num_processes: int, options: JobOptions,
                               source: _Input, completed: dict[int, dict[str, Any]],
                               summary: JobSummary,
                               progress: bool | Callable[[int, int], Any]) -> None:
    """``_write_shards`` on worker processes (see ``processes``): this process reads the
    items in write order (finding duplicate ids in input order), sends each shard's items
    to an idle worker (at most ``num_processes + 1`` shards' items in memory), publishes
    and journals each shard as it comes back, then lists the shards and failures in
    shard order."""
    ranges = sharding.shard_ranges(source.total, num_shards)
    bar = make_progress(progress, source.total, f"{name}")
    outcomes: dict[int, _Outcome] = {}
    reasons: collections.Counter[str] = collections.Counter()
    tasks = source.tasks(_skip_mask(ranges, completed, source.total))

    def handle(workers: processes.Workers) -> None:
        kind, value = workers.next_event()
        if kind == "progress":
            bar.update(value)
            return
        result: processes.ShardResult = value
        try:
            out.publish(result.temp, complete_name(result.name))
        except OSError as exc:
            storage.remove_quietly(result.temp)
            raise write_error(f"shard {out.location(result.name)}", exc) from exc
        journal.add(out, name, dict(
            _journal_entry(result.index, result.name, result.records, result.bytes,
                           result.fingerprint, result.failed, result.warnings),
            sha256=result.sha256))
        outcomes[result.index] = _Outcome(
            ShardInfo(result.name, result.records, result.bytes, result.sha256),
            result.copies, [f[1] for f in result.failed], result.warnings)

    try:
        with processes.Workers(num_processes, item_options(options), options.compression,
                               num_threads) as workers:
            for index, (start, stop) in enumerate(ranges):
                shard = sharding.shard_name(name, index, num_shards)
                part = list(itertools.islice(tasks, stop - start))
                entry = completed.get(index)
                if entry is not None:
                    outcomes[index] = _kept_shard(shard, entry, (t[1] for t in part), start,
                                                  bar)
                    continue
                worker = workers.idle()
                while worker is None:
                    handle(workers)
                    worker = workers.idle()
                workers.submit(worker, processes.ShardTask(
                    index, shard, out.temp_path(shard), [t[:3] for t in part]))
                del part
            next(tasks, None)  # the input's own checks (it did not grow or shrink)
            while workers.busy():
                handle(workers)
        for index in range(num_shards):
            outcomes[index].add_to(summary, reasons)
        summary.failed_by_reason = dict(reasons)
    finally:
        bar.close()


class _Shards:
    """The shards of one local run, in order: each written from the encoded items (or
    kept from an interrupted run), then hashed and published on the pool beside the
    encoding of the next ones, and journaled once published."""

    def __init__(self, out: storage.Folder, name: str, num_shards: int,
                 compression: str | None, summary: JobSummary, results: Iterator[_Result],
                 bar: Progress, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        self.out, self.name, self.num_shards = out, name, num_shards
        self.compression = compression
        self.summary = summary
        self.results = results
        self.bar = bar
        self.pool = pool
        self.reasons: collections.Counter[str] = collections.Counter()
        self.pending: collections.deque[_Finishing] = collections.deque()
        self.temp: str | None = None  # the shard being written

    def keep(self, index: int, start: int, stop: int, entry: dict[str, Any]) -> None:
        """A shard the interrupted run completed: its items are read (their failures
        listed again) and checked against its journal entry; the file is kept.

        Raises:
            ResumeError: the items are not those of the interrupted run.
        """
        name = sharding.shard_name(self.name, index, self.num_shards)
        kept = _kept_shard(name, entry, (next(self.results)[0] for _ in range(start, stop)),
                           start, self.bar)
        kept.add_to(self.summary, self.reasons)

    def write(self, index: int, start: int, stop: int) -> None:
        """Write the records of items ``start:stop`` under a temporary name, then queue
        the shard's hashing and publishing.

        Raises:
            WriteError: the shard could not be written.
        """
        name = sharding.shard_name(self.name, index, self.num_shards)
        fingerprint = journal.new_fingerprint()
        self.temp = tmp = self.out.temp_path(name)
        records = 0
        failed: list[tuple[int, str, str]] = []
        warned: list[str] = []
        try:
            with TFRecordWriter(tmp, self.compression) as writer:
                for position in range(start, stop):
                    item, data, error, warnings = next(self.results)
                    journal.item_fingerprint(fingerprint, item)
                    if data is not None:
                        writer.write(data)
                        records += 1
                        if warnings:
                            warned += warnings
                    else:
                        assert error is not None
                        copy = failure_copy(item, error)
                        self.summary.failures.append(copy)
                        failed.append((position, items.failure_reason(error),
                                       copy["error_msg"]))
                    self.bar.update(1)
            size = os.path.getsize(tmp)
        except OSError as exc:
            raise write_error(f"shard {self.out.location(name)}", exc) from exc
        self.reasons.update(f[1] for f in failed)
        self.summary.warnings += warned
        info = ShardInfo(name, records, size, "")
        self.summary.add_shard(info)
        entry = _journal_entry(index, name, records, size, fingerprint.hexdigest(), failed,
                               warned)
        self.pending.append(_Finishing(info, entry, tmp,
                                       self.pool.submit(finish_shard, self.out, tmp,
                                                         complete_name(name))))
        self.temp = None
        self.record_finished(wait=False)

    def record_finished(self, wait: bool) -> None:
        """Journal the shards published so far (``wait``: all of them, waiting)."""
        while self.pending and (wait or self.pending[0].future.done()):
            shard = self.pending.popleft()
            shard.info.sha256 = shard.entry["sha256"] = shard.future.result()
            journal.add(self.out, self.name, shard.entry)

    def close(self) -> None:
        """After the job, an error or an interruption: remove a partial shard, drop the
        queued work at once (nothing waits for items that will not be written; the tasks
        already running end soon), and settle the complete shards still pending."""
        if self.temp is not None:
            storage.remove_quietly(self.temp)
        self.pool.shutdown(wait=False, cancel_futures=True)
        _settle(self.pending, self.out, self.name)
        self.pool.shutdown(wait=True)


def _settle(pending: collections.deque[_Finishing], out: storage.Folder, name: str) -> None:
    """After an error or an interruption: publish and journal the complete shards still
    pending, and remove the temporary files of those that could not be."""
    for shard in pending:
        try:
            # Dropped from the pool's queue (see _Shards.close): finished here instead,
            # without waiting for the work queued before it.
            shard.entry["sha256"] = (finish_shard(out, shard.temp,
                                                  complete_name(shard.info.file))
                                     if shard.future.cancelled() else shard.future.result())
            journal.add(out, name, shard.entry)
        except OSError:  # WriteError too; the first error is the one reported
            logger.debug("shard %s was not completed", shard.info.file, exc_info=True)
        storage.remove_quietly(shard.temp)
    pending.clear()


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
    options = ItemOptions(store_images, validation=validation, root=fspath_or_none(root))
    source = _Input(dataset, False, None, validation != "off")
    report = ValidationReport(source.total)
    for _, item, duplicate, _ in source.tasks(bytearray(source.total)):
        try:
            warnings = items.check(item, options, duplicate)
            encode_example(item, ImageFields(None, 1, 1))  # the encoder's own type checks
            items.check_source(item, options)
        except TFRecordLiteError as exc:
            report.failures.append(failure_copy(item, exc))
            continue
        if warnings:
            report.warnings.append(items.describe(item, warnings))
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
    """Write a dataset of items as sharded TFRecord files (the original tool's call).

    Args:
        dataset: the items (README, "The item format"). Never reordered or modified.
        dataset_name: shard name prefix: ``{name}-{i:05d}-of-{num_shards:05d}``.
        output_directory: created when missing.
        num_shards: any number >= 1 (no longer a multiple of ``num_threads``).
        num_threads: encoding threads.
        shuffle: write items in a seeded random order.
        store_images: store the image bytes (``image/encoded``).
        **options: ``seed``, ``compression``, ``quality``, ``max_side``,
            ``decode_check``, ``validation``, ``root``, ``resume``, ``fsync``, ``progress``,
            ``interrupted``, ``num_processes`` (see ``write_dataset``).
    Returns:
        The items that failed, each a copy with an added ``error_msg``.
    Raises:
        WriteError: the output could not be written.
    """
    return write_dataset(dataset, dataset_name, output_directory, num_shards, num_threads,
                         shuffle, store_images, **options).failures
