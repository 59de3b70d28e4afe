"""Shards for the training-reader tests: records with ids 0, 1, 2, ... in order, each a
64x48 JPEG with two boxes; optionally with the mask keys (``image/object/mask``, one
single-channel PNG of 0 and 1 per object, and ``image/segmentation/class/encoded``, a
PNG of class ids), added to the Example as a writer of those keys stores them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from tfrecord_lite import TFRecordWriter, encode_example
from tfrecord_lite.proto import example_pb2

from conftest import detection_item, make_image_bytes

WIDTH, HEIGHT = 64, 48
JPEG = make_image_bytes("jpeg-rgb", WIDTH, HEIGHT)


def png(array: np.ndarray, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(array.astype(np.uint8), mode="L")
    if mode == "P":
        image = image.convert("P")
        image.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
        image.putdata(array.reshape(-1).tolist())
    elif mode == "1":
        image = image.point(lambda v: 255 if v else 0).convert("1")
    image.save(buf, "PNG")
    return buf.getvalue()


def instance_masks(n: int) -> list[np.ndarray]:
    """Two 0/1 masks of record ``n``: its first box's rectangle and a diagonal band."""
    first = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    first[10 + n % 5:30, 6:40] = 1
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    second = (abs(x - y - n % 7) < 4).astype(np.uint8)
    return [first, second]


def class_ids(n: int) -> np.ndarray:
    """A label image of class ids, with VOC's 255 (boundary) along one row."""
    ids = (np.arange(WIDTH)[None, :] // 16 + n) % 5 + np.zeros((HEIGHT, 1), dtype=int)
    ids[HEIGHT // 2] = 255
    return ids.astype(np.uint8)


def record(n: int, masks: bool = False) -> bytes:
    """The Example of record ``n`` (id ``str(n)``)."""
    item = detection_item(f"images/{n}.jpg", n, encoded=JPEG, height=HEIGHT, width=WIDTH,
                          format="JPEG", colorspace="RGB", channels=3)
    item["class"]["label"] = n % 5
    data = encode_example(item)
    if not masks:
        return data
    example = example_pb2.Example.FromString(data)
    features = example.features.feature
    features["image/object/mask"].bytes_list.value.extend(png(m) for m in instance_masks(n))
    features["image/segmentation/class/encoded"].bytes_list.value.append(
        png(class_ids(n), "P"))
    features["image/segmentation/class/format"].bytes_list.value.append(b"PNG")
    return example.SerializeToString()


def write_shards(folder: Path, sizes: list[int], compressions: list[str] | None = None,
                 masks: bool = False, prefix: str = "train") -> list[Path]:
    """Shards ``prefix-0000i-of-0000N`` in ``folder`` holding ``sizes[i]`` records each,
    numbered on from shard to shard; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, n = [], 0
    for i, size in enumerate(sizes):
        path = folder / f"{prefix}-{i:05d}-of-{len(sizes):05d}"
        with TFRecordWriter(path, compression=(compressions or ["none"] * len(sizes))[i]) as w:
            for _ in range(size):
                w.write(record(n, masks))
                n += 1
        paths.append(path)
    return paths


def ids(count: int) -> list[str]:
    return [str(n) for n in range(count)]
