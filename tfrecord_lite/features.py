"""A record's features as the reader commands need them: each key's kind and count, its
first value, its numbers as numpy arrays a bounded chunk at a time, its bytes one at a
time; never a Python object per value the command does not ask for.

Records under ``IN_PLACE_FROM`` bytes are parsed by protobuf (fast in C, and small);
larger ones are read in place (``wire.Example``), since protobuf holds a packed list of
N int64 values as 8N bytes, then N Python ints: a 200 MB record took gigabytes. Both
give the same answers (``tests/test_wire.py`` holds the walk to protobuf's parser).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Container, Iterator
from typing import Any, Protocol

from .decode import decode_value, nest, parse_example
from .errors import ExampleDecodeError, RecordDecodeError
from .reader import type_problems
from .schema import BYTES, FLOAT, INT64, RECORD_FIELDS
from .wire import CHUNK, Example

IN_PLACE_FROM = 1 << 20  # records of this many bytes or more are read in place
_KIND = {"bytes_list": BYTES, "float_list": FLOAT, "int64_list": INT64}
_DTYPE = {FLOAT: "<f4", INT64: "<i8"}


class Features(Protocol):
    """What the readers ask of a record's features (both readings give it)."""

    more_keys: int  # entries of keys not kept (when every key was asked for)

    def __iter__(self) -> Iterator[str]: ...
    def __contains__(self, key: object) -> bool: ...
    def shape(self) -> dict[str, tuple[str | None, int]]: ...
    def kind(self, key: str) -> str | None: ...
    def count(self, key: str) -> int: ...
    def first(self, key: str) -> Any: ...
    def numbers(self, key: str, size: int = CHUNK) -> Iterator[Any]: ...
    def bytes_values(self, key: str, limit: int | None = None) -> Iterator[bytes]: ...


class Parsed:
    """The features of a small record, parsed by protobuf."""

    def __init__(self, data: bytes, keys: Container[str] | None = None) -> None:
        self._features = parse_example(data).features.feature
        self._keys = {key: None for key in self._features if keys is None or key in keys}
        self._lists: dict[str, tuple[str | None, Any]] = {}  # key -> (kind, values)
        self._shape: dict[str, tuple[str | None, int]] | None = None
        self.more_keys = 0

    def _list(self, key: str) -> tuple[str | None, Any]:
        found = self._lists.get(key)
        if found is None:
            if key not in self._keys:
                return None, ()
            feature = self._features[key]
            oneof = feature.WhichOneof("kind")
            found = (_KIND[oneof], getattr(feature, oneof).value) if oneof else (None, ())
            self._lists[key] = found
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def shape(self) -> dict[str, tuple[str | None, int]]:
        """Each kept key's kind and number of values."""
        if self._shape is None:
            self._shape = {}
            for key in self._keys:
                kind, values = self._lists.get(key) or self._list(key)
                self._shape[key] = (kind, len(values))
        return self._shape

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def kind(self, key: str) -> str | None:
        return self._list(key)[0]

    def count(self, key: str) -> int:
        return len(self._list(key)[1])

    def first(self, key: str) -> Any:
        values = self._list(key)[1]
        return values[0] if values else None

    def numbers(self, key: str, size: int = CHUNK) -> Iterator[Any]:
        import numpy as np

        kind, values = self._list(key)
        if kind not in _DTYPE:
            return
        for start in range(0, len(values), size):
            yield np.array(values[start:start + size], _DTYPE[kind])

    def bytes_values(self, key: str, limit: int | None = None) -> Iterator[bytes]:
        kind, values = self._list(key)
        if kind == BYTES:
            yield from itertools.islice(values, limit)


