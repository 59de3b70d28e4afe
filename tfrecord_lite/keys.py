"""An item's keys against the item format: which are not in it, and which of those look
like a misspelling of one that is (``x_min`` for ``xmin``, ``bboxes`` for ``bbox``,
``objects`` for ``object``, ``lable`` for ``label``).

The keys of the item format are those of the schema's table (``schema.ITEM_PATHS``), by
level: a key added there is known here. Only the levels the format defines are walked
(the item, ``class``, ``object``, ``object/bbox``, ``object/parts``, ...); what lies
under a key of the user's own is the user's.

A key resembles a known key of its level when the two are equal but for case and the
separators ``_``, ``-`` and space; when one is the other's plural (``+s``, ``+es``); or,
both being three letters or longer, when one letter is added, dropped, changed, or two
neighbours swapped. Such a key is almost surely a typo whose values would not be
written, so validation fails the item (``validate``); any other unknown key is the
user's own, allowed and counted (``UnknownKeys``).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .plural import count
from .schema import ITEM_PATHS


def levels(paths: Iterable[str] = ITEM_PATHS) -> dict[str, frozenset[str]]:
    """Level path (``""`` for the item, ``"object/bbox"``) -> the names known there, from
    the key paths of the item format (default: the schema's table)."""
    names: dict[str, set[str]] = collections.defaultdict(set)
    for path in paths:
        parts = path.split("/")
        for depth, name in enumerate(parts):
            names["/".join(parts[:depth])].add(name)
    return {level: frozenset(known) for level, known in names.items()}


def _join(level: str, name: str) -> str:
    return f"{level}/{name}" if level else name


LEVELS = levels()
# Per level, the known names that are levels themselves (dicts to walk into).
_GROUPS = {level: tuple((name, _join(level, name)) for name in sorted(known)
                        if _join(level, name) in LEVELS)
           for level, known in LEVELS.items()}


def _squashed(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by one letter added, dropped or changed, or two
    neighbouring letters swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((i for i in range(len(short)) if short[i] != long_[i]), len(short))
    return short[i:] == long_[i + 1:]


def _closeness(name: str, known: str) -> int | None:
    """How closely ``name`` resembles ``known``: 0 equal but for case and separators,
    1 a plural of the other, 2 one edit apart; None: not alike."""
    if _squashed(name) == _squashed(known):
        return 0
    if name in (known + "s", known + "es") or known in (name + "s", name + "es"):
        return 1
    if min(len(name), len(known)) >= 3 and _one_edit(name.lower(), known.lower()):
        return 2
    return None


def _closest(name: str, known: Iterable[str]) -> str | None:
    ranked = sorted((rank, k) for k in known if (rank := _closeness(name, k)) is not None)
    return ranked[0][1] if ranked else None


_close: dict[tuple[str, str], str | None] = {}
_CLOSE_LIMIT = 10000  # distinct unknown keys remembered (then the memo starts over)


def resembles(level: str, name: str, table: Mapping[str, frozenset[str]] | None = None
              ) -> str | None:
    """The known key of ``level`` that ``name`` (not known there) resembles, or None.

    Args:
        table: the known keys by level (default: ``LEVELS``, the item format's).
    """
    if table is not None:
        return _closest(name, table.get(level, ()))
    found = _close.get((level, name), "")
    if found != "":
        return found
    found = _closest(name, LEVELS.get(level, ()))
    if len(_close) >= _CLOSE_LIMIT:
        _close.clear()
    _close[(level, name)] = found
    return found


class Unknown(NamedTuple):
    """A key of an item that the item format does not know: its path, and the known key
    of its level that it resembles (None: it resembles none, a key of the user's own)."""

    path: str
    resembles: str | None


def unknown(item: Any) -> list[Unknown]:
    """The keys of ``item`` (a dict) that the item format does not know, with the known
    key each resembles; empty for an item of known keys (checked fast) or not a dict."""
    if type(item) is not dict and not isinstance(item, Mapping):
        return []
    found: list[Unknown] = []
    _walk(item, "", found)
    return found


def _walk(node: Mapping[Any, Any], level: str, found: list[Unknown]) -> None:
    known = LEVELS[level]
    if not node.keys() <= known:
        for key in node:
            if key not in known:
                name = str(key)
                close = resembles(level, name)
                found.append(Unknown(_join(level, name),
                                     None if close is None else _join(level, close)))
    for name, path in _GROUPS[level]:
        child = node.get(name)
        if child is not None and (type(child) is dict or isinstance(child, Mapping)):
            _walk(child, path, found)


class UnknownKeys:
    """Counts, per key path, the items holding a key that the item format does not know:
    what a job reports once per key path, instead of once per item."""

    def __init__(self) -> None:
        self.items: collections.Counter[str] = collections.Counter()

    def add(self, item: Any) -> None:
        """Count the unknown keys of one item."""
        for key in unknown(item):
            self.items[key.path] += 1

    def as_dict(self) -> dict[str, int]:
        """Key path -> how many items hold it, the most frequent first."""
        return dict(self.items.most_common())


SHOWN = 10  # key paths named in a report line


def describe(counts: Mapping[str, int]) -> str:
    """One line naming each unknown key path with the number of items holding it (and
    the known key it resembles, if any), the most frequent first."""
    parts = []
    for path, n in sorted(counts.items(), key=lambda kv: -kv[1])[:SHOWN]:
        level, _, name = path.rpartition("/")
        close = resembles(level, name)
        like = f", like {_join(level, close)}" if close is not None else ""
        parts.append(f"{path} ({count(n, 'items')}{like})")
    more = f" and {len(counts) - SHOWN} more" if len(counts) > SHOWN else ""
    return (f"keys not in the item format, not written: {', '.join(parts)}{more} (the "
            "item format lists the keys: docs/item-format.md)")
