"""Masks: the cost of drawing and storing 100 polygon objects of one 640x480 image, the
rate of create() with masks against without on the same photos, and how closely the
masks agree with pycocotools.

    python benchmarks/bench_masks.py              all the parts below
    python benchmarks/bench_masks.py time         time per image and per object (medians)
    python benchmarks/bench_masks.py memory       peak memory, each in a fresh process
    python benchmarks/bench_masks.py rate         create() with masks / without (make bench)
    python benchmarks/bench_masks.py job-memory   create() of one image with 100 polygon
                                                  objects, with masks and without, peak RSS
                                                  by /usr/bin/time -v (make bench)
    python benchmarks/bench_masks.py agreement    IoU with pycocotools (needs it)

    python benchmarks/bench_masks.py draw         one image's 100 masks, drawn and encoded
    python benchmarks/bench_masks.py baseline     the same set-up, no mask drawn
    python benchmarks/bench_masks.py job-masks    create() of one image with 100 masks
    python benchmarks/bench_masks.py job-plain    the same image and boxes, without masks
                                                  (these four: to measure whole processes,
                                                  e.g. with /usr/bin/time -v)

The objects are COCO-like outlines (wobbly closed curves, concave in places, of 16 to
80 points and 10 to 120 pixels across, coordinates at 2 decimals), made from a fixed
seed. Each mask is encoded to PNG as soon as it is drawn, as a record's masks are, so
that one image's worth of masks is never held. BENCH_ROUNDS sets the rounds (default 7;
for ``rate``, 3), BENCH_IMAGES the photos of ``rate`` (default 200, about 640x480, made
from the demo photos by benchmarks/photos.py).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from typing import Any, Callable

from _common import OUT, fresh_dir, images, peak_rss_mb, rounds, run_python

WIDTH, HEIGHT, OBJECTS = 640, 480, 100
RATE_OBJECTS = (7, 30)  # objects per photo in the rate part (COCO's mean is about 7)


def outlines(count: int = OBJECTS, seed: int = 26) -> list[list[list[float]]]:
    """``count`` COCO-style objects (one polygon each) inside a 640x480 image."""
    import numpy as np

    rng = np.random.default_rng(seed)
    objects = []
    for _ in range(count):
        radius = rng.uniform(5, 60)
        cx, cy = rng.uniform(radius, WIDTH - radius), rng.uniform(radius, HEIGHT - radius)
        points = int(rng.integers(16, 81))
        a = np.linspace(0, 2 * math.pi, points, endpoint=False)
        phase = rng.uniform(0, 2 * math.pi, 2)
        r = radius * (1 + 0.3 * np.sin(3 * a + phase[0]) + 0.15 * np.sin(7 * a + phase[1]))
        x = np.clip(cx + r * np.cos(a), 0, WIDTH).round(2)
        y = np.clip(cy + r * np.sin(a), 0, HEIGHT).round(2)
        objects.append([np.stack([x, y], axis=1).ravel().tolist()])
    return objects


def _median_ms(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def draw_and_encode(objects: list[list[list[float]]]) -> list[bytes]:
    from tfrecord_lite import maskpng, masks

    frame = masks.Frame(HEIGHT, WIDTH)
    return [maskpng.encode(masks.polygon_mask(parts, frame), runs=True) for parts in objects]


def _pillow_png(mask: Any) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(mask).save(out, format="PNG")
    return out.getvalue()


def part_time() -> None:
    from tfrecord_lite import maskpng, masks

    objects = outlines()
    frame = masks.Frame(HEIGHT, WIDTH)
    half = masks.Frame(HEIGHT, WIDTH, HEIGHT // 2, WIDTH // 2)
    drawn = [masks.polygon_mask(parts, frame) for parts in objects]
    n = rounds(7)
    figures = {
        "draw (640x480)": lambda: [masks.polygon_mask(p, frame) for p in objects],
        "draw (stored at 320x240)": lambda: [masks.polygon_mask(p, half) for p in objects],
        "encode PNG (maskpng, as records store masks)": lambda: [
            maskpng.encode(m, runs=True) for m in drawn],
        "encode PNG (maskpng, default strategy)": lambda: [maskpng.encode(m) for m in drawn],
        "encode PNG (Pillow, as the reference scripts)": lambda: [_pillow_png(m) for m in drawn],
        "draw and encode (640x480)": lambda: draw_and_encode(objects),
    }
    try:
        from pycocotools import mask as coco
    except ImportError:
        coco = None
    if coco is not None:
        def reference() -> list[bytes]:
            return [_pillow_png(coco.decode(coco.frPyObjects(p, HEIGHT, WIDTH)).max(axis=2))
                    for p in objects]
        figures["pycocotools: frPyObjects + decode"] = lambda: [
            coco.decode(coco.frPyObjects(p, HEIGHT, WIDTH)) for p in objects]
        figures["reference scripts' way: pycocotools + Pillow PNG"] = reference
    times = {name: _median_ms(fn, n) for name, fn in figures.items()}
    print(f"Masks, time of {OBJECTS} objects (median of {n} rounds, one process):")
    for name, ms in times.items():
        print(f"  {name:<50} {ms:7.1f} ms  {ms * 1000 / OBJECTS:6.0f} us/object")
    if coco is not None:
        ratio = times["draw and encode (640x480)"] / times[
            "reference scripts' way: pycocotools + Pillow PNG"]
        print(f"  draw and encode / the reference scripts' way: {ratio:.2f}")
    ours = sum(len(b) for b in draw_and_encode(objects))
    pillows = sum(len(_pillow_png(m)) for m in drawn)
    print(f"  PNG bytes a mask: maskpng {ours // OBJECTS:,}, Pillow {pillows // OBJECTS:,}")


_CHILD = """
import sys
sys.argv = ["bench_masks.py", "{mode}"]
import bench_masks
bench_masks.main()
"""


def part_memory() -> None:
    print("Masks, peak memory (VmHWM) of a fresh process:")
    peaks = {}
    for mode in ("baseline", "draw"):
        out = run_python(_CHILD.format(mode=mode))
        peaks[mode] = float(out.split()[-2])
        print(f"  {mode:<10} {out.strip()}")
    print(f"  100 masks drawn and encoded cost {peaks['draw'] - peaks['baseline']:.1f} MB more")


def _setup() -> list[list[list[float]]]:
    import numpy  # noqa: F401  (what a job has loaded anyway)
    import PIL.PngImagePlugin  # noqa: F401

    from tfrecord_lite import masks  # noqa: F401

    return outlines()


def _with_objects(item: dict[str, Any], objects: list[list[list[float]]],
                  masks: bool) -> dict[str, Any]:
    """``item`` with ``objects`` as its boxes (their bounding boxes), and as its masks."""
    boxes: dict[str, list[float]] = {"xmin": [], "xmax": [], "ymin": [], "ymax": []}
    for (polygon,) in objects:
        xs, ys = polygon[0::2], polygon[1::2]
        boxes["xmin"].append(min(xs) / WIDTH)
        boxes["xmax"].append(max(xs) / WIDTH)
        boxes["ymin"].append(min(ys) / HEIGHT)
        boxes["ymax"].append(max(ys) / HEIGHT)
    obj: dict[str, Any] = {"bbox": {**boxes, "label": [1] * len(objects)}}
    if masks:
        obj["mask"] = objects
    return {"filename": item["filename"], "id": item["id"], "object": obj}


def part_rate() -> None:
    from tfrecord_lite import write_dataset

    from photos import make_photos

    count, n = images(200), rounds(3)
    photos = make_photos(OUT / "photos", count, "JPEG")
    out = fresh_dir(OUT / "masks")
    print(f"Masks, create() rate on {count} photos of 640x480 (2 threads, one process, "
          f"best of {n}):")
    for per_photo in RATE_OBJECTS:
        objects = [outlines(per_photo, seed=i) for i in range(count)]
        runs = {}
        for masks in (False, True):
            runs[masks] = [_with_objects(p, o, masks) for p, o in zip(photos, objects)]
        best = {False: math.inf, True: math.inf}
        for _ in range(n):
            for masks in (False, True):  # alternating, so that load falls on both alike
                start = time.perf_counter()
                summary = write_dataset(runs[masks], "m", out, 4, 2, shuffle=False,
                                        progress=False, num_processes=1)
                best[masks] = min(best[masks], time.perf_counter() - start)
                assert summary.failed == 0, summary.failures[:1]
        without, with_masks = count / best[False], count / best[True]
        print(f"  {per_photo:3} objects a photo: without masks {without:7.1f} images/s, "
              f"with masks {with_masks:7.1f} images/s, ratio {with_masks / without:.2f} "
              f"({(best[True] - best[False]) * 1000 / count / per_photo:.2f} ms a mask)")


def _job(masks: bool) -> None:
    """create() of one 640x480 photo with OBJECTS polygon objects, with their masks or
    without them."""
    from tfrecord_lite import write_dataset

    from photos import make_photos

    (photo,) = make_photos(OUT / "photos", 1, "JPEG")
    item = _with_objects(photo, outlines(), masks)
    summary = write_dataset([item], "job", fresh_dir(OUT / f"job-{masks}"), 1, 1,
                            progress=False, num_processes=1)
    assert summary.failed == 0
    print(f"{OBJECTS} objects, masks {'stored' if masks else 'not given'}, peak "
          f"{peak_rss_mb():.1f} MB")


def _time_v(mode: str) -> float:
    """The peak RSS of ``bench_masks.py MODE`` in a fresh process, in MB, as
    ``/usr/bin/time -v`` reports it ("Maximum resident set size", KB)."""
    import subprocess

    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, __file__, mode],
                          capture_output=True, text=True, check=True)
    line = next(x for x in done.stderr.splitlines() if "Maximum resident set size" in x)
    return int(line.split()[-1]) / 1024


def part_job_memory() -> None:
    import os

    if not os.path.exists("/usr/bin/time"):
        print("Masks, job memory: skipped (no /usr/bin/time)")
        return
    peaks = {mode: statistics.median(_time_v(mode) for _ in range(3))
             for mode in ("job-plain", "job-masks")}
    print(f"Masks, peak RSS of create() on one 640x480 photo with {OBJECTS} polygon objects "
          "(/usr/bin/time -v, median of 3 fresh processes):")
    print(f"  without masks {peaks['job-plain']:.1f} MB, with masks {peaks['job-masks']:.1f} "
          f"MB: {peaks['job-masks'] - peaks['job-plain']:+.1f} MB")


def part_agreement() -> None:
    import json

    import numpy as np
    from pycocotools import mask as coco

    from tfrecord_lite import masks, rle

    from _common import ROOT

    def iou(a: Any, b: Any) -> float:
        union = np.count_nonzero(a | b)
        return np.count_nonzero(a & b) / union if union else 1.0

    def reference(parts: list[list[float]], frame: Any) -> Any:
        sx, sy = frame.stored_width / frame.width, frame.stored_height / frame.height
        scaled = [[v * (sx if i % 2 == 0 else sy) for i, v in enumerate(p)] for p in parts]
        return coco.decode(coco.merge(coco.frPyObjects(scaled, frame.stored_height,
                                                       frame.stored_width)))

    def report(name: str, pairs: list[tuple[Any, Any]]) -> None:
        ious = [iou(a, b) for a, b in pairs]
        exact = sum(np.array_equal(a, b) for a, b in pairs)
        print(f"  {name:<44} {len(pairs):5} objects  IoU min {min(ious):.4f} "
              f"mean {statistics.mean(ious):.4f}  identical {exact}/{len(pairs)}")

    print("Masks, agreement with pycocotools:")
    data = ROOT / "tests" / "data" / "masks"
    shapes = json.loads((data / "shapes.json").read_text())["shapes"]
    pairs = []
    for s in shapes:
        frame = masks.Frame(s["height"], s["width"], *s.get("stored", (0, 0)))
        pairs.append((masks.polygon_mask(s["polygons"], frame, strict=not s.get("lenient")),
                      reference(s["polygons"], frame)))
    report("hand-made hard shapes", pairs)

    rng = np.random.default_rng(0)
    pairs = []
    for i in range(3000):
        height, width = (int(v) for v in rng.integers(1, 100, 2))
        stored = (int(rng.integers(1, height + 1)), int(rng.integers(1, width + 1))) \
            if i % 2 else (height, width)
        frame = masks.Frame(height, width, *stored)
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(3, 40))
            xy = np.stack([rng.uniform(0, width, k), rng.uniform(0, height, k)], 1)
            parts.append(xy.round(2).ravel().tolist())
        pairs.append((masks.polygon_mask(parts, frame), reference(parts, frame)))
    report("random polygons (half at a smaller size)", pairs)

    frame = masks.Frame(HEIGHT, WIDTH)
    report("the 100 outlines of the time part",
           [(masks.polygon_mask(p, frame), reference(p, frame)) for p in outlines()])

    instances = json.loads((data / "instances.json").read_text())
    sizes = {im["id"]: (im["height"], im["width"]) for im in instances["images"]}
    pairs = []
    for annotation in instances["annotations"]:
        frame = masks.Frame(*sizes[annotation["image_id"]])
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, list) and isinstance(segmentation[0], list):
            theirs = reference(segmentation, frame)
        elif isinstance(segmentation, list):
            theirs = coco.decode(coco.merge(segmentation))
        elif isinstance(segmentation["counts"], list):
            theirs = coco.decode(coco.frPyObjects(segmentation, frame.height, frame.width))
        else:
            theirs = coco.decode(segmentation)
        pairs.append((masks.coco_mask(segmentation, frame), theirs))
    report("COCO instances fixture (every form)", pairs)

    strings = decoded = 0
    trials = 2000
    for _ in range(trials):
        height, width = (int(v) for v in rng.integers(1, 100, 2))
        mask = (rng.random((height, width)) < rng.random()).astype(np.uint8)
        theirs = coco.encode(np.asfortranarray(mask))
        strings += rle.counts_to_string(rle.encode(mask)) == theirs["counts"].decode()
        value = {"size": [height, width], "counts": theirs["counts"].decode()}
        decoded += np.array_equal(masks.rle_mask(value, masks.Frame(height, width)),
                                  coco.decode(theirs))
    print(f"  RLE of random masks: compressed strings identical {strings}/{trials}, "
          f"decoded masks identical {decoded}/{trials}")


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    if mode in ("draw", "baseline"):
        objects = _setup()
        stored = draw_and_encode(objects) if mode == "draw" else []
        print(f"{len(stored)} masks, peak {peak_rss_mb():.1f} MB")
        return
    if mode in ("job-masks", "job-plain"):
        _job(mode == "job-masks")
        return
    parts = {"time": part_time, "memory": part_memory, "rate": part_rate,
             "job-memory": part_job_memory, "agreement": part_agreement}
    modes = sys.argv[1:] or ["all"]
    for name, part in parts.items():
        if name in modes or "all" in modes:
            part()


if __name__ == "__main__":
    main()
