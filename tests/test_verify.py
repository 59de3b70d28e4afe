from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tfrecord_lite import (
    CompressionMismatchError,
    TFRecordLiteError,
    TFRecordWriter,
    encode_example,
    write_dataset,
)
from tfrecord_lite.cli import main
from tfrecord_lite.example import ImageFields
from tfrecord_lite.framing import encode_record
from tfrecord_lite.reader import read_records
from tfrecord_lite.sharding import shard_name
from tfrecord_lite.stats import stats
from tfrecord_lite.verify import verify_files

from conftest import detection_item, make_image_bytes


@pytest.fixture
def dataset(tmp_path: Path, image_file: Any) -> list[Path]:
    items = [detection_item(image_file("jpeg-rgb"), f"i{i}") for i in range(6)]
    write_dataset(items, "v", tmp_path / "out", 2, 2, shuffle=False, progress=False)
    return [tmp_path / "out" / shard_name("v", i, 2) for i in range(2)]


def test_good_files_verify(dataset: list[Path]) -> None:
    report = verify_files(dataset, threads=2)
    assert report.ok, report.problems
    assert (report.files, report.records, report.images) == (2, 6, 6)
    assert verify_files(dataset, decode_images=False).images == 0


def _rewrite(path: Path, records: list[bytes]) -> None:
    path.write_bytes(b"".join(encode_record(r) for r in records))


def test_flipped_byte_is_reported_with_place(dataset: list[Path]) -> None:
    data = bytearray(dataset[1].read_bytes())
    first = len(encode_record(next(read_records(dataset[1]))))
    data[first + 500] ^= 0xFF
    dataset[1].write_bytes(bytes(data))
    report = verify_files(dataset)
    messages = [str(p) for p in report.problems]
    assert any(f"{dataset[1]}, record 1, byte offset {first}: data CRC" in m for m in messages)
    assert any("sha256 differs from the manifest" in m for m in messages)


def test_cut_file_is_reported(dataset: list[Path]) -> None:
    data = dataset[0].read_bytes()
    dataset[0].write_bytes(data[: len(data) - 100])
    report = verify_files(dataset)
    assert any("file ends inside a record" in p.message and p.index == 2
               for p in report.problems)


def test_record_problems(tmp_path: Path) -> None:
    good = make_image_bytes("jpeg-rgb")
    item = {"filename": "f", "id": 1}
    records = [
        encode_example(item, ImageFields(good, 48, 64)),
        encode_example(item, ImageFields(good, 99, 64)),                 # wrong height
        encode_example(item, ImageFields(good[:300], 48, 64)),          # cut image
        b"\xff\xff\xff garbage",                                        # not an Example
        _without(encode_example(item, ImageFields(good, 48, 64)), "image/class/label"),
    ]
    path = tmp_path / "p.tfrecord"
    _rewrite(path, records)
    problems = {p.index: p.message for p in verify_files([path]).problems}
    assert set(problems) == {1, 2, 3, 4}
    assert "image is 64x48 but image/width x image/height say 64x99" in problems[1]
    assert "does not decode" in problems[2]
    assert "not a tf.train.Example" in problems[3]
    assert "image/class/label is missing" in problems[4]


def _without(data: bytes, key: str) -> bytes:
    from tfrecord_lite.proto import example_pb2

    ex = example_pb2.Example.FromString(data)
    del ex.features.feature[key]
    return ex.SerializeToString(deterministic=True)


def test_manifest_count_mismatch(dataset: list[Path]) -> None:
    manifest_path = dataset[0].parent / "v.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["shards"][0]["records"] = 99
    manifest_path.write_text(json.dumps(manifest))
    report = verify_files(dataset)
    assert any("holds 3 records, the manifest says 99" in str(p) for p in report.problems)


