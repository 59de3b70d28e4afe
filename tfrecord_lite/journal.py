"""The job journal: which shards of a run are complete, so that an interrupted run resumes.

Small hidden files beside the shards: ``.{name}-journal.json`` holds the run's arguments
(seed included); ``.{name}-journal-00003.json`` is written for shard 3 once it has its
final name (file, records, bytes, sha256, a fingerprint of its items, its failures and
warnings). Each is written whole (temporary name, then rename; one object on an object
store). The job deletes the journal after writing the manifest.

After ``kill -9``: shards under final names are complete (they are renamed only when
whole); a shard published but not yet journaled, or whose bytes no longer match its
journal file, is simply written again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from .dataset import ParseFailure
from .errors import ResumeError
from .storage import Folder

logger = logging.getLogger(__name__)

VERSION = 1


def _header_name(name: str) -> str:
    return f".{name}-journal.json"


def _shard_prefix(name: str) -> str:
    return f".{name}-journal-"


def item_fingerprint(digest: Any, item: Any) -> None:
    """Feed what identifies an item (id and filename) into a running hash."""
    if isinstance(item, Mapping):
        text = f"{item.get('id')}\0{item.get('filename')}\n"
    elif isinstance(item, ParseFailure):
        text = f"line {item.line}\0{item.text}\n"
    else:
        text = repr(item) + "\n"
    digest.update(text.encode("utf-8", "surrogatepass"))


def new_fingerprint() -> Any:
    return hashlib.sha256()


def _load(data: bytes | None) -> Any:
    try:
        return None if data is None else json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def read(out: Folder, name: str) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]]]:
    """The header and the completed shards of a journal; (None, {}) when there is none."""
    header = _load(out.read(_header_name(name)))
    if not isinstance(header, dict) or header.get("journal") != VERSION:
        return None, {}
    shards = {}
    for file in out.names(_shard_prefix(name)):
        entry = _load(out.read(file)) if file.endswith(".json") else None
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
                f"{new!r}; resume with the same input and options, or run without resume "
                "to start over")


def intact(out: Folder, entry: dict[str, Any]) -> bool:
    """Whether a shard the journal lists is still there with the same bytes."""
    try:
        file = str(entry["file"])
        return out.size(file) == entry["bytes"] and out.sha256(file) == entry["sha256"]
    except (OSError, KeyError):
        return False


def start(out: Folder, name: str, header: dict[str, Any], keep: set[int]) -> None:
    """Begin a run's journal: its header, and only the shards in ``keep``."""
    for file in out.names(_shard_prefix(name)):
        number = file[len(_shard_prefix(name)):-len(".json")]
        if not (number.isdigit() and int(number) in keep):
            out.remove(file)
    out.write(_header_name(name), json.dumps(header).encode())


def add(out: Folder, name: str, entry: dict[str, Any]) -> None:
    """Record one completed shard."""
    out.write(f"{_shard_prefix(name)}{entry['shard']:05d}.json", json.dumps(entry).encode())


def remove(out: Folder, name: str) -> None:
    """Delete the journal (the shard files first: the header alone means "start over")."""
    for file in out.names(_shard_prefix(name)):
        out.remove(file)
    out.remove(_header_name(name))


def temp_patterns(name: str) -> list[str]:
    """Glob patterns of the journal's file names, for cleaning up after a killed run."""
    return [_header_name(name), _shard_prefix(name) + "*.json"]
