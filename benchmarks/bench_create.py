"""create() against a TensorFlow pipeline doing the original tool's work.

The TensorFlow side, per image: read the file, decode it with ``tf.io.decode_jpeg``
to learn its size (PNG: ``tf.io.decode_png`` then ``tf.io.encode_jpeg`` first, as the
original did), build a ``tf.train.Example`` with the same keys, and write it with
``tf.io.TFRecordWriter``; the same thread count, each thread filling its own shards.

Both run in this process on the same photos (about 640x480, made from the demo
photos by benchmarks/photos.py), alternating, best of ROUNDS; for PNG, tfrecord_lite runs
in a fresh process per round, once as the default install decodes (Pillow) and once with
the fast-png extra, timed from after its decoder is loaded. Peak memory is measured in
fresh processes for two dataset sizes.

    python benchmarks/bench_create.py   (needs tensorflow: run via `make bench`)
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from _common import OUT, env_int, fresh_dir, images, rounds, run_python
from photos import make_photos

FAST_PNG_SWITCH = "TFRECORD_LITE_FAST_PNG"

COUNT = images(600)
THREADS = 2
SHARDS = 4
ROUNDS = rounds(2)
# Processes against one process: the JPEG photos listed REPEAT times (start-up amortized
# as in a real job: 12,000 items by default, where a plain run on 2 cores uses processes),
# and the PNG photos PNG_REPEAT times (2,400 items, with the fast-png extra: a worker
# takes about 0.5 s of CPU to start and load numba), in PROC_SHARDS shards.
REPEAT = env_int("BENCH_REPEAT", 20)
PNG_REPEAT = env_int("BENCH_PNG_REPEAT", 4)
PROC_SHARDS = 8


def cores() -> int:
    from tfrecord_lite.processes import cores as _cores

    return _cores()


def repeated(items: list[dict], times: int) -> list[dict]:
    """``items`` listed ``times`` times, each copy with its own id."""
    return [{**item, "id": f"{item['id']}-{k}"} for k in range(times) for item in items]


def tf_pipeline(items: list[dict], out_dir: Path, png: bool) -> None:
    import tensorflow as tf

    def b(v: bytes | str) -> tf.train.Feature:
        v = v.encode() if isinstance(v, str) else v
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def bl(vs: list[str]) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in vs]))

    def i(vs: list[int]) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=vs))

    def f(vs: list[float]) -> tf.train.Feature:
        return tf.train.Feature(float_list=tf.train.FloatList(value=vs))

    def example(item: dict, data: bytes, height: int, width: int) -> bytes:
        box, parts = item["object"]["bbox"], item["object"]["parts"]
        feats = {
            "image/id": b(item["id"]), "image/source_id": b(item["id"]),
            "image/filename": b(item["filename"]), "image/encoded": b(data),
            "image/key/sha256": b(hashlib.sha256(data).hexdigest()),
            "image/height": i([height]), "image/width": i([width]),
            "image/colorspace": b("RGB"), "image/channels": i([3]), "image/format": b("JPEG"),
            "image/extra": b(""), "image/class/label": i([item["class"]["label"]]),
            "image/class/text": b(item["class"]["text"]), "image/class/conf": f([1.0]),
            "image/object/count": i([len(box["xmin"])]), "image/object/area": f([]),
            "image/object/id": bl([]), "image/object/is_crowd": i([]),
            "image/object/bbox/label": i(box["label"]), "image/object/bbox/text": bl(box["text"]),
            "image/object/class/label": i(box["label"]),
            "image/object/class/text": bl(box["text"]),
            "image/object/bbox/score": f([]), "image/object/bbox/conf": f([]),
            "image/object/parts/x": f(parts["x"]), "image/object/parts/y": f(parts["y"]),
            "image/object/parts/v": i(parts["v"]), "image/object/parts/score": f([]),
        }
        for k in ("xmin", "xmax", "ymin", "ymax"):
            feats[f"image/object/bbox/{k}"] = f(box[k])
        return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()

    def work(shard_ids: list[int]) -> None:
        per_shard = len(items) // SHARDS
        for s in shard_ids:
            path = out_dir / f"tf-{s:05d}-of-{SHARDS:05d}"
            with tf.io.TFRecordWriter(str(path)) as w:
                for item in items[s * per_shard:(s + 1) * per_shard]:
                    with open(item["filename"], "rb") as fh:
                        data = fh.read()
                    if png:
                        data = tf.io.encode_jpeg(tf.io.decode_png(data, channels=3),
                                                 quality=95).numpy()
                    shape = tf.io.decode_jpeg(data, channels=3).shape
                    w.write(example(item, data, shape[0], shape[1]))

    threads = [threading.Thread(target=work, args=(list(range(t, SHARDS, THREADS)),))
               for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def ours(items: list[dict], out_dir: Path, decode_check: bool,
         processes: int | None = None, threads: int = THREADS,
         shards: int = SHARDS) -> None:
    """create() as a plain run makes it (``processes`` None: the default)."""
    from tfrecord_lite import write_dataset

    summary = write_dataset(items, "ours", out_dir, shards, threads, shuffle=False,
                            decode_check=decode_check, progress=False,
                            num_processes=processes)
    assert summary.failed == 0, summary.failures[:3]


def one_process(items: list[dict], out_dir: Path, decode_check: bool) -> None:
    """Today's single process: THREADS threads, no worker process."""
    ours(items, out_dir, decode_check, processes=1, shards=PROC_SHARDS)


