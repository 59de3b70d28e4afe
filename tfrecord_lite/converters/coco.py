"""COCO ``instances_*.json`` (and ``person_keypoints_*.json``) -> items."""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterator
from typing import Any

from ..plural import count
from . import Converter, add_box, empty_objects, normalize_box, read_dataset_file, wrong_file

_SHOWN_IDS = 10  # annotation ids named per missing image
_EXPECTED = ("COCO's instances JSON (as instances_train2017.json): an object with "
             "'images', 'annotations' and 'categories'")


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
    Raises:
        ValueError: the file is not JSON, or not a COCO annotation file.
    """

    name = "coco"

    def __init__(self, annotations: str, images_dir: str, drop_empty: bool = False,
                 label_offset: int = 0, label_names: list[str] | None = None,
                 include_masks: bool = False, *, dataset_root: str | None = None) -> None:
        super().__init__(label_offset, dataset_root)
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
        if not isinstance(self.data, dict) or "images" not in self.data:
            raise ValueError(f"{annotations}: not a COCO annotation file (no 'images'); "
                             f"expected {_EXPECTED}")
        self.images_dir = images_dir
        self.drop_empty = drop_empty
        categories = sorted(self.data.get("categories", []), key=lambda c: c["id"])
        self.category_name = {c["id"]: str(c.get("name", c["id"])) for c in categories}
        self.use_labels([self.category_name[c["id"]] for c in categories], label_names)
        self.category_label = {c["id"]: self.label_of.get(self.category_name[c["id"]])
                               for c in categories}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        by_image: dict[Any, list[dict[str, Any]]] = collections.defaultdict(list)
        for ann in self.data.get("annotations", []):
            by_image[ann.get("image_id")].append(ann)
        self._report_orphans(by_image)
        for image in self.data["images"]:
            item = self._item(image, by_image.get(image.get("id"), []))
            if item is not None:
                yield item

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

    def _report_orphans(self, by_image: dict[Any, list[dict[str, Any]]]) -> None:
        """Annotations whose ``image_id`` is not among ``images`` cannot be converted:
        counted, and one problem per missing image id names their annotation ids."""
        listed = {image.get("id") for image in self.data["images"] if isinstance(image, dict)}
        for image_id, anns in by_image.items():
            if image_id in listed:
                continue
            ids = [str(ann.get("id")) for ann in anns]
            shown = ", ".join(ids[:_SHOWN_IDS]) + (
                f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")
            self.report["annotations whose image_id is not among the images"] += len(anns)
            self.problems.append(f"image_id {image_id!r} is not among the images: "
                                 f"{count(len(ids), 'annotations')} not converted "
                                 f"(ids {shown})")

    def _item(self, image: dict[str, Any], anns: list[dict[str, Any]]) -> dict[str, Any] | None:
        where = f"image id {image.get('id')!r}"
        try:
            width, height = int(image["width"]), int(image["height"])
            file_name = str(image["file_name"])
        except (KeyError, TypeError, ValueError):
            self.problem(where, "needs file_name, width and height")
            self.report["images skipped"] += 1
            return None
        objects = empty_objects()
        if self.include_masks:
            objects["mask"] = []
        points: list[list[tuple[float, float, int]]] = []  # per kept object
        for ann in anns:
            ann_where = f"{where}, annotation {ann.get('id')!r}"
            category = ann.get("category_id")
            label = self.category_label.get(category)
            if label is None:
                self.problem(ann_where, f"unknown category_id {category!r}"
                             if category not in self.category_name else
                             f"class {self.category_name[category]!r} (category_id "
                             f"{category!r}) is not in the label map")
                continue
            try:
                x, y, w, h = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                self.problem(ann_where, "bbox must be [x, y, width, height]")
                continue
            box = normalize_box(x, y, x + w, y + h, width, height, self.report)
            if box is None:
                continue
            add_box(objects, box, label, self.category_name[ann["category_id"]])
            objects["id"].append(str(ann.get("id", "")))
            objects["area"].append(float(ann.get("area", w * h)) / (width * height))
            objects["is_crowd"].append(int(bool(ann.get("iscrowd", 0))))
            if self.include_masks:
                # Checked and drawn when the item is written (a bad one fails its image,
                # naming the object), in the worker that writes it.
                objects["mask"].append(ann.get("segmentation"))
                self.report["masks"] += 1
            keypoints = ann.get("keypoints") or []
            points.append([(float(keypoints[k]) / width, float(keypoints[k + 1]) / height,
                            int(keypoints[k + 2])) for k in range(0, len(keypoints) - 2, 3)])
        self.report["boxes"] += objects["count"]
        if objects["count"] == 0:
            if self.drop_empty:
                self.report["images dropped (no annotations)"] += 1
                return None
            self.report["images without annotations (kept)"] += 1
        if any(points):
            objects["parts"] = self._parts(where, objects["id"], points)
        self.report["images"] += 1
        return {"filename": os.path.join(self.images_dir, file_name), "id": str(image["id"]),
                "height": height, "width": width, "object": objects}
