"""What the read tools and the create summary say of records and items that are not as
they claim: a record whose image/width x image/height is not its image's, an image that
does not decode (no object reprs), a file that fails its item (named by its id)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfrecord_lite import TFRecordWriter, encode_example, iterate
from tfrecord_lite.cli import main
from tfrecord_lite.errors import ImageError
from tfrecord_lite.example import ImageFields
from tfrecord_lite.torch.samples import training_sample

from conftest import detection_item, make_image_bytes


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_show_reports_a_record_size_that_is_not_its_images_and_draws_the_image(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = ImageFields(make_image_bytes("jpeg-rgb", 80, 60), 1 << 62, 80)
    Path("out").mkdir()
    with TFRecordWriter("out/odd-00000-of-00001") as writer:
        writer.write(encode_example(detection_item("a.jpg", "odd"), image))
    assert main(["show", "out/odd-*", "-o", "odd.png"]) == 0
    out = capsys.readouterr().out
    assert "4611686018427387904" in out and "scaled down" not in out
    assert ("image/width x image/height say 80x4611686018427387904, but the image is 80x60: "
            "drawn at its own size") in out
    assert "wrote odd.png: record 0 (id 'odd'), 80x60 px" in out


def test_torch_samples_name_a_mask_that_does_not_decode_without_object_reprs(
        work: Path) -> None:
    item = detection_item("a.jpg", "m")
    item["object"]["mask"] = [b"not a png", b"not a png"]
    Path("out").mkdir()
    image = ImageFields(make_image_bytes("jpeg-rgb", 64, 48), 48, 64)
    with TFRecordWriter("out/m-00000-of-00001") as writer:
        writer.write(encode_example(item, image))
    (record,) = iterate(["out/m-00000-of-00001"])
    with pytest.raises(ImageError) as info:
        training_sample(record, "out/m-00000-of-00001", 0, 0)
    assert "image/object/mask[0]: does not decode: cannot identify image file" in \
        str(info.value)
    assert " object at 0x" not in str(info.value)


def test_create_summary_names_the_item_of_a_file_that_fails(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("bad.jpg").write_bytes(b"garbage")
    Path("good.jpg").write_bytes(make_image_bytes("jpeg-rgb", 64, 48))
    Path("items.json").write_text(json.dumps([{"filename": "missing.jpg", "id": "x1"},
                                              {"filename": "bad.jpg", "id": "x2"},
                                              {"filename": "good.jpg", "id": "x3"}]))
    assert main(["--dataset_path", "items.json", "--prefix", "t", "--output_dir", "out"]) == 1
    err = capsys.readouterr().err
    assert "  id 'x1': missing.jpg: file not found\n" in err
    assert "  id 'x2': bad.jpg: not an image" in err
    failures = json.loads(Path("out/t.failures.json").read_text())
    assert failures[0]["error_msg"] == "missing.jpg: file not found"  # as it was


def test_verify_says_how_many_records_it_read_before_damage_stopped_it(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("a.jpg").write_bytes(make_image_bytes("jpeg-rgb", 64, 48))
    Path("items.json").write_text(json.dumps([detection_item("a.jpg", str(i))
                                              for i in range(6)]))
    assert main(["--dataset_path", "items.json", "--prefix", "t", "--output_dir", "out",
                 "--shards", "2", "--store_images", "-q"]) == 0
    for shard in sorted(Path("out").glob("t-*")):
        data = bytearray(shard.read_bytes())
        data[3] ^= 0xFF  # the first record's length: nothing after it can be found
        shard.write_bytes(bytes(data))
    assert main(["verify", "out/t-*"]) == 1
    assert ("FAILED: 2 files, 0 records read (reading stopped at the damage in 2 files: "
            "what follows it is unchecked), 0 images decoded, 4 problems") in \
        capsys.readouterr().out
    assert main(["verify", "out/t-*", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["files_read_up_to_damage"] == 2
