"""The job journal: which shards of a run are complete, so that an interrupted run resumes.

Small hidden files beside the shards: ``.{name}-journal.json`` holds the run's arguments
(seed included); ``.{name}-journal-00003.json`` is written for shard 3 once it has its
complete name (file: the hidden ``.{shard}.complete`` of the local runner, final: its
final name; records, bytes, sha256, a fingerprint of its items, its failures and
warnings). Each is written whole (temporary name, then rename; one object on an object
store). The job deletes the journal after writing the manifest.

After ``kill -9``: shards under their complete or final names are complete (they are
renamed only when whole); a shard published but not yet journaled, or whose bytes no
longer match its journal entry under either its journaled name or its final name (the
run was killed while giving its shards their final names), is simply written again.

A run finds its journal's files by their owner (``sharding.owned``), never by how their
names begin: ``.a-journal-journal.json`` is the journal of prefix ``a-journal``, which a
run of ``a`` leaves alone.

One run per prefix and directory at a time: ``lock`` holds an advisory lock
(``fcntl.flock``) on ``.{name}.lock`` for the whole job. The kernel releases it when the
process ends, however it ends, so a killed run never leaves it stuck. Object stores
have no such lock (see ``lock``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any, Optional

from . import sharding
from .dataset import FailedItem
from .errors import OutputBusyError, ResumeError
from .storage import Folder, RemoteFolder, remove_quietly

fcntl: Optional[ModuleType]
try:
    import fcntl
except ImportError:  # Windows: no advisory lock (see lock())
    fcntl = None

logger = logging.getLogger(__name__)

VERSION = 1


def header_name(name: str) -> str:
    """``.train-journal.json``: the journal of prefix ``name`` (the run's arguments)."""
    return f".{name}-journal.json"


def entry_name(name: str, shard: int) -> str:
    """``.train-journal-00003.json``: the journal entry of a complete shard."""
    return f".{name}-journal-{shard:05d}.json"


def _entries(out: Folder, name: str) -> list[str]:
    """The journal entry files of prefix ``name`` (no other prefix's)."""
    return [file for file in out.names(f".{name}-journal-")
            if sharding.owned(file) == (name, "journal entry", False)]


def fingerprint_text(item: Any) -> str:
    """What identifies an item (its id and filename) to a resumed run's check."""
    if isinstance(item, Mapping):
        return f"{item.get('id')}\0{item.get('filename')}\n"
    if isinstance(item, FailedItem):
        return item.fingerprint()
    return repr(item) + "\n"


def item_fingerprint(digest: Any, item: Any) -> None:
    """Feed what identifies an item (``fingerprint_text``) into a running hash."""
    digest.update(fingerprint_text(item).encode("utf-8", "surrogatepass"))


def new_fingerprint() -> Any:
    return hashlib.sha256()


def _load(data: bytes | None) -> Any:
    try:
        return None if data is None else json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def read(out: Folder, name: str) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]]]:
    """The header and the completed shards of a journal; (None, {}) when there is none."""
    header = _load(out.read(header_name(name)))
    if not isinstance(header, dict) or header.get("journal") != VERSION:
        return None, {}
    shards = {}
    for file in _entries(out, name):
        entry = _load(out.read(file))
        if isinstance(entry, dict) and isinstance(entry.get("shard"), int):
            shards[entry["shard"]] = entry
    return header, shards


def header(name: str, num_shards: int, items: int, options: dict[str, Any]) -> dict[str, Any]:
    return {"journal": VERSION, "name": name, "num_shards": num_shards, "items": items,
            "options": options}


def check_same(previous: dict[str, Any], current: dict[str, Any]) -> None:
    """Raise ResumeError naming the first argument that differs from the interrupted run's."""
    pairs = [("num_shards", previous.get("num_shards"), current["num_shards"]),
             ("number of items", previous.get("items"), current["items"])]
    old_options = previous.get("options") or {}
    pairs += [(key, old_options.get(key), value) for key, value in current["options"].items()]
    for what, old, new in pairs:
        if old != new:
            raise ResumeError(
                f"cannot resume: the interrupted run had {what} = {old!r}, this one "
                f"{new!r}; resume with the same input and options, or start over (--restart; "
                "from Python, without resume)")


