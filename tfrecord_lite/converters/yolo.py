"""YOLO text labels (the Ultralytics layout, or the older Darknet one) -> items.

Ultralytics: ``ROOT/data.yaml`` (or ``data.yml``, or ROOT given as the YAML file itself)
with ``names`` (a list, or a ``{id: name}`` map), optional ``path`` (the dataset root,
relative to ROOT) and ``train`` / ``val`` / ``test``: image folders or list files of image
paths (one or a list of them), relative to ``path``. An image's labels are found by
replacing its last ``images`` path component with ``labels`` and its suffix with ``.txt``
(``images/train/a.jpg`` -> ``labels/train/a.txt``); without an ``images`` component the
label file lies beside the image.

Darknet: ``ROOT/obj.names`` or ``ROOT/classes.txt`` (one name per line), ``ROOT/train.txt``
(``val.txt`` or ``valid.txt``, ``test.txt``) listing image paths, or a ``ROOT/train/``
folder of images; each image's label file lies beside it.

Each label line is ``class cx cy w h`` (normalized). A longer line
``class x1 y1 x2 y2 x3 y3 ...`` is a polygon (segmentation) and becomes its enclosing box;
with ``include_masks`` also the object's mask: the polygon in pixels of the image (whose
size is read from its header), drawn when the item is written.
With ``kpt_shape: [K, D]`` in the YAML, each line is ``class cx cy w h`` followed by K
keypoints of D values (``x y`` or ``x y v``), stored in ``object/parts``. An image without
a label file (or with an empty one) is a background image: kept with no boxes, or left out
with ``drop_empty``.

PyYAML is imported only when a YAML file is read.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from typing import Any

from ..errors import DatasetError, ImageError
from ..images import sniff
from ..plural import count
from . import (
    Converter,
    add_box,
    empty_objects,
    normalize_box,
    read_dataset_file,
    why,
    wrong_file,
)
from .limits import MAX_CLASSES, NAMES_FILE_BYTES, annotation_lines, capped_lines, read_capped

SPLITS = ("train", "val", "test")
YAML_NAMES = ("data.yaml", "data.yml")
DARKNET_NAMES = ("obj.names", "classes.txt")
DARKNET_LISTS = {"train": ("train.txt",), "val": ("val.txt", "valid.txt"),
                 "test": ("test.txt",)}
DARKNET_FOLDERS = {"train": ("train",), "val": ("val", "valid"), "test": ("test",)}
YAML_HINT = "pip install PyYAML"


def label_path(image: str, beside: bool = False) -> str:
    """The label file of an image: the last ``images`` directory -> ``labels``, suffix
    -> ``.txt`` (``beside``: only the suffix)."""
    head, name = os.path.split(image)
    stem = os.path.splitext(name)[0] + ".txt"
    if not beside:
        parts = head.split(os.sep) if head else []
        for i in range(len(parts) - 1, -1, -1):
            if parts[i] == "images":
                parts[i] = "labels"
                return os.path.join(os.sep.join(parts) or os.sep, stem)
    return os.path.join(head, stem)


def load_yaml(path: str) -> Any:
    """Parse a YOLO data.yaml with PyYAML's safe loader, refusing aliases.

    An alias (``*name``) repeats an anchored node: nested, a few hundred bytes of them
    expand to gigabytes. A data.yaml never needs one, so the first is refused, as is a
    file over ``limits.NAMES_FILE_BYTES``.

    Raises:
        DatasetError: PyYAML is not installed (with the install command), or the file
            cannot be read, is too large, is not YAML, uses an alias or nests too deeply.
    """
    try:
        import yaml
    except ImportError as exc:
        raise DatasetError(f"{path}: reading a YOLO data.yaml needs PyYAML: "
                           f"{YAML_HINT}") from exc

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise DatasetError(f"{path}, line {mark.line + 1}: a YAML alias "
                                   f"(*{self.peek_event().anchor}): data.yaml may not use "
                                   "aliases, which can expand a small file to gigabytes; "
                                   "write the value out")
            return super().compose_node(parent, index)

    try:
        with read_dataset_file(path) as f:
            text = read_capped(f, NAMES_FILE_BYTES, path, "a data.yaml").decode("utf-8")
        return yaml.load(text, Loader=NoAliases)  # noqa: S506 - a SafeLoader
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {why(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(wrong_file(path, "not YAML: not UTF-8 text", "an Ultralytics "
                                      "data.yaml (names, train, val)")) from exc
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise DatasetError(f"{path}: nested too deeply to be a data.yaml") from exc


def _yaml_value(value: Any) -> str:
    """A YAML value in a message, as YAML writes it: true, null, 1.5, or its kind."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value) if len(repr(value)) <= 40 else "a huge number"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else type(value).__name__


