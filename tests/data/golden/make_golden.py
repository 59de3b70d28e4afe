"""Write the golden TFRecord files with real TensorFlow.

Made with TensorFlow 2.21 (tensorflow-cpu) by:

    .venv-tf/bin/python tests/data/golden/make_golden.py tests/data/golden

Records: b"foo", b"", 1000 bytes 0..255 repeated, and one tf.train.Example.
"""

from __future__ import annotations

import os
import sys

import tensorflow as tf


def records() -> list[bytes]:
    example = tf.train.Example(features=tf.train.Features(feature={
        "image/id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"7"])),
        "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[48])),
        "image/object/bbox/xmin": tf.train.Feature(
            float_list=tf.train.FloatList(value=[0.1, 0.5])),
    }))
    return [b"foo", b"", (bytes(range(256)) * 4)[:1000],
            example.SerializeToString(deterministic=True)]


def main(out_dir: str) -> None:
    for name, compression in (("golden.tfrecord", None), ("golden.tfrecord.gz", "GZIP"),
                              ("golden.tfrecord.zz", "ZLIB")):
        with tf.io.TFRecordWriter(os.path.join(out_dir, name),
                                  options=tf.io.TFRecordOptions(compression)) as w:
            for r in records():
                w.write(r)


if __name__ == "__main__":
    main(sys.argv[1])
