from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tfrecord_lite.sharding import item_order, shard_name, shard_ranges


def test_shard_name() -> None:
    assert shard_name("train", 2, 10) == "train-00002-of-00010"
    assert shard_name("val", 0, 1) == "val-00000-of-00001"


@given(st.integers(0, 5000), st.integers(1, 300))
def test_ranges_cover_everything_balanced(n: int, shards: int) -> None:
    ranges = shard_ranges(n, shards)
    assert len(ranges) == shards
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_no_multiple_rule() -> None:
    assert [b - a for a, b in shard_ranges(10, 3)] == [4, 3, 3]


def test_order_is_seeded() -> None:
    assert item_order(5, False, None) == [0, 1, 2, 3, 4]
    a = item_order(100, True, 42)
    assert a == item_order(100, True, 42) and sorted(a) == list(range(100))
    assert a != item_order(100, True, 43)
