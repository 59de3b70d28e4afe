"""Who reads which records of an epoch, and in which order: pure functions, no PyTorch.

A training job reads the shards with several *readers*: every DataLoader worker of every
distributed rank (``readers = world_size * num_workers``, reader ``rank * num_workers +
worker_id``). Each record must reach exactly one reader per epoch::

    shards, in epoch order:   s3 s0 s5 s1 | s4 s2        (6 shards, 4 readers)
                              whole shards | shared shards
    reader r reads alone:     the whole shards r, r + 4, ...
    every reader reads:       the shared shards, keeping their records n = r, r + 4, ...
                              (n counts the records of the shared shards, in order)

So with at least as many shards as readers, most shards are read by one reader only
(split by shard); the ``num_shards % readers`` left over, or every shard when there are
fewer shards than readers, are split by record. Every reader gets the same number of
shards and, of the shared ones, the same number of records to within one.

Shuffling is by shard order (a new permutation each epoch) plus a buffer of records per
reader. Both draw from generators seeded with ``(seed, epoch)`` and ``(seed, epoch,
reader)``: the same seed and epoch give the same order, on any machine.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")


def rng(*parts: int) -> random.Random:
    """A generator seeded by ``parts`` (a string seed: the same stream on every platform
    and process, whatever ``PYTHONHASHSEED`` is)."""
    return random.Random("tfrecord-lite:" + ":".join(str(p) for p in parts))


def shard_order(num_shards: int, seed: int | None, epoch: int) -> list[int]:
    """The order in which the shards are taken in ``epoch``: as given without a seed,
    else a permutation drawn from ``(seed, epoch)``."""
    order = list(range(num_shards))
    if seed is not None:
        rng(seed, epoch).shuffle(order)
    return order


@dataclass(frozen=True)
class Share:
    """What one reader reads in an epoch.

    Attributes:
        whole: shards (positions in the list of files) this reader reads alone.
        shared: shards every reader reads, each keeping its own records of them.
        reader: this reader's number, in ``range(readers)``.
        readers: how many readers share the epoch.
    """

    whole: tuple[int, ...]
    shared: tuple[int, ...]
    reader: int
    readers: int

    def keeps(self, n: int) -> bool:
        """Whether record ``n`` of the shared shards (counted over them all, in order)
        is this reader's."""
        return n % self.readers == self.reader


def share(order: list[int], reader: int, readers: int) -> Share:
    """What ``reader`` of ``readers`` reads when the shards are taken in ``order``.

    Raises:
        ValueError: ``reader`` not in ``range(readers)``.
    """
    if readers < 1 or not 0 <= reader < readers:
        raise ValueError(f"reader {reader} of {readers}: expected 0 <= reader < readers")
    whole = len(order) - len(order) % readers
    return Share(tuple(order[reader:whole:readers]), tuple(order[whole:]), reader, readers)


def take(plan: Share, read_shard: Callable[[int], Iterable[T]]) -> Iterator[T]:
    """The records of one reader, in order: its whole shards, then its share of the
    shared ones. ``read_shard(i)`` gives the records of shard ``i`` (anything that takes
    a record's place, such as a mark of damage, counts as one)."""
    for shard in plan.whole:
        yield from read_shard(shard)
    n = 0
    for shard in plan.shared:
        for record in read_shard(shard):
            if plan.keeps(n):
                yield record
            n += 1


def shuffled(records: Iterable[T], buffer_size: int, generator: random.Random) -> Iterator[T]:
    """``records`` in a random order drawn with a buffer of ``buffer_size``: each one
    out is drawn from the next ``buffer_size`` not yet given (so the order is local:
    shuffle the shard order too). Every record comes out exactly once."""
    if buffer_size <= 1:
        yield from records
        return
    buffer: list[T] = []
    randrange = generator.randrange
    for record in records:
        if len(buffer) < buffer_size:
            buffer.append(record)
            continue
        i = randrange(buffer_size)
        out, buffer[i] = buffer[i], record
        yield out
    generator.shuffle(buffer)
    yield from buffer
