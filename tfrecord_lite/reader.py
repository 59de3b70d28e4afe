"""Reading TFRecord files back: records as bytes or item dicts, and record indexes.

An index (``FILE.idx``) is text, one ``offset length`` line per record, ``length``
being the whole framed record (header, data and CRC): the format the ``tfrecord``
package and NVIDIA DALI read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from . import compression as _compression
from .crc32c import CrcFn, crc32c
from .errors import RecordError, TruncatedRecordError
from .example import decode_example
from .framing import iter_records


def read_records(path: str | os.PathLike[str], compression: str | None = None,
                 verify: bool = True, crc_fn: CrcFn = crc32c) -> Iterator[bytes]:
    """Yield the data of each record of one TFRecord file.

    Args:
        path: the file.
        compression: "none", "gzip" or "zlib"; None detects it from the file's first bytes.
        verify: check the length and data CRC of every record.
    Raises:
        CorruptRecordError: a CRC does not match (names file, record index, offset).
        TruncatedRecordError: the file ends inside a record, or a compressed stream
            ends early.
        FileNotFoundError: no such file.
    """
    name = os.fspath(path)
    comp = _compression.detect(name) if compression is None else _compression.normalize(compression)
    with _compression.open_file(name, "r", comp) as f:
        try:
            yield from iter_records(f, verify=verify, path=name, crc_fn=crc_fn)
        except RecordError:
            raise
        except (EOFError, OSError) as exc:  # gzip / zlib stream cut or damaged
            raise TruncatedRecordError(
                f"{comp} stream is damaged or cut short: {exc}", path=name) from exc


def read_examples(path: str | os.PathLike[str], compression: str | None = None,
                  verify: bool = True) -> Iterator[dict[str, Any]]:
    """Yield each record of a file decoded as a nested item dict (see ``decode_example``)."""
    for data in read_records(path, compression, verify):
        yield decode_example(data)


def iterate(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
            compression: str | None = None, verify: bool = True,
            decode_images: bool = False) -> Iterator[dict[str, Any]]:
    """Yield every record of one or many shards as the nested dict ``create()`` takes.

    Args:
        paths: a file or a list of files, read in the order given.
        compression: "none", "gzip", "zlib", or None to detect it per file.
        verify: check every record's CRCs.
        decode_images: add ``"image"``, the decoded ``image/encoded`` as a numpy array
            (height x width x channels, uint8).
    Raises:
        RecordError: a damaged file (names the file, record index and offset).
        ExampleDecodeError: a record that is not an Example.
    """
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    for path in files:
        for item in read_examples(path, compression, verify):
            if decode_images and isinstance(item.get("encoded"), bytes):
                item["image"] = decode_image(item["encoded"])
            yield item


def decode_image(data: bytes) -> Any:
    """Decode image bytes to a numpy array (uint8, height x width x channels)."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
        array = np.asarray(im)
    return array if array.ndim == 3 else array[:, :, None]


def _plain_only(path: str) -> None:
    comp = _compression.detect(path)
    if comp != "none":
        raise ValueError(f"{path}: {comp}-compressed: an index of offsets needs a plain "
                         "TFRecord file")


def index_entries(path: str | os.PathLike[str], verify: bool = True) -> list[tuple[int, int]]:
    """``(offset, length)`` of every record of a plain TFRecord file (length: framed size)."""
    name = os.fspath(path)
    _plain_only(name)
    entries = []
    offset = 0
    for data in read_records(name, "none", verify):
        size = len(data) + 16
        entries.append((offset, size))
        offset += size
    return entries


def write_index(path: str | os.PathLike[str], index_path: str | None = None) -> str:
    """Write ``FILE.idx`` beside ``path`` (or at ``index_path``); returns its name."""
    name = os.fspath(path)
    target = index_path or name + ".idx"
    text = "".join(f"{offset} {length}\n" for offset, length in index_entries(name))
    tmp = target + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, target)
    return target


def read_index(index_path: str | os.PathLike[str]) -> list[tuple[int, int]]:
    """Parse an ``.idx`` file into ``(offset, length)`` pairs."""
    entries = []
    with open(index_path, encoding="ascii") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                offset, length = int(fields[0]), int(fields[1])
            except (ValueError, IndexError):
                raise ValueError(f"{index_path}, line {number}: expected 'offset length', "
                                 f"got {line.strip()!r}") from None
            entries.append((offset, length))
    return entries


def read_record_at(path: str | os.PathLike[str], i: int,
                   index: list[tuple[int, int]] | None = None, verify: bool = True) -> bytes:
    """Record ``i`` of a plain TFRecord file, found through its index without scanning.

    Args:
        path: the TFRecord file.
        i: the record number (negative counts from the end).
        index: the parsed index; by default ``FILE.idx`` is read.
    Raises:
        IndexError: no record ``i``.
        RecordError: the record at that offset is damaged (or the index is stale).
    """
    name = os.fspath(path)
    entries = index if index is not None else read_index(name + ".idx")
    try:
        offset, length = entries[i]
    except IndexError:
        raise IndexError(f"{name}: no record {i} (the index lists {len(entries)})") from None
    number = i if i >= 0 else len(entries) + i
    with open(name, "rb") as f:
        f.seek(offset)
        framed = f.read(length)
    import io

    records = iter_records(io.BytesIO(framed), verify=verify, path=name, crc_fn=crc32c)
    try:
        data = next(records)
    except RecordError as exc:
        raise type(exc)(f"{exc.reason} (read through the index: is it stale?)", path=name,
                        index=number, offset=offset) from exc
    except StopIteration:
        raise TruncatedRecordError("no record at this offset (stale index?)", path=name,
                                   index=number, offset=offset) from None
    if len(data) + 16 != length:
        raise TruncatedRecordError(f"index says {length} bytes, record holds {len(data) + 16}"
                                   " (stale index?)", path=name, index=number, offset=offset)
    return data
