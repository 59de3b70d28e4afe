"""The local runner: ``write_dataset`` (and the original tool's ``create``) in this
process or its worker processes.

A local job holds the lock of its prefix in the output directory, keeps a journal of its
complete shards (so that an interrupted run resumes, see ``journal``), writes the shards
with the thread runner (``threads``) or the process runner (``processes``), then
publishes them with the files beside them. The output bytes depend only on the items,
the options and the seed, not on the numbers of threads and processes. How each shard
is written and published is in ``shards``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import IO, Any, Callable

from . import journal, processes, sharding, shards, storage, threads
from .errors import InterruptedRunError, OptionsError, write_errors
from .framing import DEFAULT_MAX_RECORD_SIZE
from .job import (
    FailuresFile,
    ItemSource,
    JobSummary,
    check_job,
    remove_earlier_run,
    remove_stale_temps,
    warn_glob_clashes,
)
from .options import JobOptions, fspath_or_none

logger = logging.getLogger(__name__)

__all__ = ["JobSummary", "create", "run", "write_dataset"]

_ON_INTERRUPTED = ("warn", "restart", "refuse")


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
    max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
    resume: bool = False,
    fsync: bool = False,
    worker_timeout: float | None = 600.0,
    progress: bool | Callable[[int, int], Any] = True,
    interrupted: str = "warn",
    num_processes: int | None = None,
    keep_failures: bool = True,
) -> JobSummary:
    """Write ``dataset`` as ``num_shards`` TFRecord files; the engine behind ``create``.

    The job options (``shuffle`` to ``worker_timeout``) are those of ``JobOptions``,
    which this builds; ``run`` takes a ``JobOptions`` instead. ``shuffle`` and
    ``store_images`` default to on, as in ``create``; the command line's defaults
    differ (see ``create``).

    Args:
        dataset: the items: a list, or any sized iterable (``JsonLines``), which is
            streamed when ``shuffle`` is off, so memory does not grow with its length.
        validation: "strict" (an item with a doubtful annotation fails), "lenient"
            (written, with a warning), "off".
        root: read relative filenames from here; refuse paths that lead outside it.
        max_record_size: an item whose record would be longer fails, naming its size
            (default: 256 MiB, what the readers accept by default; ``verify
            --max-record-size`` and the readers' ``max_record_size`` read longer ones).
        resume: finish an interrupted run of the same job in this directory: shards it
            completed are kept (checked against its journal), the rest are written.
            With the same input and seed the output is byte-identical to an
            uninterrupted run; the seed of the interrupted run is reused when not given.
        fsync: flush each shard, journal file and the manifest to the disk before it
            gets its final name, so that not even a power failure leaves a partial file
            under a final name (slower: the job waits for the disk).
        worker_timeout: seconds a worker process may go without reporting progress
            before it is killed and the job fails with ``WorkerTimeoutError`` (a
            ``WriteError``: resume it); None: wait for ever.
        progress, interrupted, num_processes, keep_failures: see ``run``.
        (the other arguments: see ``create`` and ``JobOptions``.)
    Returns:
        A JobSummary: counts, failures (copies of the items, each with
        ``error_msg``), shard names with their counts, bytes and sha256.
    Raises:
        ValueError: an argument is out of range.
        ResumeError: ``resume`` with arguments other than the interrupted run's.
        InterruptedRunError: ``interrupted="refuse"`` and an interrupted run was found.
        OutputBusyError: another run is writing ``dataset_name`` in this directory.
        WriteError: the output could not be written (no partial shard is left).
    """
    options = JobOptions(shuffle=shuffle, seed=seed, store_images=store_images,
                         compression=compression, quality=quality, max_side=max_side,
                         decode_check=decode_check, validation=validation,
                         root=fspath_or_none(root), max_record_size=max_record_size,
                         resume=resume, fsync=fsync, worker_timeout=worker_timeout)
    return run(dataset, dataset_name, output_directory, num_shards, options,
               num_threads=num_threads, num_processes=num_processes, progress=progress,
               interrupted=interrupted, keep_failures=keep_failures)


def run(dataset: Iterable[Any], dataset_name: str, output_directory: str | os.PathLike[str],
        num_shards: int, options: JobOptions | None = None, *, num_threads: int = 1,
        num_processes: int | None = None, progress: bool | Callable[[int, int], Any] = True,
        interrupted: str = "warn", keep_failures: bool = True,
        more_failures: Callable[[], Iterable[dict[str, Any]]] | None = None) -> JobSummary:
    """The local runner: ``write_dataset`` with its job options as one ``JobOptions``.

    Args:
        dataset, dataset_name, output_directory, num_shards: see ``create``.
        options: the job's options (default: ``JobOptions()``).
        num_threads: encoding threads (in each worker process).
        num_processes: worker processes writing whole shards beside each other, each
            with ``num_threads`` threads; 1: everything in this process. None (the
            default): see ``processes.default_processes`` (the machine's cores, when
            the job is large enough to gain from them, each process then with
            ``num_threads // processes`` threads, at least 1).
        progress: a progress bar (True), none (False), or ``callback(done, total)``.
        interrupted: without ``options.resume``, what to do when the directory holds an
            interrupted run of ``dataset_name`` with complete shards: "warn" (log a
            warning with their count, then start over), "restart" (start over), "refuse"
            (raise InterruptedRunError before touching any file).
        keep_failures: keep a copy of each failed item in the summary (``failures``; the
            list ``create`` returns). False: only the failures file has them (written
            as they come), so that memory does not grow with their number; the summary
            still counts them, by reason, with the first few messages.
        more_failures: once every item is read, the problems found outside the items
            (a converter's rejected annotations and skipped images): entries written to
            the failures file after the failed items, counted as ``problems``.
    Returns, Raises: see ``write_dataset``.

    After the job, the shard glob of the prefix (``train-*``) matches exactly its shards:
    until every new shard is complete, an earlier run's shards, manifest and failures
    stay as they were; then the new shards get their final names, and those of an
    earlier run that remain are removed once the manifest is written. Beside the
    shards: ``{name}.failures.json`` (the failed items, an empty list when none failed),
    then ``{name}.manifest.json``. A run that writes no record (every item failed, or
    there were none) publishes no shard and no manifest, so an earlier run's dataset
    stays whole, and so does its failures file: this run's failures go to
    ``{name}.unpublished-failures.json`` instead (``JobSummary.published`` is False),
    which the next run that publishes removes.
    """
    options = JobOptions() if options is None else options
    check_job(dataset_name, num_shards)
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
    out = storage.folder(os.fspath(output_directory), durable=options.fsync)
    with out, contextlib.ExitStack() as held:
        with write_errors(f"cannot create output directory {out}"):
            out.makedirs()
        with write_errors(f"cannot write the lock file in {out}"):
            held.enter_context(journal.lock(out, dataset_name))  # before any file of the job
        warn_glob_clashes(out, dataset_name)
        summary = _run_job(out, dataset, dataset_name, num_shards, num_threads, options,
                           progress, interrupted, num_processes, keep_failures,
                           more_failures)
    logger.info("%s", summary.describe())
    return summary


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
             num_processes: int | None, keep_failures: bool,
             more_failures: Callable[[], Iterable[dict[str, Any]]] | None = None
             ) -> JobSummary:
    """The job, in the output directory it holds the lock of: find what an interrupted
    run completed, start the journal, write the shards (the failed items to the
    failures file's temporary file, as they come), then the files beside them."""
    previous, completed = _read_journal(out, name, options.resume, interrupted)
    earlier = previous.get("options", {}).get("seed") if previous is not None else None
    options = options.seeded(earlier)
    source = ItemSource(dataset, options.shuffle, options.seed, options.validation != "off")
    completed = _start_journal(out, name, num_shards, source.total, options, previous,
                               completed)
    summary = JobSummary(name, str(out), source.total, options=options.manifest(),
                         resumed_shards=len(completed), keep_failures=keep_failures)
    count, per_process = processes.processes_and_threads(
        num_processes, num_threads, num_shards - len(completed), source.total)
    started = time.perf_counter()
    with write_errors(f"cannot write in {out}", shards.NOTHING_PARTIAL), out.scratch() as f:
        # Unnamed until the end: a killed run leaves nothing of it. A large buffer: each
        # flush lets go of the interpreter lock, which the encoding threads may keep a
        # while before this thread has it back.
        with open(f.fileno(), "wb", buffering=1 << 20, closefd=False) as stream:
            failures = summary.stream = FailuresFile(stream)
            try:
                if count > 1:
                    processes.write_shards(out, name, num_shards, per_process, count,
                                           options, source, completed, summary, progress)
                else:
                    threads.write_shards(out, name, num_shards, per_process, options,
                                         source, completed, summary, progress)
            finally:
                summary.stream = None
            for entry in more_failures() if more_failures is not None else ():
                failures.add(entry)
                summary.problems += 1
            failures.close()
        summary.seconds = time.perf_counter() - started
        summary.unknown_keys = source.unknown_keys.as_dict()
        if summary.written:
            _publish(out, name, summary, completed, f)
        else:
            _withdraw(out, name, summary, f)
    return summary


def _read_journal(out: storage.Folder, name: str, resume: bool, interrupted: str
                  ) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]]]:
    """An interrupted run's journal: its header and its completed shards by index
    (``None, {}`` without ``resume``, after checking what ``interrupted`` says)."""
    with write_errors(f"cannot write the job journal in {out}", shards.NOTHING_PARTIAL):
        if not resume:
            _check_interrupted(out, name, interrupted)
        previous, completed = journal.read(out, name) if resume else (None, {})
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
    with write_errors(f"cannot write the job journal in {out}", shards.NOTHING_PARTIAL):
        remove_stale_temps(out, name)
        if previous is not None:
            journal.check_same(previous, this_run)
            found = {i: journal.locate(out, e) for i, e in completed.items()
                     if 0 <= i < num_shards}
            completed = {i: dict(completed[i], at=at) for i, at in found.items()
                         if at is not None}
        else:
            completed = {}
        shards.remove_abandoned(out, name, (str(e["at"]) for e in completed.values()))
        journal.start(out, name, this_run, set(completed))
    return completed


def _publish(out: storage.Folder, name: str, summary: JobSummary,
             completed: dict[int, dict[str, Any]], failures: IO[bytes]) -> None:
    """Every shard being complete under its hidden name: the earlier run's manifest goes
    (it no longer describes the files), each shard gets its final name (replacing the
    earlier run's file of that name), then the files beside them: the failures (always,
    so that no earlier run's list is left; ``failures`` holds it, complete). Then what
    an earlier run left is removed (its other shards and the record indexes, which may
    describe replaced files), and only then the manifest is written: a manifest means
    the whole dataset is there, and nothing else under the shard glob. The journal goes
    last, so that an interruption anywhere here is finished by a resume.

    Raises:
        OSError: a file could not be written, renamed or removed.
    """
    names = [info.file for info in summary.shards]
    out.remove(sharding.manifest_name(name))
    shards.put_in_place(out, names, (str(entry["at"]) for entry in completed.values()))
    out.publish_from(failures, sharding.failures_name(name))
    out.remove(sharding.unpublished_failures_name(name))
    remove_earlier_run(out, name, names)
    out.write(sharding.manifest_name(name), summary.manifest_json())
    journal.remove(out, name)


def _withdraw(out: storage.Folder, name: str, summary: JobSummary,
              failures: IO[bytes]) -> None:
    """A run that wrote no record publishes nothing: an earlier run's dataset of the
    prefix stays as it was (shards and manifest), rather than be replaced by empty
    shards. Its complete shards and journal go; the failures list (``failures`` holds
    it, complete) is written as ``{name}.unpublished-failures.json``, so that what
    failed can be read while the earlier run's failures file stays with its shards.

    Raises:
        OSError: a file could not be written or removed.
    """
    summary.published = False
    out.publish_from(failures, sharding.unpublished_failures_name(name))
    shards.remove_abandoned(out, name, ())
    journal.remove(out, name)


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
        dataset: the items (docs/item-format.md). Never reordered or modified.
        dataset_name: shard name prefix: ``{name}-{i:05d}-of-{num_shards:05d}``.
        output_directory: created when missing.
        num_shards: any number >= 1 (no longer a multiple of ``num_threads``).
        num_threads: encoding threads.
        shuffle: write items in a seeded random order. On by default here, as in the
            original tool's function; the command line writes input order unless
            ``--shuffle`` is given (the original command line's meaning).
        store_images: store the image bytes (``image/encoded``). On by default here;
            the original command line (no command word) stores them only with
            ``--store_images``.
        **options: ``seed``, ``compression``, ``quality``, ``max_side``,
            ``decode_check``, ``validation``, ``root``, ``max_record_size``, ``resume``,
            ``fsync``, ``worker_timeout``, ``progress``, ``interrupted``,
            ``num_processes``, ``keep_failures`` (see ``write_dataset``).
    Returns:
        The items that failed, each a copy with an added ``error_msg``.
    Raises:
        WriteError: the output could not be written.
    """
    return write_dataset(dataset, dataset_name, output_directory, num_shards, num_threads,
                         shuffle, store_images, **options).failures
