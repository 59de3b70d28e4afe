"""Reading TFRecord files back: records as bytes or item dicts, and record indexes.

Every reader goes through :func:`read_framed`, which yields ``(index, offset, data)``
and checks each record (CRCs, a length within ``max_record_size`` and within the file).

An index (``.FILE.idx``, hidden beside the file so that the shard glob ``train-*``
never matches it; ``FILE.idx`` of earlier versions is still read) is text, one
``offset length`` line per record, ``length`` being the whole framed record (header,
data and CRC): the format the ``tfrecord`` package and NVIDIA DALI read.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
from collections.abc import Iterable, Iterator
from typing import IO, Any, Union

from . import compression as _compression
from . import sharding
from .crc32c import CrcFn, crc32c
from .decode import decode_example, parse_example
from .errors import (
    ExampleDecodeError,
    ImageError,
    IndexFileError,
    RecordDecodeError,
    RecordError,
    TruncatedRecordError,
    reason,
)
from .framing import DEFAULT_MAX_RECORD_SIZE, FRAMED_OVERHEAD, framed_size, iter_framed
from .schema import BYTES, FLOAT, INT64, RECORD_FIELDS

PathArg = Union[str, "os.PathLike[str]"]


def _known_size(f: IO[bytes]) -> int | None:
    """The bytes a plain file holds from its current position, when they are known: a
    local regular file (``fstat``) or a remote object that tells its size."""
    try:
        st = os.fstat(f.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        size = getattr(f, "size", None)  # fsspec files
        return size - f.tell() if isinstance(size, int) else None
    return st.st_size - f.tell() if stat.S_ISREG(st.st_mode) else None


def read_framed(path: PathArg, compression: str | None = None, verify: bool = True,
                crc_fn: CrcFn = crc32c, max_record_size: int = DEFAULT_MAX_RECORD_SIZE
                ) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(index, offset, data)`` of each record of one TFRecord file; ``offset`` is
    the record's place in the (uncompressed) stream, as errors say.

    Args:
        path: the file (a local path or a URL).
        compression: "none", "gzip" or "zlib"; None detects it from the file's first bytes.
        verify: check the length and data CRC of every record.
        max_record_size: the longest record accepted (default 256 MiB); a header that
            claims more is reported as corrupt before anything is read. In a plain local
            file, a record that would end past the end of the file is reported without
            reading it.
    Raises:
        CorruptRecordError: a CRC does not match, a length over ``max_record_size``, or
            a damaged compressed stream (each names file, record index, offset; one
            after the last record has ``at_end``: see ``RecordError``).
        CompressionMismatchError: ``compression`` "gzip" or "zlib" given, and the file
            is compressed otherwise, or not at all (a ZLIB reader does not take a GZIP
            file, as in TensorFlow).
        TruncatedRecordError: the file ends inside a record, or a compressed stream
            ends early.
        FileNotFoundError: no such file.
    """
    name = os.fspath(path)
    comp = _compression.detect(name) if compression is None else _compression.normalize(compression)
    with _compression.open_file(name, "r", comp) as f:
        size = _known_size(f) if comp == "none" else None
        yield from iter_framed(f, verify=verify, path=name, crc_fn=crc_fn,
                               max_record_size=max_record_size, size=size,
                               uncompressed=comp != "none")


def read_records(path: PathArg, compression: str | None = None, verify: bool = True,
                 crc_fn: CrcFn = crc32c, max_record_size: int = DEFAULT_MAX_RECORD_SIZE
                 ) -> Iterator[bytes]:
    """Yield the data of each record of one TFRecord file.

    The arguments and errors are those of :func:`read_framed`.
    """
    for _, _, data in read_framed(path, compression, verify, crc_fn, max_record_size):
        yield data


# -- records as items ----------------------------------------------------------------------

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {INT64: (int,), FLOAT: (float,),
                                              BYTES: (str, bytes)}
_TYPE_KIND = {int: INT64, float: FLOAT, str: BYTES, bytes: BYTES}
# (record key, its path in the item, the Python types of its values, is it a list)
_TYPED = [(key, key[len("image/"):].split("/"),
           (bytes,) if field.kind == BYTES and not field.text else _PYTHON_TYPES[field.kind],
           field.is_list, field.kind)
          for key, field in sorted(RECORD_FIELDS.items())]


