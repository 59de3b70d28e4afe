"""The one concurrency helper: an ordered, bounded map over a thread pool."""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Callable


def in_order(pool: concurrent.futures.Executor, fn: Callable[[Any], Any],
             args: Iterable[Any], window: int, chunk: int = 1) -> Iterator[Any]:
    """``pool.map`` with results in input order, at most ``window`` tasks in flight.

    Arguments are sent in chunks of ``chunk`` (fewer, larger tasks keep the per-task
    overhead small); memory stays bounded by ``window * chunk`` results.
    """
    pending: collections.deque[concurrent.futures.Future[Any]] = collections.deque()

    def run(part: Sequence[Any]) -> list[Any]:
        return [fn(a) for a in part]

    batch: list[Any] = []
    for arg in args:
        batch.append(arg)
        if len(batch) >= chunk:
            pending.append(pool.submit(run, batch))
            batch = []
            if len(pending) >= window:
                yield from pending.popleft().result()
    if batch:
        pending.append(pool.submit(run, batch))
    while pending:
        yield from pending.popleft().result()
