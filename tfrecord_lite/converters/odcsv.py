"""The Object Detection API tutorial CSV -> items.

``filename,width,height,class,xmin,ymin,xmax,ymax``: one row per box, pixel coordinates,
as labelImg's xml-to-csv scripts and Roboflow's "TensorFlow Object Detection CSV" write
it. The header gives the column order (``width`` and ``height`` may be left out). A row
whose class and box are empty stands for an image without boxes.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterator
from typing import Any

from ..errors import DatasetError, ImageError
from . import (
    Converter,
    add_box,
    empty_objects,
    normalize_box,
    read_dataset_file,
    why,
    wrong_file,
)
from .limits import CSV_LINE_CHARS, line_too_long

REQUIRED = ("filename", "class", "xmin", "ymin", "xmax", "ymax")
OPTIONAL = ("width", "height")
BOX = ("xmin", "ymin", "xmax", "ymax")


class Row:
    """One CSV row: its line, class, pixel box and the size the CSV gives (or None); or,
    for a row of an image that cannot be converted, ``error`` (why: it is rejected when
    the image is converted)."""

    __slots__ = ("line", "name", "box", "size", "error")

    def __init__(self, line: int, name: str, box: tuple[float, float, float, float] | None,
                 size: tuple[float, float] | None, error: str | None = None) -> None:
        self.line, self.name, self.box, self.size = line, name, box, size
        self.error = error


class OdCsvConverter(Converter):
    """Rows grouped by filename (in first-seen order) -> detection items; boxes normalized
    by the image's size read from its header, which is checked against the CSV's
    width/height (a mismatch skips the image); class names -> labels (sorted, or the order
    of ``label_names``).

    Args:
        csv_file: the CSV file.
        images_dir: where the ``filename`` column is found.
        label_names: class names in label order (default: sorted names found).
        label_offset: labels start at this value.

    Raises:
        DatasetError: the CSV or the images folder is missing, or the header lacks a
            column.
    """

    name = "csv"

    def __init__(self, csv_file: str, images_dir: str, label_names: list[str] | None = None,
                 label_offset: int = 0, *, dataset_root: str | None = None) -> None:
        super().__init__(label_offset, dataset_root)
        self.problems.source = csv_file
        if not os.path.isdir(images_dir):
            raise DatasetError(f"--images {images_dir!r}: no such folder")
        self.csv_file = csv_file
        self.images_dir = images_dir
        self.rows: dict[str, list[Row]] = {}
        self._at_end = False  # the CSV's last line has been read
        try:
            with read_dataset_file(csv_file) as raw, io.TextIOWrapper(
                    raw, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
                self._read(csv.reader(self._lines(f)))
        except FileNotFoundError as exc:
            raise DatasetError(f"FILE {csv_file!r}: no such file") from exc
        except (OSError, csv.Error) as exc:
            raise DatasetError(f"cannot read {csv_file}: {why(exc)}") from exc
        if label_names is None:
            label_names = sorted({r.name for rows in self.rows.values() for r in rows
                                  if r.box is not None})
        self.labels = list(label_names)
        self.label_of = {name: i + label_offset for i, name in enumerate(self.labels)}

    def _read(self, reader: Any) -> None:
        header = next(reader, None)
        columns = [c.strip().lower() for c in header or []]
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise DatasetError(f"{self.csv_file}: the header must name the columns "
                               f"{','.join(REQUIRED[:1] + OPTIONAL + REQUIRED[1:])}; "
                               f"missing: {', '.join(missing)}")
        at = {name: columns.index(name) for name in REQUIRED + OPTIONAL if name in columns}
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a quoted field over the csv module's limit
                self.problem(f"{self.csv_file}:{reader.line_num}", f"not a CSV row: {exc}")
                continue
            if not any(f.strip() for f in fields):
                continue
            where = f"{self.csv_file}:{reader.line_num}"
            if len(fields) != len(columns) and self._at_end and reader.line_num > start:
                self.problem(f"{self.csv_file}:{start}",
                             f"a quote opened on line {start} is never closed: lines "
                             f"{start} to {reader.line_num} (the end of the file) are read "
                             "as one field and left out")
                # each swallowed line's image loses a row: it is rejected with it
                lines = ",".join(fields).split("\n")
                for k, line in enumerate(lines):
                    self._broken_row(line.split(",", 1)[0], start + k,
                                     f"inside a quote opened on line {start} and never "
                                     "closed")
                continue
            if len(fields) != len(columns):
                message = (f"expected {len(columns)} fields ({','.join(columns)}), "
                           f"got {len(fields)}")
                if not self._broken_row(fields[0] if fields else "", reader.line_num,
                                        message):
                    self.problem(where, message)
                continue
            value = {name: fields[i].strip() for name, i in at.items()}
            row = self._row(value, reader.line_num, where)
            if row is not None:
                self.rows.setdefault(value["filename"], []).append(row)

    def _broken_row(self, file_name: str, line: int, message: str) -> bool:
        """A row that cannot be read, of the image it names (if it names one): the image
        gets it as a rejected row, so it is not written without that row's box unawares.
        Returns whether a file name was found."""
        file_name = file_name.strip().strip('"').strip()
        if not file_name or file_name.lower() == "filename":
            return False
        self.rows.setdefault(file_name, []).append(
            Row(line, "", None, None, error=message))
        return True

    def _lines(self, f: Any) -> Iterator[str]:
        """The CSV's lines (read with ``errors="surrogateescape"``). A line longer than
        ``CSV_LINE_CHARS`` (never held whole) or not UTF-8 is reported and read as an
        empty line, so that the line numbers stay right.

        Raises:
            DatasetError: the header line is not UTF-8: the file is not a CSV file.
        """
        for number, line in enumerate(iter(lambda: f.readline(CSV_LINE_CHARS + 1), ""), 1):
            if len(line.rstrip("\r\n")) > CSV_LINE_CHARS:
                self.problem(line_too_long(self.csv_file, number, CSV_LINE_CHARS),
                             "the row is left out")
                while line and not line.endswith(("\n", "\r")):
                    line = f.readline(CSV_LINE_CHARS)
                yield "\n"
                continue
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:  # an undecodable byte, kept as a surrogate
                if number == 1:
                    raise DatasetError(wrong_file(
                        self.csv_file, "not a CSV file: not UTF-8 text", "the Object "
                        "Detection API CSV (filename,width,height,class,xmin,ymin,xmax,"
                        "ymax)")) from None
                self.problem(f"{self.csv_file}:{number}", "not UTF-8 text: the row is left out")
                yield "\n"
                continue
            yield line
        self._at_end = True

    def _row(self, value: dict[str, str], line: int, where: str) -> Row | None:
        if not value["filename"]:
            self.problem(where, "empty filename")
            return None
        if not value["class"] and not any(value[c] for c in BOX):
            return Row(line, "", None, None)  # an image without boxes
        numbers: dict[str, float] = {}
        for name in BOX + tuple(c for c in OPTIONAL if c in value):
            try:
                numbers[name] = float(value[name])
            except ValueError:
                return Row(line, "", None, None,
                           error=f"{name}: not a number: {value[name][:40]!r}")
            if not math.isfinite(numbers[name]):
                return Row(line, "", None, None,
                           error=f"{name}: not a finite number: {value[name][:40]!r}")
        if not value["class"]:
            return Row(line, "", None, None, error="the class name is empty")
        size = None
        if "width" in numbers and "height" in numbers:
            size = (numbers["width"], numbers["height"])
        box = (numbers["xmin"], numbers["ymin"], numbers["xmax"], numbers["ymax"])
        return Row(line, value["class"], box, size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for file_name, rows in self.rows.items():
            item = self._item(file_name, rows)
            if item is None:
                self.count_skipped()
            else:
                self.report["images"] += 1
                yield item

    def _item(self, file_name: str, rows: list[Row]) -> dict[str, Any] | None:
        path = os.path.join(self.images_dir, file_name)
        try:
            width, height, _ = self.image_size(path)
        except (OSError, ImageError, ValueError) as exc:  # ValueError: a NUL in the name
            self.problem(f"{self.csv_file}:{rows[0].line}", f"image {path}: {why(exc)}")
            return None
        for row in rows:
            if row.size is not None and row.size != (width, height):
                self.problem(f"{self.csv_file}:{row.line}",
                             f"image {file_name!r}: the CSV says {row.size[0]:g}x"
                             f"{row.size[1]:g}, the image is {width}x{height}")
                return None
        objects = empty_objects()
        for row in rows:
            where = f"{self.csv_file}:{row.line}"
            if row.error is not None:
                self.reject(where, f"image {file_name!r}: {row.error}")
                continue
            if row.box is None:
                continue
            label = self.label_of.get(row.name)
            if label is None:
                self.leave_out(where, f"class {row.name!r} is not in the label map")
                continue
            box = normalize_box(*row.box, width, height, self.report)
            if box is None:
                continue
            add_box(objects, box, label, row.name)
            objects["id"].append(str(row.line))
            objects["area"].append((box[2] - box[0]) * (box[3] - box[1]))
            objects["is_crowd"].append(0)
        kept, rejected = self.keeps_image()
        if not kept:
            return None
        if objects["count"] == 0 and rejected:
            self.report["images whose every annotation was dropped (kept)"] += 1
        self.report["boxes"] += objects["count"]
        return {"filename": path, "id": file_name, "height": height, "width": width,
                "object": objects}