def type_problems(item: dict[str, Any]) -> list[str]:
    """What in a decoded record does not have the type this package reads and writes:
    a key of another kind (``image/width`` as bytes), or a value where a group of keys
    belongs (``image/object`` beside ``image/object/bbox/xmin``). Empty when all is well.
    """
    problems: list[str] = []
    for key, parts, types, is_list, kind in _TYPED:
        node: Any = item
        for depth, part in enumerate(parts[:-1]):
            node = node.get(part)
            if node is None:
                break
            if not isinstance(node, dict):
                group = "image/" + "/".join(parts[:depth + 1])
                message = f"{group} holds values, where {group}/... keys are a group"
                if message not in problems:
                    problems.append(message)
                node = None
                break
        if node is None:
            continue
        value = node.get(parts[-1])
        if value is None:
            continue
        if isinstance(value, dict):
            problems.append(f"{key} is a group of keys ({key}/...), expected {kind} values")
            continue
        first = (value[0] if value else None) if is_list else value
        if first is not None and not isinstance(first, types):
            found = _TYPE_KIND.get(type(first), type(first).__name__)
            problems.append(f"{key} holds {found} values, expected {kind}")
    return problems


def decode_record(data: bytes, path: str, index: int, offset: int, *,
                  uncompressed: bool = False) -> dict[str, Any]:
    """A record of a file as an item dict (``decode_example``) whose values have the
    types this package reads. ``uncompressed``: ``offset`` is one of a compressed
    file's uncompressed stream.

    Raises:
        RecordDecodeError: not an Example, or a key of the wrong type (see
            :func:`type_problems`); names the file, record index and offset.
    """
    try:
        item = decode_example(data)
    except ExampleDecodeError as exc:
        raise RecordDecodeError(str(exc), path=path, index=index, offset=offset,
                                uncompressed=uncompressed) from exc
    problems = type_problems(item)
    if problems:
        raise RecordDecodeError("; ".join(problems), path=path, index=index, offset=offset,
                                uncompressed=uncompressed)
    return item


def parse_record(data: bytes, path: str, index: int, offset: int) -> Any:
    """A record of a file parsed as a ``tf.train.Example`` message.

    Raises:
        RecordDecodeError: not an Example (names the file, record index and offset).
    """
    try:
        return parse_example(data)
    except ExampleDecodeError as exc:
        raise RecordDecodeError(str(exc), path=path, index=index, offset=offset) from exc


