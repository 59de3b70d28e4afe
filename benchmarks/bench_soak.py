"""Soak: many small records through create(), with throughput and peak memory.

Each scenario runs in a fresh process, which reports its own peak resident memory
(VmHWM) at the end:

* 100,000 small records (64x48 JPEG files, decode check on) from a JSON list;
* 300,000 items from JSON Lines without shuffling (streamed: memory should not grow
  with the number of items), and the same items as a shuffled JSON list (held in
  memory, for comparison);
* the growth of the streamed job's peak memory per item: 500,000 and 2,000,000 items
  without images (``store_images=False``, the size given in each item), from JSON
  Lines, not shuffled; the difference of the two peaks over the difference of the
  counts, in bytes per item (the aim: under 16);
* the command line's peak memory when every item fails (missing image files):
  100,000 and 200,000 items from JSON Lines (the aim: under 250 MB, flat).

    python benchmarks/bench_soak.py        (SOAK_ITEMS / STREAM_ITEMS / GROWTH_ITEMS=n1,n2
                                            / FAILING_ITEMS=n1,n2 to change the sizes,
                                            SOAK_ONLY=growth or failures for one part)
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

from _common import OUT as BENCH_OUT
from _common import env_int, run_python

OUT = BENCH_OUT / "soak"
SOAK_ITEMS = env_int("SOAK_ITEMS", 100000)
STREAM_ITEMS = env_int("STREAM_ITEMS", 300000)
THREADS = 2
SHARDS = 16
FILES = 64  # distinct small image files, used in turn
GROWTH_ITEMS = tuple(int(n) for n in os.environ.get("GROWTH_ITEMS", "500000,2000000").split(","))
FAILING_ITEMS = tuple(int(n) for n in os.environ.get("FAILING_ITEMS", "100000,200000").split(","))


def _images() -> list[str]:
    import numpy as np
    from PIL import Image

    folder = OUT / "images"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(FILES):
        path = folder / f"{i:03d}.jpg"
        if not path.exists():
            pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, "JPEG", quality=90)
            path.write_bytes(buf.getvalue())
        paths.append(str(path))
    return paths


def _item(i: int, paths: list[str]) -> dict:
    return {
        "filename": paths[i % len(paths)], "id": f"item-{i:07d}",
        "class": {"label": i % 10, "text": f"class {i % 10}"},
        "object": {"bbox": {"xmin": [0.1, 0.5], "xmax": [0.4, 0.9], "ymin": [0.2, 0.3],
                            "ymax": [0.6, 0.8], "label": [1, 2], "text": ["a", "b"]},
                   "parts": {"x": [0.2, 0.3], "y": [0.4, 0.5], "v": [2, 1]}},
    }


def _dataset(count: int, suffix: str) -> Path:
    path = OUT / f"items-{count}{suffix}"
    if not path.exists():
        paths = _images()
        with open(path, "w") as f:
            if suffix == ".jsonl":
                for i in range(count):
                    f.write(json.dumps(_item(i, paths)) + "\n")
            else:
                json.dump([_item(i, paths) for i in range(count)], f)
    return path


def _imageless_dataset(count: int) -> Path:
    """JSON Lines of items without image files: the size is given, nothing is read."""
    path = OUT / f"imageless-{count}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            for i in range(count):
                f.write(json.dumps({
                    "filename": f"images/{i:07d}.jpg", "id": f"item-{i:07d}", "height": 480,
                    "width": 640, "class": {"label": i % 10},
                    "object": {"bbox": {"xmin": [0.1], "xmax": [0.4], "ymin": [0.2],
                                        "ymax": [0.6], "label": [i % 7]}}}) + "\n")
    return path


def _run(dataset: Path, shuffle: bool, store_images: bool = True) -> tuple[float, float, int]:
    """(items/s, peak MB, written) of the command line's job in a fresh process."""
    out_dir = OUT / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    code = f"""
import time
from _common import peak_rss_mb
from tfrecord_lite import open_dataset, write_dataset
start = time.perf_counter()
summary = write_dataset(open_dataset({str(dataset)!r}), "s", {str(out_dir)!r}, {SHARDS},
                        {THREADS}, shuffle={shuffle}, store_images={store_images}, seed=1,
                        progress=False)
rate = summary.total / (time.perf_counter() - start)
print(rate, peak_rss_mb(), summary.written)
"""
    rate, peak, written = run_python(code).split()
    return float(rate), float(peak), int(written)


