"""Reading shards for training: tfrecord_lite.torch against the ``tfrecord`` package and
tf.data, on the same shards in the same run.

* ``tfrecord_lite.torch.TFRecordDataset`` in a ``DataLoader(num_workers=2,
  batch_size=32, persistent_workers=True)``: records per second without image decoding
  (item dicts) and with it (``decode_images=True``, batched by ``collate``);
* the ``tfrecord`` package's ``TFRecordDataset`` in the same DataLoader: one per shard,
  chained, each given its index so that the two workers split it (without an index
  each worker would read every record);
* tf.data: ``TFRecordDataset`` + ``parse_single_example`` (scalar keys as
  ``FixedLenFeature``, lists as ``VarLenFeature``), ``num_parallel_calls=2``, batches of
  32, with and without ``tf.io.decode_jpeg`` (with ``dct_method="INTEGER_ACCURATE"``,
  libjpeg's accurate transform, which Pillow and simplejpeg use: the same pixels and the
  same work; TensorFlow's default is the faster, less exact one); run by the Python of
  the TensorFlow virtual environment (``--tf-python``), on the same files.

Besides records per second, each reader's CPU milliseconds per record (every process
and thread it uses): on a machine that other work shares, the steadier figure.

Each figure is the median of ROUNDS epochs after one warm-up epoch. The photos are
about 640x480 JPEG (benchmarks/photos.py), each written REPEAT times (as its own record).

    .venv-torch/bin/python benchmarks/bench_torch.py --tf-python .venv-tf/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from _common import OUT, env_int, images, rounds

COUNT = images(600)
REPEAT = env_int("BENCH_REPEAT", 4)
SHARDS = 8
WORKERS = 2
BATCH = 32
ROUNDS = rounds(5)


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its live child processes (the
    DataLoader workers), from /proc."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def median_rates(epochs: dict[str, Callable[[], int]]) -> dict[str, tuple[float, float]]:
    """For each ``epoch()`` (which returns how many records it read): records per second
    and CPU milliseconds per record (every process of the reader), each the median of
    ROUNDS after one warm-up epoch. The readers take turns, so that a change in the
    machine's load falls on all of them."""
    for epoch in epochs.values():
        epoch()
    rates: dict[str, list[float]] = {name: [] for name in epochs}
    cpu: dict[str, list[float]] = {name: [] for name in epochs}
    for _ in range(ROUNDS):
        for name, epoch in epochs.items():
            start, cpu_start = time.perf_counter(), cpu_seconds()
            n = epoch()
            rates[name].append(n / (time.perf_counter() - start))
            cpu[name].append((cpu_seconds() - cpu_start) * 1e3 / n)
    return {name: (statistics.median(rates[name]), statistics.median(cpu[name]))
            for name in epochs}


def write_shards() -> list[str]:
    """The shards (written once, then reused) and their indexes."""
    from tfrecord_lite import write_dataset, write_index
    from tfrecord_lite.reader import default_index_path

    from photos import make_photos

    out = OUT / "torch"
    items = make_photos(OUT / "photos", COUNT, "JPEG")
    items = [{**item, "id": f"{item['id']}-{k}"} for k in range(REPEAT) for item in items]
    files = sorted(str(p) for p in out.glob("t-*-of-*"))
    if len(files) != SHARDS or not all(os.path.exists(default_index_path(f)) for f in files):
        shutil.rmtree(out, ignore_errors=True)
        write_dataset(items, "t", out, SHARDS, 2, shuffle=False, progress=False)
        files = sorted(str(p) for p in out.glob("t-*-of-*"))
        for f in files:
            write_index(f)
    return files


def count(loader: Any) -> Callable[[], int]:
    def epoch() -> int:
        return sum(len(batch["id"] if isinstance(batch, dict) else batch) for batch in loader)

    return epoch


