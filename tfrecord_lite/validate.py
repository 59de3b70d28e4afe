"""Checks of an item's annotations, before anything is written.

The encoder refuses what cannot be written at all (a label that is not an integer, a
list where a single value belongs). These checks find what can be written but is
almost surely wrong:

* a key that is not in the item format but resembles one that is, at its level
  (``object/bbox/x_min`` for ``xmin``: see ``keys``), whose values would not be written;
* lists of unequal lengths inside ``object/bbox`` (and the per-object lists
  ``object/area``, ``id``, ``is_crowd``, ...) or inside ``object/parts``. The box
  coordinates and labels (``xmin``, ``xmax``, ``ymin``, ``ymax``, ``label``) go
  together, as do the keypoints' ``x``, ``y`` and ``v``: one of them missing or empty
  while any list of its group holds values (a mask, a box text) counts as unequal;
* box coordinates outside [0, 1] or reversed (``xmin > xmax``); keypoints outside
  [0, 1] unless marked not visible (``v == 0``); areas outside [0, 1];
* ``object/count`` that is not the number of boxes (given or not);
* NaN or infinity in any float field;
* labels that are not integers (numeric strings such as ``"3"`` are fine), or are bools,
  or negative (``class/label`` -1 means no class); keypoint visibility other than 0, 1, 2;
* an id used by an earlier item (``IdTracker``, exact in a few bytes per item).

Other than those, an empty list counts as not given. Each problem names the key path;
the messages are prefixed with the item's id where they are reported.

Modes: ``strict`` fails an item with any problem, ``lenient`` writes it and reports
the problems as warnings (only what cannot be encoded still fails), ``off`` skips
these checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from . import keys, plural
from .coerce import as_float, as_int
from .schema import FIELDS, FLOAT, INT64

MODES = ("strict", "lenient", "off")

_BOX_EDGES = (("xmin", "xmax"), ("ymin", "ymax"))
_FLOAT_PATHS = tuple(f.path for f in FIELDS if f.kind == FLOAT)
# Per-object lists, which must all have the number of boxes, and the keypoint lists.
_OBJECT_PATHS = tuple(f.path for f in FIELDS
                      if f.is_list and f.path.startswith("object/")
                      and not f.path.startswith("object/parts/"))
_PARTS_PATHS = tuple(f.path for f in FIELDS if f.path.startswith("object/parts/"))
# The lists of a group that go together: one given (not empty), all must be, of one length.
BOX_CORE = ("object/bbox/xmin", "object/bbox/xmax", "object/bbox/ymin", "object/bbox/ymax",
            "object/bbox/label")
PARTS_CORE = ("object/parts/x", "object/parts/y", "object/parts/v")
# The lists ``length_problems`` compares: the per-object lists, then the keypoints'.
GROUPED_LISTS = _OBJECT_PATHS + _PARTS_PATHS
_UNIT_RANGE = ("object/bbox/xmin", "object/bbox/xmax", "object/bbox/ymin",
               "object/bbox/ymax", "object/area")
_INT_PATHS = tuple(f.path for f in FIELDS if f.kind == INT64)


class Problem(NamedTuple):
    """One finding: the key path, what is wrong, and whether it can be written at all."""

    path: str
    message: str
    fatal: bool = False  # True: cannot be encoded, fails the item in every mode

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _get(item: Mapping[str, Any], path: str) -> Any:
    node: Any = item
    for part in path.split("/"):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, bytes, Mapping)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _floats(item: Mapping[str, Any], path: str) -> list[float | None]:
    """The values at ``path`` as floats; None where a value is not a number."""
    out: list[float | None] = []
    for v in _values(_get(item, path)):
        try:
            out.append(as_float(v))
        except (TypeError, ValueError):
            out.append(None)
    return out


_IS_LIST = {f.path: f.is_list for f in FIELDS}


def _where(path: str, i: int) -> str:
    return f"{path}[{i}]" if _IS_LIST[path] else path


# -- the fast screen: one plain loop over the list fields, then a few C-level builtins ------
#
# Written for speed (it runs for every item, holding the GIL): the values are gathered by
# kind across the groups, and each kind is checked at once with set(map(type, ...)), sum,
# min and max.

_NUMBER_TYPES = frozenset({int, float})
_INT_TYPES = frozenset({int})
_VISIBILITY = frozenset({0, 1, 2})
_UNIT, _FLOAT, _INT, _OTHER = range(4)
_UNIT_RANGE_ALL = (*_UNIT_RANGE, "object/parts/x", "object/parts/y")


def _spec(prefix: str) -> tuple[tuple[str, int, bool], ...]:
    """(name, kind, one of the lists that go together) of the list fields right under
    ``prefix``."""
    def kind(path: str, field_kind: str) -> int:
        if field_kind == FLOAT:
            return _UNIT if path in _UNIT_RANGE_ALL else _FLOAT
        return _INT if field_kind == INT64 else _OTHER

    return tuple((f.path[len(prefix):], kind(f.path, f.kind), f.path in BOX_CORE + PARTS_CORE)
                 for f in FIELDS
                 if f.is_list and f.path.startswith(prefix) and "/" not in f.path[len(prefix):])


_OBJECT_SPEC = _spec("object/")
_BBOX_SPEC = _spec("object/bbox/")
_PARTS_SPEC = _spec("object/parts/")
_TOP_INTS = tuple(f.path for f in FIELDS if f.kind == INT64 and "/" not in f.path)


def _looks_clean(item: Mapping[str, Any]) -> bool:
    """True when the item certainly has no problem (the common case, checked fast);
    False sends it through the full checks, which find and name each problem."""
    for name in _TOP_INTS:
        value = item.get(name)
        if value is not None and type(value) is not int:
            return False
    cls = item.get("class")
    if cls is not None:
        if type(cls) is not dict:
            return False
        label, conf = cls.get("label"), cls.get("conf")
        if label is not None and (type(label) is not int or label < -1):
            return False
        if conf is not None and (type(conf) not in _NUMBER_TYPES or not math.isfinite(conf)):
            return False
    obj = item.get("object")
    if obj is None:
        return True
    if type(obj) is not dict:
        return False
    bbox, parts = obj.get("bbox"), obj.get("parts")
    groups = [(obj, _OBJECT_SPEC, 0)]
    if bbox is not None:
        groups.append((bbox, _BBOX_SPEC, 0))
    if parts is not None:
        groups.append((parts, _PARTS_SPEC, 1))
    gathered: tuple[list[Any], ...] = ([], [], [], [])
    lengths = [0, 0]  # per-object lists (object/ and object/bbox/), keypoint lists
    together = [0, 0]  # of those, how many core lists are given
    for group, spec, which in groups:
        if type(group) is not dict:
            return False
        for name, kind, is_core in spec:
            values = group.get(name)
            if values is None:
                continue
            if type(values) is not list:
                return False
            n = len(values)
            if n:  # an empty list is one not given
                if lengths[which] and n != lengths[which]:
                    return False
                lengths[which] = n
                together[which] += is_core
                gathered[kind].extend(values)
    # A group with values holds all of its core lists (BOX_CORE, PARTS_CORE).
    if (lengths[0] and together[0] != len(BOX_CORE)) or (
            lengths[1] and together[1] != len(PARTS_CORE)):
        return False
    unit, floats, ints, _ = gathered
    if ints and not set(map(type, ints)) <= _INT_TYPES:
        return False
    numbers = unit + floats
    if numbers and (not set(map(type, numbers)) <= _NUMBER_TYPES
                    or not math.isfinite(sum(numbers))):
        return False
    if unit and (min(unit) < 0 or max(unit) > 1):
        return False
    labels = bbox.get("label") if bbox is not None else None
    if labels and min(labels) < 0:
        return False
    visibility = parts.get("v") if parts is not None else None
    if visibility and not set(visibility) <= _VISIBILITY:
        return False
    if bbox is not None:
        for low, high in _BOX_EDGES:
            lows, highs = bbox.get(low), bbox.get(high)
            if lows and highs and any(map(float.__gt__, map(float, lows), highs)):
                return False
    count = obj.get("count")
    return count is None or (type(count) is int and count == lengths[0])


def check_item(item: Mapping[str, Any]) -> list[Problem]:
    """Every problem of one item's annotations (empty when it looks right)."""
    problems = misspelt_keys(item)
    try:
        clean = _looks_clean(item)
    except OverflowError:  # an int beyond any float: the full checks find it
        clean = False
    return problems if clean else problems + _value_problems(item)


