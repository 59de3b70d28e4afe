"""COCO ``instances_*.json`` (and ``person_keypoints_*.json``) -> items."""

from __future__ import annotations

import collections
import json
import math
import os
from collections.abc import Iterator
from typing import Any

from ..errors import ImageError
from ..plural import count
from . import Converter, add_box, empty_objects, normalize_box, read_dataset_file, wrong_file

_SHOWN_IDS = 10  # annotation ids named per missing image
_EXPECTED = ("COCO's instances JSON (as instances_train2017.json): an object with "
             "'images', 'annotations' and 'categories'")
_MAX_SIDE = (1 << 31) - 1  # the largest width or height taken (int32, as decoders hold it)
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "a number",
               float: "a number", bool: "true or false", type(None): "null"}


def _kind(value: Any) -> str:
    """How a JSON value is named in a message: "a list", "a string", ..."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    """A JSON value in a message: a number or a short string as it is, anything else
    by its kind (a list may be huge, or nested too deeply to print)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value) if len(str(value)) <= 40 else "a huge number"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    return _kind(value)


def _is_id(value: Any) -> bool:
    """Whether a value can be an id: a string, or a number (not true or false)."""
    return isinstance(value, (int, str)) or (isinstance(value, float) and math.isfinite(value))


def _number(value: Any) -> float | None:
    """A finite JSON number (or numeric text) as a float; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _numbers(value: Any) -> list[float] | None:
    """A JSON list of finite numbers as floats; None for anything else."""
    if not isinstance(value, list):
        return None
    numbers = []
    for v in value:
        number = _number(v)
        if number is None:
            return None
        numbers.append(number)
    return numbers


class CocoConverter(Converter):
    """Boxes ``[x, y, w, h]`` in pixels -> normalized; category ids -> 0..K-1 in ascending
    id order (or the names' order in ``label_names``); ``iscrowd`` -> ``object/is_crowd``;
    areas normalized by the image area; keypoints (``x, y, v`` triplets) ->
    ``object/parts``, per object in order; with ``include_masks``, each annotation's
    ``segmentation`` (polygons, RLE, crowd RLE) -> ``object/mask`` as it is, drawn when
    the item is written.

    Args:
        annotations: the instances JSON file.
        images_dir: where ``file_name`` is found.
        drop_empty: leave out images without any (kept) annotation.
        label_offset: labels start at this value.
        label_names: class names in label order (a label map; default: the categories'
            names in ascending id order). An annotation of a category not among them is
            reported and left out.
        include_masks: give each object's ``segmentation`` as its mask.

    A malformed entry (an image, annotation or category that is not an object, or whose
    values have the wrong type) is reported with its index in its list and left out;
    the other entries are converted.

    Raises:
        ValueError: the file is not JSON, or not a COCO annotation file (an object whose
            'images' is a list).
    """

    name = "coco"

    def __init__(self, annotations: str, images_dir: str, drop_empty: bool = False,
                 label_offset: int = 0, label_names: list[str] | None = None,
                 include_masks: bool = False, *, dataset_root: str | None = None) -> None:
        super().__init__(label_offset, dataset_root)
        self.problems.source = annotations
        self.include_masks = include_masks
        with read_dataset_file(annotations) as f:
            try:
                self.data = json.loads(f.read().decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise ValueError(wrong_file(annotations, "not a COCO annotation file: not "
                                            "UTF-8 text", _EXPECTED)) from exc
            except json.JSONDecodeError as exc:
                raise ValueError(wrong_file(
                    annotations, f"not a COCO annotation file: not JSON ({exc.msg} at line "
                    f"{exc.lineno} column {exc.colno})", _EXPECTED)) from exc
            except RecursionError as exc:
                raise ValueError(f"{annotations}: nested too deeply to be a COCO annotation "
                                 f"file; expected {_EXPECTED}") from exc
        if not isinstance(self.data, dict) or "images" not in self.data:
            raise ValueError(f"{annotations}: not a COCO annotation file (no 'images'); "
                             f"expected {_EXPECTED}")
        if not isinstance(self.data["images"], list):
            raise ValueError(f"{annotations}: not a COCO annotation file ('images' is "
                             f"{_kind(self.data['images'])}, not a list); expected "
                             f"{_EXPECTED}")
        self.images_dir = images_dir
        self.drop_empty = drop_empty
        categories = self._categories(self.data.get("categories", []))
        self.category_name = {c["id"]: str(c.get("name", c["id"])) for c in categories}
        self.use_labels([self.category_name[c["id"]] for c in categories], label_names)
        self.category_label = {c["id"]: self.label_of.get(self.category_name[c["id"]])
                               for c in categories}

    def _categories(self, given: Any) -> list[dict[str, Any]]:
        """The well-formed categories, in ascending id order; the others reported."""
        if not isinstance(given, list):
            self.problem("categories", f"expected a list of category objects, got "
                                       f"{_kind(given)}: no category is known")
            return []
        kept: dict[Any, dict[str, Any]] = {}
        for i, category in enumerate(given):
            where = f"categories[{i}]"
            if not isinstance(category, dict):
                self.problem(where, f"not an object but {_kind(category)}: left out")
            elif not _is_id(category.get("id")):
                self.problem(where, f"id must be a number or a string, not "
                                    f"{_shown(category.get('id'))}: left out")
            elif category["id"] in kept:
                self.problem(where, f"id {category['id']!r} is given twice: left out")
            elif not isinstance(category.get("name", ""), (str, int, float)):
                self.problem(where, f"name must be a string, not "
                                    f"{_kind(category['name'])}: left out")
            else:
                kept[category["id"]] = category
        return [kept[k] for k in sorted(kept, key=lambda k: (isinstance(k, str), k))]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        by_image: dict[Any, list[tuple[int, dict[str, Any]]]] = collections.defaultdict(list)
        annotations = self.data.get("annotations", [])
        if not isinstance(annotations, list):
            self.problem("annotations", f"expected a list of annotation objects, got "
                                        f"{_kind(annotations)}: none converted")
            annotations = []
        for i, ann in enumerate(annotations):
            if not isinstance(ann, dict):
                self.problem(f"annotations[{i}]", f"not an object but {_kind(ann)}: left out")
            elif not _is_id(ann.get("image_id")):
                self.problem(f"annotations[{i}] (id {_shown(ann.get('id'))})",
                             f"image_id must be a number or a string, not "
                             f"{_shown(ann.get('image_id'))}: left out")
            else:
                by_image[ann["image_id"]].append((i, ann))
        listed = self._listed()
        self._report_orphans(by_image, set(listed.values()))
        for i, image in enumerate(self.data["images"]):
            if i in listed:
                item = self._item(image, by_image.get(image["id"], []))
                if item is not None:
                    yield item

    def _listed(self) -> dict[int, Any]:
        """Index -> id of the image entries that are objects with an id; the others are
        reported (and counted as skipped)."""
        listed = {}
        for i, image in enumerate(self.data["images"]):
            if not isinstance(image, dict):
                self.problem(f"images[{i}]", f"not an object but {_kind(image)}: left out")
            elif not _is_id(image.get("id")):
                self.problem(f"images[{i}]", f"id must be a number or a string, not "
                                             f"{_shown(image.get('id'))}: left out")
            else:
                listed[i] = image["id"]
                continue
            self.report["images skipped"] += 1
        return listed

    def _parts(self, where: str, ids: list[str],
               points: list[list[tuple[float, float, int]]]) -> dict[str, list[Any]]:
        """``object/parts``: every object's points, object after object, each object
        with the same number K of points (the most any object of the image has), so that
        object j holds points j*K .. j*K+K-1. An object with fewer (none, in an image
        where others have keypoints) is completed with points of v = 0 (not labelled)."""
        k = max(map(len, points))
        parts: dict[str, list[Any]] = {"x": [], "y": [], "v": []}
        for ident, own in zip(ids, points):
            if len(own) < k:
                if own:
                    self.problem(f"{where}, annotation {ident!r}",
                                 f"{count(len(own), 'keypoints')} where the image's others "
                                 f"have {k}")
                self.report["objects completed with unlabelled keypoints (v = 0)"] += 1
                own = own + [(0.0, 0.0, 0)] * (k - len(own))
            for x, y, v in own:
                parts["x"].append(x)
                parts["y"].append(y)
                parts["v"].append(v)
        return parts

    def _report_orphans(self, by_image: dict[Any, list[tuple[int, dict[str, Any]]]],
                        listed: set[Any]) -> None:
        """Annotations whose ``image_id`` is not among ``images`` cannot be converted:
        counted, and one problem per missing image id names their annotation ids."""
        for image_id, anns in by_image.items():
            if image_id in listed:
                continue
            ids = [_shown(ann.get("id")).strip("'") for _, ann in anns]
            shown = ", ".join(ids[:_SHOWN_IDS]) + (
                f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")
            self.report["annotations whose image_id is not among the images"] += len(anns)
            self.problems.add("annotations", f"image_id {image_id!r} is not among the images: "
                              f"{count(len(ids), 'annotations')} not converted "
                              f"(ids {shown})")

    def _size(self, image: dict[str, Any]) -> tuple[int, int, str] | str:
        """``(width, height, file_name)`` of an image entry, or what is wrong with it."""
        file_name = image.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            return f"file_name must be a string, not {_shown(file_name)}"
        sides = []
        for key in ("width", "height"):
            side = _number(image.get(key))
            if side is None or side != int(side) or not 0 < side <= _MAX_SIDE:
                return (f"{key} must be a whole number of pixels from 1 to {_MAX_SIDE:,}, "
                        f"not {_shown(image.get(key))}")
            sides.append(int(side))
        return sides[0], sides[1], file_name

    def _box(self, ann: dict[str, Any], width: int, height: int
             ) -> tuple[float, float, float, float, float, list[tuple[float, float, int]]] | str:
        """An annotation's ``(x, y, w, h, area, keypoints)`` in pixels (keypoints
        normalized), or what is wrong with it."""
        bbox = _numbers(ann.get("bbox"))
        if bbox is None or len(bbox) != 4:
            return "bbox must be [x, y, width, height]: four finite numbers"
        x, y, w, h = bbox
        if w < 0 or h < 0:
            return (f"bbox width and height must be >= 0 (COCO's [x, y, width, height]), "
                    f"not [{x:g}, {y:g}, {w:g}, {h:g}]")
        area = _number(ann.get("area", w * h))
        if area is None or area < 0:
            return f"area must be a finite number >= 0, not {_shown(ann.get('area', w * h))}"
        if ann.get("iscrowd", 0) not in (0, 1):
            return f"iscrowd must be 0 or 1, not {_shown(ann['iscrowd'])}"
        keypoints = _numbers(ann.get("keypoints") or [])
        if keypoints is None:
            return "keypoints must be a list of numbers (x, y, v triplets)"
        if len(keypoints) % 3:
            return (f"keypoints must be x, y, v triplets: {len(keypoints)} numbers is not a "
                    "multiple of 3")
        points = [(keypoints[k] / width, keypoints[k + 1] / height, int(keypoints[k + 2]))
                  for k in range(0, len(keypoints) - 2, 3)]
        return x, y, w, h, area, points

    def _item(self, image: dict[str, Any], anns: list[tuple[int, dict[str, Any]]]
              ) -> dict[str, Any] | None:
        where = f"image id {image['id']!r}"
        size = self._size(image)
        if isinstance(size, str):
            self.problem(where, f"{size}: the image is left out")
            self.report["images skipped"] += 1
            return None
        width, height, file_name = size
        try:
            found = self.image_size(os.path.join(self.images_dir, file_name))[:2]
        except (OSError, ImageError):
            found = None  # the item fails when the job reads the file, naming why
        if found is not None and found != (width, height):
            self.problem(where, f"the annotation file says {width}x{height}, the image "
                         f"{file_name} is {found[0]}x{found[1]}: the image is left out")
            self.report["images skipped"] += 1
            return None
        objects = empty_objects()
        if self.include_masks:
            objects["mask"] = []
        points: list[list[tuple[float, float, int]]] = []  # per kept object
        for index, ann in anns:
            ann_where = f"{where}, annotation {_shown(ann.get('id'))}"
            if not _is_id(ann.get("category_id")):
                self.reject(f"{ann_where} (annotations[{index}])",
                            f"category_id must be a number or a string, not "
                            f"{_shown(ann.get('category_id'))}")
                continue
            category = ann["category_id"]
            label = self.category_label.get(category)
            if label is None and category not in self.category_name:
                self.reject(f"{ann_where} (annotations[{index}])",
                            f"unknown category_id {category!r}")
                continue
            if label is None:
                self.leave_out(f"{ann_where} (annotations[{index}])",
                               f"class {self.category_name[category]!r} (category_id "
                               f"{category!r}) is not in the label map")
                continue
            if not _is_id(ann.get("id", "")):
                self.reject(f"{ann_where} (annotations[{index}])",
                            f"id must be a number or a string, not {_shown(ann.get('id'))}")
                continue
            parsed = self._box(ann, width, height)
            if isinstance(parsed, str):
                self.reject(f"{ann_where} (annotations[{index}])", parsed)
                continue
            x, y, w, h, area, own_points = parsed
            box = normalize_box(x, y, x + w, y + h, width, height, self.report)
            if box is None:
                continue
            add_box(objects, box, label, self.category_name[ann["category_id"]])
            objects["id"].append(str(ann.get("id", "")))
            objects["area"].append(area / (width * height))
            objects["is_crowd"].append(int(ann.get("iscrowd", 0)))
            if self.include_masks:
                # Checked and drawn when the item is written (a bad one fails its image,
                # naming the object), in the worker that writes it.
                objects["mask"].append(ann.get("segmentation"))
                self.report["masks"] += 1
            points.append(own_points)
        kept, rejected = self.keeps_image()
        if not kept:
            return None
        self.report["boxes"] += objects["count"]
        if objects["count"] == 0 and rejected:
            self.report["images whose every annotation was dropped (kept)"] += 1
        elif objects["count"] == 0:
            if self.drop_empty:
                self.report["images dropped (no annotations)"] += 1
                return None
            self.report["images without annotations (kept)"] += 1
        if any(points):
            objects["parts"] = self._parts(where, objects["id"], points)
        self.report["images"] += 1
        return {"filename": os.path.join(self.images_dir, file_name), "id": str(image["id"]),
                "height": height, "width": width, "object": objects}
