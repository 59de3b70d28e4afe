"""Pure planning: file names, balanced ranges, seeded order. No I/O here.

Every file a job writes beside its shards is named so that the shard glob of its
prefix (``train-*``, ``train-?????-of-?????``) matches the shards and nothing else:
``train.manifest.json``, ``train.failures.json`` (``.jsonl`` from Beam;
``train.unpublished-failures.json`` from a run that published nothing), and hidden
temporary, journal and lock files (``.train...``).

Each name has one owner, whatever the prefixes in the folder (``owner``): a prefix's
names are the prefix followed by one of a few endings (``OWNED``), and no ending is the
end of another, so ``.a-journal-journal.json`` (the journal of ``a-journal``) is no
file of ``a``. A job finds its own files by that owner, never by how a name begins.
Prefixes beginning with ``.`` would make the shards hidden: refused (``check_prefix``).
"""

from __future__ import annotations

import random
import re

from .storage import temp_target

MANIFEST_SUFFIX = ".manifest.json"
FAILURES_SUFFIX = ".failures.json"
FAILURES_JSONL_SUFFIX = ".failures.jsonl"
UNPUBLISHED_FAILURES_SUFFIX = ".unpublished-failures.json"
LABEL_MAP_FILES = ("label_map.json", "label_map.pbtxt")
# Names of earlier versions (``train-manifest.json``): still recognised when read.
OLD_MANIFEST_SUFFIX = "-manifest.json"
OLD_SIDE_SUFFIXES = (OLD_MANIFEST_SUFFIX, "-failures.json", "-failures.jsonl")
_SIDE_SUFFIXES = (MANIFEST_SUFFIX, FAILURES_SUFFIX, FAILURES_JSONL_SUFFIX,
                  UNPUBLISHED_FAILURES_SUFFIX, *OLD_SIDE_SUFFIXES, ".idx")


def manifest_name(name: str) -> str:
    """``train.manifest.json``: the manifest of the shards of prefix ``name``."""
    return name + MANIFEST_SUFFIX


def failures_name(name: str) -> str:
    """``train.failures.json``: the items of prefix ``name`` that failed."""
    return name + FAILURES_SUFFIX


def unpublished_failures_name(name: str) -> str:
    """``train.unpublished-failures.json``: the failures of a run of prefix ``name`` that
    published nothing (every item failed), beside the earlier run's files, which it
    leaves as they were."""
    return name + UNPUBLISHED_FAILURES_SUFFIX


INDEX_SUFFIX = ".idx"


def index_name(file_name: str) -> str:
    """``.train-00000-of-00001.idx``: the default record index of a file, hidden so that
    the shard glob (``train-*``) never matches it."""
    return "." + file_name + INDEX_SUFFIX


def is_side_file(file_name: str) -> bool:
    """Whether a file name is one the tools write beside shards, never a shard: a
    manifest, a failures list, a label map or a record index (``.FILE.idx``, or
    ``FILE.idx`` from earlier versions)."""
    return file_name in LABEL_MAP_FILES or file_name.endswith(_SIDE_SUFFIXES)


def shard_name(name: str, index: int, count: int) -> str:
    """``train-00002-of-00010``: the name of shard ``index`` of ``count``."""
    return f"{name}-{index:05d}-of-{count:05d}"


_SHARD = re.compile(r"(?P<prefix>.+)-(?P<index>[0-9]{5,})-of-(?P<count>[0-9]{5,})")


def parse_shard_name(file_name: str) -> tuple[str, int, int] | None:
    """``("train", 2, 10)`` for ``train-00002-of-00010``; None for a name that is not a
    shard's. The prefix is the longest that fits (``train-a-00000-of-00001``: ``train-a``)."""
    match = _SHARD.fullmatch(file_name)
    if match is None:
        return None
    return match["prefix"], int(match["index"]), int(match["count"])


def check_prefix(name: str) -> str | None:
    """Why ``name`` cannot be a prefix (None when it can): empty, holding a ``/``, or
    beginning with ``.`` (``.`` and ``..`` name folders; any other would hide the shards
    from their glob and make their names those of the job's hidden files)."""
    if not name:
        return "may not be empty"
    if "/" in name or "\0" in name:
        return "must be a plain file name prefix, without '/'"
    if name.startswith("."):
        return "must not begin with '.' (the shard names would be hidden files)"
    return None