def misspelt_keys(item: Mapping[str, Any]) -> list[Problem]:
    """A problem for each key of the item that is not in the item format but resembles
    one that is, at its level (``keys``)."""
    return [Problem(key.path, f"not a key of the item format, but like {key.resembles} "
                              "(misspelt? its values would not be written; a key of your "
                              "own needs a name further from the format's)")
            for key in keys.unknown(item) if key.resembles is not None]


def find_problems(item: Mapping[str, Any]) -> list[Problem]:
    """The full checks, value by value (``check_item`` without the fast screen)."""
    return misspelt_keys(item) + _value_problems(item)


def _value_problems(item: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for path in _INT_PATHS:
        for i, v in enumerate(_values(_get(item, path))):
            try:
                as_int(v)
            except (TypeError, ValueError) as exc:
                problems.append(Problem(_where(path, i), str(exc), fatal=True))
    for path in _FLOAT_PATHS:
        for i, f in enumerate(_floats(item, path)):
            if f is not None and not math.isfinite(f):
                problems.append(Problem(_where(path, i), f"{f} is not a finite number"))
    problems += length_problems({p: len(_values(_get(item, p))) for p in GROUPED_LISTS})
    problems += _check_labels(item)
    problems += _check_ranges(item)
    problems += _check_count(item)
    return problems


def length_problems(lengths: Mapping[str, int]) -> list[Problem]:
    """The groups whose lists disagree in length, from the length of each list (by item
    path, such as ``object/bbox/xmin``; 0 or absent: missing or empty): the per-object
    lists (masks too), and the keypoints' lists. When any list of a group holds values,
    its core lists (``BOX_CORE``, ``PARTS_CORE``) must too: a core list missing or empty
    beside a list with values (a mask or a box text without coordinates) disagrees."""
    return [*_unequal(lengths, _OBJECT_PATHS, BOX_CORE, "object"),
            *_unequal(lengths, _PARTS_PATHS, PARTS_CORE, "object/parts")]


def _unequal(lengths: Mapping[str, int], paths: tuple[str, ...], core: tuple[str, ...],
             group: str) -> list[Problem]:
    together = any(lengths.get(p) for p in paths)
    shown = {p: lengths.get(p, 0) for p in paths
             if lengths.get(p) or (together and p in core)}
    if len(set(shown.values())) <= 1:
        return []
    listed = ", ".join(f"{p[len(group) + 1:]} {n or 'missing'}" for p, n in shown.items())
    return [Problem(group, f"lists of unequal lengths ({listed})")]


# The integer fields whose values are codes, and the codes each accepts (a predicate
# and its wording): class indices count from 0 (``class/label`` -1 is "no class", what
# a record without a class stores), keypoint visibility is COCO's 0, 1 or 2.
_CODES: dict[str, tuple[Any, str, str]] = {
    "class/label": (lambda n: n >= -1, "a class index",
                    "class indices are 0 or more (-1: no class)"),
    "object/bbox/label": (lambda n: n >= 0, "a class index", "class indices are 0 or more"),
    "object/parts/v": (lambda n: n in (0, 1, 2), "a visibility",
                       "visibility is 0 (not labelled), 1 (occluded) or 2 (visible)"),
}


def _check_labels(item: Mapping[str, Any]) -> list[Problem]:
    """Labels and visibilities that are not codes: a bool (``True`` is the int 1 to
    Python, but no class index), a negative class index, a visibility other than 0, 1, 2."""
    problems = []
    for path, (accepts, noun, rule) in _CODES.items():
        for i, v in enumerate(_values(_get(item, path))):
            if isinstance(v, bool):
                problems.append(Problem(_where(path, i), f"{v} is a bool, not {noun} "
                                                         "(give an integer)"))
                continue
            try:
                n = as_int(v)
            except (TypeError, ValueError):
                continue  # reported as not an integer
            if not accepts(n):
                problems.append(Problem(_where(path, i), f"{n}, but {rule}"))
    return problems


def _in_unit(v: float | None) -> bool:
    return v is None or not math.isfinite(v) or 0.0 <= v <= 1.0


def _check_ranges(item: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for path in _UNIT_RANGE:
        values = _floats(item, path)
        problems += [Problem(f"{path}[{i}]", f"{v} is outside [0, 1]")
                     for i, v in enumerate(values) if not _in_unit(v)]
    for low, high in _BOX_EDGES:
        lows = _floats(item, f"object/bbox/{low}")
        highs = _floats(item, f"object/bbox/{high}")
        for i, (a, b) in enumerate(zip(lows, highs)):
            if a is not None and b is not None and a > b:
                problems.append(Problem(f"object/bbox[{i}]", f"reversed: {low} {a} > {high} {b}"))
    visibility = _values(_get(item, "object/parts/v"))
    for axis in ("x", "y"):
        values = _floats(item, f"object/parts/{axis}")
        for i, v in enumerate(values):
            hidden = i < len(visibility) and str(visibility[i]).strip() == "0"
            if not hidden and not _in_unit(v):
                problems.append(Problem(f"object/parts/{axis}[{i}]",
                                        f"{v} is outside [0, 1] (and the point is not "
                                        "marked v=0)"))
    return problems


def _check_count(item: Mapping[str, Any]) -> list[Problem]:
    count = _get(item, "object/count")
    if count is None:
        return []
    try:
        declared = as_int(count)
    except (TypeError, ValueError):
        return []  # reported as not an integer
    boxes = max((len(_values(_get(item, p))) for p in BOX_CORE), default=0)
    if declared != boxes:
        return [Problem("object/count",
                        f"{declared}, but {plural.count(boxes, 'boxes are listed')}")]
    return []


def _id_key(item: Any) -> str | None:
    """What makes two items' ids equal: their text (``1`` and ``"1"`` are one id).

    None for an item without an id, and for an id that is a list or a dict (such an
    item fails for its id anyway). ``JsonLines.id_texts`` follows the same rule.
    """
    if not isinstance(item, Mapping):
        return None
    ident = item.get("id")
    if ident is None or isinstance(ident, (Mapping, list, tuple, set)):
        return None
    return str(ident)


def _repeated_digests(texts: Iterable[str], size: int) -> set[int]:
    """The digests of the texts that occur more than once.

    A digest is the text's 64-bit keyed hash (Python's string hash: SipHash, with a
    key drawn per process). They go into one array of 8 bytes each (``size``: how many
    are expected), sorted in place; only the repeated ones are kept.
    """
    import numpy as np

    digests = np.empty(max(size, 16), dtype=np.int64)
    count = 0
    for text in texts:
        if count == len(digests):  # more than expected: a line with several "id" keys
            digests = np.resize(digests, count + count // 2)
        digests[count] = hash(text)
        count += 1
    found = digests[:count]
    found.sort()
    repeated = found[1:][found[1:] == found[:-1]]
    return set(repeated.tolist())


class IdTracker:
    """Finds ids used by an earlier item, exactly. Feed items in input order.

    Given ``source``, the whole input, when it can be read twice (a list, a
    ``JsonLines`` file), memory does not grow with the number of items: a first pass
    takes a 64-bit digest of every id (8 bytes per item, freed when the pass ends)
    and keeps those that occur more than once (a JSON Lines file is not parsed for
    it: see ``JsonLines.id_texts``, which may give more texts than ids, never fewer).
    Two equal ids have equal digests, so an id whose digest occurs once in the input
    is unique: nothing of it is kept.
    Only the ids whose digest is repeated are kept, whole, and compared as text, so a
    duplicate is never reported on a digest alone (two different ids with one digest
    cost one more kept id). This holds while the input does not change between the
    passes (a JSON Lines file being rewritten during the job).

    Without a source, or with one that may be read only once (a generator, a sized
    stream of another kind), every id is kept (about 100 bytes per item).

    Args:
        source: the items, in input order, if they can be iterated again.
    """

    def __init__(self, source: Iterable[Any] | None = None) -> None:
        from .dataset import JsonLines

        self._first: dict[str, int] = {}
        self._repeated: set[int] | None = None  # None: keep every id
        if isinstance(source, JsonLines):
            self._repeated = _repeated_digests(source.id_texts(), len(source))
        elif isinstance(source, Sequence):
            keys = (key for key in map(_id_key, source) if key is not None)
            self._repeated = _repeated_digests(keys, len(source))

    def check(self, index: int, item: Any) -> Problem | None:
        """A problem when ``item`` (input number ``index``) repeats an earlier id."""
        key = _id_key(item)
        if key is None or (self._repeated is not None and hash(key) not in self._repeated):
            return None
        first = self._first.setdefault(key, index)
        if first == index:
            return None
        return Problem("id", f"{key!r} is also the id of input item {first}")
