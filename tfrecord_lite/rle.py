"""COCO's run-length encoding (RLE) of binary masks, in both of its forms.

A mask of height h and width w is read in column-major order (down the first column,
then down the next): its ``counts`` are the lengths of the alternating runs of 0s and
1s, starting with 0s (a mask whose first pixel is 1 starts with a count of 0), and add
up to h * w. COCO files give them as a list of numbers (the "uncompressed" form of crowd
annotations) or as a string (the "compressed" form): from the fourth count on, each
count less the count two before it, written in groups of 5 bits, least significant
first, one character ``chr(48 + bits)`` a group, with 32 added while more groups follow;
bit 16 of the last group is the sign. This is pycocotools' ``rleFrString`` and
``rleToString``, done here with numpy so that the package does not need pycocotools.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np

from .errors import MaskError

Counts = Union[Sequence[int], np.ndarray]

_FIRST, _LAST = 48, 111  # "0" and "o": the characters of the compressed form
_MAX_GROUPS = 7  # 35 bits: any count of a mask under 2**32 pixels fits


def counts_from_string(text: str | bytes, where: str = "mask",
                       max_runs: int | None = None) -> np.ndarray:
    """The counts of COCO's compressed RLE string (``rle["counts"]`` as ``str`` or ``bytes``).

    Decoding takes a few bytes a character and 8 a count: a string is checked to hold at
    most ``max_runs`` numbers (h * w + 1 for a mask of h x w pixels) before any count is
    made, so that a long string is refused at the cost of reading it once.

    Raises:
        MaskError: a character outside ``0``..``o``, a number cut at the end or too long,
            more numbers than ``max_runs``.
    """
    if max_runs is not None and len(text) > _MAX_GROUPS * max_runs:
        at_least = -(-len(text) // _MAX_GROUPS)  # each count takes 1 to 7 characters
        raise _too_many_runs(where, f"at least {at_least:,} counts", max_runs)
    if isinstance(text, str):
        if not text.isascii():
            raise MaskError(f"{where}: compressed RLE: the string holds characters other "
                            "than '0' to 'o'", "corrupt rle")
        text = text.encode("ascii")
    data = bytes(text)
    codes = np.frombuffer(data, np.uint8)  # a view: no copy of the string
    if codes.size == 0:
        return np.zeros(0, np.int64)
    outside = (codes < _FIRST) | (codes > _LAST)
    if outside.any():
        first = int(np.argmax(outside))
        raise MaskError(f"{where}: compressed RLE: character {data[first:first + 1]!r} "
                        f"at {first} is not one of the form's ('0' to 'o')", "corrupt rle")
    del outside
    last = codes < _FIRST + 0x20  # the last group of a number ("0" to "O")
    if not last[-1]:
        raise MaskError(f"{where}: compressed RLE: the string ends inside a number",
                        "corrupt rle")
    runs = int(np.count_nonzero(last))
    if max_runs is not None and runs > max_runs:
        raise _too_many_runs(where, f"{runs:,} counts", max_runs)
    ends = np.flatnonzero(last)
    del last
    sizes = np.diff(ends, prepend=-1)
    longest = int(sizes.max())
    if longest > _MAX_GROUPS:
        raise MaskError(f"{where}: compressed RLE: a number of {longest} groups is too "
                        "large for a mask", "corrupt rle")
    sizes = sizes.astype(np.uint8)
    values = ((codes[ends - (sizes - 1)] - _FIRST) & 0x1F).astype(np.int64)
    for k in range(1, longest):  # the k-th group of every number that has one
        has = np.flatnonzero(sizes > k)
        group = codes[ends[has] - (sizes[has] - 1) + k] - _FIRST
        values[has] |= (group & 0x1F).astype(np.int64) << (5 * k)
        del has, group
    negative = ((codes[ends] - _FIRST) & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * sizes[negative].astype(np.int64))
    # from the fourth on, each count is relative to the one two before it
    values[1::2] = np.cumsum(values[1::2])
    values[2::2] = np.cumsum(values[2::2])
    return values


def _too_many_runs(where: str, found: str, max_runs: int) -> MaskError:
    return MaskError(f"{where}: compressed RLE: the string holds {found}, more than the "
                     f"{max_runs:,} runs its size allows (height x width + 1)", "corrupt rle")


def counts_to_string(counts: Counts) -> str:
    """COCO's compressed RLE string of ``counts`` (pycocotools' ``rleToString``)."""
    values = [int(c) for c in counts]
    out = bytearray()
    for i, count in enumerate(values):
        x = count - values[i - 2] if i > 2 else count
        while True:
            group = x & 0x1F
            x >>= 5
            more = x != -1 if group & 0x10 else x != 0
            out.append(_FIRST + (group | 0x20 if more else group))
            if not more:
                break
    return out.decode("ascii")


def checked_counts(counts: Counts, height: int, width: int, where: str = "mask") -> np.ndarray:
    """``counts`` as an int64 array, checked to be whole numbers >= 0 adding up to h * w.

    Raises:
        MaskError: a count that is not a whole number, is negative, or a sum that is not
            the number of pixels.
    """
    try:
        array = np.asarray(counts, dtype=np.float64 if _has_floats(counts) else np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MaskError(f"{where}: RLE counts must be whole numbers: {exc}",
                        "corrupt rle") from None
    if array.ndim != 1:
        raise MaskError(f"{where}: RLE counts must be a flat list of numbers", "corrupt rle")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array) & (array == np.floor(array))):
            raise MaskError(f"{where}: RLE counts must be whole numbers", "corrupt rle")
        array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise MaskError(f"{where}: RLE count {int(array.min())} is negative", "corrupt rle")
    total = int(array.sum())
    if total != height * width:
        raise MaskError(f"{where}: RLE counts add up to {total:,} pixels, not the "
                        f"{height}x{width} = {height * width:,} of its size", "corrupt rle")
    return array


def _has_floats(counts: Counts) -> bool:
    if isinstance(counts, np.ndarray):
        return counts.dtype.kind == "f"
    return any(isinstance(c, float) for c in counts)


def decode(counts: Counts, height: int, width: int, where: str = "mask") -> np.ndarray:
    """The ``height`` x ``width`` 0/1 uint8 mask of ``counts`` (checked first).

    Raises:
        MaskError: counts that do not describe a mask of this size (``checked_counts``).
    """
    runs = checked_counts(counts, height, width, where)
    values = np.zeros(runs.size, np.uint8)
    values[1::2] = 1
    column_major = np.repeat(values, runs)
    return np.ascontiguousarray(column_major.reshape(width, height).T)


def sample(counts: Counts, height: int, width: int, rows: np.ndarray, cols: np.ndarray,
           where: str = "mask") -> np.ndarray:
    """The mask of ``counts`` at the pixels ``rows`` x ``cols`` only (a nearest-neighbour
    resize), without making the full-size mask.

    Raises:
        MaskError: counts that do not describe a mask of this size (``checked_counts``).
    """
    ends = np.cumsum(checked_counts(counts, height, width, where))
    positions = cols.astype(np.int64)[np.newaxis, :] * height + rows[:, np.newaxis]
    return (np.searchsorted(ends, positions, side="right") & 1).astype(np.uint8)


def encode(mask: np.ndarray) -> np.ndarray:
    """The counts of a 2-D mask (nonzero is 1), as pycocotools' ``encode`` makes them."""
    flat = np.asarray(mask).T.ravel() != 0
    if flat.size == 0:
        return np.zeros(1, np.int64)
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], changes, [flat.size])))
    return np.concatenate(([0], counts)) if flat[0] else counts
