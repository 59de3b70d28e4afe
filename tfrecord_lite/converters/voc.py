"""Pascal VOC (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``, and for semantic
segmentation ``SegmentationClass/``, ``ImageSets/Segmentation/``) -> items."""

from __future__ import annotations

import io
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from xml.parsers import expat

from ..errors import DatasetError, ImageError
from . import Converter, add_box, empty_objects, normalize_box, read_dataset_file, why
from .limits import IMAGE_FILE_BYTES, XML_DEPTH, capped_lines, read_capped


def parse_xml(data: bytes) -> ET.Element:
    """An annotation file's XML as an element tree, parsed by expat with two refusals:
    an entity declaration (``<!ENTITY``: nested entities expand a small file to
    gigabytes, and VOC never declares one) and elements nested deeper than
    ``XML_DEPTH``.

    Raises:
        ET.ParseError: not well-formed XML, or refused (the message says why).
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    depth = 0

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > XML_DEPTH:
            raise ET.ParseError(f"elements nested deeper than {XML_DEPTH} (line "
                                f"{parser.CurrentLineNumber})")
        builder.start(tag, attributes)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(tag)

    def entity(name: str, *_: Any) -> None:
        raise ET.ParseError(f"declares the entity {name!r} (line {parser.CurrentLineNumber}): "
                            "entity declarations are refused")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ET.ParseError(str(exc)) from exc
    return builder.close()


def _text(node: ET.Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    return child.text.strip() if child is not None and child.text else None


# Pascal VOC's 20 classes in its own order, which is also their sorted order: the palette
# index of a class in SegmentationClass/ is its position here plus 1 (0 is the
# background, 255 the boundaries).
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")


class VocConverter(Converter):
    """Boxes from VOC's pixel coordinates, normalized; names -> labels (sorted names, or
    the order of ``label_names``); ``difficult`` and ``truncated`` kept; the XML's size
    checked against the image file's header (a mismatch skips the image).

    With ``segmentation``, the images are those of ``ImageSets/Segmentation/{split}.txt``
    and each gets its label image, ``SegmentationClass/{id}.png`` (a palette PNG whose
    indices are the class ids, 255 marking object boundaries), as ``segmentation``; the
    boxes come along from ``Annotations/`` where an image has its XML file.

    Args:
        root: the folder holding ``Annotations/``, ``JPEGImages/`` and ``ImageSets/Main/``
            (e.g. ``VOCdevkit/VOC2012``).
        split: ``ImageSets/Main/{split}.txt`` lists the image ids.
        label_names: class names in label order (default: sorted names found).
        segmentation: convert the semantic segmentation split (see above).
    """

    name = "voc"

    def __init__(self, root: str, split: str = "train", label_names: list[str] | None = None,
                 label_offset: int = 0, segmentation: bool = False, *,
                 dataset_root: str | None = None) -> None:
        super().__init__(label_offset, dataset_root)
        self.problems.source = root
        self.root = root
        self.segmentation = segmentation
        sets = "Segmentation" if segmentation else "Main"
        listing = os.path.join(root, "ImageSets", sets, f"{split}.txt")
        with read_dataset_file(listing) as raw, io.TextIOWrapper(raw, encoding="utf-8") as f:
            self.ids = [line.split()[0] for line in capped_lines(f, listing) if line.strip()]
        if label_names is None:
            names: set[str] = set()
            for image_id in self.ids:
                tree = self._parse(image_id)
                if tree is not None:
                    names.update(n for n in (_text(o, "name") for o in tree.iter("object")) if n)
            label_names = sorted(names)
            self.problems.clear()
            self.report.clear()
            if segmentation:
                label_names = self._segmentation_labels(names, label_offset)
        self.labels = list(label_names)
        self.label_of = {name: i + label_offset for i, name in enumerate(self.labels)}

    def _segmentation_labels(self, names: set[str], label_offset: int) -> list[str]:
        """The label map of a segmentation split, whose label images hold VOC's palette
        indices: VOC's 20 classes in VOC's order when every class found is one of them,
        so that a box's label is its class's index in the label images."""
        if names <= set(VOC_CLASSES):
            if label_offset != 1:
                self.notes.append(
                    f"the label images hold VOC's class ids (aeroplane 1 ... tvmonitor 20), "
                    f"the boxes' labels start at {label_offset} (--label-offset): the two "
                    "disagree; --label-offset 1 makes them one")
            return list(VOC_CLASSES)
        others = sorted(names - set(VOC_CLASSES))
        self.notes.append(
            f"classes that are not VOC's ({', '.join(others[:5])}"
            f"{', ...' if len(others) > 5 else ''}): the label images are stored as they "
            "are, and their pixel values are not the ids of label_map.json; give "
            "--label-map with the label images' classes in their order to make them one")
        return sorted(names)

    def _xml_path(self, image_id: str) -> str:
        return os.path.join(self.root, "Annotations", f"{image_id}.xml")

    def _parse(self, image_id: str) -> ET.Element | None:
        """An image's annotation XML; None when there is none (with ``segmentation``: an
        image with its label image only) or it cannot be read as a whole (reported: too
        large, not XML, or its root element is not ``<annotation>``)."""
        path = self._xml_path(image_id)
        if self.segmentation and not os.path.lexists(path):
            return None  # an image with its label image only: no boxes
        where = f"image {image_id!r}"
        try:
            with self.open(path) as f:
                tree = parse_xml(read_capped(f, IMAGE_FILE_BYTES, path, "an annotation file"))
        except DatasetError as exc:  # too large
            self.problem(where, f"{exc}: the image is left out")
            return None
        except (OSError, ValueError, ET.ParseError) as exc:  # ValueError: a NUL in the id
            self.problem(where, f"cannot read {path}: {why(exc)}: the image is left out")
            return None
        if tree.tag != "annotation":
            self.problem(where, f"{path}: not a VOC annotation (its root element is "
                                f"<{tree.tag[:40]}>, not <annotation>): the image is left out")
            return None
        return tree

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for image_id in self.ids:
            item = self._item(image_id)
            if item is None:
                self.count_skipped()
            else:
                self.report["images"] += 1
                yield item

    def _item(self, image_id: str) -> dict[str, Any] | None:
        where = f"image {image_id!r}"
        tree = self._parse(image_id)
        if tree is None and (not self.segmentation
                             or os.path.lexists(self._xml_path(image_id))):
            return None  # no XML, or one that cannot be read (reported)
        item: dict[str, Any] = {}
        if self.segmentation:
            label_image = os.path.join(self.root, "SegmentationClass", f"{image_id}.png")
            if not os.path.isfile(label_image):
                self.problem(where, f"no label image {label_image}")
                return None
            item["segmentation"] = label_image
            self.report["images with a label image"] += 1
            if tree is None:
                self.report["images without an XML file (no boxes)"] += 1
                path = os.path.join(self.root, "JPEGImages", f"{image_id}.jpg")
                return {"filename": path, "id": image_id, **item}
        assert tree is not None
        file_name = _text(tree, "filename") or f"{image_id}.jpg"
        path = os.path.join(self.root, "JPEGImages", file_name)
        try:
            width, height, _ = self.image_size(path)
        except (OSError, ImageError) as exc:
            self.problem(where, f"image {path}: {why(exc)}")
            return None
        size = tree.find("size")
        xml_size = (_text(size, "width"), _text(size, "height"))
        if size is not None and xml_size != (str(width), str(height)):
            self.problem(where, f"the XML says {xml_size[0]}x{xml_size[1]}, the image is "
                                f"{width}x{height}")
            return None
        objects = empty_objects()
        objects["difficult"], objects["truncated"] = [], []
        for n, obj in enumerate(tree.iter("object")):
            name = _text(obj, "name")
            if not name:
                self.reject(where, f"object {n}: no class name (its <name> is empty or "
                                   "missing)")
                continue
            if name not in self.label_of:
                self.leave_out(where, f"object {n}: class {name!r} is not in the label map")
                continue
            bndbox = obj.find("bndbox")
            try:
                x0, y0, x1, y1 = (float(_text(bndbox, t) or "") for t in
                                  ("xmin", "ymin", "xmax", "ymax"))
            except ValueError:
                self.reject(where, f"object {n}: bndbox needs xmin, ymin, xmax, ymax")
                continue
            if not all(map(math.isfinite, (x0, y0, x1, y1))):
                self.reject(where, f"object {n}: bndbox holds a number that is not finite")
                continue
            box = normalize_box(x0, y0, x1, y1, width, height, self.report)
            if box is None:
                continue
            add_box(objects, box, self.label_of[name], name)
            objects["id"].append(str(n))
            objects["area"].append((box[2] - box[0]) * (box[3] - box[1]))
            objects["is_crowd"].append(0)
            objects["difficult"].append(int(_text(obj, "difficult") == "1"))
            objects["truncated"].append(int(_text(obj, "truncated") == "1"))
        kept, rejected = self.keeps_image()
        if not kept:
            return None
        if objects["count"] == 0 and rejected:
            self.report["images whose every annotation was dropped (kept)"] += 1
        self.report["boxes"] += objects["count"]
        return {"filename": path, "id": image_id, "height": height, "width": width,
                "object": objects, **item}
