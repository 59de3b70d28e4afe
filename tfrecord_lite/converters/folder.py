"""Image folders, one class per sub-folder -> classification items."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from ..images import sniff
from . import Converter, why


class FolderConverter(Converter):
    """Sorted sub-folder names -> labels 0..K-1 (or the order of ``label_names``), the
    folder name -> ``class/text``.

    Files are recognised as images by their first bytes, not their names; other files
    are skipped and counted. With ``label_names``, a sub-folder not among them is
    reported and its images left out.
    """

    name = "folder"

    def __init__(self, root: str, label_offset: int = 0,
                 label_names: list[str] | None = None, *,
                 dataset_root: str | None = None) -> None:
        super().__init__(label_offset, dataset_root)
        self.problems.source = root
        self.root = root
        self.folders = sorted(d for d in os.listdir(root)
                              if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
        if not self.folders:
            raise ValueError(f"{root}: no class sub-folders")
        self.use_labels(self.folders, label_names)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for name in self.folders:
            label = self.label_of.get(name)
            folder = os.path.join(self.root, name)
            if label is None:
                self.problem(folder, f"class {name!r} is not in the label map: its images "
                                     "are left out")
                continue
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames.sort()
                for file_name in sorted(filenames):
                    path = os.path.join(dirpath, file_name)
                    try:
                        with self.open(path) as f:
                            head = f.read(16)
                    except OSError as exc:
                        self.problem(path, f"cannot read: {why(exc)}")
                        continue
                    if sniff(head) is None:
                        self.report["files skipped (not images)"] += 1
                        continue
                    self.report["images"] += 1
                    yield {"filename": path, "id": os.path.relpath(path, self.root),
                           "class": {"label": label, "text": name}}
