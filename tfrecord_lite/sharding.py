"""Pure planning: shard names, balanced ranges, seeded order. No I/O here."""

from __future__ import annotations

import random


def shard_name(name: str, index: int, count: int) -> str:
    """``train-00002-of-00010``: the name of shard ``index`` of ``count``."""
    return f"{name}-{index:05d}-of-{count:05d}"


def shard_ranges(num_items: int, num_shards: int) -> list[tuple[int, int]]:
    """Split ``num_items`` positions into ``num_shards`` contiguous ranges.

    Sizes differ by at most one, the larger ones first.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    base, extra = divmod(num_items, num_shards)
    ranges = []
    start = 0
    for i in range(num_shards):
        stop = start + base + (1 if i < extra else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


def item_order(num_items: int, shuffle: bool, seed: int | None) -> list[int]:
    """The order in which items are written: identity, or a permutation fixed by ``seed``.

    The caller's list is never touched; only these indices are shuffled.
    """
    order = list(range(num_items))
    if shuffle:
        random.Random(seed).shuffle(order)
    return order


def new_seed() -> int:
    """A fresh seed, recorded in the manifest so that a shuffled run can be repeated."""
    return random.SystemRandom().randrange(1 << 32)
