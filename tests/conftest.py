"""Shared fixtures: small images of every kind, made here, plus the demo photos."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "data" / "demo"


def _pattern(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth RGB gradient: compresses well, survives JPEG with small error."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                     (x + y) * 255 // max(width + height - 2, 1)], axis=-1).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def make_image_bytes(kind: str, width: int = 64, height: int = 48) -> bytes:
    """Bytes of a small image of the given kind (see KINDS)."""
    rgb = Image.fromarray(_pattern(width, height))
    makers: dict[str, Callable[[], bytes]] = {
        "jpeg-rgb": lambda: encode(rgb, "JPEG", quality=90),
        "jpeg-progressive": lambda: encode(rgb, "JPEG", quality=90, progressive=True),
        "jpeg-gray": lambda: encode(rgb.convert("L"), "JPEG"),
        "jpeg-cmyk": lambda: encode(rgb.convert("CMYK"), "JPEG"),
        "png-rgb": lambda: encode(rgb, "PNG"),
        "png-rgba": lambda: encode(rgb.convert("RGBA"), "PNG"),
        "png-palette": lambda: encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "png-gray": lambda: encode(rgb.convert("L"), "PNG"),
        "png-16bit": lambda: encode(
            Image.fromarray(_pattern(width, height)[..., 0].astype(np.uint16) * 257),
            "PNG"),
        "gif": lambda: encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
        "bmp": lambda: encode(rgb, "BMP"),
        "webp": lambda: encode(rgb, "WEBP", quality=90),
        "tiff": lambda: encode(rgb, "TIFF"),
    }
    return makers[kind]()


KINDS = ("jpeg-rgb", "jpeg-progressive", "jpeg-gray", "jpeg-cmyk", "png-rgb", "png-rgba",
         "png-palette", "png-gray", "png-16bit", "gif", "bmp", "webp", "tiff")


@pytest.fixture
def image_file(tmp_path: Path) -> Callable[..., str]:
    """Write an image of a kind (or raw bytes) to tmp_path and return its path."""
    counter = [0]

    def make(kind: str | bytes, name: str | None = None, **size: int) -> str:
        counter[0] += 1
        data = kind if isinstance(kind, bytes) else make_image_bytes(kind, **size)
        path = tmp_path / (name or f"img{counter[0]}.bin")
        path.write_bytes(data)
        return str(path)

    return make


def detection_item(path: str, ident: Any, **extra: Any) -> dict[str, Any]:
    """A full item with a class, two boxes and keypoints."""
    item: dict[str, Any] = {
        "filename": path, "id": ident, "extra": json.dumps({"split": "test"}),
        "class": {"label": 1, "text": "bird", "conf": 0.9},
        "object": {
            "count": 2, "area": [0.25, 0.1], "id": ["a", "b"], "is_crowd": [0, 1],
            "bbox": {"xmin": [0.1, 0.5], "xmax": [0.6, 0.9], "ymin": [0.2, 0.4],
                     "ymax": [0.7, 0.65], "label": [1, 2], "text": ["bird", "cat"],
                     "score": [0.8, 0.7], "conf": [0.9, 0.95]},
            "parts": {"x": [0.2, 0.5], "y": [0.3, 0.6], "v": [2, 1], "score": [1.0, 0.5]},
        },
    }
    item.update(extra)
    return item


@pytest.fixture
def demo_items() -> list[dict[str, Any]]:
    """The demo dataset with absolute paths."""
    items = json.loads((DEMO / "dataset.json").read_text())
    for item in items:
        item["filename"] = os.fspath(ROOT / item["filename"])
    return items


# -- tests that start processes are marked slow --------------------------------------------
#
# `make test-quick` runs `-m "not slow"`: every test that starts a process (a worker, the
# command line as a child, a fresh interpreter) carries the mark, and this guard fails an
# unmarked one that tries, naming the mark it needs.

@pytest.fixture(autouse=True)
def _a_test_that_starts_processes_is_marked_slow(request: pytest.FixtureRequest,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # (beam, tensorflow and torch tests run in targets of their own)
    if any(request.node.get_closest_marker(mark) is not None
           for mark in ("slow", "beam", "tensorflow", "torch")):
        return
    import subprocess

    def refuse(self: Any, args: Any, *rest: Any, **kwargs: Any) -> None:
        pytest.fail(f"{request.node.nodeid} starts a process ({args!r}): mark it "
                    "@pytest.mark.slow, so that `make test-quick` leaves it out")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
