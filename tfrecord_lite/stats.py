"""``stats`` over shards: class histogram, box checks, keypoint and mask counts, in memory
bounded by the largest record, whatever its lists hold.

Each record's features are read through ``features.record_features`` (types checked as
``decode_record`` checks them) and its lists as numpy arrays, a chunk at a time: no
Python object per value, and no list that grows with the boxes seen (the box sizes are
summed as they come, in the order a running Python sum takes them).
"""

from __future__ import annotations

import collections
import itertools
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .decode import decode_value
from .features import Features, record_features
from .framing import DEFAULT_MAX_RECORD_SIZE
from .reader import read_framed
from .schema import BYTES, RECORD_FIELDS

_MISSING_SHOWN = 1000  # stats lists at most this many missing classes
_BOX = ("image/object/bbox/xmin", "image/object/bbox/xmax", "image/object/bbox/ymin",
        "image/object/bbox/ymax")
_BOX_CHUNK = 1 << 18  # boxes checked at a time (as float64: 8 MB for the four edges)
_SMALL = 256  # a list of this many values or fewer is checked in Python, one by one
_BINCOUNT = 1 << 16  # int64 values counted by bincount below this, else by sorting
_CHECKS = ("reversed", "tiny (< 10 px²)", "count mismatch", "outside [0, 1]", "not finite")
_POINTS = ("image/object/parts/x", "image/object/parts/y")


@dataclass
class _Extent:
    """A running min, sum and max of floats, each as Python's ``min``, ``sum`` and
    ``max`` would give them over all the values in order (NaN included)."""

    count: int = 0
    total: float = 0.0
    low: float | None = None
    high: float | None = None

    def add(self, values: Any) -> None:
        """Add a float64 array's values, in order."""
        if values.size <= _SMALL:
            self.add_floats(values.tolist())
            return
        import numpy as np

        rest = values
        if self.low is None or self.high is None:
            self.low = self.high = float(values[0])
            rest = values[1:]
        if not np.all(np.isnan(rest)):
            # min() keeps its value unless a later one is smaller: a NaN never is, and
            # a NaN kept stays kept.
            if self.low == self.low:
                self.low = min(self.low, float(np.nanmin(rest)))
            if self.high == self.high:
                self.high = max(self.high, float(np.nanmax(rest)))
        self.count += values.size
        # cumsum adds one value after another, as sum() does (not pairwise).
        self.total = float(np.cumsum(np.concatenate(([self.total], values)))[-1])

    def add_floats(self, values: list[float]) -> None:
        """Add a few values, in order, one by one (what ``add`` does in bulk)."""
        for value in values:
            if self.low is None or self.high is None:
                self.low = self.high = value
            else:
                self.low = value if value < self.low else self.low
                self.high = value if value > self.high else self.high
            self.total += value
        self.count += len(values)

    def summary(self) -> dict[str, float] | None:
        if not self.count or self.low is None or self.high is None:
            return None
        return {"min": self.low, "mean": self.total / self.count, "max": self.high}


@dataclass
class _Tally:
    classes: collections.Counter[int] = field(default_factory=collections.Counter)
    box_labels: collections.Counter[int] = field(default_factory=collections.Counter)
    box_names: dict[int, str] = field(default_factory=dict)
    visibility: collections.Counter[int] = field(default_factory=collections.Counter)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_CHECKS, 0))
    checks: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in _CHECKS})
    widths: _Extent = field(default_factory=_Extent)
    heights: _Extent = field(default_factory=_Extent)
    images: int = 0
    boxes: int = 0
    with_mask: int = 0
    without_mask: int = 0
    label_images: int = 0


def _count(view: Features, key: str) -> int:
    return view.count(key) if key in view else 0


def _first(view: Features, key: str) -> Any:
    return view.first(key) if key in view else None


