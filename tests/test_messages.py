"""Messages that name the thing: a file that is not what a command expects is named with
what was expected and what it looks like; no Python object's repr; a count of one is
singular."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest

from tfrecord_lite import TFRecordWriter, encode_example
from tfrecord_lite.cli import main
from tfrecord_lite.job import JobSummary
from tfrecord_lite.plural import count

from conftest import DEMO

OBJECT_REPR = re.compile(r"<[\w.]+ (?:name=|object at 0x)")
# A count of one followed by a plural noun ("1 of 2 items" is fine).
ONE_PLURAL = re.compile(r"(?<!of )(?<![\w.])1 (items|problems|files|records|objects|images|boxes|"
                        r"shards|classes|failures|warnings|keys|annotations|folders)\b")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "images").mkdir()
    shutil.copy(DEMO / "images" / "astronaut.jpg", tmp_path / "images" / "astronaut.jpg")
    Path(tmp_path / "images" / "notes.jpg").write_text("not an image at all\n")
    (tmp_path / "data.yaml").write_text("names:\n  - person\ntrain: images\n")
    (tmp_path / "dataset.json").write_text(json.dumps(
        [{"filename": "images/astronaut.jpg", "id": "a"}]))
    monkeypatch.chdir(tmp_path)
    return tmp_path


OUT = ["--prefix", "t", "--output_dir", "out"]
EXPECTED_A_LIST = "expected a JSON list of items (or JSON Lines"
EXPECTED_COCO = "expected COCO's instances JSON"


@pytest.mark.parametrize("argv, named, says", [
    (["create", "--dataset_path", "data.yaml", *OUT], "data.yaml",
     ["not valid JSON", EXPECTED_A_LIST]),
    (["create", "--dataset_path", "images/astronaut.jpg", *OUT], "images/astronaut.jpg",
     ["it looks like a JPEG image", EXPECTED_A_LIST]),
    (["from-coco", "data.yaml", "--images", "images", *OUT], "data.yaml",
     ["not a COCO annotation file: not JSON", "it looks like text", EXPECTED_COCO]),
    (["from-coco", "images/astronaut.jpg", "--images", "images", *OUT], "astronaut.jpg",
     ["not a COCO annotation file: not UTF-8 text", "it looks like a JPEG image"]),
    (["from-coco", "dataset.json", "--images", "images", *OUT], "dataset.json",
     ["not a COCO annotation file", EXPECTED_COCO]),
    (["from-csv", "images/astronaut.jpg", "--images", "images", *OUT], "astronaut.jpg",
     ["not a CSV file", "it looks like a JPEG image", "expected the Object Detection API CSV"]),
    (["from-yolo", "images/astronaut.jpg", *OUT], "astronaut.jpg", ["no such folder"]),
    (["from-folder", "images", "--label-map", "data.yaml", *OUT], "data.yaml",
     ["label map", "not JSON", "expected a JSON list of class names in label order"]),
])
def test_a_file_that_is_not_what_a_command_expects_is_named_with_what_was_expected(
        workspace: Path, argv: list[str], named: str, says: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err, err
    for text in says:
        assert text in err, err


def test_a_yaml_file_that_is_not_yaml_says_what_it_looks_like(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("yaml")
    shutil.copy("images/astronaut.jpg", "photo.yaml")
    assert main(["from-yolo", "photo.yaml", *OUT]) == 2
    err = capsys.readouterr().err
    assert "photo.yaml: not YAML: not UTF-8 text; it looks like a JPEG image" in err


def _tfrecord(path: str) -> None:
    with TFRecordWriter(path) as writer:
        writer.write(encode_example({"filename": "a.jpg", "id": "a", "height": 1,
                                     "width": 1}))


@pytest.mark.parametrize("command", ["verify", "inspect", "stats"])
def test_reading_a_file_that_is_not_a_tfrecord_says_so_and_what_it_looks_like(
        workspace: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    _tfrecord("plain")
    Path("packed").write_bytes(gzip.compress(Path("plain").read_bytes(), mtime=0))
    cases = [(["dataset.json"], "not a TFRecord file: it looks like JSON text"),
             (["images/astronaut.jpg"], "not a TFRecord file: it looks like a JPEG image"),
             (["data.yaml"], "not a TFRecord file: it looks like text"),
             (["packed", "--compression", "none"],
              "not a TFRecord file: it looks like GZIP-compressed data")]
    for args, message in cases:
        assert main([command, *args]) == 1
        captured = capsys.readouterr()
        assert message in captured.out + captured.err, (args, captured)
    assert main(["verify", "packed", "--compression", "none"]) == 1
    assert "(--compression gzip;" in capsys.readouterr().out
    assert main([command, "packed"]) == 0  # the compression detected: it reads


def test_a_damaged_first_header_of_a_tfrecord_file_is_still_damage(workspace: Path,
                                                                  capsys: pytest.CaptureFixture[str]
                                                                  ) -> None:
    _tfrecord("plain")
    data = bytearray(Path("plain").read_bytes())
    data[9] ^= 0xFF  # the length's CRC
    Path("damaged").write_bytes(bytes(data))
    assert main(["verify", "damaged"]) == 1
    assert "length CRC mismatch" in capsys.readouterr().out


def _record_with_image(path: str, encoded: bytes) -> None:
    with TFRecordWriter(path) as writer:
        writer.write(encode_example({"filename": "x.jpg", "id": "x", "encoded": encoded,
                                     "height": 8, "width": 8, "format": "JPEG",
                                     "colorspace": "RGB", "channels": 3}))


def test_no_python_object_repr_in_any_message(workspace: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    Path("fake.json").write_text(json.dumps([{"filename": "images/notes.jpg", "id": "n"}]))
    for more in (["--no-store_images"], []):
        assert main(["create", "--dataset_path", "fake.json", *OUT, "-q", *more]) == 1
        outputs.append(Path("out/t.unpublished-failures.json").read_text())
    voc = Path("voc")
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    shutil.copy("images/notes.jpg", voc / "JPEGImages" / "a.jpg")
    (voc / "Annotations" / "a.xml").write_text("<annotation><filename>a.jpg</filename>"
                                               "</annotation>")
    (voc / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    assert main(["from-voc", "voc", "--to-json", "voc.json"]) == 1
    _record_with_image("bad-image", b"\xff\xd8\xff not a JPEG")
    assert main(["verify", "bad-image"]) == 1
    assert main(["show", "bad-image", "-o", "bad.png"]) == 1
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err]
    text = "\n".join(outputs)
    assert "does not decode" in text and "not an image" in text
    assert not OBJECT_REPR.search(text), text


def test_a_count_of_one_is_singular_everywhere(workspace: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              caplog: pytest.LogCaptureFixture) -> None:
    item = {"filename": "images/astronaut.jpg", "id": "a", "mine": 1,
            "object": {"count": 2, "bbox": {"xmin": [0.1], "xmax": [0.5], "ymin": [0.1],
                                            "ymax": [0.5], "label": [1]}}}
    Path("one.json").write_text(json.dumps([item]))
    with caplog.at_level("INFO"):
        assert main(["create", "--dataset_path", "one.json", *OUT, "--validation",
                     "lenient"]) == 0
        assert main(["create", "--dataset_path", "one.json", *OUT, "--validate-only",
                     "--validation", "lenient"]) == 0
        assert main(["create", "--dataset_path", "one.json", *OUT]) == 1
        assert main(["verify", "out/*"]) == 1  # lenient wrote the count that disagrees
        assert main(["stats", "out/t-*"]) == 0
        assert main(["show", "out/t-*", "--grid", "1", "-o", "sheet.png"]) == 0
    yolo = Path("yolo")
    (yolo / "obj").mkdir(parents=True)
    shutil.copy("images/astronaut.jpg", yolo / "obj" / "1.jpg")
    (yolo / "obj.names").write_text("person\n")
    (yolo / "train.txt").write_text("obj/1.jpg\n")
    assert main(["from-yolo", "yolo", "--to-json", "yolo.json"]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err + caplog.text
    for expected in ("1 item was written with warnings", "1 item has warnings",
                     "every item failed", "mine (1 item)", "1 box is listed",
                     "FAILED: 1 file, 1 record, 1 image decoded, 1 problem",
                     "1 background image (no boxes, kept)", "from-yolo: 1 class"):
        assert expected in text, expected
    found = ONE_PLURAL.search(text)
    assert found is None, text[max(0, found.start() - 80):found.end() + 20]
    summary = JobSummary("t", "out", 1, written=1, seconds=1.0)
    assert "(1 item/s)" in summary.describe()


@pytest.mark.parametrize("n, phrase, expected", [
    (1, "items", "1 item"), (2, "items", "2 items"), (0, "items", "0 items"),
    (1, "boxes dropped (outside the image)", "1 box dropped (outside the image)"),
    (1, "background images (no boxes)", "1 background image (no boxes)"),
    (1, "objects are listed", "1 object is listed"), (1, "classes", "1 class"),
    (1, "shards were", "1 shard was"), (1, "entries", "1 entry"),
    (1, "polygons (as boxes)", "1 polygon (as boxes)"),
])
def test_one_helper_says_every_count(n: int, phrase: str, expected: str) -> None:
    assert count(n, phrase) == expected


def test_the_summary_names_the_compression(workspace: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"):
        assert main(["create", "--dataset_path", "dataset.json", *OUT, "--compression",
                     "gzip"]) == 0
    assert re.search(r"wrote 1 of 1 items to 1 shard \(GZIP, [\d.]+ KB\)", caplog.text)
    assert ('TensorFlow reads them with tf.data.TFRecordDataset(files, '
            'compression_type="GZIP")') in caplog.text
    caplog.clear()
    with caplog.at_level("INFO"):
        assert main(["create", "--dataset_path", "dataset.json", *OUT]) == 0
    assert re.search(r"wrote 1 of 1 items to 1 shard \([\d.]+ KB\)", caplog.text)
    assert "compression_type" not in caplog.text


@pytest.mark.parametrize("polygon, message", [
    ([[1, 2]], "polygon 0: 1 point; a polygon needs at least 3"),
    ([[1]], "polygon 0: 1 number, not x, y pairs"),
])
def test_a_count_of_one_in_a_mask_message(polygon: list[list[int]], message: str) -> None:
    from tfrecord_lite import masks
    from tfrecord_lite.errors import MaskError

    with pytest.raises(MaskError, match=re.escape(message)):
        masks.polygon_mask(polygon, masks.Frame(30, 40))


def test_a_count_of_one_in_a_yolo_message(workspace: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("yaml")
    root = Path("pose")
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    shutil.copy("images/astronaut.jpg", root / "images" / "train" / "a.jpg")
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("names: [person]\ntrain: images/train\nkpt_shape: [1, 3]\n")
    assert main(["from-yolo", "pose", "--to-json", "pose.json"]) == 1
    assert "expected 8 fields (class cx cy w h and 1 keypoint of 3 values" in \
        capsys.readouterr().err


@pytest.mark.parametrize("store", [[], ["--no-store-images"]])
def test_an_image_url_that_fails_says_what_happened_to_the_url(
        workspace: Path, capsys: pytest.CaptureFixture[str], store: list[str]) -> None:
    pytest.importorskip("fsspec")
    Path("urls.json").write_text(json.dumps([{"filename": "memory://nowhere/x.jpg",
                                              "id": "m"}]))
    assert main(["create", "--dataset_path", "urls.json", *OUT, *store]) == 1
    err = capsys.readouterr().err
    assert "memory://nowhere/x.jpg: no file at this URL" in err
    assert "file not found" not in err and "relative filenames" not in err


def test_an_unreachable_https_url_names_the_cause(workspace: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("aiohttp")  # fsspec's http support
    Path("urls.json").write_text(json.dumps([{"filename": "https://host.invalid/x.jpg",
                                              "id": "u"}]))
    assert main(["create", "--dataset_path", "urls.json", *OUT]) == 1
    err = capsys.readouterr().err
    assert "https://host.invalid/x.jpg: the URL could not be read: Cannot connect to host " \
        "host.invalid" in err
    assert "file not found" not in err and "relative filenames" not in err


def test_an_output_dir_that_is_a_file_is_a_usage_error(workspace: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    Path("taken").write_text("a file\n")
    for command in (["create", "--dataset_path", "dataset.json"], ["from-folder", "images"]):
        assert main([*command, "--prefix", "t", "--output_dir", "taken"]) == 2
        err = capsys.readouterr().err
        assert "argument --output_dir/--output-dir: taken is a file, not a directory" in err
        assert "Traceback" not in err
    assert Path("taken").read_text() == "a file\n"


def test_an_empty_prefix_is_a_usage_error(workspace: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["create", "--dataset_path", "dataset.json"],
                 ["--dataset_path", "dataset.json"]):  # the original command line
        assert main([*argv, "--prefix", "", "--output_dir", "out"]) == 2
        assert "argument --prefix: the prefix may not be empty" in capsys.readouterr().err
    assert not Path("out").exists()