def processes(items: list[dict], out_dir: Path, decode_check: bool) -> None:
    """One worker process per core, one thread each (the default rule on this machine)."""
    ours(items, out_dir, decode_check, processes=cores(), threads=1, shards=PROC_SHARDS)


def ours_fresh(fast_png: bool):  # type: ignore[no-untyped-def]
    """create() as ``ours`` runs it, in a fresh interpreter: with the fast-png extra, or as
    the default install decodes PNG (Pillow: the path ``TFRECORD_LITE_FAST_PNG=0`` gives,
    the same as without the extra). The decoder is loaded before the timing starts, as
    TensorFlow is imported before its own; returns the wall and CPU seconds taken."""

    def run(items: list[dict], out_dir: Path, decode_check: bool) -> tuple[float, float]:
        code = f"""
import time
from pathlib import Path
from photos import make_photos
from tfrecord_lite import png, write_dataset
items = make_photos(Path({str(OUT / 'photos')!r}), {len(items)}, "PNG")
assert png.default().ready() == {fast_png}, png.default()
start, cpu = time.perf_counter(), time.process_time()
summary = write_dataset(items, "ours", Path({str(out_dir)!r}), {SHARDS}, {THREADS},
                        shuffle=False, decode_check={decode_check}, progress=False)
assert summary.failed == 0, summary.failures[:3]
print(time.perf_counter() - start, time.process_time() - cpu)
"""
        out = run_python(code, {FAST_PNG_SWITCH: "1" if fast_png else "0"}).split()
        return float(out[-2]), float(out[-1])

    return run


def timed(fn, *args) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall seconds, CPU seconds of the process) ``fn`` takes, or those it returns
    (measured inside a fresh process)."""
    out_dir = fresh_dir(OUT / "run")
    start, cpu = time.perf_counter(), time.process_time()
    inside = fn(*args[:1], out_dir, *args[1:])
    if isinstance(inside, tuple):
        return inside
    return time.perf_counter() - start, time.process_time() - cpu


def peak_rss_mb(count: int, fmt: str, env: dict[str, str] | None = None) -> float:
    code = f"""
from pathlib import Path
from _common import fresh_dir, peak_rss_mb
from photos import make_photos
from tfrecord_lite import write_dataset
items = make_photos(Path({str(OUT / 'photos')!r}), {count}, {fmt!r})
out = fresh_dir(Path({str(OUT / 'mem')!r}))
write_dataset(items, "m", out, {SHARDS}, {THREADS}, progress=False, num_processes=1)
print(peak_rss_mb())
"""
    return float(run_python(code, env).strip().splitlines()[-1])


def child_run(count: int, repeat: int, processes: int, threads: int,
              decode_check: bool) -> dict[str, float]:
    """One job in a fresh interpreter: its wall time, the CPU seconds of the parent and
    of the workers, and their peak memory (see ``_common.usage``)."""
    code = f"""
