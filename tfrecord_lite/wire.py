"""tf.train.Example bytes read in place: each feature's kind, count and values, without a
Python object per value.

The protobuf parser turns a packed list of N int64 values into N Python ints, so a
200 MB record of one such list takes gigabytes. Here a record is walked once, in
place, to find each feature and count its values; the values are read again on
demand: numbers as numpy arrays, a bounded chunk at a time, bytes one value at a time.
Memory stays near the record's own size, whatever it holds.

The walk follows protobuf's rules for the Example messages (proto3), which a test holds
it to against the protobuf parser: a message field given more than once is merged, a
map key given more than once keeps its last entry, the ``kind`` oneof keeps the last
kind given; lists may be packed or not, in any number of pieces; unknown fields (groups
too) are skipped; a key must be UTF-8; anything malformed is refused. ::

    Example     { Features features = 1; }
    Features    { map<string, Feature> feature = 1; }   entry: { key = 1; value = 2; }
    Feature     { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                               Int64List int64_list = 3; } }
    BytesList   { repeated bytes value = 1; }
    FloatList   { repeated float value = 1 [packed = true]; }
    Int64List   { repeated int64 value = 1 [packed = true]; }
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ExampleDecodeError
from .schema import BYTES, FLOAT, INT64

VARINT, I64, LEN, SGROUP, EGROUP, I32 = range(6)
KINDS = {1: BYTES, 2: FLOAT, 3: INT64}  # Feature's oneof fields
CHUNK = 1 << 18  # values per numpy array handed out
_SCAN = 1 << 18  # bytes of a packed list checked (or decoded) at a time
_MAX_KEYS = 1 << 16  # distinct keys kept when every key is asked for (inspect)
_MAX_DEPTH = 100  # nested groups, as protobuf's parser allows


class WireError(ExampleDecodeError):
    """Bytes that are not a tf.train.Example (malformed protobuf)."""


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it (at most 10 bytes, as protobuf)."""
    result = shift = 0
    for i in range(pos, min(pos + 10, end)):
        byte = buf[i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, i + 1
        shift += 7
    raise WireError(f"a varint runs past byte {min(pos + 10, end)}" if end - pos < 10 else
                    f"a varint at byte {pos} is longer than 10 bytes")


def _fields(buf: bytes, start: int, end: int,
            depth: int = 0) -> Iterator[tuple[int, int, int, int]]:
    """``(field number, wire type, start, end)`` of each field of the message in
    ``buf[start:end]``; for a varint, ``start`` is its value and ``end`` -1; a group
    (always an unknown field here) is checked and given whole, from its start to the
    end of its end-group tag."""
    pos = start
    while pos < end:
        number, wire, pos = _tag(buf, pos, end)
        a, b = _value(buf, pos, end, number, wire, depth)
        if wire == VARINT:
            yield number, VARINT, a, -1
        else:
            yield number, wire, a, b
        pos = b


def _tag(buf: bytes, pos: int, end: int, in_group: bool = False) -> tuple[int, int, int]:
    """The field number and wire type of the tag at ``pos``, and the position after it.
    Inside a group being skipped, protobuf lets field number 0 pass."""
    key, after = _varint(buf, pos, end)
    if (key >> 3 == 0 and not in_group) or key > 0xFFFFFFFF:
        raise WireError(f"field number {key >> 3} at byte {pos}")
    return key >> 3, key & 7, after


def _value(buf: bytes, pos: int, end: int, number: int, wire: int,
           depth: int) -> tuple[int, int]:
    """Where the value of a field lies, its tag ending at ``pos``: ``(start, stop)``;
    for a varint ``(value, stop)``."""
    if wire == VARINT:
        return _varint(buf, pos, end)
    if wire == LEN:
        size, pos = _varint(buf, pos, end)
        stop = pos + size
    elif wire == I64:
        stop = pos + 8
    elif wire == I32:
        stop = pos + 4
    elif wire == SGROUP:
        stop = _skip_group(buf, pos, end, number, depth + 1)
    else:
        raise WireError(f"wire type {wire} at byte {pos}")
    if stop > end:
        raise WireError(f"a field of {stop - pos:,} bytes at byte {pos} runs past the end of "
                        f"its message (byte {end})")
    return pos, stop


def _skip_group(buf: bytes, pos: int, end: int, number: int,
                depth: int) -> int:
    """The position after the end of the group ``number`` that starts at ``pos``."""
    if depth > _MAX_DEPTH:
        raise WireError(f"groups nested deeper than {_MAX_DEPTH}")
    while pos < end:
        key, after = _varint(buf, pos, end)
        if key & 7 == EGROUP:
            if key >> 3 != number:
                raise WireError(f"group {number} ended by group {key >> 3} at byte {pos}")
            return after
        pos = _field_end(buf, pos, end, depth, in_group=True)
    raise WireError(f"group {number} does not end")


def _field_end(buf: bytes, pos: int, end: int, depth: int, in_group: bool = False) -> int:
    """The position after the one field that starts at ``pos`` (not an end group)."""
    number, wire, pos = _tag(buf, pos, end, in_group)
    return _value(buf, pos, end, number, wire, depth)[1]


# -- counting the values of one list message ---------------------------------------------

def _packed_varints(buf: bytes, start: int, stop: int) -> int:
    """How many varints ``buf[start:stop]`` holds, checked as protobuf checks a packed
    list (each at most 10 bytes, the last one complete), a bounded piece at a time."""
    if stop - start <= 64:  # a short list: fewer steps in Python than numpy's overhead
        run = total = 0
        for byte in buf[start:stop]:
            run = run + 1 if byte >= 0x80 else 0
            total += byte < 0x80
            if run >= 10:
                raise WireError("a varint of a packed int64 list is longer than 10 bytes")
        if run:
            raise WireError("a packed int64 list ends inside a varint")
        return total
    import numpy as np

    total = 0
    run = 0  # continuation bytes carried over from the previous piece
    for at in range(start, stop, _SCAN):
        piece = np.frombuffer(buf, np.uint8, min(_SCAN, stop - at), at)
        ends = np.flatnonzero(piece < 0x80)
        total += ends.size
        if ends.size == 0:
            run += piece.size
        else:
            gaps = np.diff(ends) if ends.size > 1 else ends[:0]
            if run + int(ends[0]) >= 10 or (gaps.size and int(gaps.max()) > 10):
                raise WireError("a varint of a packed int64 list is longer than 10 bytes")
            run = piece.size - 1 - int(ends[-1])
        if run >= 10:
            raise WireError("a varint of a packed int64 list is longer than 10 bytes")
    if run:
        raise WireError("a packed int64 list ends inside a varint")
    return total


def _count(kind: str, buf: bytes, start: int, stop: int) -> int:
    """The values of one BytesList, FloatList or Int64List message."""
    n = 0
    pos = start
    while pos < stop:
        tag = buf[pos]
        # The usual fields, without a call each: a short bytes value, a small unpacked
        # int64, an unpacked float (field 1 of wire type 2, 0 and 5).
        if tag == 0x0A and kind == BYTES and pos + 1 < stop and buf[pos + 1] < 0x80:
            pos += 2 + buf[pos + 1]
            n += 1
            continue
        if tag == 0x08 and kind == INT64 and pos + 1 < stop and buf[pos + 1] < 0x80:
            pos += 2
            n += 1
            continue
        if tag == 0x0D and kind == FLOAT:
            pos += 5
            n += 1
            continue
        end = _field_end(buf, pos, stop, 0)
        for number, wire, a, b in _fields(buf, pos, end):
            if number != 1:
                continue
            if kind == INT64 and wire == VARINT or kind == FLOAT and wire == I32:
                n += 1
            elif kind == INT64 and wire == LEN:
                n += _packed_varints(buf, a, b)
            elif kind == FLOAT and wire == LEN:
                if (b - a) % 4:
                    raise WireError(f"a packed float list of {b - a} bytes (not a multiple "
                                    "of 4)")
                n += (b - a) // 4
            elif kind == BYTES and wire == LEN:
                n += 1
        pos = end
    if pos > stop:
        raise WireError(f"a value runs past the end of its list (byte {stop})")
    return n


def _elements(buf: bytes, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
    """``(wire type, start, end)`` of each value field (field 1) of a list message, as
    ``_fields`` gives them; the usual ones without a call each."""
    pos = start
    while pos < stop:
        tag = buf[pos]
        if tag == 0x0A and pos + 1 < stop and buf[pos + 1] < 0x80:
            begin = pos + 2
            pos = begin + buf[pos + 1]
            if pos > stop:
                raise WireError(f"a value runs past the end of its list (byte {stop})")
            yield LEN, begin, pos
            continue
        if tag == 0x08 and pos + 1 < stop and buf[pos + 1] < 0x80:
            yield VARINT, buf[pos + 1], -1
            pos += 2
            continue
        end = _field_end(buf, pos, stop, 0)
        for number, wire, a, b in _fields(buf, pos, end):
            if number == 1:
                yield wire, a, b
        pos = end


# -- the Example ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Feature:
    """Where one feature's values are: its map entry, and the part of it from which its
    final kind's lists begin (earlier ones were of a kind the oneof replaced)."""

    kind: str | None  # BYTES, FLOAT, INT64, or None: no list given
    count: int
    entry: tuple[int, int]  # the map entry's bytes
    since: int  # lists of ``kind`` at or after this offset count


class Example:
    """A record's features, found in place (see the module docstring).

    Args:
        data: the serialized Example.
        keys: the keys to keep (None: every key, up to ``_MAX_KEYS`` distinct ones;
            ``more_keys`` counts the entries of others).
    Raises:
        ExampleDecodeError: the bytes are not an Example (a ``WireError``).
    """

    def __init__(self, data: bytes, keys: Container[str] | None = None) -> None:
        self.data = data
        self.features: dict[str, Feature] = {}
        self.more_keys = 0
        buf = data
        try:
            for number, wire, a, b in _fields(buf, 0, len(buf)):
                if number == 1 and wire == LEN:
                    for n, w, c, d in _fields(buf, a, b):
                        if n == 1 and w == LEN:
                            self._entry(buf, c, d, keys)
        except (IndexError, ValueError) as exc:  # WireError, or a cut buffer
            raise WireError(f"not a tf.train.Example: {exc}") from exc

    def _entry(self, buf: bytes, start: int, stop: int,
               keys: Container[str] | None) -> None:
        key_range = (start, start)
        unknown = False
        kind, count, since = None, 0, start
        for number, wire, a, b in _fields(buf, start, stop):
            if number == 1 and wire == LEN:
                key_range = (a, b)
            elif number == 2 and wire == LEN:
                for n, w, c, d in _fields(buf, a, b):
                    if n in KINDS and w == LEN:
                        if KINDS[n] != kind:
                            kind, count, since = KINDS[n], 0, c
                        count += _count(KINDS[n], buf, c, d)  # checked even when not kept
            else:
                unknown = True
        try:
            key = buf[key_range[0]:key_range[1]].decode()
        except UnicodeDecodeError as exc:
            raise WireError(f"a feature key is not UTF-8 (byte {key_range[0]})") from exc
        if unknown:  # protobuf keeps such an entry as an unknown field, not in the map
            return
        if keys is not None and key not in keys:
            return
        if keys is None and key not in self.features and len(self.features) >= _MAX_KEYS:
            self.more_keys += 1
            return
        self.features[key] = Feature(kind, count, (start, stop), since)

    def __contains__(self, key: object) -> bool:
        return key in self.features

    def lists(self, key: str) -> Iterator[tuple[int, int]]:
        """The byte ranges of ``key``'s list messages of its final kind, in order."""
        feature = self.features[key]
        for number, wire, a, b in _fields(self.data, *feature.entry):
            if number != 2 or wire != LEN:
                continue
            for n, w, c, d in _fields(self.data, a, b):
                if w == LEN and c >= feature.since and KINDS.get(n) == feature.kind:
                    yield c, d

    def bytes_values(self, key: str, limit: int | None = None) -> Iterator[bytes]:
        """The values of a bytes feature, one at a time (the first ``limit``)."""
        if key not in self.features or self.features[key].kind != BYTES:
            return
        given = 0
        for start, stop in self.lists(key):
            for wire, a, b in _elements(self.data, start, stop):
                if wire == LEN:
                    if limit is not None and given >= limit:
                        return
                    given += 1
                    yield self.data[a:b]

    def numbers(self, key: str, size: int = CHUNK) -> Iterator[Any]:
        """The values of an int64 or float feature as numpy arrays (int64 or float32) of
        ``size`` values each (the last one shorter), in order."""
        import numpy as np

        feature = self.features.get(key)
        if feature is None or feature.kind not in (INT64, FLOAT):
            return
        pending: list[Any] = []
        held = 0
        for piece in self._pieces(feature.kind, key):
            while piece.size:
                take = piece[:size - held]
                pending.append(take)
                held += take.size
                piece = piece[take.size:]
                if held == size:
                    yield np.concatenate(pending) if len(pending) > 1 else pending[0]
                    pending, held = [], 0
        if held:
            yield np.concatenate(pending) if len(pending) > 1 else pending[0]

    def _pieces(self, kind: str, key: str) -> Iterator[Any]:
        """The values of ``key`` as arrays of any length, in order."""
        import numpy as np

        buf = self.data
        single: list[Any] = []  # unpacked values, gathered into arrays
        for start, stop in self.lists(key):
            for wire, a, b in _elements(buf, start, stop):
                if kind == FLOAT and wire == I32:
                    single.append(buf[a:b])
                elif kind == INT64 and wire == VARINT:
                    single.append(a)
                elif wire == LEN:
                    if single:
                        yield _gathered(kind, single)
                        single = []
                    if kind == FLOAT:
                        yield np.frombuffer(buf, "<f4", (b - a) // 4, a)
                    else:
                        yield from _varints(buf, a, b)
                    continue
                if len(single) >= CHUNK:
                    yield _gathered(kind, single)
                    single = []
        if single:
            yield _gathered(kind, single)

    def first(self, key: str) -> Any:
        """The first value of a feature (int, float or bytes), or None when it has none."""
        feature = self.features.get(key)
        if feature is None or not feature.count:
            return None
        if feature.kind == BYTES:
            return next(self.bytes_values(key, 1))
        array = next(self.numbers(key, 1))
        return int(array[0]) if feature.kind == INT64 else float(array[0])


def _gathered(kind: str, values: list[Any]) -> Any:
    import numpy as np

    if kind == FLOAT:
        return np.frombuffer(b"".join(values), "<f4")
    return np.array(values, np.uint64).view(np.int64)  # (varints: 64 bits, unsigned)


def _varints(buf: bytes, start: int, stop: int) -> Iterator[Any]:
    """The varints of a packed list as int64 arrays, a bounded piece at a time (a varint
    is never split: each piece ends at a varint's last byte)."""
    import numpy as np

    at = start
    while at < stop:
        end = min(stop, at + _SCAN)
        raw = np.frombuffer(buf, np.uint8, end - at, at)
        last = np.flatnonzero(raw < 0x80)
        if not last.size:  # (checked when counted: a varint is at most 10 bytes)
            raise WireError("a packed int64 list ends inside a varint")
        raw = raw[:int(last[-1]) + 1]
        at += raw.size
        yield _decode_varints(raw)


def _decode_varints(raw: Any) -> Any:
    """Complete varints (uint8 array) -> int64 array, seven bits at a time."""
    import numpy as np

    ends = np.flatnonzero(raw < 0x80)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    if ends.size == raw.size:  # every value in one byte: the common case
        return raw.astype(np.int64)
    values = np.zeros(ends.size, np.uint64)
    lengths = ends - starts + 1
    for k in range(int(lengths.max())):
        has = lengths > k
        byte = raw[starts[has] + k].astype(np.uint64) & np.uint64(0x7F)
        values[has] |= byte << np.uint64(7 * k)
    return values.view(np.int64)