# The names a job of prefix P writes, each the prefix followed by its ending. No ending
# is the end of another (a shard number is a whole run of digits, after "-"), so the
# prefix of a name is known from the name alone.
OWNED: dict[str, re.Pattern[str]] = {kind: re.compile(pattern) for kind, pattern in {
    "shard": r"(?P<prefix>.+)-[0-9]{5,}-of-[0-9]{5,}",
    "manifest": r"(?P<prefix>.+)\.manifest\.json",
    "failures": r"(?P<prefix>.+)\.failures\.jsonl?",
    "unpublished failures": r"(?P<prefix>.+)\.unpublished-failures\.json",
    "journal": r"\.(?P<prefix>.+)-journal\.json",
    "journal entry": r"\.(?P<prefix>.+)-journal-[0-9]{5,}\.json",
    "lock": r"\.(?P<prefix>.+)\.lock",
    "complete shard": r"\.(?P<prefix>.+)-[0-9]{5,}-of-[0-9]{5,}\.complete",
    "index": r"\.(?P<prefix>.+)-[0-9]{5,}-of-[0-9]{5,}\.idx",
}.items()}


def owned(file_name: str) -> tuple[str, str, bool] | None:
    """``(prefix, kind, temporary)`` of a file a job writes (``train-00000-of-00002`` ->
    ``("train", "shard", False)``; its temporary file ``.train-00000-of-00002.tmp-42``
    -> ``("train", "shard", True)``); None for any other name."""
    target = temp_target(file_name)
    name = target if target is not None else file_name
    for kind, pattern in OWNED.items():
        match = pattern.fullmatch(name)
        if match is not None and check_prefix(match["prefix"]) is None:
            return match["prefix"], kind, target is not None
    return None


def owner(file_name: str) -> str | None:
    """The prefix whose job writes ``file_name`` (see ``owned``), or None."""
    found = owned(file_name)
    return None if found is None else found[0]


def _earlier_files(name: str, file_name: str) -> bool:
    """Whether ``file_name`` is one a run of prefix ``name`` wrote or an earlier version
    of the tools wrote for it (``train-manifest.json``, ``train-00000-of-00002.idx``),
    which a rerun removes."""
    if file_name in {name + suffix for suffix in OLD_SIDE_SUFFIXES}:
        return True
    stem = file_name[:-len(INDEX_SUFFIX)] if file_name.endswith(INDEX_SUFFIX) else file_name
    parsed = parse_shard_name(stem)
    return parsed is not None and parsed[0] == name


def glob_clashes(name: str, file_names: list[str]) -> tuple[list[str], list[str]]:
    """What makes the shard glob ``{name}-*`` read more than this dataset, in a folder
    holding ``file_names``.

    Returns:
        ``(matched, covering)``: the files (not hidden) that ``{name}-*`` matches but that
        are not this prefix's (``train-a-00000-of-00001``, ``train-a.manifest.json`` for
        ``train``); and the prefixes of shards in the folder whose glob would match this
        prefix's shards (``train`` for ``train-a``).
    """
    matched = sorted(f for f in file_names if f.startswith(name + "-")
                     and not _earlier_files(name, f))
    covering = sorted({parsed[0] for parsed in map(parse_shard_name, file_names)
                       if parsed is not None and name.startswith(parsed[0] + "-")})
    return matched, covering


def shard_ranges(num_items: int, num_shards: int) -> list[tuple[int, int]]:
    """Split ``num_items`` positions into ``num_shards`` contiguous ranges.

    Sizes differ by at most one, the larger ones first.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    base, extra = divmod(num_items, num_shards)
    ranges = []
    start = 0
    for i in range(num_shards):
        stop = start + base + (1 if i < extra else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


def item_order(num_items: int, shuffle: bool, seed: int | None) -> list[int]:
    """The order in which items are written: identity, or a permutation fixed by ``seed``.

    The caller's list is never touched; only these indices are shuffled.
    """
    order = list(range(num_items))
    if shuffle:
        random.Random(seed).shuffle(order)
    return order


def new_seed() -> int:
    """A fresh seed, recorded in the manifest so that a shuffled run can be repeated."""
    return random.SystemRandom().randrange(1 << 32)