def read_examples(path: PathArg, compression: str | None = None, verify: bool = True,
                  max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> Iterator[dict[str, Any]]:
    """Yield each record of a file decoded as a nested item dict (see ``decode_example``).

    Raises:
        RecordDecodeError: a record that is not an Example, or whose features have the
            wrong types (names file, record index, offset and key).
        RecordError: a damaged file (see :func:`read_framed`).
    """
    name = os.fspath(path)
    for index, offset, data in read_framed(name, compression, verify,
                                           max_record_size=max_record_size):
        yield decode_record(data, name, index, offset)


def iterate(paths: PathArg | Iterable[PathArg], compression: str | None = None,
            verify: bool = True, decode_images: bool = False,
            max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
            decode_masks: bool = False) -> Iterator[dict[str, Any]]:
    """Yield every record of one or many shards as the nested dict ``create()`` takes.

    A record's masks come as it stores them: ``item["object"]["mask"]`` a list of PNG
    bytes, one per object, ``item["segmentation"]["class"]["encoded"]`` the label
    image's PNG (``decode_masks`` adds their pixels).

    Args:
        paths: a file or a list of files, read in the order given.
        compression: "none", "gzip", "zlib", or None to detect it per file.
        verify: check every record's CRCs.
        decode_images: add ``"image"``, the decoded ``image/encoded`` as a numpy array
            (height x width x channels, uint8).
        max_record_size: the longest record accepted (see :func:`read_framed`).
        decode_masks: add ``"masks"``, the decoded ``image/object/mask`` (uint8, objects
            x height x width, of 0 and 1), and ``"class_ids"``, the decoded
            ``image/segmentation/class/encoded`` (uint8, height x width), when the record
            holds them.
    Raises:
        RecordError: a damaged file (names the file, record index and offset).
        RecordDecodeError: a record that is not an Example, or whose features have the
            wrong types (an ``ExampleDecodeError`` too); with ``decode_masks``, a mask
            or label image that does not decode, or is not of the image's size.
        ImageError: with ``decode_images``, an image that does not decode (names the
            file and record).
    """
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    for path in files:
        name = os.fspath(path)
        for index, offset, data in read_framed(name, compression, verify,
                                               max_record_size=max_record_size):
            item = decode_record(data, name, index, offset)
            if decode_images and isinstance(item.get("encoded"), bytes):
                item["image"] = decode_image(
                    item["encoded"], f"{name}, record {index}, byte offset {offset}")
            if decode_masks:
                _decode_masks(item, name, index, offset)
            yield item


def _decode_masks(item: dict[str, Any], path: str, index: int, offset: int) -> None:
    """Add ``"masks"`` and ``"class_ids"`` to a decoded record that holds masks or a
    label image (see :func:`iterate`).

    Raises:
        RecordDecodeError: one does not decode, or is not of the image's size.
    """
    import numpy as np

    from .errors import MaskError
    from .maskpng import decode

    size = (item.get("height"), item.get("width"))
    height, width = size
    known = (height, width) if isinstance(height, int) and isinstance(width, int) else None

    def pixels(data: Any, key: str) -> Any:
        try:  # a header of another size is refused before decoding
            array = decode(data, key, strict=False, size=known)
        except MaskError as exc:
            raise RecordDecodeError(str(exc), path=path, index=index, offset=offset) from exc
        if array.shape != size:
            raise RecordDecodeError(f"{key} is {array.shape[1]}x{array.shape[0]}, the image "
                                    f"{size[1]}x{size[0]}", path=path, index=index,
                                    offset=offset)
        return array

    masks = (item.get("object") or {}).get("mask")
    if masks is not None:
        arrays = [pixels(data, f"image/object/mask[{i}]") for i, data in enumerate(masks)]
        item["masks"] = (np.stack(arrays) if arrays
                         else np.zeros((0, size[0] or 0, size[1] or 0), np.uint8))
    labels = ((item.get("segmentation") or {}).get("class") or {}).get("encoded")
    if labels is not None:
        item["class_ids"] = pixels(labels, "image/segmentation/class/encoded")


def image_decode_errors() -> tuple[type[BaseException], ...]:
    """What Pillow raises for damaged, cut or hostile image data (a bomb as an error)."""
    from PIL import Image

    return (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error,
            Image.DecompressionBombError, Image.DecompressionBombWarning)


def decode_image(data: bytes, where: str = "image") -> Any:
    """Decode image bytes to a numpy array (uint8, height x width x channels).

    Args:
        data: the encoded image.
        where: names the image in errors (file and record).
    Raises:
        ImageError: the bytes do not decode, or the image is over Pillow's
            decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    import numpy as np
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                if im.mode not in ("RGB", "L"):
                    im = im.convert("RGB")
                array = np.asarray(im)
    except image_decode_errors() as exc:
        too_large = isinstance(exc, (Image.DecompressionBombError,
                                     Image.DecompressionBombWarning))
        raise ImageError(f"{where}: image/encoded does not decode: "
                         f"{reason(exc)}",
                         "too large" if too_large else "corrupt") from exc
    return array if array.ndim == 3 else array[:, :, None]


# -- indexes -------------------------------------------------------------------------------

def _plain_only(path: str) -> None:
    comp = _compression.detect(path)
    if comp != "none":
        raise IndexFileError(f"{path}: {comp}-compressed: an index of offsets needs a plain "
                             "TFRecord file")


def index_entries(path: PathArg, verify: bool = True,
                  max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> list[tuple[int, int]]:
    """``(offset, length)`` of every record of a plain TFRecord file (length: framed size)."""
    name = os.fspath(path)
    _plain_only(name)
    return [(offset, framed_size(len(data)))
            for _, offset, data in read_framed(name, "none", verify,
                                               max_record_size=max_record_size)]


def default_index_path(path: PathArg) -> str:
    """Where :func:`write_index` puts the index of ``path`` by default: hidden beside it
    (``out/.train-00000-of-00001.idx``), so that ``out/train-*`` never matches it."""
    directory, name = os.path.split(os.fspath(path))
    return os.path.join(directory, sharding.index_name(name))


def find_index(path: PathArg) -> str:
    """The index of ``path``: the default (``.FILE.idx``), or ``FILE.idx`` (the name
    earlier versions wrote) when only that one exists."""
    default = default_index_path(path)
    old = os.fspath(path) + sharding.INDEX_SUFFIX
    if not os.path.exists(default) and os.path.exists(old):
        return old
    return default


def write_index(path: PathArg, index_path: str | None = None,
                max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> str:
    """Write the index of ``path`` at ``index_path``, by default hidden beside it
    (``.FILE.idx``, see :func:`default_index_path`); returns its name."""
    name = os.fspath(path)
    target = index_path or default_index_path(name)
    entries = index_entries(name, max_record_size=max_record_size)
    text = "".join(f"{offset} {length}\n" for offset, length in entries)
    tmp = target + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, target)
    return target


def _check_entry(offset: int, length: int, size: int | None, max_record_size: int) -> str | None:
    """Why an index entry cannot be a record of a file of ``size`` bytes, or None."""
    if offset < 0:
        return f"offset {offset} is negative"
    if length < FRAMED_OVERHEAD:
        return f"length {length} is less than a record's {FRAMED_OVERHEAD}-byte frame"
    if length - FRAMED_OVERHEAD > max_record_size:
        return (f"length {length:,} is over the {max_record_size:,}-byte record limit "
                "(max_record_size)")
    if size is not None and offset + length > size:
        return f"offset {offset} + length {length} is past the end of the file ({size} bytes)"
    return None


def read_index(index_path: PathArg, size: int | None = None,
               max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> list[tuple[int, int]]:
    """Parse an ``.idx`` file into ``(offset, length)`` pairs, checking every entry.

    Args:
        index_path: the ``.idx`` file.
        size: the TFRecord file's size, when known: entries past it are refused.
        max_record_size: the longest record an entry may describe.
    Raises:
        IndexFileError: a malformed line, a negative offset, a length under 16 bytes or
            over the limit, or an entry past ``size`` (names the file and line).
    """
    entries = []
    with open(index_path, encoding="ascii", errors="replace") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                offset, length = int(fields[0]), int(fields[1])
            except (ValueError, IndexError):
                raise IndexFileError(f"{index_path}, line {number}: expected 'offset length', "
                                     f"got {line.strip()[:80]!r}") from None
            problem = _check_entry(offset, length, size, max_record_size)
            if problem:
                raise IndexFileError(f"{index_path}, line {number}: {problem}")
            entries.append((offset, length))
    return entries


def read_record_at(path: PathArg, i: int, index: list[tuple[int, int]] | None = None,
                   verify: bool = True, max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
                   index_path: PathArg | None = None) -> bytes:
    """Record ``i`` of a plain TFRecord file, found through its index without scanning.

    Args:
        path: the TFRecord file.
        i: the record number (negative counts from the end).
        index: the parsed index; by default the index file is read (and every entry
            checked).
        max_record_size: the longest record accepted.
        index_path: the index file to read when ``index`` is not given; by default
            :func:`find_index` (``.FILE.idx``, or an earlier version's ``FILE.idx``).
    Raises:
        IndexError: no record ``i``.
        IndexFileError: the entry cannot be a record of this file (negative offset,
            length under 16 bytes or over the limit, past the end of the file).
        RecordError: the record at that offset is damaged (or the index is stale).
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if index is None:
            index = read_index(find_index(name) if index_path is None else index_path,
                               size, max_record_size)
        entries = index
        try:
            offset, length = entries[i]
        except IndexError:
            raise IndexError(f"{name}: no record {i} (the index lists {len(entries)})") from None
        number = i if i >= 0 else len(entries) + i
        problem = _check_entry(offset, length, size, max_record_size)
        if problem:
            raise IndexFileError(f"{name}: index entry {number}: {problem}")
        f.seek(offset)
        framed = f.read(length)
    records = iter_framed(io.BytesIO(framed), verify=verify, path=name, crc_fn=crc32c,
                          max_record_size=max_record_size, size=len(framed))
    try:
        _, _, data = next(records)
    except RecordError as exc:
        raise type(exc)(f"{exc.reason} (read through the index: is it stale?)", path=name,
                        index=number, offset=offset) from exc
    except StopIteration:
        raise TruncatedRecordError("no record at this offset (stale index?)", path=name,
                                   index=number, offset=offset) from None
    if framed_size(len(data)) != length:
        raise TruncatedRecordError(f"index says {length} bytes, record holds "
                                   f"{framed_size(len(data))} (stale index?)", path=name,
                                   index=number, offset=offset)
    return data
