"""PNG's row filters undone, compiled by numba (imported only where numba is installed).

See ``png.py`` for the path this serves. Bytes are widened to signed 32-bit integers
(``_u8``) before any arithmetic: numba keeps a uint8 unsigned, and Paeth subtracts.

The compiled code is cached where numba can write (``__pycache__`` beside this file,
``NUMBA_CACHE_DIR``, or its folder under the user's cache); where it can write nowhere,
as in a read-only install without a home, each process compiles afresh. numba loads its
cache without checking it, and one flipped bit in it can crash the process, so
``check_cache`` compares the files with the checksums ``record_cache`` wrote after the
loop last passed its test, before this process calls any loop.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
from typing import Any, Callable

import numba
import numpy as np

_u8 = np.int32
CACHED = True
"""False once numba found no folder to cache the compiled code in."""
_CHECKSUMS = "_png_kernel.py{}{}.sha256.json".format(*sys.version_info[:2])


def _compiled(function: Callable[..., Any]) -> Any:
    """``function`` compiled without the GIL, cached on disk if numba can and the cache's
    files can be found to be checked."""
    global CACHED
    if CACHED:
        try:
            dispatcher = numba.njit(nogil=True, cache=True)(function)
        except RuntimeError as exc:  # "cannot cache function ...: no locator available"
            if "cannot cache" not in str(exc):
                raise
            CACHED = False
        else:
            if _cache_names(dispatcher) is not None:
                return dispatcher
            CACHED = False  # a numba whose cache this module cannot check: none is used
    return numba.njit(nogil=True)(function)


def _cache_names(dispatcher: Any) -> tuple[str, str, str] | None:
    """(folder, index file, data file pattern) of ``dispatcher``'s cache in numba's
    layout; None where numba's internals differ."""
    try:
        cache_file = dispatcher._cache._cache_file
        folder, index = cache_file._cache_path, cache_file._index_name
        pattern = cache_file._data_name_pattern.format(number=0)
    except AttributeError:
        return None
    if not (isinstance(folder, str) and index.endswith(".nbi") and pattern.endswith(".0.nbc")):
        return None
    return folder, index, pattern[:-len("0.nbc")] + "*.nbc"
@numba.njit(inline="always")
def _paeth(a: int, b: int, c: int) -> int:
    """The Paeth predictor: of left, above and upper-left, the one closest to a + b - c."""
    pa = abs(b - c)
    pb = abs(a - c)
    pc = abs(a + b - 2 * c)
    if pa <= pb and pa <= pc:
        return a
    if pb <= pc:
        return b
    return c


@_compiled
def _paeth_row_3(data: Any, src: int, out: Any, dst: int, up: int, stride: int) -> None:
    """One Paeth row of RGB after the first: each channel's left and upper-left bytes
    stay in registers, the three channels interleaved (three independent chains instead
    of one read back from memory)."""
    a0 = a1 = a2 = c0 = c1 = c2 = _u8(0)
    for i in range(0, stride, 3):
        b0 = _u8(out[up + i])
        b1 = _u8(out[up + i + 1])
        b2 = _u8(out[up + i + 2])
        a0 = (_u8(data[src + i]) + _paeth(a0, b0, c0)) & 0xFF
        a1 = (_u8(data[src + i + 1]) + _paeth(a1, b1, c1)) & 0xFF
        a2 = (_u8(data[src + i + 2]) + _paeth(a2, b2, c2)) & 0xFF
        out[dst + i] = a0
        out[dst + i + 1] = a1
        out[dst + i + 2] = a2
        c0 = b0
        c1 = b1
        c2 = b2


@_compiled
def _paeth_row_4(data: Any, src: int, out: Any, dst: int, up: int, stride: int) -> None:
    """``_paeth_row_3`` for RGBA."""
    a0 = a1 = a2 = a3 = c0 = c1 = c2 = c3 = _u8(0)
    for i in range(0, stride, 4):
        b0 = _u8(out[up + i])
        b1 = _u8(out[up + i + 1])
        b2 = _u8(out[up + i + 2])
        b3 = _u8(out[up + i + 3])
        a0 = (_u8(data[src + i]) + _paeth(a0, b0, c0)) & 0xFF
        a1 = (_u8(data[src + i + 1]) + _paeth(a1, b1, c1)) & 0xFF
        a2 = (_u8(data[src + i + 2]) + _paeth(a2, b2, c2)) & 0xFF
        a3 = (_u8(data[src + i + 3]) + _paeth(a3, b3, c3)) & 0xFF
        out[dst + i] = a0
        out[dst + i + 1] = a1
        out[dst + i + 2] = a2
        out[dst + i + 3] = a3
        c0 = b0
        c1 = b1
        c2 = b2
        c3 = b3


@_compiled
def _paeth_row(data: Any, src: int, out: Any, dst: int, up: int, stride: int,
               bpp: int) -> None:
    """One Paeth row after the first, any pixel size."""
    for i in range(stride):
        left = _u8(out[dst + i - bpp]) if i >= bpp else _u8(0)
        upper_left = _u8(out[up + i - bpp]) if i >= bpp else _u8(0)
        out[dst + i] = (_u8(data[src + i]) + _paeth(left, _u8(out[up + i]), upper_left)) & 0xFF


