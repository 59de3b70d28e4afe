"""Benchmark photos: about 640x480 crops of the demo photos, made once and cached.

Each image is a different random crop, flip and scale of one of the five real photos
in tests/data/demo/images, so the files have the size and entropy of real photos.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from PIL import Image, ImageOps

# Self-contained (tests load this file by its path): the demo photos of the repository.
SOURCES = sorted((Path(__file__).resolve().parent.parent / "tests" / "data" / "demo" / "images"
                  ).iterdir())
SIZE = (640, 480)


def make_photos(out_dir: Path, count: int, fmt: str, seed: int = 0) -> list[dict]:
    """Write ``count`` photos (``fmt`` "JPEG" or "PNG") and return their items."""
    out_dir = out_dir / fmt.lower()
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    sources = [Image.open(p).convert("RGB") for p in SOURCES if p.suffix != ".py"]
    items = []
    suffix = ".jpg" if fmt == "JPEG" else ".png"
    for i in range(count):
        path = out_dir / f"{i:06d}{suffix}"
        if not path.exists():
            src = sources[i % len(sources)]
            scale = rng.uniform(0.6, 1.0)
            w, h = int(src.width * scale), int(src.height * scale)
            x, y = rng.randint(0, src.width - w), rng.randint(0, src.height - h)
            im = src.crop((x, y, x + w, y + h)).resize(SIZE, Image.Resampling.BICUBIC)
            if rng.random() < 0.5:
                im = ImageOps.mirror(im)
            tmp = path.with_suffix(".tmp")
            im.save(tmp, fmt, quality=92) if fmt == "JPEG" else im.save(tmp, fmt)
            os.replace(tmp, path)
        items.append({
            "filename": str(path), "id": str(i),
            "class": {"label": i % 5, "text": f"class-{i % 5}"},
            "object": {"bbox": {"xmin": [0.1, 0.4], "xmax": [0.5, 0.9], "ymin": [0.2, 0.3],
                                "ymax": [0.6, 0.8], "label": [1, 2], "text": ["a", "b"]},
                       "parts": {"x": [0.3], "y": [0.4], "v": [2]}},
        })
    return items


if __name__ == "__main__":
    import sys

    items = make_photos(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
    print(json.dumps(items[:1], indent=1))