import json, time
from pathlib import Path
from _common import fresh_dir, usage
from photos import make_photos
from tfrecord_lite import write_dataset
items = make_photos(Path({str(OUT / 'photos')!r}), {count}, "JPEG")
items = [{{**i, "id": f"{{i['id']}}-{{k}}"}} for k in range({repeat}) for i in items]
out = fresh_dir(Path({str(OUT / 'scale')!r}))
before = usage()
start = time.perf_counter()
write_dataset(items, "s", out, {PROC_SHARDS}, {threads}, shuffle=False, progress=False,
              decode_check={decode_check}, num_processes={processes})
wall = time.perf_counter() - start
after = usage()
print(json.dumps({{"wall": wall, "items": len(items), "cpu": after["cpu"] - before["cpu"],
                  "workers_cpu": after["children_cpu"] - before["children_cpu"],
                  "rss_mb": after["rss_mb"], "worker_rss_mb": after["children_rss_mb"]}}))
"""
    import json

    return dict(json.loads(run_python(code).strip().splitlines()[-1]))


def scaling(count: int) -> None:
    """Item 4's table: JPEG with the decode check on 1 to the cores available (measured),
    then 4 to 64 cores modelled from the CPU time per image (C, one process and thread),
    the interpreter-lock-bound time per image (G: the CPU time of the same work without
    the decode, all of it Python holding the lock, an upper bound), the workers' CPU per
    image (W, their start-up taken out) and the parent's (P, reading and sending the
    items: its own ceiling). The start-up, once per worker, is left out of the model.

    threads on k cores: min(k / C, 1 / G); processes: min(k / W, 1 / P); ideal: k / C.
    """
    n = cores()
    repeat = max(1, REPEAT // 2)
    single = child_run(count, repeat, 1, 1, True)
    lock_bound = child_run(count, repeat, 1, 1, False)
    items = single["items"]
    c = single["cpu"] / items
    g = lock_bound["cpu"] / items
    threads = child_run(count, repeat, 1, n, True)
    runs = {p: child_run(count, repeat, p, 1, True) for p in range(1, n + 1)}
    # the workers' start-up (interpreter, imports), from a job of one item per shard
    startup = child_run(PROC_SHARDS, 1, n, 1, True)["workers_cpu"]
    w = max(runs[n]["workers_cpu"] - startup, 0.0) / items
    parent = max(runs[n]["cpu"] / items, 1e-9)
    base = items / runs[1]["wall"]
    print(f"# scaling, JPEG with the decode check, {items} items, {PROC_SHARDS} shards; "
          f"CPU per image: C={c * 1e6:.0f} us, G<={g * 1e6:.0f} us, W={w * 1e6:.0f} us, "
          f"P={parent * 1e6:.0f} us; worker start-up {startup / n:.2f} s CPU each")
    print(f"# 1 process x {n} threads (measured): {items / threads['wall']:.0f} img/s")
    print("cores  processes img/s  ideal img/s  efficiency  threads-only img/s  figures")
    for p, run in runs.items():
        rate = items / run["wall"]
        print(f"{p:5d}  {rate:15.0f}  {base * p:11.0f}  {rate / (base * p):9.0%}  "
              f"{min(p / c, 1 / g):18.0f}  measured (threads-only: model)")
    for k in (4, 8, 16, 64):
        proc, ideal = min(k / w, 1 / parent), k / c
        print(f"{k:5d}  {proc:15.0f}  {ideal:11.0f}  {proc / ideal:9.0%}  "
              f"{min(k / c, 1 / g):18.0f}  modelled")
    print("peak memory (RSS) by processes: " + "; ".join(
        f"{p}: parent {r['rss_mb']:.0f} MB" + (f" + {p} x {r['worker_rss_mb']:.0f} MB"
                                                if p > 1 else "")
        for p, r in runs.items()))


def main() -> None:
    import tensorflow as tf

    from tfrecord_lite.processes import processes_and_threads

    plain = processes_and_threads(None, THREADS, SHARDS, COUNT)
    print(f"# create benchmark: {COUNT} photos ~640x480, {THREADS} threads, {SHARDS} shards "
          f"(a plain run: {plain[0]} process(es) x {plain[1]} thread(s)), TensorFlow "
          f"{tf.__version__}, {cores()} cores, best of {ROUNDS}")
    jpeg = make_photos(OUT / "photos", COUNT, "JPEG")
    png = make_photos(OUT / "photos", COUNT, "PNG")
    avg_kb = sum(os.path.getsize(i["filename"]) for i in jpeg) / len(jpeg) / 1024
    print(f"# JPEG files average {avg_kb:.0f} KB")
    from tfrecord_lite import png as fast_png
    from tfrecord_lite.accelerators import chosen

    fast_png.default().ready()  # compiled (or read from numba's cache) before any timing
    print(f"# {chosen().report()}")
    cases = {"JPEG, decode check on          ": [(tf_pipeline, jpeg, False),
                                                 (ours, jpeg, True)]}
    cases["JPEG, decode check off         "] = [(tf_pipeline, jpeg, False), (ours, jpeg, False)]
    cases["PNG, the default install       "] = [(tf_pipeline, png, True),
                                                (ours_fresh(False), png, True)]
    cases["PNG, with the fast-png extra   "] = [(tf_pipeline, png, True),
                                                (ours_fresh(True), png, True)]
    proc_jpeg = repeated(jpeg, REPEAT)
    procs = f"{cores()} processes x 1 thread"
    cases[f"JPEG, no check, {len(proc_jpeg)} items, {procs} vs 1 process x {THREADS} threads"
          ] = [(one_process, proc_jpeg, False), (processes, proc_jpeg, False)]
    cases[f"JPEG, decode check, {len(proc_jpeg)} items, {procs} vs 1 process x {THREADS} "
          "threads"] = [(one_process, proc_jpeg, True), (processes, proc_jpeg, True)]
    proc_png = repeated(png, PNG_REPEAT)
    cases[f"PNG [fast-png], {len(proc_png)} items, {procs} vs 1 process x {THREADS} threads"] = [
        (one_process, proc_png, True), (processes, proc_png, True)]
    for name, runs in cases.items():
        best, cpu = [float("inf"), float("inf")], [float("inf"), float("inf")]
        # PNG against TensorFlow, in fresh processes: twice the rounds, as the slower
        # rates move more with the machine's other work.
        for r in range(ROUNDS * 2 if name.startswith("PNG, ") else ROUNDS):
            order = [0, 1] if r % 2 == 0 else [1, 0]
            for k in order:
                fn, items, flag = runs[k]
                wall, seconds = timed(fn, items, flag)
                best[k], cpu[k] = min(best[k], wall), min(cpu[k], seconds)
        count = len(runs[0][1])
        tf_rate, our_rate = count / best[0], count / best[1]
        if runs[0][0] is one_process:
            print(f"create {name}: {our_rate:7.0f} img/s vs {tf_rate:6.0f} img/s, "
                  f"ratio {our_rate / tf_rate:.2f}x")
            continue
        print(f"create {name}: tfrecord_lite {our_rate:7.0f} img/s, "
              f"TensorFlow {tf_rate:6.0f} img/s, ratio {our_rate / tf_rate:.2f}x")
        if name.startswith("PNG, "):  # CPU time moves less with the machine's other work
            print(f"    CPU per image: tfrecord_lite {cpu[1] / count * 1000:.1f} ms, TensorFlow "
                  f"{cpu[0] / count * 1000:.1f} ms, ratio {cpu[0] / cpu[1]:.2f}x")
    small, large = peak_rss_mb(COUNT // 4, "JPEG"), peak_rss_mb(COUNT, "JPEG")
    print(f"peak memory (RSS) of create(): {small:.0f} MB for {COUNT // 4} images, "
          f"{large:.0f} MB for {COUNT} images")
    default_rss = peak_rss_mb(COUNT, "PNG", {FAST_PNG_SWITCH: "0"})
    fast_rss = peak_rss_mb(COUNT, "PNG")
    print(f"peak memory (RSS) of create() on {COUNT} PNG photos: {default_rss:.0f} MB in the "
          f"default install, {fast_rss:.0f} MB with the fast-png extra (numba loaded)")
    scaling(COUNT)


if __name__ == "__main__":
    main()