@_compiled
def unfilter(data: Any, height: int, stride: int, bpp: int, out: Any) -> int:
    """Undo PNG's row filters (PNG specification, section 9).

    Args:
        data: uint8 array of ``height`` rows, each a filter-type byte then ``stride``
            filtered bytes.
        height, stride, bpp: rows, bytes per row, bytes per pixel.
        out: uint8 array of ``height * stride`` bytes for the pixels.
    Returns:
        -1, or the first row whose filter type is unknown (``out`` is then incomplete).

    The bytes left of a row's first pixel, and the row above the first row, are zeros.
    """
    for row in range(height):
        src = row * (stride + 1)
        kind = data[src]
        src += 1
        dst = row * stride
        up = dst - stride
        if kind == 0 or (kind == 2 and row == 0):  # None; Up with nothing above
            out[dst:dst + stride] = data[src:src + stride]
        elif kind == 1 or (kind == 4 and row == 0):  # Sub; Paeth with nothing above
            out[dst:dst + bpp] = data[src:src + bpp]
            for i in range(bpp, stride):
                out[dst + i] = (_u8(data[src + i]) + _u8(out[dst + i - bpp])) & 0xFF
        elif kind == 2:  # Up
            for i in range(stride):
                out[dst + i] = (_u8(data[src + i]) + _u8(out[up + i])) & 0xFF
        elif kind == 3:  # Average
            for i in range(stride):
                left = _u8(out[dst + i - bpp]) if i >= bpp else _u8(0)
                above = _u8(out[up + i]) if row > 0 else _u8(0)
                out[dst + i] = (_u8(data[src + i]) + ((left + above) >> 1)) & 0xFF
        elif kind == 4 and bpp == 3:  # Paeth
            _paeth_row_3(data, src, out, dst, up, stride)
        elif kind == 4 and bpp == 4:
            _paeth_row_4(data, src, out, dst, up, stride)
        elif kind == 4:
            _paeth_row(data, src, out, dst, up, stride, bpp)
        else:
            return row
    return -1


_LOOPS = (_paeth_row_3, _paeth_row_4, _paeth_row, unfilter)


def _cache_files() -> tuple[str, list[str]] | None:
    """numba's cache folder for the loops and the names of their files in it now (this
    Python's only); None without a cache."""
    if not CACHED:
        return None
    folder, names = "", []
    for loop in _LOOPS:
        found = _cache_names(loop)
        if found is None:
            return None
        folder, index, data = found
        names += [index] if os.path.exists(os.path.join(folder, index)) else []
        names += [os.path.basename(p) for p in glob.glob(os.path.join(glob.escape(folder), data))]
    return folder, sorted(names)


def _digests(folder: str, names: list[str]) -> dict[str, str]:
    digests = {}
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            digests[name] = hashlib.sha256(f.read()).hexdigest()
    return digests


def check_cache() -> str | None:
    """Check numba's cache of the loops before this process first calls one.

    Returns:
        None if the files are as ``record_cache`` recorded them, or there are none, or
        they were written without a record (then they are removed, and the loops are
        compiled afresh); else why they are damaged, after removing them.
    """
    found = _cache_files()
    if found is None or not found[1]:
        return None
    folder, names = found
    record = os.path.join(folder, _CHECKSUMS)
    try:
        with open(record, "rb") as f:
            recorded = json.loads(f.read())
        why = None
    except FileNotFoundError:
        recorded, why = None, None  # written by a release that kept no checksums
    except (OSError, ValueError) as exc:
        recorded, why = None, f"its checksums file {record} is unreadable ({exc})"
    if recorded is not None and not isinstance(recorded, dict):
        recorded, why = None, f"its checksums file {record} holds no checksums"
    try:
        digests = _digests(folder, names)
    except OSError as exc:
        digests, why = {}, f"{exc}"
    if recorded is not None and why is None:
        differ = sorted(n for n in set(names) | set(recorded)
                        if n in digests and recorded.get(n) != digests[n])
        if not differ:
            return None
        why = f"{', '.join(differ)} differ{'s' if len(differ) == 1 else ''} from the checksums"
    for name in [*names, _CHECKSUMS]:
        try:
            os.remove(os.path.join(folder, name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            state = f"damaged ({why})" if why else "not vouched for"
            return (f"numba's cache of the PNG loop in {folder} is {state} and cannot be "
                    f"removed ({exc}): delete the _png_kernel.* files there")
    if why is None:
        return None
    return f"numba's cache of the PNG loop in {folder} was damaged ({why}); removed it"


def record_cache() -> None:
    """Record the checksums of numba's cache of the loops, once they passed their test in
    this process. Best effort: without a record the next process compiles afresh."""
    found = _cache_files()
    if found is None or not found[1]:
        return
    folder, names = found
    record = os.path.join(folder, _CHECKSUMS)
    temp = f"{record}.{os.getpid()}.tmp"
    try:
        digests = _digests(folder, names)
        try:
            with open(record, "rb") as f:
                if json.loads(f.read()) == digests:
                    return
        except (OSError, ValueError):
            pass
        with open(temp, "w") as f:
            json.dump(digests, f, indent=1, sort_keys=True)
        os.replace(temp, record)
    except OSError:
        try:
            os.remove(temp)
        except OSError:
            pass
