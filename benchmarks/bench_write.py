"""Writing pre-serialized records, one write() call each: tfrecord_lite vs TensorFlow.

Both writers run in this process, interleaved, on the same machine and disk; each
figure is the best of several rounds. Also times `import tfrecord_lite` against
`import tensorflow` in fresh interpreters.

    python benchmarks/bench_write.py   (needs tensorflow: run via `make bench`)
"""

from __future__ import annotations

import os
import tempfile
import time

from _common import rounds, run_python

SIZES = [(100_000, 2_000), (200, 300_000)]  # (record bytes, records per round)
ROUNDS = rounds(7)


def _time_ours(path: str, records: list[bytes]) -> float:
    from tfrecord_lite import TFRecordWriter

    start = time.perf_counter()
    with TFRecordWriter(path) as w:
        for r in records:
            w.write(r)
    return time.perf_counter() - start


def _time_tf(path: str, records: list[bytes]) -> float:
    import tensorflow as tf

    start = time.perf_counter()
    with tf.io.TFRecordWriter(path) as w:
        for r in records:
            w.write(r)
    return time.perf_counter() - start


def _import_time(module: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        out = run_python(f"import time; t = time.perf_counter(); import {module}; "
                         "print(time.perf_counter() - t)")
        best = min(best, float(out.strip().splitlines()[-1]))
    return best


def main() -> None:
    import tensorflow as tf  # imported up front so that its import is not timed below

    print(f"# write benchmark: TensorFlow {tf.__version__}, {os.cpu_count()} CPUs")
    from tfrecord_lite.crc32c import BACKEND

    print(f"# tfrecord_lite CRC32C backend: {BACKEND}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        for size, count in SIZES:
            records = [os.urandom(size)] * count if size > 1000 else [
                os.urandom(size) for _ in range(count)]
            ours, theirs = [], []
            for i in range(ROUNDS):
                # Alternate who goes first; fresh files, removed outside the timed part.
                runs = [(theirs, _time_tf), (ours, _time_ours)]
                for times, fn in runs if i % 2 else runs[::-1]:
                    path = os.path.join(tmp, f"{fn.__name__}.tfrecord")
                    if os.path.exists(path):
                        os.remove(path)
                    times.append(fn(path, records))
            ours_rate, tf_rate = count / min(ours), count / min(theirs)
            print(f"write {size:>7} B records: tfrecord_lite {ours_rate:>10,.0f} rec/s, "
                  f"tf.io.TFRecordWriter {tf_rate:>10,.0f} rec/s, ratio {ours_rate / tf_rate:.2f}x")
    ours_import = _import_time("tfrecord_lite", 7)
    tf_import = _import_time("tensorflow", 3)
    print(f"import: tfrecord_lite {ours_import:.3f} s, tensorflow {tf_import:.2f} s "
          f"({tf_import / ours_import:.0f}x)")


if __name__ == "__main__":
    main()
