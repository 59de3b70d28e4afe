"""Dataset files (local paths or URLs): a JSON list of items, or JSON Lines read as a stream.

``open_dataset("train.json")`` loads the list; ``open_dataset("train.jsonl")`` returns a
``JsonLines``: it knows its length (one quick pass counting lines) and parses one line
at a time when iterated, so memory does not grow with the number of items. A line
that is not JSON becomes a ``ParseFailure`` item, which fails on its own (with its line
number) instead of stopping the job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import DatasetError
from .storage import open_read


@dataclass(frozen=True)
class ParseFailure:
    """A line of a JSON Lines file that does not parse; it fails as an item."""

    path: str
    line: int
    message: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}, line {self.line}: not valid JSON: {self.message}"

    def as_failure(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text, "error_msg": str(self)}


class JsonLines:
    """The items of a JSON Lines file (one JSON object per line), read lazily.

    ``len()`` counts the non-blank lines; iterating yields one dict per line (or a
    ``ParseFailure``). Each iteration reads the file again.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._length: int | None = None
        try:
            open_read(self.path).close()
        except OSError as exc:
            raise DatasetError(
                f"cannot read dataset file {self.path}: {exc.strerror or exc}") from exc

    def __len__(self) -> int:
        if self._length is None:
            count = 0
            with open_read(self.path) as f:
                for line in f:
                    if line.strip():
                        count += 1
            self._length = count
        return self._length

    def __iter__(self) -> Iterator[Any]:
        with open_read(self.path) as f:
            for number, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    yield json.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                    yield ParseFailure(self.path, number, message,
                                       raw[:200].decode("utf-8", "replace").rstrip())


def json_default(value: Any) -> Any:
    """How a failed item's values that JSON cannot hold are written (``json.dumps(default=)``):
    bytes as ``"<N bytes>"``, anything else as its ``repr``."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return repr(value)


def open_dataset(path: str | os.PathLike[str]) -> list[Any] | JsonLines:
    """A dataset file's items: ``.jsonl`` streams, anything else is one JSON list.

    Raises:
        DatasetError: the file cannot be read, is not JSON, or is not a list.
    """
    path = os.fspath(path)
    if path.endswith(".jsonl"):
        return JsonLines(path)
    try:
        with open_read(path) as f:
            data = json.loads(f.read().decode("utf-8"))
    except OSError as exc:
        raise DatasetError(f"cannot read dataset file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}, line {exc.lineno} column {exc.colno}: not valid JSON: "
                           f"{exc.msg}") from exc
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of items, found a "
                           f"{type(data).__name__}")
    return data