def locate(out: Folder, entry: dict[str, Any], check_sha256: bool = True) -> str | None:
    """Where a shard the journal lists is still complete, with the same bytes: the name
    it was journaled under (``file``, hidden until the run is complete), else its final
    name (``final``: the run was interrupted while renaming its shards); None when
    neither holds it. ``check_sha256``: compare the sha256 too, not only the size."""
    for key in ("file", "final"):
        try:
            file = str(entry[key])
            if (out.size(file) == entry["bytes"]
                    and (not check_sha256 or out.sha256(file) == entry["sha256"])):
                return file
        except (OSError, KeyError):
            continue
    return None


def intact(out: Folder, entry: dict[str, Any]) -> bool:
    """Whether a shard the journal lists is still there with the same bytes."""
    return locate(out, entry) is not None


def start(out: Folder, name: str, header: dict[str, Any], keep: set[int]) -> None:
    """Begin a run's journal: its header, and only the shards in ``keep``."""
    for file in _entries(out, name):
        if int(file[len(f".{name}-journal-"):-len(".json")]) not in keep:
            out.remove(file)
    out.write(header_name(name), json.dumps(header).encode())


def add(out: Folder, name: str, entry: dict[str, Any]) -> None:
    """Record one completed shard."""
    out.write(entry_name(name, entry["shard"]), json.dumps(entry).encode())


def remove(out: Folder, name: str) -> None:
    """Delete the journal (the shard files first: the header alone means "start over")."""
    for file in _entries(out, name):
        out.remove(file)
    out.remove(header_name(name))


def progress(out: Folder, name: str) -> tuple[int, int] | None:
    """(complete shards, shards) of an interrupted run of ``name``; None when there is
    no journal. A shard counts as complete when its file is there with the journaled
    size (``intact`` also compares the sha256 when resuming)."""
    header, shards = read(out, name)
    if header is None:
        return None
    complete = sum(locate(out, entry, check_sha256=False) is not None
                   for entry in shards.values())
    return complete, int(header.get("num_shards") or 0)


def pending(out: Folder) -> list[tuple[str, int, int]]:
    """The interrupted runs a folder holds: ``(prefix, complete shards, shards)`` of each
    prefix with a journal, sorted by prefix."""
    found = []
    for file in out.names("."):
        owned = sharding.owned(file)
        if owned is not None and owned[1:] == ("journal", False):
            prefix = owned[0]
            progress_of = progress(out, prefix)
            if progress_of is not None:
                found.append((prefix, *progress_of))
    return sorted(found)


def lock_name(name: str) -> str:
    return f".{name}.lock"


# flock's answer when another process holds the lock, and when the file system has none.
_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def _acquire(path: str, name: str, out: Folder) -> int | None:
    """Lock ``path`` (created if need be); its descriptor, or None where the file system
    has no locks."""
    assert fcntl is not None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in _NO_LOCKS:
                return None
            if exc.errno in _BUSY:
                raise OutputBusyError(
                    f"another run is writing {name!r} in {out} (it holds {path}): wait for "
                    "it to end, or write another prefix or directory") from exc
            raise
        # The run that held the lock removes the file as it ends: if it did so between
        # our open and our flock, we hold a lock on a file nobody else will open.
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)


@contextlib.contextmanager
def lock(out: Folder, name: str) -> Iterator[None]:
    """Hold the lock of prefix ``name`` in ``out`` for the block: one run at a time.

    ``.{name}.lock`` is created beside the journal and locked with ``flock`` (exclusive,
    without waiting); it is removed at the end. Where no lock exists (an object store
    URL, a system without ``fcntl`` such as Windows, a file system without locks), the
    block runs unlocked, with a logged warning (none for a URL): two runs of one prefix
    must then not overlap.

    Raises:
        OutputBusyError: another process holds the lock.
        OSError: the lock file cannot be created.
    """
    if isinstance(out, RemoteFolder):
        yield
        return
    path = out.join(lock_name(name))
    fd = None if fcntl is None else _acquire(path, name, out)
    if fd is None:
        logger.warning("no file lock in %s (%s): make sure no other run writes %r there at "
                       "the same time", out, "no fcntl on this system" if fcntl is None
                       else "the file system has none", name)
        yield
        return
    try:
        yield
    finally:
        remove_quietly(path)  # while locked: whoever opens the name next locks a new file
        os.close(fd)
