"""create() against a TensorFlow pipeline doing the original tool's work.

The TensorFlow side, per image: read the file, decode it with ``tf.io.decode_jpeg``
to learn its size (PNG: ``tf.io.decode_png`` then ``tf.io.encode_jpeg`` first, as the
original did), build a ``tf.train.Example`` with the same keys, and write it with
``tf.io.TFRecordWriter``; the same thread count, each thread filling its own shards.

Both run in this process on the same photos (about 640x480, made from the demo
photos by benchmarks/photos.py), alternating, best of ROUNDS. Peak memory is measured
in fresh processes for two dataset sizes.

    python benchmarks/bench_create.py   (needs tensorflow: run via `make bench`)
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from _common import OUT, fresh_dir, images, rounds, run_python
from photos import make_photos

COUNT = images(600)
THREADS = 2
SHARDS = 4
ROUNDS = rounds(2)


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


def ours(items: list[dict], out_dir: Path, decode_check: bool) -> None:
    from tfrecord_lite import write_dataset

    summary = write_dataset(items, "ours", out_dir, SHARDS, THREADS, shuffle=False,
                            decode_check=decode_check, progress=False)
    assert summary.failed == 0, summary.failures[:3]


def ours_pillow_only(items: list[dict], out_dir: Path, decode_check: bool) -> None:
    """create() as it runs without the optional png extra: every PNG through Pillow."""
    from tfrecord_lite import images

    saved = images._wuffs_config
    images._wuffs_config = None
    try:
        ours(items, out_dir, decode_check)
    finally:
        images._wuffs_config = saved


def timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    out_dir = fresh_dir(OUT / "run")
    start = time.perf_counter()
    fn(*args[:1], out_dir, *args[1:])
    return time.perf_counter() - start


def peak_rss_mb(count: int, fmt: str) -> float:
    code = f"""
from pathlib import Path
from _common import fresh_dir, peak_rss_mb
from photos import make_photos
from tfrecord_lite import write_dataset
items = make_photos(Path({str(OUT / 'photos')!r}), {count}, {fmt!r})
out = fresh_dir(Path({str(OUT / 'mem')!r}))
write_dataset(items, "m", out, {SHARDS}, {THREADS}, progress=False)
print(peak_rss_mb())
"""
    return float(run_python(code).strip().splitlines()[-1])


def main() -> None:
    import tensorflow as tf

    print(f"# create benchmark: {COUNT} photos ~640x480, {THREADS} threads, {SHARDS} shards, "
          f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, best of {ROUNDS}")
    jpeg = make_photos(OUT / "photos", COUNT, "JPEG")
    png = make_photos(OUT / "photos", COUNT, "PNG")
    avg_kb = sum(os.path.getsize(i["filename"]) for i in jpeg) / len(jpeg) / 1024
    print(f"# JPEG files average {avg_kb:.0f} KB")
    from tfrecord_lite import images

    cases = {"JPEG, decode check on          ": [(tf_pipeline, jpeg, False),
                                                 (ours, jpeg, True)]}
    cases["JPEG, decode check off         "] = [(tf_pipeline, jpeg, False), (ours, jpeg, False)]
    cases["PNG, Pillow decoder            "] = [(tf_pipeline, png, True),
                                                (ours_pillow_only, png, True)]
    if images._wuffs_config is not None:
        cases["PNG, Wuffs ([png])             "] = [(tf_pipeline, png, True), (ours, png, True)]
    else:
        print("# PNG with the [png] extra: skipped, pywuffs is not installed")
    for name, runs in cases.items():
        best = [float("inf"), float("inf")]
        for r in range(ROUNDS):
            order = [0, 1] if r % 2 == 0 else [1, 0]
            for k in order:
                fn, items, flag = runs[k]
                best[k] = min(best[k], timed(fn, items, flag))
        tf_rate, our_rate = COUNT / best[0], COUNT / best[1]
        print(f"create {name}: tfrecord_lite {our_rate:7.0f} img/s, "
              f"TensorFlow {tf_rate:6.0f} img/s, ratio {our_rate / tf_rate:.2f}x")
    small, large = peak_rss_mb(COUNT // 4, "JPEG"), peak_rss_mb(COUNT, "JPEG")
    print(f"peak memory (RSS) of create(): {small:.0f} MB for {COUNT // 4} images, "
          f"{large:.0f} MB for {COUNT} images")


if __name__ == "__main__":
    main()