class InPlace:
    """The features of a large record, read in place (``wire.Example``)."""

    def __init__(self, data: bytes, keys: Container[str] | None = None) -> None:
        self._example = Example(data, keys)
        self.more_keys = self._example.more_keys

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._example.features))

    def shape(self) -> dict[str, tuple[str | None, int]]:
        """Each kept key's kind and number of values."""
        return {key: (f.kind, f.count) for key, f in self._example.features.items()}

    def __contains__(self, key: object) -> bool:
        return key in self._example.features

    def kind(self, key: str) -> str | None:
        return self._example.features[key].kind

    def count(self, key: str) -> int:
        return self._example.features[key].count

    def first(self, key: str) -> Any:
        return self._example.first(key)

    def numbers(self, key: str, size: int = CHUNK) -> Iterator[Any]:
        return self._example.numbers(key, size)

    def bytes_values(self, key: str, limit: int | None = None) -> Iterator[bytes]:
        return self._example.bytes_values(key, limit)


def features(data: bytes, keys: Container[str] | None = None,
             in_place_from: int = IN_PLACE_FROM) -> Features:
    """The features of a record (see the module docstring).

    Args:
        data: the serialized Example.
        keys: the keys the caller will ask about (None: every key).
        in_place_from: records of this many bytes or more are read in place.
    Raises:
        ExampleDecodeError: the bytes are not an Example.
    """
    if len(data) >= in_place_from:
        return InPlace(data, keys)
    return Parsed(data, keys)


# -- the types decode_record checks ---------------------------------------------------------

# Keys that name a group of keys (image/object for image/object/bbox/xmin, ...).
GROUPS = frozenset(key.rsplit("/", n)[0] for key in RECORD_FIELDS
                   for n in range(1, key.count("/")))


class _Typed:
    """The keys whose types ``decode_record`` checks, with the caller's own: the schema's
    keys and its groups. A key under a schema key (``image/id/x``) is not kept: the
    schema key it sits under is noted in ``parents`` instead."""

    def __init__(self, extra: Container[str] | None) -> None:
        self.extra = extra
        self.parents: set[str] = set()

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key in RECORD_FIELDS or key in GROUPS:
            return True
        parts = key.split("/")
        for n in range(2, len(parts)):
            head = "/".join(parts[:n])
            if head in RECORD_FIELDS:
                self.parents.add(head)
                break
        return self.extra is not None and key in self.extra


def _type_problems(view: Features, typed: _Typed) -> list[str]:
    """What ``reader.type_problems`` finds in the item ``decode_example`` would make of
    the record. That depends only on which typed keys are there, of which kind, empty or
    not (a value's type follows from its kind), so it is worked out once per such
    signature (the records of a dataset share a few)."""
    signature = tuple(sorted((key, kind, count > 0) for key, (kind, count)
                             in view.shape().items() if key in RECORD_FIELDS or key in GROUPS))
    return list(_problems_of(signature, frozenset(typed.parents)))


_EXAMPLE_VALUE = {BYTES: b"", FLOAT: 0.0, INT64: 0}


@functools.lru_cache(maxsize=256)
def _problems_of(signature: tuple[tuple[str, str | None, bool], ...],
                 parents: frozenset[str]) -> tuple[str, ...]:
    entries = [(key, decode_value(RECORD_FIELDS.get(key), kind or BYTES,
                                  [_EXAMPLE_VALUE[kind]] if kind and nonempty else []))
               for key, kind, nonempty in signature]
    entries += [(parent + "/-", []) for parent in parents]
    item: dict[str, Any] = {}
    for key, value in sorted(entries, key=lambda entry: entry[0]):
        nest(item, key, value)
    return tuple(type_problems(item))


def record_features(data: bytes, path: str, index: int, offset: int,
                    keys: Container[str] | None = None,
                    in_place_from: int = IN_PLACE_FROM) -> Features:
    """A record's features whose types are those this package reads, as
    ``reader.decode_record`` checks them; ``keys``: other keys the caller asks about
    (the schema's keys are always there).

    Raises:
        RecordDecodeError: not an Example, or a key of the wrong type; names the file,
            record index and offset.
    """
    typed = _Typed(keys)
    try:
        view = features(data, typed, in_place_from)
    except ExampleDecodeError as exc:
        raise RecordDecodeError(str(exc), path=path, index=index, offset=offset) from exc
    problems = _type_problems(view, typed)
    if problems:
        raise RecordDecodeError("; ".join(problems), path=path, index=index, offset=offset)
    return view
