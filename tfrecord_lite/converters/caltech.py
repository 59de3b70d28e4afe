"""Caltech-style ``bbGt`` text annotations -> items.

One text file per image, same stem: a ``% bbGt version=3`` header line, then one line
per object: ``label x y w h`` in pixels, optionally followed by ``occ xv yv wv hv ign
ang``. ``ign`` = 1 marks a region to ignore: stored as ``object/is_crowd``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

from ..errors import DatasetError, ImageError
from ..images import sniff
from . import Converter, add_box, empty_objects, normalize_box, why
from .limits import annotation_lines


class CaltechConverter(Converter):
    """Pixel boxes normalized; label names -> labels (sorted names, or the order of
    ``label_names``, where a name not among them is reported and its box left out)."""

    name = "caltech"

    def __init__(self, images_dir: str, annotations_dir: str, label_offset: int = 0,
                 label_names: list[str] | None = None, *,
                 dataset_root: str | None = None) -> None:
        super().__init__(label_offset, dataset_root)
        self.problems.source = annotations_dir
        self.images_dir = images_dir
        self.annotations_dir = annotations_dir
        self.pairs = []
        for file_name in sorted(os.listdir(images_dir)):
            path = os.path.join(images_dir, file_name)
            stem = os.path.splitext(file_name)[0]
            ann = os.path.join(annotations_dir, stem + ".txt")
            if os.path.isfile(ann):
                self.pairs.append((stem, path, ann))
        names: set[str] = set()
        for _, _, ann in self.pairs:
            names.update(row[0] for row in self._rows(ann, record=False) or [])
        self.use_labels(sorted(names), label_names)

    def _rows(self, ann: str, record: bool = True) -> list[list[str]] | None:
        """The object lines of a bbGt file, split; None (reported when ``record``) when
        the file cannot be read as a whole: it is larger than ``IMAGE_FILE_BYTES``, has a
        line longer than ``LINE_CHARS``, is not UTF-8 or has no ``% bbGt`` header. Its
        image is then left out, under every validation mode: none of its annotations can
        be trusted, and keeping it would make it a background image."""
        try:
            with self.open(ann) as f:
                lines = annotation_lines(f, ann, "an annotation file")
        except DatasetError as exc:  # too large
            if record:
                self.problem(str(exc), "the image is left out")
            return None
        except (OSError, UnicodeDecodeError) as exc:
            if record:
                self.problem(ann, f"cannot read: {why(exc)}: the image is left out")
            return None
        if not lines or not lines[0].startswith("% bbGt"):
            if record:
                self.problem(ann, "not a bbGt file (the first line must be '% bbGt ...'): "
                                  "the image is left out")
            return None
        return [line.split() for line in lines[1:] if line.strip()]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for stem, path, ann in self.pairs:
            try:
                with self.open(path) as f:
                    head = f.read(16)
                if sniff(head) is None:
                    self.report["files skipped (not images)"] += 1
                    continue
                width, height, _ = self.image_size(path)
            except (OSError, ImageError) as exc:
                self.problem(f"image {stem!r}", f"{path}: {why(exc)}" if isinstance(
                    exc, OSError) else str(exc))
                continue
            rows = self._rows(ann)
            if rows is None:
                self.report["images skipped"] += 1
                continue
            objects = empty_objects()
            for n, row in enumerate(rows):
                try:
                    x, y, w, h = (float(v) for v in row[1:5])
                except ValueError:
                    self.reject(f"image {stem!r}", f"line {n + 2}: expected 'label x y w h', "
                                                   f"got {' '.join(row)[:80]!r}")
                    continue
                if not all(map(math.isfinite, (x, y, w, h))):
                    self.reject(f"image {stem!r}", f"line {n + 2}: a number that is not "
                                                   "finite")
                    continue
                if row[0] not in self.label_of:
                    self.leave_out(f"image {stem!r}", f"line {n + 2}: class {row[0]!r} is "
                                                      "not in the label map")
                    continue
                box = normalize_box(x, y, x + w, y + h, width, height, self.report)
                if box is None:
                    continue
                add_box(objects, box, self.label_of[row[0]], row[0])
                objects["id"].append(str(n))
                objects["area"].append((box[2] - box[0]) * (box[3] - box[1]))
                objects["is_crowd"].append(int(len(row) > 10 and row[10] == "1"))
            kept, rejected = self.keeps_image()
            if not kept:
                self.count_skipped()
                continue
            if objects["count"] == 0 and rejected:
                self.report["images whose every annotation was dropped (kept)"] += 1
            self.report["images"] += 1
            self.report["boxes"] += objects["count"]
            yield {"filename": path, "id": stem, "height": height, "width": width,
                   "object": objects}
