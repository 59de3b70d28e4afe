"""How much of a dataset's own files a converter reads: the caps that keep a small hostile
file (a YAML of nested aliases, a label file of one endless line, an XML of nested
entities) from costing gigabytes, and the bounded reads that apply them.

Each cap is far above what a real dataset holds: a data.yaml of 21,000 class names is
about 600 KB, a YOLO label file of 1,000 polygons of 200 points about 4 MB.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from ..errors import DatasetError

NAMES_FILE_BYTES = 1 << 20     # data.yaml, obj.names / classes.txt, a --label-map file
IMAGE_FILE_BYTES = 16 << 20    # one image's annotations: YOLO labels, VOC XML, bbGt text
LINE_CHARS = 1 << 20           # one line of a label, list or annotation text file
CSV_LINE_CHARS = 64 << 10      # one CSV line: under the csv module's 128 KiB field limit
XML_DEPTH = 64                 # elements nested in a VOC annotation (a real one: 4)
MAX_CLASSES = 1 << 20          # classes a names file or nc may declare


def size_text(n: int) -> str:
    """``1048576`` -> ``"1 MiB"``; ``65536`` -> ``"64 KiB"``; other sizes in bytes."""
    for shift, unit in ((20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} bytes"


def read_capped(f: IO[bytes], limit: int, path: str, what: str) -> bytes:
    """Up to ``limit`` bytes of an open file: the whole file, or an error.

    Raises:
        DatasetError: the file holds more than ``limit`` bytes (only ``limit + 1`` are
            read): names the file, the cap and ``what`` the file is.
    """
    data = f.read(limit + 1)
    if len(data) > limit:
        raise DatasetError(f"{path}: larger than {size_text(limit)}, the most {what} may "
                           "hold")
    return data


def long_line(lines: list[str], limit: int = LINE_CHARS) -> int | None:
    """The number of the first line longer than ``limit`` characters, or None."""
    return next((n for n, line in enumerate(lines, 1) if len(line) > limit), None)


def line_too_long(path: str, number: int, limit: int = LINE_CHARS) -> str:
    """The message for line ``number`` of ``path`` being longer than ``limit``."""
    return f"{path}:{number}: a line longer than {size_text(limit)}, the most a line may hold"


def annotation_lines(f: IO[bytes], path: str, what: str) -> list[str]:
    """The lines of one image's annotation text file (YOLO labels, bbGt), read within
    ``IMAGE_FILE_BYTES`` and ``LINE_CHARS``.

    Raises:
        DatasetError: the file or one of its lines is larger than its cap.
        UnicodeDecodeError: the file is not UTF-8.
    """
    lines = read_capped(f, IMAGE_FILE_BYTES, path, what).decode("utf-8").splitlines()
    number = long_line(lines)
    if number is not None:
        raise DatasetError(line_too_long(path, number))
    return lines


def capped_lines(f: IO[str], path: str, limit: int = LINE_CHARS) -> Iterator[str]:
    """The lines of a text file (with their line ends), never reading more than
    ``limit + 1`` characters of one line.

    Raises:
        DatasetError: a line longer than ``limit`` (names the file and line number).
    """
    for number, line in enumerate(iter(lambda: f.readline(limit + 1), ""), 1):
        if len(line.rstrip("\r\n")) > limit:
            raise DatasetError(line_too_long(path, number, limit))
        yield line
