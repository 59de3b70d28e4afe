"""Interoperability with real TensorFlow (run by `make test-tf`, in its own venv)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import TFRecordWriter, encode_example, read_records, write_dataset
from tfrecord_lite.example import ImageFields
from tfrecord_lite.schema import RECORD_FIELDS

from conftest import KINDS, ROOT, detection_item

pytestmark = pytest.mark.tensorflow

# Skipped where TensorFlow is absent; `make test-tf` imports it first, so there a
# missing TensorFlow fails instead.
tf = pytest.importorskip("tensorflow")

COMPRESSIONS = [("none", ""), ("gzip", "GZIP"), ("zlib", "ZLIB")]
RECORDS = [b"", b"foo", bytes(range(256)) * 40, b"x" * 200_000]


def _tf_records(path: Path, compression_type: str) -> list[bytes]:
    ds = tf.data.TFRecordDataset([str(path)], compression_type=compression_type)
    return [r.numpy() for r in ds]


@pytest.mark.parametrize("ours, theirs", COMPRESSIONS)
def test_tensorflow_reads_our_files(tmp_path: Path, ours: str, theirs: str) -> None:
    path = tmp_path / "ours.tfrecord"
    with TFRecordWriter(path, compression=ours) as w:
        for r in RECORDS:
            w.write(r)
    assert _tf_records(path, theirs) == RECORDS


@pytest.mark.parametrize("ours, theirs", COMPRESSIONS)
def test_we_read_tensorflow_files(tmp_path: Path, ours: str, theirs: str) -> None:
    path = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(path), options=tf.io.TFRecordOptions(theirs or None)) as w:
        for r in RECORDS:
            w.write(r)
    assert list(read_records(path)) == RECORDS  # compression detected
    assert list(read_records(path, compression=ours)) == RECORDS


def test_plain_bytes_identical_to_tensorflow(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "a", tmp_path / "b"
    with TFRecordWriter(ours) as w, tf.io.TFRecordWriter(str(theirs)) as t:
        for r in RECORDS:
            w.write(r)
            t.write(r)
    assert ours.read_bytes() == theirs.read_bytes()


def _tf_feature(kind: str, values: list[Any]) -> Any:
    if kind == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def test_example_bytes_equal_what_tensorflow_serializes() -> None:
    from tfrecord_lite.decode import feature_values, parse_example

    data = encode_example(detection_item("/x.jpg", 3), ImageFields(b"jpegbytes", 48, 64))
    parsed = parse_example(data)
    rebuilt = tf.train.Example(features=tf.train.Features(feature={
        key: _tf_feature(*feature_values(parsed.features.feature[key]))
        for key in parsed.features.feature}))
    assert rebuilt.SerializeToString(deterministic=True) == data
    assert tf.train.Example.FromString(data) == rebuilt


def _parse_spec() -> dict[str, Any]:
    """Every key: lists VarLen, scalars FixedLen, required but for the optional ones (the
    label image's), which default to "" as the Model Garden's decoders parse them."""
    dtypes = {"bytes": tf.string, "float": tf.float32, "int64": tf.int64}
    return {key: (tf.io.VarLenFeature(dtypes[f.kind]) if f.is_list
                  else tf.io.FixedLenFeature([], dtypes[f.kind], default_value="")
                  if f.optional else tf.io.FixedLenFeature([], dtypes[f.kind]))
            for key, f in RECORD_FIELDS.items()}


def _lookup(item: dict[str, Any], path: str) -> Any:
    node: Any = item
    for part in path.split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def test_tensorflow_reads_create_output_field_for_field(tmp_path: Path, image_file: Any) -> None:
    items = [detection_item(image_file(kind), f"id-{i}") for i, kind in enumerate(KINDS)]
    items.append({"filename": image_file("jpeg-rgb"), "id": "minimal", "class": {"label": "1"}})
    summary = write_dataset(items, "train", tmp_path, 3, 2, seed=1, compression="gzip",
                            progress=False)
    assert summary.failed == 0
    check_tensorflow_reads(sorted(str(p) for p in tmp_path.glob("train-*-of-00003")), items,
                           "GZIP")


def check_tensorflow_reads(files: list[str], items: list[dict[str, Any]],
                           compression_type: str) -> None:
    """TensorFlow parses every record of ``files``, one per item, each field as given."""
    by_id = {str(i["id"]): i for i in items}
    spec = _parse_spec()
    seen = 0
    for raw in tf.data.TFRecordDataset(files, compression_type=compression_type):
        parsed = tf.io.parse_single_example(raw, spec)
        item = by_id[parsed["image/id"].numpy().decode()]
        seen += 1
        image = tf.io.decode_jpeg(parsed["image/encoded"])
        assert image.shape == (parsed["image/height"].numpy(), parsed["image/width"].numpy(), 3)
        assert parsed["image/filename"].numpy().decode() == item["filename"]
        label = _lookup(item, "class/label")
        assert parsed["image/class/label"].numpy() == (int(label) if label is not None else -1)
        for key, field in RECORD_FIELDS.items():
            if not field.is_list:
                continue
            source = {"object/class/label": "object/bbox/label",
                      "object/class/text": "object/bbox/text"}.get(field.path, field.path)
            expected = _lookup(item, source) or []
            got = tf.sparse.to_dense(parsed[key]).numpy().tolist()
            if field.kind == "bytes":
                assert [g.decode() for g in got] == [str(e) for e in expected], key
            elif field.kind == "float":
                assert got == pytest.approx(expected, rel=1e-6), key
            else:
                assert got == expected, key
    assert seen == len(items)


def test_import_order_with_tensorflow() -> None:
    code = """
import sys
first, second = sys.argv[1:]
__import__(first); __import__(second)
import tensorflow as tf
from tfrecord_lite import encode_example, decode_example
data = encode_example({"filename": "f", "id": 1, "height": 2, "width": 3})
assert tf.train.Example.FromString(data).features.feature["image/width"].int64_list.value == [3]
assert decode_example(tf.train.Example.FromString(data).SerializeToString(deterministic=True)) \
    == decode_example(data)
"""
    for order in (["tensorflow", "tfrecord_lite"], ["tfrecord_lite", "tensorflow"]):
        result = subprocess.run([sys.executable, "-c", code, *order], capture_output=True,
                                text=True, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-2000:]


def test_tensorflow_reads_converter_output(tmp_path: Path) -> None:
    """Each converter's shards, read by TensorFlow: boxes and labels as converted."""
    import test_converters as tc

    from tfrecord_lite.cli import main

    coco_json, coco_images = tc.make_coco(tmp_path / "coco")
    voc_root = tmp_path / "voc"
    tc.make_voc(voc_root)
    runs = {
        "coco": ["from-coco", str(coco_json), "--images", str(coco_images), "--drop-empty"],
        "voc": ["from-voc", str(voc_root)],
    }
    # Labels from 1 (the converters' default when they write the Object Detection API's
    # label_map.pbtxt, which reserves 0).
    expected = {"coco": ([0.1, 0.75], [1, 3]), "voc": ([0.1, 0.5], [2, 1])}
    spec = {"image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
            "image/object/bbox/label": tf.io.VarLenFeature(tf.int64),
            "image/object/difficult": tf.io.VarLenFeature(tf.int64)}
    for name, argv in runs.items():
        out = tmp_path / f"out-{name}"
        main([*argv, "--prefix", "t", "--output_dir", str(out), "-q"])
        raw = next(iter(tf.data.TFRecordDataset([str(out / "t-00000-of-00001")])))
        parsed = tf.io.parse_single_example(raw, spec)
        xmin = tf.sparse.to_dense(parsed["image/object/bbox/xmin"]).numpy().tolist()
        labels = tf.sparse.to_dense(parsed["image/object/bbox/label"]).numpy().tolist()
        assert xmin == pytest.approx(expected[name][0]) and labels == expected[name][1]


def test_tensorflow_reads_the_shard_glob_of_a_run(tmp_path: Path, image_file: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The usual idiom: every file matching the prefix glob is a shard (the manifest and
    # failures list are named so that it does not match them).
    from tfrecord_lite.cli import main

    items = [detection_item(image_file("jpeg-rgb"), f"i{n}") for n in range(5)]
    items.append(detection_item(str(tmp_path / "missing.jpg"), "gone"))
    (tmp_path / "train.json").write_text(json.dumps(items))
    monkeypatch.chdir(tmp_path)
    assert main(["--dataset_path", "train.json", "--prefix", "train", "--output_dir", "out",
                 "--shards", "2", "--store_images", "-q"]) == 1
    files = tf.io.gfile.glob("out/train-*")
    assert sorted(files) == ["out/train-00000-of-00002", "out/train-00001-of-00002"]
    records = [r.numpy() for r in tf.data.TFRecordDataset(files)]
    assert len(records) == 5


def test_tensorflow_reads_the_shard_glob_after_index(tmp_path: Path, image_file: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # `index out/train-*` writes hidden .FILE.idx files: the README's idiom still reads
    # shards only, and the tfrecord/DALI index format is unchanged.
    from tfrecord_lite.cli import main

    items = [detection_item(image_file("jpeg-rgb"), f"i{n}") for n in range(3)]
    (tmp_path / "train.json").write_text(json.dumps(items))
    monkeypatch.chdir(tmp_path)
    assert main(["--dataset_path", "train.json", "--prefix", "train", "--output_dir", "out",
                 "--shards", "2", "--store_images", "-q"]) == 0
    assert main(["index", "out/train-*"]) == 0
    files = tf.io.gfile.glob("out/train-*")
    assert sorted(files) == ["out/train-00000-of-00002", "out/train-00001-of-00002"]
    assert len([r.numpy() for r in tf.data.TFRecordDataset(files)]) == 3
    assert Path("out/.train-00000-of-00002.idx").read_text().count("\n") == 2


def test_tensorflow_refuses_a_png_whose_rows_end_early_as_we_do() -> None:
    # The file test_png_short.py fails as truncated (strict) on either decode path.
    from test_png_short import WIDTH, _half_rows_png, _photo, _png_file, _rows

    from tfrecord_lite.images import ImageOptions, prepare

    data = _half_rows_png()
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_png(data, channels=3).numpy()
    with pytest.raises(Exception, match="truncated PNG file"):
        prepare(data, ImageOptions(corrupt_data="fail"))
    whole = _png_file(_rows(_photo()), WIDTH, _photo().shape[0])
    assert tf.io.decode_png(whole, channels=3).shape == (_photo().shape[0], WIDTH, 3)


def _python_blocks(page: Path, heading: str) -> list[str]:
    """The ```python blocks of the section ``heading`` of a page."""
    section = page.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1].split("\n## ")[0]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


@pytest.mark.parametrize("compression", ["none", "gzip", "zlib"])
def test_the_documented_reading_takes_the_compression_from_the_manifest(
        tmp_path: Path, compression: str, image_file: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/reading.md's TensorFlow snippet, run as written on a run's output."""
    from tfrecord_lite.cli import main

    monkeypatch.chdir(tmp_path)
    items = [detection_item(image_file("jpeg-rgb"), n) for n in range(3)]
    Path("train.json").write_text(json.dumps(items))
    assert main(["create", "--dataset_path", "train.json", "--prefix", "train",
                 "--output_dir", "out", "--shards", "2", "--compression", compression,
                 "-q"]) == 0
    (snippet,) = _python_blocks(ROOT / "docs" / "reading.md", "Reading with TensorFlow")
    scope: dict[str, Any] = {}
    exec(snippet, scope)  # noqa: S102 - the documented code itself
    ids = sorted(tf.io.parse_single_example(
        r, {"image/id": tf.io.FixedLenFeature([], tf.string)})["image/id"].numpy()
        for r in scope["dataset"])
    assert ids == [b"0", b"1", b"2"]