def _histogram(counter: collections.Counter[int], chunk: Any) -> list[int]:
    """Count the values of an int64 array into ``counter``; its distinct values."""
    if chunk.size <= _SMALL:
        values = chunk.tolist()
        counter.update(values)
        return list(dict.fromkeys(values))
    import numpy as np

    if int(chunk.min()) >= 0 and int(chunk.max()) < _BINCOUNT:
        counts = np.bincount(chunk)  # small labels: no sort
        distinct = np.flatnonzero(counts)
        counts = counts[distinct]
    else:
        distinct, counts = np.unique(chunk, return_counts=True)
    found: list[int] = distinct.tolist()
    counter.update(dict(zip(found, counts.tolist())))
    return found


def _boxes(view: Features) -> Iterator[list[Any]]:
    """The box edges as float64 arrays [xmin, xmax, ymin, ymax], a chunk at a time, as
    far as the shortest of the four lists goes."""
    import numpy as np

    for chunks in zip(*(view.numbers(key, _BOX_CHUNK) if key in view else iter(())
                        for key in _BOX)):
        n = min(c.size for c in chunks)
        yield [c[:n].astype(np.float64) for c in chunks]


def _check_boxes(view: Features, tally: _Tally, width: int, height: int) -> set[str]:
    """Tally the record's box sizes; the box checks it fails."""
    import numpy as np

    found: set[str] = set()
    for x0, x1, y0, y1 in _boxes(view):
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, as in Python
            if x0.size <= _SMALL:
                _check_few(x0.tolist(), x1.tolist(), y0.tolist(), y1.tolist(), width,
                           height, found)
            else:
                _check_many(x0, x1, y0, y1, width, height, found)
            tally.widths.add(x1 - x0)
            tally.heights.add(y1 - y0)
    return found


def _check_few(x0: list[float], x1: list[float], y0: list[float], y1: list[float],
               width: int, height: int, found: set[str]) -> None:
    for a0, a1, b0, b1 in zip(x0, x1, y0, y1):
        if a0 > a1 or b0 > b1:
            found.add("reversed")
        if any(v < 0 or v > 1 for v in (a0, a1, b0, b1)):
            found.add("outside [0, 1]")
        if not all(math.isfinite(v) for v in (a0, a1, b0, b1)):
            found.add("not finite")
        if width and height and abs(a1 - a0) * width * abs(b1 - b0) * height < 10:
            found.add("tiny (< 10 px²)")


def _check_many(x0: Any, x1: Any, y0: Any, y1: Any, width: int, height: int,
                found: set[str]) -> None:
    """``_check_few`` over arrays."""
    import numpy as np

    if np.any((x0 > x1) | (y0 > y1)):
        found.add("reversed")
    if any(np.any((v < 0) | (v > 1)) for v in (x0, x1, y0, y1)):
        found.add("outside [0, 1]")
    if not all(np.all(np.isfinite(v)) for v in (x0, x1, y0, y1)):
        found.add("not finite")
    if width and height and np.any(np.abs(x1 - x0) * width * np.abs(y1 - y0) * height < 10):
        found.add("tiny (< 10 px²)")


def _finite_points(view: Features) -> bool:
    """Whether every keypoint coordinate is a finite number."""
    import numpy as np

    return all(bool(np.all(np.isfinite(chunk))) for key in _POINTS if key in view
               for chunk in view.numbers(key))


def _box_labels(view: Features, tally: _Tally) -> None:
    """Count the box labels; name each label by the first text given with it that is
    UTF-8 (``bbox/text``, at the same index)."""
    key, text_key = "image/object/bbox/label", "image/object/bbox/text"
    texts = view.bytes_values(text_key) if text_key in view else iter(())
    for chunk in view.numbers(key) if key in view else ():
        unnamed = [label for label in _histogram(tally.box_labels, chunk)
                   if label not in tally.box_names]
        if not unnamed:
            for _ in itertools.islice(texts, chunk.size):  # keep the texts aligned
                pass
            continue
        aligned = list(itertools.islice(texts, chunk.size))
        for i, label in enumerate(chunk[:len(aligned)].tolist()):
            if label not in tally.box_names:
                text = decode_value(None, BYTES, [aligned[i]])[0]
                if isinstance(text, str):
                    tally.box_names[label] = text


