"""Images paired with label images by file name -> semantic segmentation items.

A folder of images and a folder of label images (PNG of class ids, or palette PNG whose
indices are the ids, as VOC's ``SegmentationClass``): the label image of
``IMAGES/city/a.jpg`` is the image file ``LABELS/city/a{suffix}.*`` (any extension; the
suffix is empty unless given, e.g. ``_mask``). Each pair becomes an item with the label
image as ``segmentation``; an image without a label image, or with several, is reported
and left out, and label images without an image are counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from ..errors import DatasetError
from ..images import sniff
from . import Converter


def _image_files(root: str) -> Iterator[tuple[str, str]]:
    """``(relative path, path)`` of each file under ``root``, sorted, hidden ones left out."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                path = os.path.join(dirpath, name)
                yield os.path.relpath(path, root), path


class SegmentationConverter(Converter):
    """Pairs of an image and its label image -> items with ``segmentation``.

    Args:
        images_dir: the folder of images (searched recursively; files are taken as
            images by their content).
        labels_dir: the folder of label images, in the same sub-folders.
        suffix: the label image's name is the image's stem plus this, and any extension.

    Raises:
        DatasetError: the two folders are one and the suffix is empty (every image would
            be its own label image).
    """

    name = "segmentation"
    label_map = False  # class ids are the label images' pixels: no names to map

    def __init__(self, images_dir: str, labels_dir: str, suffix: str = "", *,
                 dataset_root: str | None = None) -> None:
        super().__init__(dataset_root=dataset_root)
        self.problems.source = labels_dir
        if not suffix and os.path.realpath(images_dir) == os.path.realpath(labels_dir):
            raise DatasetError(f"IMAGES and LABELS are the same folder ({images_dir}): give "
                               "--label-suffix (e.g. _mask) to tell the label images apart")
        self.images_dir = images_dir
        self.labels_dir = labels_dir
        self.suffix = suffix
        # The label images by relative folder and stem (which ends with the suffix).
        self.by_stem: dict[str, list[str]] = {}
        for relative, path in _image_files(labels_dir):
            stem = os.path.splitext(relative)[0]
            if stem.endswith(suffix) and self._is_image(path):
                self.by_stem.setdefault(stem, []).append(path)

    def _is_image(self, path: str) -> bool:
        """Whether a file is an image, by its first bytes (a file that cannot be read, a
        FIFO, a file outside the root: not one)."""
        try:
            with self.open(path) as f:
                return sniff(f.read(16)) is not None
        except OSError:
            return False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        used: set[str] = set()
        same = os.path.realpath(self.images_dir) == os.path.realpath(self.labels_dir)
        for relative, path in _image_files(self.images_dir):
            stem = os.path.splitext(relative)[0]
            if same and stem in self.by_stem:
                continue  # a label image, beside its image
            if not self._is_image(path):
                self.report["files skipped (not images)"] += 1
                continue
            found = self.by_stem.get(stem + self.suffix, [])
            if not found:
                self.problem(relative, f"no label image {stem + self.suffix}.* in "
                             f"{self.labels_dir}")
                self.report["images skipped (no label image)"] += 1
                continue
            if len(found) > 1:
                self.problem(relative, "several label images: "
                             + ", ".join(os.path.basename(p) for p in found))
                self.report["images skipped (several label images)"] += 1
                continue
            used.add(stem + self.suffix)
            self.report["images"] += 1
            yield {"filename": path, "id": relative, "segmentation": found[0]}
        unused = sum(len(paths) for stem, paths in self.by_stem.items() if stem not in used)
        if unused:
            self.report["files in LABELS without an image"] += unused
