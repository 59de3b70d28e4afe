"""Writes instances.json: a small COCO instances file with every form of segmentation.

Made with pycocotools, as COCO's own files were; run from the repository's root:

    python tests/data/masks/make_instances.py

Outlines are smooth random closed curves with concavities, at COCO's two decimals;
an occluded object comes in parts; crowds are uncompressed RLE; one object carries a
compressed RLE string and one a list of them (as detectors' results and LVIS do).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from pycocotools import mask as coco_mask

HERE = Path(__file__).resolve().parent
rng = np.random.default_rng(26)


def outline(cx: float, cy: float, radius: float, points: int, width: int,
            height: int) -> list[float]:
    """A wobbly closed curve around (cx, cy), clipped to the image, 2 decimals."""
    phase = rng.uniform(0, 2 * math.pi, 4)
    coords: list[float] = []
    for i in range(points):
        a = 2 * math.pi * i / points
        r = radius * (1 + 0.25 * math.sin(3 * a + phase[0]) + 0.15 * math.sin(7 * a + phase[1])
                      + 0.05 * rng.standard_normal())
        x = min(max(cx + r * math.cos(a), 0.0), float(width))
        y = min(max(cy + r * math.sin(a), 0.0), float(height))
        coords += [round(x, 2), round(y, 2)]
    return coords


def blob_mask(height: int, width: int, blobs: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), np.uint8)
    for _ in range(blobs):
        cx, cy = rng.uniform(0, width), rng.uniform(height * 0.4, height)
        rx, ry = rng.uniform(4, 20), rng.uniform(10, 40)
        mask |= (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1).astype(np.uint8)
    return mask


def uncompressed(mask: np.ndarray) -> list[int]:
    flat = mask.T.ravel()
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    return counts


def main() -> None:
    images = [{"id": 1, "file_name": "street.jpg", "height": 480, "width": 640},
              {"id": 2, "file_name": "portrait.jpg", "height": 640, "width": 427},
              {"id": 3, "file_name": "small.jpg", "height": 37, "width": 53}]
    annotations = []

    def add(image: dict, category: int, segmentation: object, crowd: int = 0) -> None:
        h, w = image["height"], image["width"]
        if isinstance(segmentation, list) and isinstance(segmentation[0], list):
            rles = coco_mask.frPyObjects(segmentation, h, w)
            merged = coco_mask.merge(rles)
        elif isinstance(segmentation, list):
            merged = coco_mask.merge(segmentation)
        elif isinstance(segmentation["counts"], list):
            merged = coco_mask.frPyObjects(segmentation, h, w)
        else:
            merged = segmentation
        annotations.append({
            "id": len(annotations) + 1, "image_id": image["id"], "category_id": category,
            "segmentation": segmentation, "area": float(coco_mask.area(merged)),
            "bbox": [round(float(v), 2) for v in coco_mask.toBbox(merged)], "iscrowd": crowd})

    street, portrait, small = images
    add(street, 1, [outline(200, 260, 90, 48, 640, 480)])  # a person
    add(street, 3, [outline(450, 300, 60, 30, 640, 480),  # a car, occluded: two parts
                    outline(540, 320, 35, 20, 640, 480)])
    add(street, 10, [[300.4, 20.0, 303.1, 20.0, 303.9, 380.5, 301.2, 380.5]])  # a thin pole
    add(street, 1, {"size": [480, 640], "counts": uncompressed(blob_mask(480, 640, 9))}, 1)
    bike = coco_mask.encode(np.asfortranarray(blob_mask(480, 640, 2)))
    add(street, 2, {"size": bike["size"], "counts": bike["counts"].decode("ascii")})
    parts = [coco_mask.encode(np.asfortranarray(blob_mask(480, 640, 1))) for _ in range(2)]
    add(street, 2, [{"size": p["size"], "counts": p["counts"].decode("ascii")} for p in parts])
    add(portrait, 18, [outline(213, 330, 320, 64, 427, 640)])  # reaches every border
    add(portrait, 44, [[100.5, 100.5, 101.2, 100.6, 100.9, 101.4]])  # under two pixels
    add(portrait, 1, {"size": [640, 427], "counts": uncompressed(blob_mask(640, 427, 4))}, 1)
    add(small, 47, [outline(26, 18, 12, 12, 53, 37), outline(10, 8, 3, 6, 53, 37)])
    doc = {"info": {"description": "tfrecord-lite mask fixtures (see make_instances.py)"},
           "images": images, "annotations": annotations,
           "categories": [{"id": i, "name": n} for i, n in
                          [(1, "person"), (2, "bicycle"), (3, "car"), (10, "traffic light"),
                           (18, "dog"), (44, "bottle"), (47, "cup")]]}
    (HERE / "instances.json").write_text(json.dumps(doc) + "\n")


if __name__ == "__main__":
    main()