def _record(view: Features, tally: _Tally, examples: int) -> None:
    tally.images += 1
    label = _first(view, "image/class/label")
    if isinstance(label, int) and label >= 0:
        tally.classes[label] += 1
    n = min(_count(view, key) for key in _BOX)
    tally.boxes += n
    _box_labels(view, tally)
    raw_id = _first(view, "image/id")
    ident = str(decode_value(RECORD_FIELDS["image/id"], BYTES, [] if raw_id is None else
                             [raw_id]))
    declared = _first(view, "image/object/count")
    found = _check_boxes(view, tally, _first(view, "image/width") or 0,
                         _first(view, "image/height") or 0)
    if declared is not None and declared != _count(view, "image/object/bbox/xmin"):
        found.add("count mismatch")
    if not _finite_points(view):
        found.add("not finite")
    for name in found:
        tally.counts[name] += 1
        if len(tally.checks[name]) < examples:
            tally.checks[name].append(ident)
    if "image/object/parts/v" in view:
        for chunk in view.numbers("image/object/parts/v"):
            _histogram(tally.visibility, chunk)
    objects = declared if isinstance(declared, int) else n
    masked = min(_count(view, "image/object/mask"), objects)
    tally.with_mask += masked
    tally.without_mask += objects - masked
    tally.label_images += bool(_first(view, "image/segmentation/class/encoded"))


def stats(paths: Iterable[str | os.PathLike[str]], compression: str | None = None,
          examples: int = 5, max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> dict[str, Any]:
    """Class histogram, box sanity checks, keypoint and mask counts over shards.

    Box checks (as the original ``stat_tfrecords.py``, plus the range check): reversed
    coordinates, boxes under 10 square pixels, ``object/count`` not matching the number
    of boxes, coordinates outside [0, 1], box or keypoint coordinates that are not
    finite numbers (NaN, infinite: never written by ``create``). For each, the count
    and the first ``examples`` record ids. Masks: the objects with a mask and without
    one, and the images with a label image (``image/segmentation/class/encoded``).

    Raises:
        RecordError: a damaged file (names file, record index and offset).
        RecordDecodeError: a record that is not an Example, or whose features have the
            wrong types (``image/width`` as bytes, ...).
    """
    tally = _Tally()
    for raw_path in paths:
        path = os.fspath(raw_path)
        for index, offset, data in read_framed(path, compression,
                                               max_record_size=max_record_size):
            _record(record_features(data, path, index, offset), tally, examples)
    top = max(tally.classes) if tally.classes else -1
    # A label of 2**62 leaves that many classes missing: list the first ones, count all.
    missing = itertools.islice((c for c in range(top + 1) if c not in tally.classes),
                               _MISSING_SHOWN)
    return {
        "images": tally.images,
        "boxes": tally.boxes,
        "classes": {str(k): tally.classes[k] for k in sorted(tally.classes)},
        "missing_classes": list(missing),
        "missing_classes_count": top + 1 - len(tally.classes),
        "box_labels": {str(k): {"boxes": tally.box_labels[k],
                                "text": tally.box_names.get(k, "")}
                       for k in sorted(tally.box_labels)},
        "box_checks": {name: {"images": tally.counts[name], "examples": tally.checks[name]}
                       for name in _CHECKS},
        "box_width": tally.widths.summary(),
        "box_height": tally.heights.summary(),
        "keypoint_visibility": {str(k): tally.visibility[k] for k in sorted(tally.visibility)},
        "masks": {"objects_with_mask": tally.with_mask,
                  "objects_without_mask": tally.without_mask,
                  "images_with_label_image": tally.label_images},
    }