def test_gzip_cut_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "g"
    with TFRecordWriter(path, compression="gzip") as w:
        for i in range(100):
            w.write(bytes([i]) * 1000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = verify_files([path])
    assert any("gzip stream is cut short" in p.message and p.index is not None
               for p in report.problems), report.problems


def test_offsets_in_compressed_files_are_named_as_those_of_the_uncompressed_stream(
        tmp_path: Path) -> None:
    path = tmp_path / "g"
    with TFRecordWriter(path, compression="gzip") as w:
        for i in range(3):
            w.write(b"not an Example" if i == 1 else encode_example(
                {"filename": "f", "id": i}, ImageFields(b"x", 1, 1)))
    data = bytearray(path.read_bytes())
    data[-8] ^= 0x01  # the CRC-32 in the gzip trailer
    path.write_bytes(bytes(data))
    problems = [str(p) for p in verify_files([path]).problems]
    assert any(p.startswith(f"{path}, record 1, byte offset ") and
               " of the uncompressed stream: " in p for p in problems), problems
    assert any(p.startswith(f"{path}, after its last record (2), byte offset ") and
               p.endswith("of the uncompressed stream: the gzip stream is damaged (the "
                          "CRC-32 in its trailer does not match the data)")
               for p in problems), problems


def test_verify_json_says_which_offsets_are_of_the_uncompressed_stream(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with TFRecordWriter("g", compression="gzip") as w:
        for i in range(2):
            w.write(encode_example({"filename": "f", "id": i}, ImageFields(b"x", 1, 1)))
    data = bytearray(Path("g").read_bytes())
    data[-1] ^= 0x01  # the size in the gzip trailer
    Path("g").write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", "--json", "--no-decode", "g"]) == 1
    [problem] = json.loads(capsys.readouterr().out)["problems"]
    assert {k: problem[k] for k in ("file", "index", "uncompressed", "at_end")} == {
        "file": "g", "index": 2, "uncompressed": True, "at_end": True}
    assert problem["message"].startswith("the gzip stream is damaged (its trailer gives ")


def test_stats_checks(tmp_path: Path) -> None:
    def item(i: int, **bbox: Any) -> dict[str, Any]:
        box = {"xmin": [0.1], "xmax": [0.5], "ymin": [0.1], "ymax": [0.5], "label": [1]}
        box.update(bbox)
        return {"filename": "f", "id": f"r{i}", "class": {"label": i % 4 * 2},
                "object": {"bbox": box, "parts": {"x": [0.1, 0.2], "y": [0.1, 0.2],
                                                  "v": [2, 1]}}}

    items = [item(0), item(1, xmin=[0.6]), item(2, xmax=[1.2]), item(3, xmax=[0.1001]),
             dict(item(4), object={"count": 3, "bbox": {"xmin": [0.1], "xmax": [0.2],
                                                        "ymin": [0.1], "ymax": [0.2]}})]
    path = tmp_path / "s.tfrecord"
    _rewrite(path, [encode_example(i, ImageFields(b"x", 100, 100)) for i in items])
    result = stats([path])
    assert result["images"] == 5 and result["boxes"] == 5
    assert result["classes"] == {"0": 2, "2": 1, "4": 1, "6": 1}
    assert result["missing_classes"] == [1, 3, 5]
    checks = result["box_checks"]
    assert checks["reversed"]["examples"] == ["r1"]
    assert checks["outside [0, 1]"]["examples"] == ["r2"]
    assert checks["tiny (< 10 px²)"]["examples"] == ["r3"]
    assert checks["count mismatch"]["examples"] == ["r4"]
    assert result["keypoint_visibility"] == {"1": 4, "2": 4}
    assert result["box_width"]["max"] == pytest.approx(1.1)


def test_cli_verify_exit_codes(dataset: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", *map(str, dataset)]) == 0
    assert "OK: 2 files, 6 records" in capsys.readouterr().out
    data = dataset[0].read_bytes()
    dataset[0].write_bytes(data[:-3])
    assert main(["verify", "--json", *map(str, dataset)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["problems"][0]["index"] == 2
    assert main(["verify", "/nonexistent"]) == 1


def test_cli_inspect_stats_show_index(dataset: list[Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    shard = str(dataset[0])
    assert main(["inspect", shard, "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "--- record 1" in out and "image/object/bbox/xmin" in out
    assert "bytes, JPEG 64x48 RGB>" in out
    assert main(["inspect", shard, "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["image/id"] == "i0" and record["image/object/bbox/label"] == [1, 2]
    assert main(["stats", "--json", *map(str, dataset)]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 6
    assert main(["stats", shard]) == 0
    assert "classes: 1: 3" in capsys.readouterr().out
    out_png = tmp_path / "one.png"
    assert main(["show", shard, "--index", "1", "-o", str(out_png)]) == 0
    assert Image.open(out_png).size == (64, 48)
    assert main(["show", shard, "--grid", "3", "-o", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size == (640, 640)  # 2 x 2 cells of 320 px
    assert main(["show", shard, "--index", "7", "-o", str(out_png)]) == 2
    assert "there is no record 7 (the file holds 3)" in capsys.readouterr().err
    assert main(["index", shard]) == 0
    assert len((Path(shard).parent / f".{Path(shard).name}.idx").read_text().splitlines()) == 3


def test_drawing_marks_boxes_and_keypoints(tmp_path: Path) -> None:
    from tfrecord_lite.preview import draw

    white = Image.new("RGB", (100, 100), "white")
    import io

    buf = io.BytesIO()
    white.save(buf, "PNG")
    item = {"encoded": buf.getvalue(), "object": {
        "bbox": {"xmin": [0.1], "xmax": [0.9], "ymin": [0.2], "ymax": [0.8], "label": [0],
                 "text": ["x"]},
        "parts": {"x": [0.5, 0.3], "y": [0.5, 0.3], "v": [2, 1]}}}
    image = draw(item)
    assert image.getpixel((50, 50)) == (0, 255, 0)        # visible: filled dot
    assert image.getpixel((30, 30)) == (255, 255, 255)    # occluded: a ring, hollow centre
    assert image.getpixel((10, 60)) != (255, 255, 255)    # box edge
    assert image.getpixel((70, 60)) == (255, 255, 255)


def test_cli_inspect_damaged_file_no_traceback(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(b"this is not a tfrecord file at all")
    assert main(["inspect", str(path)]) == 1
    assert main(["stats", str(path)]) == 1
    err = capsys.readouterr().err
    assert "not a TFRecord file: it looks like text" in err and "Traceback" not in err
    assert main(["index", str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize("compression", ["gzip", "zlib"])
def test_damaged_compressed_stream_is_a_problem_not_a_crash(tmp_path: Path,
                                                            compression: str) -> None:
    path = tmp_path / f"x.{compression}"
    with TFRecordWriter(path, compression) as w:
        for i in range(200):
            w.write(bytes([i]) * 300 + os.urandom(50))
    data = path.read_bytes()
    for position in (len(data) // 3, len(data) // 2, len(data) - 6):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        path.write_bytes(bytes(damaged))
        report = verify_files([path], 1, False)
        assert not report.ok
        assert any("stream is damaged" in p.message or "CRC" in p.message
                   or "cut short" in p.message
                   for p in report.problems), [str(p) for p in report.problems]
        with pytest.raises(TFRecordLiteError):
            list(read_records(path))


def test_stats_with_a_huge_class_label_stays_small(tmp_path: Path) -> None:
    # A label of 2**62 leaves 2**62 classes missing: the first are listed, all counted.
    path = tmp_path / "l.tfrecord"
    labels = [3, 1 << 62]
    _rewrite(path, [encode_example({"filename": "f", "id": i, "class": {"label": label}},
                                   ImageFields(b"x", 1, 1)) for i, label in enumerate(labels)])
    result = stats([path])
    assert result["missing_classes"][:4] == [0, 1, 2, 4]
    assert len(result["missing_classes"]) == 1000
    assert result["missing_classes_count"] == (1 << 62) + 1 - 2


def test_verify_finds_objects_without_boxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            image_file: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    image_file("jpeg-rgb", name="a.jpg")
    empty = {"xmin": [], "xmax": [], "ymin": [], "ymax": []}
    items = [detection_item("a.jpg", "good"),
             {"filename": "a.jpg", "id": "masked",
              "object": {"count": 1, "mask": [[[0.1, 0.1, 0.5, 0.1, 0.5, 0.5]]]}},
             {"filename": "a.jpg", "id": "text", "object": {"bbox": {**empty,
                                                                     "text": ["cat"]}}}]
    Path("d.json").write_text(json.dumps(items))
    assert main(["create", "--dataset_path", "d.json", "--prefix", "p", "--output_dir",
                 "out", "--validation", "off"]) == 0
    capsys.readouterr()
    assert main(["verify", "out/p-*"]) == 1
    out = capsys.readouterr().out
    assert "record 0" not in out
    assert ("record 1, byte offset" in out and "image/object: lists of unequal lengths "
            "(bbox/xmin missing, bbox/xmax missing, bbox/ymin missing, bbox/ymax missing, "
            "bbox/label missing, mask 1)" in out)
    assert "image/object/count is 1, but the record holds 0 boxes" in out
    assert "record 2, byte offset" in out and "bbox/label missing, bbox/text 1)" in out


@pytest.mark.parametrize("written, given", [("gzip", "zlib"), ("zlib", "gzip"),
                                            ("none", "gzip"), ("none", "zlib")])
def test_a_compression_given_must_be_the_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        written: str, given: str) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkdir("out")
    with TFRecordWriter("out/t-00000-of-00001", compression=written) as w:
        for i in range(3):
            w.write(encode_example({"filename": "a.jpg", "id": str(i)},
                                   ImageFields(make_image_bytes("jpeg-rgb"), 48, 64, "JPEG")))
    assert main(["verify", "--compression", written, "out/t-*"]) == 0
    capsys.readouterr()
    assert main(["verify", "--compression", given, "out/t-*"]) == 1
    out = capsys.readouterr().out
    what = ("not compressed (a plain TFRecord file)" if written == "none"
            else f"{written.upper()}-compressed")
    assert "PROBLEM out/t-00000-of-00001" in out and (
        f"the file is {what}, not {given.upper()} as given: read it as "
        f"{'plain' if written == 'none' else written.upper()} (--compression {written};") in out
    with pytest.raises(CompressionMismatchError, match=f"--compression {written}"):
        list(read_records("out/t-00000-of-00001", compression=given))