def _name_text(value: Any, entry: str, where: str) -> str:
    """A class name from ``names``: a string, as it is.

    Raises:
        DatasetError: anything else (YAML reads unquoted ``on``/``no`` as true/false,
            ``~`` as null, ``007`` as 7): names the file and the entry, and says to quote.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        raise DatasetError(f"{where}: {entry} is {_yaml_value(value)}, not a class name: "
                           "a class name is text")
    raise DatasetError(f"{where}: {entry} is {_yaml_value(value)}, not a class name: YAML "
                       "reads an unquoted on, off, yes or no as true or false, ~ as null "
                       "and digits as a number; quote the name (\"on\", \"007\") to keep "
                       "it as text")


def class_names(names: Any, nc: Any, where: str) -> list[str]:
    """``names`` (a list or an ``{id: name}`` map covering 0..K-1) -> names by id.

    Raises:
        DatasetError: the names are missing, not a list or map, leave ids out, or are
            not strings (see ``_name_text``).
    """
    if names is None:
        if isinstance(nc, int) and not isinstance(nc, bool) and 0 < nc <= MAX_CLASSES:
            return [f"class_{i}" for i in range(nc)]
        if isinstance(nc, int) and nc > MAX_CLASSES:
            raise DatasetError(f"{where}: 'nc' is {nc}, more classes than {MAX_CLASSES:,}; "
                               "give 'names'")
        raise DatasetError(f"{where}: no 'names' (a list of class names or an "
                           "{id: name} map)")
    if isinstance(names, dict):
        try:
            ids = [int(k) for k in names]
        except (TypeError, ValueError, OverflowError) as exc:
            raise DatasetError(f"{where}: 'names' keys must be class ids 0, 1, ...") from exc
        by_id = {i: _name_text(v, f"names[{k!r}]", where)
                 for i, (k, v) in zip(ids, names.items())}
        if sorted(by_id) != list(range(len(by_id))):
            raise DatasetError(f"{where}: 'names' must give every class id from 0 to "
                               f"{len(by_id) - 1}; it has {sorted(by_id)}")
        result = [by_id[i] for i in range(len(by_id))]
    elif isinstance(names, list):
        result = [_name_text(n, f"names[{i}]", where) for i, n in enumerate(names)]
    else:
        raise DatasetError(f"{where}: 'names' must be a list or an {{id: name}} map, "
                           f"not {type(names).__name__}")
    if isinstance(nc, int) and nc != len(result):
        raise DatasetError(f"{where}: 'nc' is {nc} but 'names' has {count(len(result), 'classes')}")
    first: dict[str, int] = {}
    for class_id, name in enumerate(result):
        if name in first:
            raise DatasetError(f"{where}: classes {first[name]} and {class_id} are both named "
                               f"{name!r}: a label map could not tell them apart; give each "
                               "class a name of its own")
        first[name] = class_id
    return result


class YoloConverter(Converter):
    """YOLO labels -> detection items; class ids stored as given (plus ``label_offset``),
    the names in ``bbox/text``; polygons -> enclosing boxes; keypoints -> ``object/parts``.

    Args:
        root: the dataset folder (holding ``data.yaml``, or ``obj.names`` /
            ``classes.txt``), or the YAML file itself.
        split: ``train``, ``val`` or ``test``.
        drop_empty: leave out images without any (kept) box, e.g. background images.
        label_offset: added to every class id.
        label_names: class names in label order (a label map): each class id's name
            (from ``names``) is stored as its label there; a box of a class not among
            them is reported and left out. Default: the class ids as they are.
        include_masks: give each polygon as its object's mask (``object/mask``).

    Raises:
        DatasetError: ROOT, its YAML or names file, or the split's images are missing or
            malformed (a usage error: nothing has been read yet).
    """

    name = "yolo"

    def __init__(self, root: str, split: str = "train", drop_empty: bool = False,
                 label_offset: int = 0, label_names: list[str] | None = None,
                 include_masks: bool = False, *, dataset_root: str | None = None) -> None:
        super().__init__(label_offset, dataset_root)
        self.problems.source = root
        self.names: list[str] = []  # the dataset's class names, by class id
        if split not in SPLITS:
            raise DatasetError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
        self.split = split
        self.drop_empty = drop_empty
        self.include_masks = include_masks
        self.kpt_shape: tuple[int, int] | None = None
        yaml_file: str | None
        if os.path.isfile(root) and root.endswith((".yaml", ".yml")):
            self.root, yaml_file = os.path.dirname(root) or os.curdir, root
        elif os.path.isdir(root):
            self.root = root
            yaml_file = next((os.path.join(root, n) for n in YAML_NAMES
                              if os.path.isfile(os.path.join(root, n))), None)
        else:
            raise DatasetError(f"ROOT {root!r}: no such folder (the dataset folder holding "
                               "data.yaml, obj.names or classes.txt)")
        # (image path, where it was listed, label file)
        self.entries: list[tuple[str, str, str]] = []
        if yaml_file is not None:
            self._read_ultralytics(yaml_file)
        else:
            self._read_darknet()
        if include_masks and self.kpt_shape is not None:
            raise DatasetError(f"{yaml_file}: kpt_shape makes this a pose dataset, whose "
                               "lines are boxes and keypoints: it has no polygons for "
                               "--include-masks")
        self.use_labels(self.names, label_names)
        self._mapped = label_names is not None

    # -- layouts ---------------------------------------------------------------------------

    def _read_ultralytics(self, yaml_file: str) -> None:
        data = load_yaml(yaml_file)
        if not isinstance(data, dict):
            raise DatasetError(f"{yaml_file}: expected a mapping with 'names' and "
                               f"'{self.split}'")
        self.names = class_names(data.get("names"), data.get("nc"), yaml_file)
        kpt = data.get("kpt_shape")
        if kpt is not None:
            if (not isinstance(kpt, list) or len(kpt) != 2 or
                    not all(isinstance(k, int) for k in kpt) or kpt[0] < 1
                    or kpt[1] not in (2, 3)):
                raise DatasetError(f"{yaml_file}: kpt_shape must be [keypoints, 2 or 3], "
                                   f"not {kpt!r}")
            self.kpt_shape = (kpt[0], kpt[1])
        base = self.root
        if data.get("path"):
            given = os.path.join(self.root, str(data["path"]))
            # A dataset moved after export keeps its old 'path': fall back to ROOT.
            if os.path.isdir(given):
                base = given
        sources = data.get(self.split)
        if not sources:
            present = [s for s in SPLITS if data.get(s)]
            raise DatasetError(f"{yaml_file}: no '{self.split}' split (it has: "
                               f"{', '.join(present) or 'none'})")
        for source in sources if isinstance(sources, list) else [sources]:
            path = os.path.normpath(os.path.join(base, str(source)))
            if not os.path.exists(path) and str(source).startswith("../"):
                # Roboflow writes '../train/images' for a data.yaml inside the dataset.
                path = os.path.normpath(os.path.join(base, str(source)[3:]))
            self._add_source(path, f"{yaml_file}: {self.split}", beside=False)

    def _read_darknet(self) -> None:
        names_file = next((os.path.join(self.root, n) for n in DARKNET_NAMES
                           if os.path.isfile(os.path.join(self.root, n))), None)
        if names_file is None:
            raise DatasetError(f"ROOT {self.root!r} holds neither data.yaml (Ultralytics) "
                               f"nor {' / '.join(DARKNET_NAMES)} (Darknet)")
        try:
            with read_dataset_file(names_file) as f:
                text = read_capped(f, NAMES_FILE_BYTES, names_file, "a names file")
            lines = [line.strip() for line in text.decode("utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read {names_file}: {why(exc)}") from exc
        while lines and not lines[-1]:
            lines.pop()
        if not lines:
            raise DatasetError(f"{names_file}: no class names")
        self.names = lines
        candidates = [os.path.join(self.root, n) for n in DARKNET_LISTS[self.split]]
        candidates += [os.path.join(self.root, n) for n in DARKNET_FOLDERS[self.split]]
        source = next((c for c in candidates if os.path.exists(c)), None)
        if source is None:
            looked = ", ".join(os.path.basename(c) for c in candidates)
            raise DatasetError(f"ROOT {self.root!r}: no list or folder of {self.split} "
                               f"images (looked for {looked})")
        self._add_source(source, self.split, beside=True)

    def _add_source(self, path: str, where: str, beside: bool) -> None:
        """Queue the images of a folder (recursively) or a list file."""
        if os.path.isdir(path):
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted(filenames):
                    if not name.endswith(".txt"):
                        image = os.path.join(dirpath, name)
                        self.entries.append((image, image, label_path(image, beside)))
            return
        if not os.path.isfile(path):
            raise DatasetError(f"{where}: {path!r} does not exist (an image folder or a "
                               "list file of image paths)")
        try:
            with read_dataset_file(path) as raw, io.TextIOWrapper(raw, encoding="utf-8") as f:
                lines = [line.rstrip("\r\n") for line in capped_lines(f, path)]
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read {path}: {why(exc)}") from exc
        folder = os.path.dirname(path)
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            image = self._resolve_listed(line, folder)
            self.entries.append((image, f"{path}:{n}", label_path(image, beside)))

    def _resolve_listed(self, line: str, folder: str) -> str:
        """A listed image path: absolute; ``./x`` beside the list; otherwise the first of
        the list's folder, ROOT and ROOT's parent (Darknet's ``data/obj/x.jpg``) where the
        file exists."""
        if os.path.isabs(line):
            return line
        if line.startswith("./"):
            return os.path.normpath(os.path.join(folder, line))
        bases = [folder, self.root, os.path.join(self.root, os.pardir)]
        candidates = [os.path.normpath(os.path.join(b, line)) for b in bases]
        return next((c for c in candidates if os.path.isfile(c)), candidates[0])

    # -- items -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for image, where, labels in self.entries:
            try:
                with self.open(image) as f:
                    head = f.read(16)
            except (OSError, ValueError) as exc:  # ValueError: a NUL in a listed path
                if where == image:
                    self.problem(image, f"cannot read: {why(exc)}")
                else:
                    self.problem(where, f"image {image!r}: {why(exc)}")
                self.report["images skipped"] += 1
                continue
            if sniff(head) is None:
                self.report["files skipped (not images)"] += 1
                continue
            size = None
            if self.include_masks:  # the polygons' pixels need the image's size
                try:
                    size = self.image_size(image)[:2]
                except (OSError, ImageError) as exc:
                    self.problem(where, f"image {image!r}: {why(exc)}")
                    self.report["images skipped"] += 1
                    continue
            objects = self._objects(labels, size)
            kept, rejected = self.keeps_image()
            if objects is None or not kept:  # its label file is refused, or a line
                self.count_skipped()
                continue
            self.report["boxes"] += objects["count"]
            if objects["count"] == 0 and rejected:
                self.report["images whose every annotation was dropped (kept)"] += 1
            elif objects["count"] == 0:
                if self.drop_empty:
                    self.report["background images dropped (no boxes)"] += 1
                    continue
                self.report["background images (no boxes, kept)"] += 1
            self.report["images"] += 1
            try:
                item_id = os.path.relpath(image, self.root)
            except ValueError:  # another drive (Windows)
                item_id = image
            yield {"filename": image, "id": item_id, "object": objects}

    def _objects(self, labels: str, size: tuple[int, int] | None = None
                 ) -> dict[str, Any] | None:
        """The objects of a label file; with ``size`` (the image's width and height),
        each polygon's mask in pixels too (None for a box line: it has no mask). None (a
        problem reported) when the file cannot be read as a whole (it cannot be opened, is
        not UTF-8, is larger than ``IMAGE_FILE_BYTES`` or has a line longer than
        ``LINE_CHARS``): the image is left out, under every validation mode."""
        objects = empty_objects()
        if size is not None:
            objects["mask"] = []
        try:
            with self.open(labels) as f:
                lines = annotation_lines(f, labels, "a label file")
        except FileNotFoundError:
            self.report["images without a label file"] += 1
            return objects
        except (OSError, UnicodeDecodeError) as exc:  # none of its lines can be read
            self.problem(labels, f"cannot read: {why(exc)}: the image is left out")
            return None
        except DatasetError as exc:  # too large
            self.problem(str(exc), "the image is left out")
            return None
        parts: dict[str, list[Any]] = {"x": [], "y": [], "v": []}
        for n, line in enumerate(lines, 1):
            fields = line.split()
            if fields:
                self._add_line(objects, parts, fields, f"{labels}:{n}", n, size)
        if self.kpt_shape is not None:
            objects["parts"] = parts
        return objects

    def _add_line(self, objects: dict[str, Any], parts: dict[str, list[Any]],
                  fields: list[str], where: str, n: int,
                  size: tuple[int, int] | None = None) -> None:
        """One label line -> one box (and its keypoints, or with ``size`` its mask);
        problems reported by line."""
        values = []
        for field in fields:
            try:
                value = float(field)
            except ValueError:
                self.reject(where, f"not a number: {field[:40]!r}")
                return
            if not math.isfinite(value):
                self.reject(where, f"not a finite number: {field[:40]!r}")
                return
            values.append(value)
        if values[0] != int(values[0]) or values[0] < 0:
            self.reject(where, f"the class id must be a whole number >= 0, not "
                               f"{fields[0][:40]!r}")
            return
        class_id = int(values[0])
        if class_id >= len(self.names):
            self.reject(where, f"class id {class_id} is not in names (ids 0 to "
                               f"{len(self.names) - 1})")
            return
        name = self.names[class_id]
        label = self.label_of.get(name) if self._mapped else class_id + self.label_offset
        if label is None:
            self.leave_out(where, f"class {name!r} (id {class_id}) is not in the label map")
            return
        if self.kpt_shape is not None:
            k, d = self.kpt_shape
            if len(values) != 5 + k * d:
                self.reject(where, f"expected {5 + k * d} fields (class cx cy w h and "
                                   f"{count(k, 'keypoints')} of {d} values, as kpt_shape "
                                   "says), got "
                                   f"{len(values)}")
                return
        elif len(values) != 5 and (len(values) < 7 or len(values) % 2 == 0):
            self.reject(where, f"expected 5 fields (class cx cy w h) or a polygon (class x1 "
                               f"y1 x2 y2 x3 y3 ...), got {len(values)}")
            return
        mask: list[list[float]] | None = None
        if len(values) == 5 or self.kpt_shape is not None:
            cx, cy, w, h = values[1:5]
            corners = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        else:
            xs, ys = values[1::2], values[2::2]
            corners = (min(xs), min(ys), max(xs), max(ys))
            if size is None:
                self.report["polygons (as boxes)"] += 1
            else:
                width, height = size
                mask = [[v * (width if k % 2 == 0 else height)
                         for k, v in enumerate(values[1:])]]
        box = normalize_box(*corners, 1, 1, self.report)
        if box is None:
            return
        add_box(objects, box, label, name)
        if size is not None:
            objects["mask"].append(mask)
            self.report["masks" if mask is not None else "boxes without a polygon (no mask)"] += 1
        objects["id"].append(str(n))
        objects["area"].append((box[2] - box[0]) * (box[3] - box[1]))
        objects["is_crowd"].append(0)
        if self.kpt_shape is not None:
            self._add_keypoints(parts, values[5:], *self.kpt_shape)

    def _add_keypoints(self, parts: dict[str, list[Any]], values: list[float], k: int,
                       d: int) -> None:
        """K keypoints of D values -> ``parts``; v from the line (D = 3), else 2, or 0
        for a point at (0, 0); visible points outside the image are clipped."""
        for i in range(k):
            x, y = values[i * d], values[i * d + 1]
            v = int(values[i * d + 2]) if d == 3 else (0 if x == 0 and y == 0 else 2)
            if v != 0 and not (0 <= x <= 1 and 0 <= y <= 1):
                self.report["keypoints clipped at the image edge"] += 1
                x, y = min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)
            parts["x"].append(x)
            parts["y"].append(y)
            parts["v"].append(v)
