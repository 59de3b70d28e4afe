"""The job journal: which shards of a run are complete, so that an interrupted run resumes.

A hidden file ``.{name}-journal.jsonl`` beside the shards: a header line (the run's
arguments, seed included), then one line per completed shard (file, records, bytes,
sha256, a fingerprint of its items, its failures and warnings), appended after the
shard has its final name. The job deletes the journal after writing the manifest.

After ``kill -9``: shards under final names are complete (they are renamed only when
whole); a shard renamed but not yet in the journal, or whose bytes no longer match
its line, is simply written again; a torn last line is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from .compression import file_sha256
from .dataset import ParseFailure
from .errors import ResumeError

logger = logging.getLogger(__name__)

VERSION = 1


def journal_path(out_dir: str, name: str) -> str:
    return os.path.join(out_dir, f".{name}-journal.jsonl")


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


def read(path: str) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]]]:
    """The header and the shard lines of a journal; (None, {}) when there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return None, {}
    except (OSError, UnicodeDecodeError) as exc:
        logger.warning("cannot read the journal %s (%s); starting over", path, exc)
        return None, {}
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line torn by the interruption, and anything after it
    if not records or not isinstance(records[0], dict) or records[0].get("journal") != VERSION:
        return None, {}
    shards = {r["shard"]: r for r in records[1:] if isinstance(r, dict) and "shard" in r}
    return records[0], shards


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


def intact(out_dir: str, entry: dict[str, Any]) -> bool:
    """Whether a shard the journal lists is still there with the same bytes."""
    path = os.path.join(out_dir, str(entry.get("file")))
    try:
        if os.path.getsize(path) != entry.get("bytes"):
            return False
        return file_sha256(path) == entry.get("sha256")
    except OSError:
        return False


def write(path: str, lines: list[dict[str, Any]]) -> None:
    """Replace the journal with these lines (atomically)."""
    tmp = path + f".tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(line) + "\n" for line in lines)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def append(path: str, line: dict[str, Any]) -> None:
    """Add one line; one write call, so an interruption tears at most this line."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
