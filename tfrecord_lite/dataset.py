"""Dataset files (local paths or URLs): a JSON list of items, or JSON Lines read as a stream.

``open_dataset("train.json")`` loads the list; ``open_dataset("train.jsonl")`` returns a
``JsonLines``: it knows its length (one quick pass counting lines) and parses one line
at a time when iterated, so memory does not grow with the number of items. A line
that is not JSON, or that Python's parser refuses (nested thousands of levels deep, an
integer of more than 4300 digits), becomes a ``ParseFailure`` item, which fails on its
own (with its line number) instead of stopping the job.

Both kinds are UTF-8 text; a byte order mark at the start of the file is skipped.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from .errors import DatasetError
from .looks import HEAD, looks_like
from .storage import open_input


class FailedItem:
    """What stands for an item that fails before it is encoded, saying why (``str``):
    ``as_failure`` is its entry in the failures list, ``fingerprint`` what identifies it
    to a resumed run's check (as ``journal.item_fingerprint`` reads an item)."""

    def as_failure(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fingerprint(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class ParseFailure(FailedItem):
    """A line of a JSON Lines file that does not parse; it fails as an item.

    ``message`` says why ("not valid JSON: ...", "not UTF-8 text: ...", ...).
    """

    path: str
    line: int
    message: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}, line {self.line}: {self.message}"

    def as_failure(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text, "error_msg": str(self)}

    def fingerprint(self) -> str:
        return f"line {self.line}\0{self.text}\n"


@dataclass(frozen=True)
class UnsendableItem(FailedItem):
    """An item that cannot be sent to a worker process (it holds a value of a class
    defined in the caller's script, a function, ...); it fails as an item.

    Attributes:
        message: why, naming the item, the key and the value's type.
        failure: its entry in the failures list (values JSON cannot hold as their repr).
        item_fingerprint: what identifies the item itself (``journal``).
    """

    message: str
    failure: dict[str, Any]
    item_fingerprint: str

    def __str__(self) -> str:
        return self.message

    def as_failure(self) -> dict[str, Any]:
        return dict(self.failure)

    def fingerprint(self) -> str:
        return self.item_fingerprint


class JsonLines:
    """The items of a JSON Lines file (one JSON object per line), read lazily.

    ``len()`` counts the non-blank lines; iterating yields one dict per line (or a
    ``ParseFailure``). Each iteration reads the file again.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._length: int | None = None
        try:
            open_input(self.path).close()
        except OSError as exc:
            raise DatasetError(
                f"cannot read dataset file {self.path}: {exc.strerror or exc}") from exc

    def __len__(self) -> int:
        if self._length is None:
            count = 0
            with open_input(self.path) as f:
                for _, raw in _lines(f):
                    if raw.strip():
                        count += 1
            self._length = count
        return self._length

    def __iter__(self) -> Iterator[Any]:
        with open_input(self.path) as f:
            for number, raw in _lines(f):
                if not raw.strip():
                    continue
                try:
                    yield json.loads(raw.decode("utf-8"))
                except (ValueError, RecursionError) as exc:
                    yield ParseFailure(self.path, number, _why(exc),
                                       raw[:200].decode("utf-8", "replace").rstrip())


    def id_texts(self) -> Iterator[str]:
        """The text of each item's id (``str(item["id"])``), for a pass that only looks
        for repeated ids; several times faster than parsing the lines.

        Never misses an item's id, but may give more texts: in a line without a
        backslash (so that every quote begins or ends a string, and every key is
        written as it is), the value of each ``"id"`` key that is not a list or an
        object, nested ones too, even if the line does not parse; other lines are
        parsed. Ids that are lists or objects are left out (see ``validate._id_key``).
        """
        with open_input(self.path) as f:
            for _, raw in _lines(f):
                if b"\\" not in raw:
                    for token in _ID_VALUE.findall(raw):
                        try:
                            value = (token[1:-1].decode("utf-8") if token[:1] == b'"'
                                     else json.loads(token))
                        except ValueError:  # not UTF-8, not a number: the line fails
                            continue
                        if value is not None:
                            yield str(value)
                    continue
                try:
                    item = json.loads(raw.decode("utf-8"))
                except (ValueError, RecursionError):
                    continue
                ident = item.get("id") if isinstance(item, dict) else None
                if ident is not None and not isinstance(ident, (dict, list)):
                    yield str(ident)


# An "id" key and its value when that is not a list or an object: a string (without a
# backslash, so without a quote inside) or a number, true, false, null.
_ID_VALUE = re.compile(rb'"id"\s*:\s*("[^"]*"|[^\s,:\[\]{}"]+)')
BOM = b"\xef\xbb\xbf"


def _lines(f: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(number, line)`` of a file, numbered from 1, without a byte order mark at its start."""
    for number, raw in enumerate(f, 1):
        yield number, raw[3:] if number == 1 and raw.startswith(BOM) else raw


def _why(exc: ValueError | RecursionError) -> str:
    """Why a text does not parse as JSON, in a few words (not the parser's whole message)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: {exc}"
    if isinstance(exc, RecursionError):
        return ("not readable: lists or objects nested too deeply (Python's parser stops at "
                "about 1000 levels)")
    return f"not readable: {exc}"  # such as an integer of more than 4300 digits


def json_default(value: Any) -> Any:
    """How a failed item's values that JSON cannot hold are written (``json.dumps(default=)``):
    bytes as ``"<N bytes>"``, anything else as its ``repr``."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return repr(value)


def open_dataset(path: str | os.PathLike[str]) -> list[Any] | JsonLines:
    """A dataset file's items: ``.jsonl`` streams, anything else is one JSON list.

    Raises:
        DatasetError: the file cannot be read, is not UTF-8 JSON (or holds what Python's
            parser refuses: nesting thousands of levels deep, an integer of more than
            4300 digits), or is not a list.
    """
    path = os.fspath(path)
    if path.endswith(".jsonl"):
        return JsonLines(path)
    head = b""  # the file's first bytes, to say what it looks like when it is not JSON
    try:
        with open_input(path) as f:
            content = f.read()
        head = content[:HEAD]
        text = content.decode("utf-8-sig")  # -sig: a BOM at the start
        del content  # (the bytes are not held while the text is parsed)
        data = json.loads(text)
    except OSError as exc:
        raise DatasetError(f"cannot read dataset file {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}, line {exc.lineno} column {exc.colno}: {_why(exc)}"
                           f"{_instead(head, exc.pos, text[:200])}"
                           f"{_json_lines(text, exc, path)}") from exc
    except (ValueError, RecursionError) as exc:
        at = exc.start if isinstance(exc, UnicodeDecodeError) else None
        raise DatasetError(f"{path}: {_why(exc)}{_instead(head, at)}") from exc
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of items, found a "
                           f"{type(data).__name__}")
    return data


