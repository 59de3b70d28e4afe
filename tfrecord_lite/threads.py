"""The thread runner of the local job: every shard written in this process, the items
encoded on a pool of threads.

The items are read in write order and encoded on the pool (``parallel.in_order``), and
their records written in that order, so the output does not depend on the thread count.
A complete shard is hashed and published on the pool while the next one is encoded, and
journaled once published. The shards being written one after the other, each failed item
goes to the job's summary (and its failures file) as it fails.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable

from . import items, sharding, shards, storage
from .errors import WriteError
from .items import ItemOptions
from .job import ItemSource, JobSummary, Task
from .options import JobOptions
from .parallel import in_order
from .progress import make_progress
from .shards import Outcome, ShardResult, complete_name

logger = logging.getLogger(__name__)


def _encode(options: ItemOptions, task: Task) -> Outcome:
    position, item, duplicate, skip = task
    if skip:
        return position, item, None, None, None
    return (position, item, *items.try_encode(item, options, duplicate))


@dataclass
class _Finishing:
    """A complete shard being hashed and published on the pool."""

    result: ShardResult
    future: concurrent.futures.Future[ShardResult]


def write_shards(out: storage.Folder, name: str, num_shards: int, num_threads: int,
                 options: JobOptions, source: ItemSource, completed: dict[int, dict[str, Any]],
                 summary: JobSummary, progress: bool | Callable[[int, int], Any]) -> None:
    """Write (or, resuming, keep) each shard under its complete name, journaled, with
    the items encoded on ``num_threads`` threads; the summary lists them.

    Raises:
        WriteError: a shard could not be written (no partial file is left).
        ResumeError: a kept shard's items are not those of the interrupted run.
        DatasetError: the input changed while being read.
    """
    ranges = sharding.shard_ranges(source.total, num_shards)
    bar = make_progress(progress, source.total, f"{name}")
    pool = concurrent.futures.ThreadPoolExecutor(num_threads, thread_name_prefix="tfrecord-lite")
    outcomes = in_order(pool, functools.partial(_encode, ItemOptions(options)),
                        source.tasks(ranges[i] for i in completed),
                        window=3 * num_threads, chunk=8)
    pending: collections.deque[_Finishing] = collections.deque()
    results: list[ShardResult] = []
    try:
        for index, (start, stop) in enumerate(ranges):
            part = (next(outcomes) for _ in range(start, stop))
            entry = completed.get(index)
            if entry is not None:
                kept = shards.kept(entry, (o[1] for o in part), start, bar.update)
                kept.add_failures_to(summary)
                kept.forget_failures()  # the journal has them
                results.append(kept)
                continue
            shard = sharding.shard_name(name, index, num_shards)
            result = shards.write_shard(out.temp_path(shard), index, shard,
                                        options.compression, part, bar.update,
                                        out.location(shard), summary.add_failure)
            results.append(result)
            pending.append(_Finishing(result, pool.submit(
                shards.finish, out, result, complete_name(shard))))
            _record_finished(out, name, pending, wait=False)
        _record_finished(out, name, pending, wait=True)
        for result in results:
            result.add_to(summary)
    finally:
        bar.close()
        # Drop the queued work at once (nothing waits for items that will not be
        # written; the tasks already running end soon), then settle the complete
        # shards still pending.
        pool.shutdown(wait=False, cancel_futures=True)
        _settle(out, name, pending)
        pool.shutdown(wait=True)


def _record_finished(out: storage.Folder, name: str, pending: collections.deque[_Finishing],
                     wait: bool) -> None:
    """Journal the shards published so far (``wait``: all of them, waiting)."""
    while pending and (wait or pending[0].future.done()):
        shard = pending.popleft()
        shards.record(out, name, shard.future.result())
        shard.result.forget_failures()


def _settle(out: storage.Folder, name: str, pending: collections.deque[_Finishing]) -> None:
    """After an error or an interruption: publish and journal the complete shards still
    pending, and remove the temporary files of those that could not be."""
    for shard in pending:
        try:
            if shard.future.cancelled():  # dropped from the pool's queue: finished here
                shards.finish(out, shard.result, complete_name(shard.result.name))
            else:
                shard.future.result()
            shards.record(out, name, shard.result)
        except WriteError:  # the first error is the one reported
            logger.debug("shard %s was not completed", shard.result.name, exc_info=True)
        storage.remove_quietly(shard.result.temp)
    pending.clear()

