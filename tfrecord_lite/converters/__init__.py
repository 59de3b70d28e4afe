"""Converters from standard dataset layouts to items (docs/item-format.md).

Each converter is an iterable of items (nested dicts, as ``create()`` takes) with:

* ``labels``: the class names, index = stored label (less ``label_offset``): the
  names found in the dataset's order, or those of a label map given to it (the
  ``--label-map`` of every converter command), so that the splits of a dataset
  converted apart store the same labels;
* ``report``: counts of what was dropped, clipped or skipped (a ``Counter``);
* ``problems``: one message per bad annotation or skipped image, naming the image and
  the problem (``Problems``: kept in a scratch file, so memory does not grow with
  their number; the command line lists them all in the failures file);
* ``notes``: what the user should know of the labels, printed once after the counts.

An annotation that cannot be converted (an unknown class, a malformed line) is
*rejected* (``reject``), never silently dropped: its image is left out, unless
``keep_rejected`` (``--validation lenient`` or ``off``) keeps it without that annotation,
counted. An annotation of a class that a given label map leaves out is reported and
left out, as the label map option says, and counted (``leave_out``). An image whose
annotations were all rejected or left out is never counted as one without annotations.

Converters stream and never write files; they read image sizes from file headers and
never decode pixels. Coordinates are normalized to [0, 1] (docs/item-format.md).

Every file a converter reads goes through ``storage.open_input`` (``open``): a regular
file, opened without blocking. With a ``root``, the files of each image (the image, its
label or annotation file) must lie inside it, checked in the same step as the open; the
files that describe the dataset (an annotation JSON, a CSV, ``data.yaml``, a list
file, a label map) are read where they are given.
"""

from __future__ import annotations

import collections
import json
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from .. import confined, storage
from ..looks import HEAD, looks_like
from .label_map import label_map_json as label_map_json
from .label_map import label_map_pbtxt as label_map_pbtxt