def growth() -> float:
    """Bytes of peak memory per item that a streamed job adds, between two sizes."""
    (small, large), peaks = GROWTH_ITEMS, []
    for count in (small, large):
        rate, peak, written = _run(_imageless_dataset(count), shuffle=False, store_images=False)
        assert written == count
        peaks.append(peak)
        print(f"stream {count:>9,} items, JSON Lines, no images, no shuffle: {rate:6.0f} "
              f"records/s, peak RSS {peak:5.0f} MB")
    per_item = (peaks[1] - peaks[0]) * 2**20 / (large - small)
    print(f"streamed peak memory grows {per_item:.1f} bytes per item "
          f"(from {small:,} to {large:,} items; aim: under 16)")
    return per_item


def _failing_dataset(count: int) -> Path:
    """JSON Lines of items whose image files do not exist: every item fails."""
    path = OUT / f"failing-{count}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            for i in range(count):
                f.write(json.dumps({**_item(i, ["missing.jpg"]),
                                    "filename": f"missing/{i:07d}.jpg"}) + "\n")
    return path


def failures() -> None:
    """Peak memory of the command line when every item fails."""
    for count in FAILING_ITEMS:
        out_dir = OUT / "out"
        shutil.rmtree(out_dir, ignore_errors=True)
        code = f"""
import time
from _common import peak_rss_mb
from tfrecord_lite.cli import main
start = time.perf_counter()
status = main(["--dataset_path", {str(_failing_dataset(count))!r}, "--prefix", "f",
               "--output_dir", {str(out_dir)!r}, "--shards", "{SHARDS}", "--threads",
               "{THREADS}", "-q"])
print(status, {count} / (time.perf_counter() - start), peak_rss_mb())
"""
        status, rate, peak = run_python(code).split()
        assert status == "1"
        print(f"fail   {count:>9,} items, JSON Lines, all failing (command line): "
              f"{float(rate):6.0f} items/s, peak RSS {float(peak):5.0f} MB (aim: under 250)")


def main() -> None:
    if os.environ.get("SOAK_ONLY") == "growth":
        growth()
        return
    if os.environ.get("SOAK_ONLY") == "failures":
        failures()
        return
    print(f"# soak benchmark: {THREADS} threads, {SHARDS} shards, {os.cpu_count()} CPUs; "
          "64x48 JPEG files, decode check on; peak RSS of a fresh process")
    rate, peak, written = _run(_dataset(SOAK_ITEMS, ".json"), shuffle=False)
    assert written == SOAK_ITEMS
    print(f"soak   {SOAK_ITEMS:>7,} records, JSON list        : {rate:6.0f} records/s, "
          f"peak RSS {peak:4.0f} MB")
    rate, peak, written = _run(_dataset(STREAM_ITEMS, ".jsonl"), shuffle=False)
    assert written == STREAM_ITEMS
    print(f"stream {STREAM_ITEMS:>7,} items, JSON Lines, no shuffle: {rate:6.0f} records/s, "
          f"peak RSS {peak:4.0f} MB")
    rate, peak, written = _run(_dataset(STREAM_ITEMS, ".json"), shuffle=True)
    print(f"list   {STREAM_ITEMS:>7,} items, JSON list, shuffled : {rate:6.0f} records/s, "
          f"peak RSS {peak:4.0f} MB (held in memory)")
    growth()
    failures()


if __name__ == "__main__":
    main()