def _json_lines(text: str, exc: json.JSONDecodeError, path: str) -> str:
    """For a file that is one JSON object a line: say so, and how ``create`` reads it."""
    if exc.msg != "Extra data" or exc.lineno < 2:
        return ""
    try:
        first = json.loads(text.split("\n", 1)[0])
    except ValueError:
        return ""
    if not isinstance(first, dict):
        return ""
    stem = path[:-5] if path.endswith(".json") else path
    return (f"; it holds JSON Lines (one item a line): a file named .jsonl is read as such "
            f"(e.g. {stem}.jsonl)")


def _instead(head: bytes, at: int | None, start: str = "") -> str:
    """For a dataset file that does not parse from its start (``at``, the place of the
    error): what its first bytes look like (``start``: its text's start, when it is text),
    and what was expected ("" for a JSON file damaged further on)."""
    if at is None or at > len(BOM):
        return ""
    what = looks_like(head)
    first_line = start.split("\n", 1)[0].lower()
    if "filename" in first_line and "xmin" in first_line and "," in first_line:
        return ("; it looks like the Object Detection API CSV (filename,width,height,class,"
                "xmin,...): convert it with python -m tfrecord_lite from-csv FILE --images "
                "IMAGE_DIR --prefix NAME --output_dir DIR")
    seems = f"; it looks like {what}" if what not in (None, "JSON text") else ""
    return (f"{seems}; expected a JSON list of items (or JSON Lines, one item per line, "
            "in a .jsonl file)")
