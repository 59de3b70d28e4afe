"""The label map written beside a converter's shards, and the policy for it.

``label_map.json`` maps each stored label to its class name; ``label_map.pbtxt`` (the
Object Detection API's) is written too when the labels start at 1 or more, since the API
reserves id 0 for the background. One output folder holds one label map, so a
conversion whose classes differ from the ``label_map.json`` that other prefixes' shards
in the folder use is refused (``check_folder``). The command line writes the files
(``files``); converters themselves never write.
"""

from __future__ import annotations

import json
from typing import Any

from .. import sharding, storage
from ..errors import LabelMapError
from . import limits

JSON_NAME = "label_map.json"
PBTXT_NAME = "label_map.pbtxt"


def label_map_json(labels: list[str], offset: int = 0) -> dict[str, str]:
    """``{"<stored label>": name}``."""
    return {str(i + offset): name for i, name in enumerate(labels)}


def label_map_pbtxt(labels: list[str], offset: int = 1) -> str:
    """The Object Detection API's ``label_map.pbtxt``; ids are the stored labels.

    Raises:
        ValueError: ``offset`` is below 1: the API reserves id 0 for the background, so
            no valid pbtxt agrees with labels stored from 0.
    """
    if offset < 1:
        raise ValueError(f"label_map.pbtxt needs labels stored from 1 or more (label offset "
                         f"{offset}): the Object Detection API reserves id 0 for the "
                         "background")
    lines = []
    for i, name in enumerate(labels):
        lines.append(f"item {{\n  id: {i + offset}\n  name: '{pbtxt_string(name)}'\n}}")
    return "\n".join(lines) + "\n"


_PBTXT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "'": "\\'", '"': '\\"',
                  "\\": "\\\\"}


def pbtxt_string(name: str) -> str:
    """A name as the inside of a quoted string of protobuf's text format, escaped as
    protobuf's own writer escapes it: ``\\n``, ``\\r``, ``\\t``, ``\\'``, ``\\"``,
    ``\\\\``, other control characters as three octal digits; other characters as they
    are (the file is UTF-8). A name that is not text (a folder name of undecodable bytes)
    keeps its escapes as text (``\\udcff``)."""
    name = name.encode("utf-8", "backslashreplace").decode("utf-8")
    out = []
    for ch in name:
        if ch in _PBTXT_ESCAPES:
            out.append(_PBTXT_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return "".join(out)


def files(labels: list[str], offset: int) -> dict[str, str]:
    """The label map files of a conversion, by name: ``label_map.json``, and
    ``label_map.pbtxt`` when the labels start at 1 or more."""
    written = {JSON_NAME: json.dumps(label_map_json(labels, offset), indent=1) + "\n"}
    if offset >= 1:
        written[PBTXT_NAME] = label_map_pbtxt(labels, offset)
    return written


_EXPECTED = ("a JSON list of class names in label order, or a {label: name} object such as "
             "the label_map.json written beside shards")


def read_names(path: str | None) -> list[str] | None:
    """The class names of a ``--label-map`` file, in label order: a JSON list of names,
    or a ``{label: name}`` object (``label_map.json``); None without a file.

    Raises:
        OSError: the file cannot be read.
        ValueError: not JSON, or not a list or object, or a label that is not a number,
            larger than ``limits.NAMES_FILE_BYTES`` or nested too deeply (the message
            names the file and what was expected).
    """
    if not path:
        return None
    with storage.open_input(path) as f:  # a regular file, never waited on
        data = limits.read_capped(f, limits.NAMES_FILE_BYTES, f"label map {path}",
                                  "a label map")
    try:
        return _names(path, data)
    except RecursionError as exc:  # JSON nested deeper than the parser (or str()) goes
        raise ValueError(f"label map {path}: nested too deeply; expected {_EXPECTED}") from exc


def _names(path: str, data: bytes) -> list[str]:
    """The class names of a label map file's bytes (see ``read_names``)."""
    try:
        loaded = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"label map {path}: not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start}); expected {_EXPECTED}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"label map {path}: not JSON ({exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}); expected {_EXPECTED}") from exc
    if isinstance(loaded, dict):
        try:
            order = sorted(loaded, key=int)
        except ValueError:
            raise ValueError(f"label map {path}: a key is not a label number; expected "
                             f"{_EXPECTED}") from None
        return _distinct(path, [str(loaded[k]) for k in order])
    if isinstance(loaded, list):
        return _distinct(path, [str(name) for name in loaded])
    raise ValueError(f"label map {path}: a JSON {type(loaded).__name__}; expected {_EXPECTED}")


def _distinct(path: str, names: list[str]) -> list[str]:
    """``names``, each given once: a name given twice would make two classes one."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"label map {path}: the class name {name!r} is given twice; "
                             "each class needs a name of its own, or two classes would be "
                             "stored as one")
        seen.add(name)
    return names


def check_folder(output_dir: str, prefix: str, labels: list[str], offset: int) -> None:
    """Refuse a conversion whose labels differ from the ``label_map.json`` that the output
    folder holds for shards of another prefix (``train`` beside a new ``val``): the one
    label map left would contradict the other prefix's records.

    Raises:
        LabelMapError: the folder's label map is another one, and other shards use it.
    """
    with storage.folder(output_dir) as out:
        existing = out.read(JSON_NAME)
        others = sorted({parsed[0] for parsed in map(sharding.parse_shard_name, out.names(""))
                         if parsed is not None and parsed[0] != prefix})
        where = out.location(JSON_NAME)
    if existing is None or not others:
        return
    try:
        old = json.loads(existing)
    except ValueError:
        old = None
    new = label_map_json(labels, offset)
    if old != new:
        raise LabelMapError(
            f"{where} maps the labels of {', '.join(others)} ({_shown(old)}), and this "
            f"conversion's differ ({_shown(new)}): one label map cannot describe both. "
            f"Convert with the same classes in the same order (--label-map {where}, and the "
            "same --label-offset), or write to another --output_dir")


def _shown(mapping: Any) -> str:
    if not isinstance(mapping, dict):
        return "unreadable"
    return ", ".join(f"{k}: {v}" for k, v in list(mapping.items())[:6]) + (
        ", ..." if len(mapping) > 6 else "")
