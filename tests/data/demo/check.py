"""Check a demo run: every item of the dataset is in the shards, field for field.

Usage: python tests/data/demo/check.py DATASET.json OUTPUT_DIR PREFIX
"""

from __future__ import annotations

import io
import json
import math
import os
import sys

from PIL import Image

from tfrecord_lite import read_examples
from tfrecord_lite.decode import iter_flat


def main(dataset_path: str, out_dir: str, prefix: str) -> int:
    with open(dataset_path, encoding="utf-8") as f:
        items = {str(item["id"]): item for item in json.load(f)}
    with open(os.path.join(out_dir, f"{prefix}.manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    problems = []
    seen = 0
    for shard in manifest["shards"]:
        for record in read_examples(os.path.join(out_dir, shard["file"])):
            seen += 1
            item = items.pop(record["id"], None)
            if item is None:
                problems.append(f"record {record['id']!r} is not in the dataset")
                continue
            for path, value in iter_flat(item):
                node = record
                for part in path.split("/"):
                    node = node[part]
                expected = value if isinstance(value, list) else [value]
                got = node if isinstance(node, list) else [node]
                same = len(expected) == len(got) and all(
                    math.isclose(float(a), float(b), rel_tol=1e-6)
                    if isinstance(a, float) else str(a) == str(b)
                    for a, b in zip(expected, got))
                if not same:
                    problems.append(f"id {record['id']}: {path}: {got!r} != {value!r}")
            image = Image.open(io.BytesIO(record["encoded"]))
            image.load()
            if (image.width, image.height) != (record["width"], record["height"]):
                problems.append(f"id {record['id']}: stored image is {image.size}, record says "
                                f"{record['width']}x{record['height']}")
            if image.mode != "RGB":
                problems.append(f"id {record['id']}: stored image is {image.mode}, not RGB")
    problems += [f"item {i!r} is missing from the shards" for i in items]
    if seen != manifest["records"]:
        problems.append(f"manifest says {manifest['records']} records, shards hold {seen}")
    for p in problems:
        print("PROBLEM:", p)
    print(f"demo check: {seen} records in {len(manifest['shards'])} shards, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
