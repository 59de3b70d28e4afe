"""Value coercion: an item's values as the int64, float and bytes a record holds.

The lenient conversions the item format allows (``"1"`` for the label 1, an integral
float for an int64, any text for bytes) and the messages that name a bad value. The
encoder uses them for values that are not plain, validation and item checks to find
what could not be written.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from .schema import INT64_MAX, INT64_MIN


def item_label(item: Any) -> str:
    """How an item is named in messages: its id, else its filename."""
    if isinstance(item, Mapping):
        for key in ("id", "filename"):
            if item.get(key) is not None:
                return f"{key} {str(item[key])!r}"
    return "item"


def show(value: Any) -> str:
    """A value as messages show it: its repr, cut short; a huge integer by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def as_int(value: Any) -> int:
    """An int64 from an integer, a whole-number string or float, or a bool.

    Raises:
        ValueError: not a whole number, or beyond int64. TypeError: not a number.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip())  # "1" -> 1
        except ValueError:
            raise ValueError(f"not an integer: {show(value)}") from None
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        result = int(float(value))
    else:
        raise TypeError(f"expected an integer, got {show(value)} ({type(value).__name__})")
    if not INT64_MIN <= result <= INT64_MAX:
        raise ValueError(f"{show(result)} does not fit in int64")
    return result


def as_float(value: Any) -> float:
    """A float from a number or a numeric string (not a bool).

    Raises:
        ValueError: not a number, or beyond any float. TypeError: not a number.
    """
    if isinstance(value, (numbers.Real, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"not a number: {show(value)}") from None
        except OverflowError:  # an int beyond any float (float32 overflows to inf later)
            raise ValueError(f"{show(value)} is too large for a float") from None
    raise TypeError(f"expected a number, got {show(value)} ({type(value).__name__})")


def as_bytes(value: Any) -> bytes:
    """Bytes as they are, text as UTF-8, anything else (a number) as its ``str``.

    Raises:
        TypeError: a dict, list, tuple or set. ValueError: text with a lone surrogate.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (Mapping, list, tuple, set)):
        raise TypeError(f"expected text, got {type(value).__name__}")
    text = str(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, as JSON's "\ud800" gives
        raise ValueError(f"{show(text)} cannot be written as UTF-8: a lone surrogate "
                         f"{text[exc.start]!r} at position {exc.start}") from None
