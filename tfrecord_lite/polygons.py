"""Polygons to masks, by the rule of COCO's reference (pycocotools' ``rleFrPoly``).

Mask R-CNN and the COCO evaluation were trained and scored on masks that pycocotools
drew, so a mask here is the one it would draw, pixel for pixel, not merely a close one.
Its rule, followed step by step with numpy:

1. Each vertex is scaled by 5 and rounded half up: ``int(5 * x + 0.5)``.
2. Each edge is walked on that 5x grid, one point per step along its longer axis,
   the other coordinate rounded half up (``int(start + slope * step + 0.5)``), always
   from the endpoint with the smaller coordinate along that axis.
3. Where the walk steps across the centre line of a pixel column c (``x = c + 1/2``,
   ``5c + 2.5`` on the grid), c inside the image, it makes a crossing in row
   ``ceil(y - 0.4)``, y being the smaller of the step's two grid y over 5, clipped to
   0..height: the first row whose centre lies below, within a tenth of a pixel.
4. Down each column, the crossings switch the pixels on and off in turn (two at the
   same place cancel).

A polygon's parts (COCO's list of polygons for one object) are drawn each by that rule
and joined (their union), as ``merge`` of their RLEs does. Columns outside the image get
no crossings and rows are clipped, so vertices outside the image are cut as
pycocotools cuts them.

A mask for an image stored smaller (``max_side``) is drawn at the stored size, from the
polygon scaled by ``stored_width / width`` and ``stored_height / height``: exactly what
pycocotools draws of that scaled polygon at that size.

Memory: besides the mask, one byte a pixel of the polygon's bounding box while it is
drawn, and the points of the walk (five a pixel of outline), a bounded number at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .errors import MaskError
from .plural import count

SCALE = 5
"""The grid the outline is walked on, in points a pixel (pycocotools' ``scale``)."""
_CHUNK = 1 << 16
"""Points of the walk made at a time: a polygon of many long edges costs no more."""
MARGIN = 1.0
"""How far outside the image a vertex may lie, in image sizes, when vertices outside
are allowed (``strict=False``): farther than that is refused in any mode, as a walk
of its edges would cost memory out of all proportion to the mask."""
TOLERANCE = 1.0
"""How far outside the image, in pixels, a vertex may lie even when strict: annotation
tools put vertices on the outer edge of border pixels, or a rounding off it (COCO's own
polygons reach x = width + 0.5 where coordinates name pixel centres), and pycocotools
draws such a polygon cut to the image, as ``rasterize`` does. A vertex farther out is
more likely a wrong coordinate than a border pixel."""


def parse(value: Any, where: str = "mask") -> list[np.ndarray]:
    """COCO's ``[[x1, y1, x2, y2, ...], ...]`` as arrays of shape (points, 2), checked.

    Raises:
        MaskError: not a list of lists of numbers, an odd count of numbers, fewer than 3
            points, or a number that is not finite.
    """
    if not isinstance(value, (list, tuple)) or not value:
        raise MaskError(f"{where}: expected a list of polygons [[x1, y1, x2, y2, ...], ...], "
                        f"got {_kind(value)}", "not a polygon")
    polygons = []
    for i, polygon in enumerate(value):
        if not isinstance(polygon, (list, tuple, np.ndarray)):
            raise MaskError(f"{where}: polygon {i}: expected a list [x1, y1, x2, y2, ...], "
                            f"got {_kind(polygon)}", "not a polygon")
        try:
            coords = np.asarray(polygon, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):  # Overflow: an int beyond a float
            raise MaskError(f"{where}: polygon {i}: expected numbers [x1, y1, x2, y2, ...]",
                            "not a polygon") from None
        if coords.ndim != 1:
            raise MaskError(f"{where}: polygon {i}: expected a flat list [x1, y1, x2, y2, "
                            "...]", "not a polygon")
        if coords.size % 2:
            raise MaskError(f"{where}: polygon {i}: {count(coords.size, 'numbers')}, not x, "
                            "y pairs", "not a polygon")
        if coords.size < 6:
            raise MaskError(f"{where}: polygon {i}: {count(coords.size // 2, 'points')}; a polygon "
                            "needs at least 3", "too few points")
        if not np.all(np.isfinite(coords)):
            raise MaskError(f"{where}: polygon {i}: a coordinate is not a finite number",
                            "not a polygon")
        polygons.append(coords.reshape(-1, 2))
    return polygons


def _kind(value: Any) -> str:
    if isinstance(value, (list, tuple)) and not value:
        return "an empty list"
    return type(value).__name__


def check_inside(polygons: Sequence[np.ndarray], width: float, height: float,
                 where: str = "mask", margin: float = 0.0, unit: str = "pixels",
                 tolerance: tuple[float, float] = (TOLERANCE, TOLERANCE)) -> None:
    """Raise unless every vertex lies within the image, ``[0, width] x [0, height]``,
    widened by ``margin`` times the image's size and by ``tolerance`` (x, y, in the
    units of ``width`` and ``height``) on every side.

    Raises:
        MaskError: naming the polygon, the point and its coordinates.
    """
    low_x, high_x = -margin * width - tolerance[0], (1 + margin) * width + tolerance[0]
    low_y, high_y = -margin * height - tolerance[1], (1 + margin) * height + tolerance[1]
    for i, points in enumerate(polygons):
        x, y = points[:, 0], points[:, 1]
        outside = np.flatnonzero((x < low_x) | (x > high_x) | (y < low_y) | (y > high_y))
        if outside.size:
            j = outside[0]
            far, hint = (" far", "") if margin else (
                "", "; --validation lenient draws the part inside the image")
            raise MaskError(f"{where}: polygon {i}, point {j} (x={x[j]:g}, y={y[j]:g}) lies"
                            f"{far} outside the image, {width:g}x{height:g} {unit}{hint}",
                            "out of range")


def rasterize(polygons: Sequence[np.ndarray], height: int, width: int,
              scale_x: float = 1.0, scale_y: float = 1.0) -> np.ndarray:
    """The ``height`` x ``width`` 0/1 uint8 mask of the union of ``polygons`` (arrays of
    (x, y) pixel coordinates, times ``scale_x`` and ``scale_y``), by pycocotools' rule."""
    mask = np.zeros((height, width), np.uint8)
    for points in polygons:
        x, y = points[:, 0] * scale_x, points[:, 1] * scale_y
        # The crossings lie within a pixel of the vertices' box: outside it every pixel
        # is off. A crossing in row ``height`` only ends its column.
        left, right = max(0, int(np.floor(x.min())) - 1), min(width - 1, int(np.ceil(x.max())) + 1)
        top, bottom = max(0, int(np.floor(y.min())) - 1), min(height, int(np.ceil(y.max())) + 1)
        if left > right or top > bottom:
            continue
        box_width = right - left + 1
        flips = np.zeros((bottom - top + 1, box_width), np.uint8)
        for cols, rows in _crossings(x, y, height, width):
            np.bitwise_xor.at(flips.reshape(-1), (rows - top) * box_width + (cols - left), 1)
        inside = np.bitwise_xor.accumulate(flips, axis=0)[:height - top]
        mask[top:top + inside.shape[0], left:right + 1] |= inside
    return mask


def _crossings(x: np.ndarray, y: np.ndarray, height: int,
               width: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The columns and rows where the outline enters or leaves the polygon's inside, a
    few edges at a time (up to ``_CHUNK`` points of the walk, or one longer edge)."""
    # 1. Vertices on the 5x grid, rounded half up as C's (int)(v + .5) does.
    x0 = np.trunc(SCALE * x + 0.5).astype(np.int64)
    y0 = np.trunc(SCALE * y + 0.5).astype(np.int64)
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    # 2. Walk every edge along its longer axis, from its lower end on that axis.
    dx, dy = np.abs(x1 - x0), np.abs(y1 - y0)
    along_x = dx >= dy
    flip = np.where(along_x, x0 > x1, y0 > y1)
    xs, xe = np.where(flip, x1, x0), np.where(flip, x0, x1)
    ys, ye = np.where(flip, y1, y0), np.where(flip, y0, y1)
    steps = np.where(along_x, dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero-length edge: one point
        slope = np.where(along_x, (ye - ys) / dx, (xe - xs) / dy)
    slope[steps == 0] = 0.0
    counts = steps + 1
    ends = np.cumsum(counts)
    last_u = last_v = np.zeros(0, np.int64)  # the walk's point before this chunk's
    first = 0
    while first < x0.size:
        limit = ends[first] - counts[first] + _CHUNK
        stop = max(first + 1, int(np.searchsorted(ends, limit, side="right")))
        n = counts[first:stop]
        edge = np.repeat(np.arange(first, stop), n)
        step = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        t = np.where(flip[edge], steps[edge] - step, step)  # in the edge's own direction
        on_x = along_x[edge]
        minor = np.trunc(np.where(on_x, ys[edge], xs[edge]) + slope[edge] * t + 0.5)
        u = np.concatenate((last_u, np.where(on_x, xs[edge] + t, minor).astype(np.int64)))
        v = np.concatenate((last_v, np.where(on_x, minor, ys[edge] + t).astype(np.int64)))
        del edge, step, t, on_x, minor
        # 3. Steps to the next x: the column whose centre they cross, the row below it.
        moves = np.flatnonzero(u[1:] != u[:-1]) + 1
        u_now, u_before = u[moves], u[moves - 1]
        column = (np.where(u_now < u_before, u_now, u_now - 1) + 0.5) / SCALE - 0.5
        inside = (np.floor(column) == column) & (column >= 0) & (column <= width - 1)
        moves = moves[inside]
        row = (np.minimum(v[moves], v[moves - 1]) + 0.5) / SCALE - 0.5
        yield column[inside].astype(np.int64), np.ceil(np.clip(row, 0, height)).astype(np.int64)
        last_u, last_v = u[-1:], v[-1:]
        first = stop
