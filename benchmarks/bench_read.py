"""Reading shards back: verify (with and without image decoding) and iteration.

Iteration is compared with tf.data.TFRecordDataset over the same files in the same
process (run via `make bench`, which uses the TensorFlow virtual environment).
"""

from __future__ import annotations

import os
import shutil
from typing import Callable

from _common import OUT, best_of, images, rounds
from photos import make_photos

COUNT = images(600)
ROUNDS = rounds(3)


def best(fn: Callable[[], object]) -> float:
    return best_of(fn, ROUNDS)


def main() -> None:
    from tfrecord_lite import read_records, write_dataset
    from tfrecord_lite.verify import verify_files

    shards_dir = OUT / "read"
    shutil.rmtree(shards_dir, ignore_errors=True)
    items = make_photos(OUT / "photos", COUNT, "JPEG")
    write_dataset(items, "r", shards_dir, 4, 2, shuffle=False, progress=False)
    files = sorted(str(p) for p in shards_dir.glob("r-*-of-*"))
    size = sum(os.path.getsize(f) for f in files)
    print(f"# read benchmark: {COUNT} records, {size / 1e6:.0f} MB in {len(files)} shards, "
          f"{os.cpu_count()} CPUs, best of {ROUNDS}")

    t = best(lambda: verify_files(files, threads=1, decode_images=False))
    print(f"verify, no image decoding: {size / t / 1e6:7.0f} MB/s")
    rates = {}
    for threads in (1, 2):
        t = best(lambda: verify_files(files, threads=threads))  # noqa: B023
        rates[threads] = COUNT / t
        print(f"verify, decoding images, {threads} thread(s): {rates[threads]:6.0f} images/s")
    print(f"verify decoding scales {rates[2] / rates[1]:.2f}x from 1 to 2 threads")

    import tensorflow as tf

    def ours() -> None:
        for f in files:
            for _ in read_records(f):
                pass

    def theirs() -> None:
        for _ in tf.data.TFRecordDataset(files).as_numpy_iterator():
            pass

    ours_t, tf_t = best(ours), best(theirs)
    print(f"iterate records: tfrecord_lite {COUNT / ours_t:8.0f} rec/s, "
          f"tf.data.TFRecordDataset {COUNT / tf_t:8.0f} rec/s, ratio {tf_t / ours_t:.2f}x")


if __name__ == "__main__":
    main()
