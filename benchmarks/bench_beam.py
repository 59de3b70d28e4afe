"""The Beam pipeline on the DirectRunner against create(), on the same photos.

Both write the same records (about 640x480 JPEG photos made from the demo photos by
benchmarks/photos.py, decode check on) to the same number of shards, in this process,
alternating, best of ROUNDS. Each Beam figure includes building and starting the
pipeline, as a user of ``tfrecord_lite.beam.run`` pays it.

    python benchmarks/bench_beam.py   (needs apache-beam: run via `make bench-beam`)
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable

from _common import OUT, images, rounds
from photos import make_photos

COUNT = images(1000)
THREADS = 2
SHARDS = 4
ROUNDS = rounds(2)
RUNNERS = {
    "in_memory, 1 worker": "--runner=DirectRunner",
    "multi_threading, 2 workers":
        "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_threading",
    "multi_processing, 2 workers":
        "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"
        " --default_sdk_harness_log_level=ERROR",
}


def local(items: list[dict], out_dir: Path) -> int:
    from tfrecord_lite import write_dataset

    return write_dataset(items, "bench", out_dir, SHARDS, THREADS, seed=1,
                         progress=False).written


def beam(options: str) -> Callable[[list[dict], Path], int]:
    def run(items: list[dict], out_dir: Path) -> int:
        from tfrecord_lite import beam as tfl_beam

        return tfl_beam.run(items, "bench", out_dir, SHARDS, seed=1,
                            beam_options=options).written

    return run


def timed(fn: Callable[[list[dict], Path], int], items: list[dict]) -> float:
    """Seconds for one run; infinite when the run failed (the runner lost items)."""
    from tfrecord_lite import WriteError

    out_dir = OUT / "beam-run"
    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.perf_counter()
    try:
        written = fn(items, out_dir)
    except WriteError as exc:
        print(f"#   failed: {exc}")
        return float("inf")
    elapsed = time.perf_counter() - start
    if written != len(items):
        raise SystemExit(f"wrote {written} of {len(items)} records")
    return elapsed


def main() -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)  # no Beam start-up chatter between the lines
    import apache_beam
    print(f"# beam benchmark: {COUNT} JPEG photos ~640x480, {SHARDS} shards, Apache Beam "
          f"{apache_beam.__version__}, create() on {THREADS} threads, {os.cpu_count()} CPUs, "
          f"best of {ROUNDS}")
    items = make_photos(OUT / "photos", COUNT, "JPEG")
    for name, options in RUNNERS.items():
        best = {"beam": float("inf"), "create": float("inf")}
        for r in range(ROUNDS):
            runs = [("beam", beam(options)), ("create", local)]
            for key, fn in runs if r % 2 == 0 else runs[::-1]:
                best[key] = min(best[key], timed(fn, items))
        beam_rate, create_rate = COUNT / best["beam"], COUNT / best["create"]
        print(f"beam DirectRunner ({name}): {beam_rate:5.0f} img/s, "
              f"create(): {create_rate:5.0f} img/s, ratio {beam_rate / create_rate:.2f}x"
              + (" (every round failed)" if beam_rate == 0 else ""))


if __name__ == "__main__":
    main()