class Problems:
    """A converter's problems, in the order found: each a ``where`` (the image, the
    annotation index or line) and a message. The first ``KEPT`` are held in memory, the
    rest spill to an unnamed scratch file, so memory does not grow with their number.
    Reads as a sequence of ``"where: message"`` texts; ``entries`` gives them as the
    entries of the failures file (docs/usage.md).

    Args:
        source: the file (or folder) the converter reads, named in each entry.
    """

    KEPT = 100

    def __init__(self, source: str = "") -> None:
        self.source = source
        self._first: list[tuple[str, str]] = []
        self._spill: IO[str] | None = None
        self._count = 0

    def add(self, where: str, message: str) -> None:
        self._count += 1
        if len(self._first) < self.KEPT:
            self._first.append((where, message))
            return
        if self._spill is None:
            self._spill = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - held until clear()
        self._spill.write(json.dumps([where, message]) + "\n")

    def clear(self) -> None:
        self._first, self._count = [], 0
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def pairs(self) -> Iterator[tuple[str, str]]:
        """Every problem as ``(where, message)``, in order (read back from the scratch
        file beyond the first ``KEPT``)."""
        yield from list(self._first)
        if self._spill is not None:
            self._spill.flush()
            self._spill.seek(0)
            for line in self._spill:
                where, message = json.loads(line)
                yield where, message
            self._spill.seek(0, 2)

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every problem as an entry of the failures file: ``kind`` "converter",
        ``source``, ``where`` and ``error_msg`` (the message as printed)."""
        for where, message in self.pairs():
            yield {"kind": "converter", "source": self.source, "where": where,
                   "error_msg": f"{where}: {message}"}

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        return (f"{where}: {message}" for where, message in self.pairs())

    def __getitem__(self, index: Any) -> Any:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (list, Problems)) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))


class Converter:
    """Base: ``labels``, ``report`` and ``problems``, filled as items are produced;
    ``label_map``: whether the labels are written as a label map beside the shards.

    Args:
        label_offset: added to every label.
        dataset_root: the dataset root (``--root``): each image's files must lie inside
            it (None: anywhere).
    """

    name = "converter"
    label_map = True
    # Keep an image without its rejected annotations (else it is left out); the command
    # line sets it for --validation lenient and off.
    keep_rejected = False

    def __init__(self, label_offset: int = 0, dataset_root: str | None = None) -> None:
        self.labels: list[str] = []
        self.label_of: dict[str, int] = {}
        self.label_offset = label_offset
        self.root_dir = dataset_root
        self.report: collections.Counter[str] = collections.Counter()
        self.problems = Problems()
        self.notes: list[str] = []  # what a user should know of the labels, said once
        self._rejected = 0  # annotations of the current image rejected so far
        self._left_out = 0  # ... and left out by the label map
        self._counted_out = False  # keeps_image counted the image it left out

    def open(self, path: str) -> IO[bytes]:
        """Open a file of an image (the image, its labels or annotation) for reading:
        a regular file, without blocking, inside ``root_dir`` when there is one.

        Raises:
            OSError: see ``storage.open_input``; ``why`` words it.
        """
        return storage.open_input(path, self.root_dir)

    def image_size(self, path: str) -> tuple[int, int, str]:
        """``(width, height, format)`` from an image file's header (see ``open``).

        Raises:
            OSError, ImageError: it cannot be opened, or is not an image.
        """
        from ..images import read_size_from_file  # Pillow, for the converters that need it

        return read_size_from_file(path, self.root_dir)

    def problem(self, where: str, message: str) -> None:
        self.problems.add(where, message)
        self.report["annotations with problems"] += 1

    def reject(self, where: str, message: str) -> None:
        """An annotation of the current image cannot be converted: reported, and counted
        toward ``keeps_image``."""
        self.problem(where, message if self.keep_rejected
                     else f"{message}: the image is left out")
        self._rejected += 1

    def leave_out(self, where: str, message: str) -> None:
        """An annotation of the current image whose class the label map leaves out:
        reported and counted; the image is kept (see ``keeps_image``)."""
        self.problem(where, message)
        self.report["annotations left out (class not in the label map)"] += 1
        self._left_out += 1

    def keeps_image(self) -> tuple[bool, int]:
        """At the end of an image's annotations: (whether the image is converted, how
        many of its annotations were rejected or left out). With a rejected annotation,
        the image is left out (counted) unless ``keep_rejected``, which keeps it without
        them (counted as dropped). Starts the next image's count."""
        rejected, left_out = self._rejected, self._left_out
        self._rejected = self._left_out = 0
        if not rejected:
            return True, left_out
        if self.keep_rejected:
            self.report["annotations dropped (--validation lenient)"] += rejected
            return True, rejected + left_out
        self.report["images left out (rejected annotations)"] += 1
        self._counted_out = True
        return False, rejected

    def count_skipped(self) -> None:
        """Count an image that gave no item as skipped, unless ``keeps_image`` just
        counted it as left out: each image is counted once."""
        if self._counted_out:
            self._counted_out = False
        else:
            self.report["images skipped"] += 1

    def use_labels(self, found: list[str], given: list[str] | None) -> None:
        """Set ``labels`` and ``label_of`` (name -> stored label): the names ``given``
        (a label map), in their order, else those ``found`` in the dataset."""
        self.labels = list(given) if given is not None else list(found)
        self.label_of = {}
        for i, name in enumerate(self.labels):
            self.label_of.setdefault(name, i + self.label_offset)

    def __iter__(self) -> Iterator[dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError


def wrong_file(path: str, why: str, expected: str) -> str:
    """The message for an input file that is not what a converter reads: the file, why,
    what it looks like (from its first bytes), and what was expected."""
    try:
        with read_dataset_file(path) as f:
            head = f.read(HEAD)
    except OSError:
        head = b""
    what = looks_like(head)
    seems = f"; it looks like {what}" if what is not None else ""
    return f"{path}: {why}{seems}; expected {expected}"


def why(exc: BaseException) -> str:
    """What went wrong reading a file, in a few words (an ``OSError``: its reason; a
    ``UnicodeDecodeError``: the file is not UTF-8 text, and where)."""
    if isinstance(exc, OSError):
        return confined.describe(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    return str(exc)


def read_dataset_file(path: str) -> IO[bytes]:
    """Open a file that describes a dataset (annotations, a CSV, a YAML or list file, a
    label map) where it is given: a regular file, without blocking.

    Raises:
        OSError: see ``storage.open_input``.
    """
    return storage.open_input(path)


def normalize_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int,
                  report: collections.Counter[str]) -> tuple[float, float, float, float] | None:
    """Pixel box -> normalized box, clipped to the image; None (counted) when empty."""
    if x1 <= x0 or y1 <= y0:
        report["boxes dropped (zero or negative size)"] += 1
        return None
    cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        report["boxes clipped at the image edge"] += 1
    if cx1 <= cx0 or cy1 <= cy0:
        report["boxes dropped (outside the image)"] += 1
        return None
    return cx0 / width, cy0 / height, cx1 / width, cy1 / height


def empty_objects() -> dict[str, Any]:
    return {"count": 0, "id": [], "area": [], "is_crowd": [],
            "bbox": {"xmin": [], "xmax": [], "ymin": [], "ymax": [], "label": [], "text": []}}


def add_box(objects: dict[str, Any], box: tuple[float, float, float, float], label: int,
            text: str) -> None:
    bbox = objects["bbox"]
    bbox["xmin"].append(box[0])
    bbox["ymin"].append(box[1])
    bbox["xmax"].append(box[2])
    bbox["ymax"].append(box[3])
    bbox["label"].append(label)
    bbox["text"].append(text)
    objects["count"] += 1
