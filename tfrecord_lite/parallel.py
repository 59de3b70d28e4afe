"""The one concurrency helper: an ordered, bounded map over a thread pool."""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Callable


def in_order(pool: concurrent.futures.Executor, fn: Callable[[Any], Any],
             args: Iterable[Any], window: int, chunk: int = 1,
             cost: Callable[[Any], int] | None = None, budget: int = 0) -> Iterator[Any]:
    """``pool.map`` with results in input order, at most ``window`` tasks in flight.

    Arguments are sent in chunks of ``chunk`` (fewer, larger tasks keep the per-task
    overhead small); memory stays bounded by ``window * chunk`` results. With ``cost``,
    the arguments waiting or in flight also cost at most ``budget`` together (as
    ``cost`` counts each one), beyond the one at hand: large arguments wait their turn.
    """
    pending: collections.deque[tuple[concurrent.futures.Future[Any], int]] = (
        collections.deque())
    held = 0  # the cost of the arguments in flight

    def run(part: Sequence[Any]) -> list[Any]:
        return [fn(a) for a in part]

    batch: list[Any] = []
    batch_cost = 0
    for arg in args:
        weight = cost(arg) if cost is not None else 0
        if cost is not None:
            if batch and batch_cost + weight > budget:  # send what is at hand first
                pending.append((pool.submit(run, batch), batch_cost))
                held += batch_cost
                batch, batch_cost = [], 0
            while pending and held + weight > budget:
                future, spent = pending.popleft()
                held -= spent
                yield from future.result()
        batch.append(arg)
        batch_cost += weight
        if len(batch) >= chunk:
            pending.append((pool.submit(run, batch), batch_cost))
            held += batch_cost
            batch, batch_cost = [], 0
            if len(pending) >= window:
                future, spent = pending.popleft()
                held -= spent
                yield from future.result()
    if batch:
        pending.append((pool.submit(run, batch), batch_cost))
    while pending:
        yield from pending.popleft()[0].result()