def torch_rates(files: list[str]) -> dict[str, tuple[float, float]]:
    import torch
    from torch.utils.data import ChainDataset, DataLoader

    from tfrecord_lite.reader import default_index_path
    from tfrecord_lite.torch import TFRecordDataset, collate

    # This process only gathers batches: PyTorch's own threads would compete with the
    # workers for the cores.
    torch.set_num_threads(1)
    common = {"num_workers": WORKERS, "batch_size": BATCH, "persistent_workers": True}
    ours = DataLoader(TFRecordDataset(files), collate_fn=list, **common)
    decoded = DataLoader(TFRecordDataset(files, decode_images=True), collate_fn=collate,
                         **common)
    import tfrecord.torch

    theirs = DataLoader(ChainDataset([tfrecord.torch.TFRecordDataset(f, default_index_path(f))
                                      for f in files]), collate_fn=list, **common)
    return median_rates({"ours": count(ours), "tfrecord": count(theirs),
                         "ours_decoded": count(decoded)})


def tf_rates(files: list[str]) -> dict[str, tuple[float, float]]:
    import tensorflow as tf

    from tfrecord_lite.schema import SCALAR_KEYS

    first = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(files[:1]))).numpy())
    spec = {}
    for key, feature in first.features.feature.items():
        kind = feature.WhichOneof("kind")
        dtype = {"bytes_list": tf.string, "float_list": tf.float32,
                 "int64_list": tf.int64}[kind]
        spec[key] = (tf.io.FixedLenFeature([], dtype) if key in SCALAR_KEYS
                     else tf.io.VarLenFeature(dtype))

    def parse(record: Any) -> Any:
        return tf.io.parse_single_example(record, spec)

    def parse_decode(record: Any) -> Any:
        features = tf.io.parse_single_example(record, spec)
        features["image"] = tf.io.decode_jpeg(features["image/encoded"], channels=3,
                                              dct_method="INTEGER_ACCURATE")
        return features

    def epoch(fn: Any) -> Callable[[], int]:
        ds = tf.data.TFRecordDataset(files).map(fn, num_parallel_calls=WORKERS).batch(BATCH)

        def run() -> int:
            n = 0
            for batch in ds:
                n += int(batch["image/id"].shape[0])
            return n

        return run

    return median_rates({"tf": epoch(parse), "tf_decoded": epoch(parse_decode)})


def show(rate: tuple[float, float]) -> str:
    return f"{rate[0]:6.0f} rec/s, {rate[1]:.2f} CPU-ms/rec"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tf-python", help="the Python of an environment with TensorFlow")
    parser.add_argument("--tf-only", nargs="*", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tf_only is not None:  # the part run in the TensorFlow environment
        print(json.dumps(tf_rates(args.tf_only)))
        return
    files = write_shards()
    size = sum(os.path.getsize(f) for f in files)
    records = COUNT * REPEAT
    print(f"# training read benchmark: {records} records ({COUNT} photos of about 640x480 "
          f"x {REPEAT}), {size / 1e6:.0f} MB in {SHARDS} shards, {os.cpu_count()} CPUs, "
          f"DataLoader num_workers={WORKERS} batch_size={BATCH}, median of {ROUNDS} epochs")
    rates = torch_rates(files)
    if args.tf_python:
        done = subprocess.run([args.tf_python, __file__, "--tf-only", *files],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        rates.update(json.loads(done.stdout.strip().splitlines()[-1]))
    ours, theirs = rates["ours"], rates["tfrecord"]
    print(f"records, no image decoding: tfrecord_lite.torch {show(ours)}; tfrecord package "
          f"{show(theirs)}; tfrecord_lite.torch {ours[0] / theirs[0]:.2f}x the rate, "
          f"{theirs[1] / ours[1]:.2f}x less CPU")
    if "tf" in rates:
        print(f"records, no image decoding: tf.data with parse {show(rates['tf'])}; "
              f"tfrecord_lite.torch {ours[0] / rates['tf'][0]:.2f}x the rate")
    line = f"records with images decoded: tfrecord_lite.torch {show(rates['ours_decoded'])}"
    if "tf_decoded" in rates:
        line += (f"; tf.data with parse and decode_jpeg {show(rates['tf_decoded'])}; "
                 f"tfrecord_lite.torch {rates['ours_decoded'][0] / rates['tf_decoded'][0]:.2f}x "
                 "the rate")
    print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
