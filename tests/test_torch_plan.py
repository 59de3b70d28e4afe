"""The parts of the PyTorch datasets that need no PyTorch: who reads which records
(``tfrecord_lite.torch.plan``), records as training arrays (``samples``), and reading on
past damage (``stream``). The datasets themselves: tests/test_torch.py."""

from __future__ import annotations

import gzip
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfrecord_lite import CorruptRecordError, ImageError, RecordDecodeError, TruncatedRecordError
from tfrecord_lite.reader import decode_image, decode_record, read_framed
from tfrecord_lite.torch import plan
from tfrecord_lite.torch.samples import decode_rgb, training_sample
from tfrecord_lite.torch.stream import Damage, records

from conftest import make_image_bytes
from training_shards import HEIGHT, JPEG, WIDTH, class_ids, instance_masks, record, write_shards

# -- who reads what ------------------------------------------------------------------------


def _epoch(sizes: list[int], readers: int, seed: int | None, epoch: int
           ) -> list[list[tuple[int, int]]]:
    """What each reader gets of shards of ``sizes`` records: (shard, record) pairs."""
    order = plan.shard_order(len(sizes), seed, epoch)
    return [list(plan.take(plan.share(order, r, readers),
                           lambda s: [(s, j) for j in range(sizes[s])]))
            for r in range(readers)]


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(0, 7), max_size=9), readers=st.integers(1, 9),
       seed=st.none() | st.integers(0, 2**63), epoch=st.integers(0, 50))
def test_every_record_reaches_exactly_one_reader(sizes: list[int], readers: int,
                                                  seed: int | None, epoch: int) -> None:
    seen = Counter(pair for share in _epoch(sizes, readers, seed, epoch) for pair in share)
    assert seen == Counter((s, j) for s, size in enumerate(sizes) for j in range(size))


@settings(max_examples=200, deadline=None)
@given(shards=st.integers(0, 12), size=st.integers(0, 9), readers=st.integers(1, 8),
       seed=st.none() | st.integers(0, 1000))
def test_readers_of_equal_shards_get_equal_shares_to_within_one(
        shards: int, size: int, readers: int, seed: int | None) -> None:
    counts = [len(share) for share in _epoch([size] * shards, readers, seed, 0)]
    assert max(counts) - min(counts) <= 1


def test_with_enough_shards_each_is_read_whole_by_one_reader() -> None:
    assert plan.share(list(range(8)), 1, 4) == plan.Share((1, 5), (), 1, 4)
    # 6 shards, 4 readers: 4 whole, the last 2 split by record among all readers
    assert plan.share([3, 0, 5, 1, 4, 2], 2, 4) == plan.Share((5,), (4, 2), 2, 4)
    # fewer shards than readers: every shard split by record
    assert plan.share([0], 2, 3) == plan.Share((), (0,), 2, 3)
    assert [r for r in range(7) if plan.share([0], 1, 3).keeps(r)] == [1, 4]


def test_share_refuses_a_reader_out_of_range() -> None:
    with pytest.raises(ValueError, match="reader 4 of 4"):
        plan.share([0, 1], 4, 4)


def test_shard_order_is_new_each_epoch_and_the_same_for_the_same_seed_and_epoch() -> None:
    assert plan.shard_order(5, None, 3) == [0, 1, 2, 3, 4]
    orders = [plan.shard_order(20, 7, epoch) for epoch in range(4)]
    assert all(sorted(o) == list(range(20)) for o in orders)
    assert len({tuple(o) for o in orders}) == 4
    assert plan.shard_order(20, 7, 2) == orders[2]
    assert plan.shard_order(20, 8, 2) != orders[2]


@pytest.mark.slow
def test_shard_order_does_not_depend_on_the_hash_seed() -> None:
    code = "from tfrecord_lite.torch import plan; print(plan.shard_order(30, 11, 4))"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={"PYTHONHASHSEED": str(h)}, check=True).stdout
               for h in (1, 2)}
    assert outputs == {f"{plan.shard_order(30, 11, 4)}\n"}


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 60), buffer_size=st.integers(0, 70), seed=st.integers(0, 99))
def test_the_shuffle_buffer_gives_every_record_once(n: int, buffer_size: int,
                                                    seed: int) -> None:
    out = list(plan.shuffled(range(n), buffer_size, plan.rng(seed)))
    assert sorted(out) == list(range(n))
    assert out == list(plan.shuffled(range(n), buffer_size, plan.rng(seed)))
    if buffer_size <= 1:
        assert out == list(range(n))


def test_the_shuffle_buffer_mixes_within_its_size() -> None:
    out = list(plan.shuffled(range(1000), 100, plan.rng(1)))
    assert out != list(range(1000))
    assert out != list(plan.shuffled(range(1000), 100, plan.rng(2)))
    # the record in place i was drawn from the buffer of the next 100 not yet given
    assert all(record < i + 100 for i, record in enumerate(out))
    assert any(record == i + 99 for i, record in enumerate(out))


# -- records as training arrays ------------------------------------------------------------

def _sample(data: bytes, **kwargs: object) -> dict:
    return training_sample(decode_record(data, "out/t", 3, 100), "out/t", 3, 100, **kwargs)


def test_a_record_becomes_an_image_boxes_and_labels() -> None:
    sample = _sample(record(7))
    image = sample["image"]
    assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
    assert image.flags.writeable
    np.testing.assert_array_equal(image, decode_image(JPEG))
    assert sample["id"] == "7"
    assert sample["label"] == 2 and sample["label"].dtype == np.int64
    np.testing.assert_array_equal(sample["boxes"], np.array(
        [[0.1, 0.2, 0.6, 0.7], [0.5, 0.4, 0.9, 0.65]], dtype=np.float32))
    assert sample["boxes"].dtype == np.float32
    assert sample["labels"].tolist() == [1, 2] and sample["labels"].dtype == np.int64
    assert "masks" not in sample and "segmentation" not in sample
    item = sample["item"]
    assert "encoded" not in item and item["object"]["bbox"]["text"] == ["bird", "cat"]
    assert item["filename"] == "images/7.jpg"


def test_channels_first_puts_the_channels_first() -> None:
    sample = _sample(record(1), channels_first=True)
    assert sample["image"].shape == (3, HEIGHT, WIDTH)
    assert sample["image"].flags.c_contiguous
    np.testing.assert_array_equal(sample["image"], decode_image(JPEG).transpose(2, 0, 1))


@pytest.mark.parametrize("kind", ["jpeg-rgb", "jpeg-progressive", "jpeg-gray", "jpeg-cmyk",
                                  "png-rgb", "png-rgba", "png-gray", "png-palette"])
def test_every_image_is_decoded_to_the_pixels_pillow_gives_in_three_channels(kind: str) -> None:
    data = make_image_bytes(kind)
    reference = decode_image(data)
    if reference.shape[2] == 1:
        reference = np.repeat(reference, 3, axis=2)
    image = decode_rgb(data, "here")
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, reference)


def test_an_image_that_does_not_decode_names_the_record() -> None:
    with pytest.raises(ImageError, match=r"out/t, record 3, byte offset 100"):
        decode_rgb(JPEG[:200], "out/t, record 3, byte offset 100")


def test_a_record_without_boxes_gives_empty_arrays_of_the_right_shape() -> None:
    from tfrecord_lite import encode_example

    data = encode_example({"filename": "a.jpg", "id": "x", "encoded": JPEG, "height": HEIGHT,
                           "width": WIDTH, "format": "JPEG", "colorspace": "RGB",
                           "channels": 3})
    sample = _sample(data)
    assert sample["boxes"].shape == (0, 4) and sample["labels"].shape == (0,)
    assert sample["label"] == -1


def test_a_record_without_its_image_says_to_read_without_decoding() -> None:
    from tfrecord_lite import encode_example

    data = encode_example({"filename": "a.jpg", "id": "x", "height": 4, "width": 4})
    with pytest.raises(RecordDecodeError, match=r"out/t, record 3.*image/encoded is missing.*"
                                                r"decode_images=False"):
        _sample(data)


def test_box_lists_of_different_lengths_name_the_key() -> None:
    from tfrecord_lite.proto import example_pb2

    example = example_pb2.Example.FromString(record(0))
    example.features.feature["image/object/bbox/ymax"].float_list.value.append(0.5)
    with pytest.raises(RecordDecodeError, match=r"out/t, record 3, byte offset 100: "
                                                r"image/object/bbox/ymax holds 3 values"):
        _sample(example.SerializeToString())


def test_masks_and_the_class_id_image_are_decoded_when_the_record_holds_them() -> None:
    sample = _sample(record(4, masks=True))
    masks = sample["masks"]
    assert masks.shape == (2, HEIGHT, WIDTH) and masks.dtype == np.uint8
    np.testing.assert_array_equal(masks, np.stack(instance_masks(4)))
    assert set(np.unique(masks)) == {0, 1}
    segmentation = sample["segmentation"]
    assert segmentation.shape == (HEIGHT, WIDTH) and segmentation.dtype == np.uint8
    np.testing.assert_array_equal(segmentation, class_ids(4))  # palette indices, 255 kept
    item = sample["item"]
    assert "mask" not in item["object"]
    assert item["segmentation"] == {"class": {"format": "PNG"}}


def test_the_masks_a_job_writes_are_training_samples(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Records of write_dataset with masks (polygons, RLE) and a palette label image,
    downscaled by max_side: the arrays are the stored masks and class ids."""
    from PIL import Image

    from tfrecord_lite import masks, rle, write_dataset

    monkeypatch.chdir(tmp_path)
    Path("a.jpg").write_bytes(make_image_bytes("jpeg-rgb", 128, 96))
    ids = np.zeros((96, 128), np.uint8)
    ids[10:60, 20:90], ids[70] = 7, 255
    palette = Image.frombytes("P", (128, 96), ids.tobytes())
    palette.putpalette([0, 0, 0] + [200] * 765)
    palette.save("labels.png")
    polygon = [[10.5, 8, 100, 12, 90, 80, 14, 70.25]]
    crowd = {"size": [96, 128], "counts": rle.encode(ids == 7).tolist()}
    item = {"filename": "a.jpg", "id": "a", "segmentation": "labels.png",
            "object": {"bbox": {"xmin": [0.1, 0.2], "xmax": [0.8, 0.7], "ymin": [0.1, 0.1],
                                "ymax": [0.8, 0.6], "label": [1, 2]},
                       "mask": [polygon, crowd], "is_crowd": [0, 1]}}
    summary = write_dataset([item], "train", "out", 1, 1, max_side=64, progress=False)
    assert summary.failed == 0
    (path,) = Path("out").glob("train-*")
    (index, offset, data), = read_framed(str(path))
    sample = training_sample(decode_record(data, str(path), index, offset), str(path), index,
                             offset)
    frame = masks.Frame(96, 128, 48, 64)
    assert sample["image"].shape == (48, 64, 3)
    np.testing.assert_array_equal(sample["masks"], np.stack(
        [masks.polygon_mask(polygon, frame), masks.resize_nearest(ids == 7, frame)]))
    np.testing.assert_array_equal(sample["segmentation"], masks.resize_nearest(ids, frame))
    assert sample["item"]["segmentation"] == {"class": {"format": "png"}}


def _with_masks(masks: list[bytes]) -> bytes:
    from tfrecord_lite.proto import example_pb2

    example = example_pb2.Example.FromString(record(0))
    example.features.feature["image/object/mask"].bytes_list.value.extend(masks)
    return example.SerializeToString()


def test_masks_given_as_one_bit_images_come_out_as_zeros_and_ones() -> None:
    from training_shards import png

    sample = _sample(_with_masks([png(m, "1") for m in instance_masks(2)]))
    np.testing.assert_array_equal(sample["masks"], np.stack(instance_masks(2)))


@pytest.mark.parametrize("masks, error, message", [
    (lambda png: [png(np.zeros((HEIGHT, WIDTH))), png(np.zeros((HEIGHT, WIDTH + 1)))],
     RecordDecodeError, r"image/object/mask\[1\] is 65x48, the image 64x48"),
    (lambda png: [png(np.zeros((HEIGHT, WIDTH)))], RecordDecodeError,
     r"image/object/mask holds 1 masks for 2 boxes"),
    (lambda png: [png(np.zeros((HEIGHT, WIDTH))), make_image_bytes("png-rgb")], ImageError,
     r"image/object/mask\[1\]: expected a single-channel 8-bit image, got mode RGB"),
    (lambda png: [b"\x89PNG\r\n\x1a\n-cut", png(np.zeros((HEIGHT, WIDTH)))], ImageError,
     r"image/object/mask\[0\]: does not decode"),
])
def test_masks_that_do_not_fit_name_the_record_and_the_key(masks: object, error: type,
                                                           message: str) -> None:
    from training_shards import png

    with pytest.raises(error, match=r"out/t, record 3, byte offset 100.*" + message):
        _sample(_with_masks(masks(png)))  # type: ignore[operator]


# -- reading on past damage ----------------------------------------------------------------

def _events(path: Path) -> list[object]:
    return [e if isinstance(e, Damage) else e[0] for e in records(path)]


@pytest.mark.parametrize("compression", ["none", "gzip", "zlib"])
def test_the_stream_gives_what_the_reader_gives(tmp_path: Path, compression: str) -> None:
    [path] = write_shards(tmp_path, [6], [compression])
    assert list(records(path)) == list(read_framed(path))


def _damage_data(path: Path, *indexes: int) -> list[int]:
    """Flip a byte in the data of these records of a plain shard; their offsets."""
    offsets = [offset for _, offset, _ in read_framed(path)]
    raw = bytearray(path.read_bytes())
    for index in indexes:
        raw[offsets[index] + 40] ^= 0xFF
    path.write_bytes(bytes(raw))
    return [offsets[index] for index in indexes]


def test_a_record_whose_data_is_damaged_is_marked_and_reading_goes_on(tmp_path: Path) -> None:
    [path] = write_shards(tmp_path, [6])
    first, second = _damage_data(path, 1, 4)
    events = _events(path)
    assert [e for e in events if not isinstance(e, Damage)] == [0, 2, 3, 5]
    marks = [e for e in events if isinstance(e, Damage)]
    assert [(m.error.index, m.error.offset, m.rest_lost) for m in marks] == [
        (1, first, False), (4, second, False)]
    assert all(isinstance(m.error, CorruptRecordError) and m.error.path == str(path)
               for m in marks)
    assert events.index(marks[0]) == 1 and events.index(marks[1]) == 4


def test_damage_in_a_compressed_stream_of_intact_frames_is_read_past(tmp_path: Path) -> None:
    [plain] = write_shards(tmp_path / "plain", [5])
    _damage_data(plain, 2)
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    events = _events(path)
    assert [e for e in events if not isinstance(e, Damage)] == [0, 1, 3, 4]
    assert events[2].error.index == 2 and not events[2].rest_lost  # type: ignore[union-attr]


def test_a_damaged_header_ends_the_shard_with_a_mark(tmp_path: Path) -> None:
    [path] = write_shards(tmp_path, [5])
    offsets = [offset for _, offset, _ in read_framed(path)]
    raw = bytearray(path.read_bytes())
    raw[offsets[3] + 2] ^= 0x01  # the length field
    path.write_bytes(bytes(raw))
    *good, mark = _events(path)
    assert good == [0, 1, 2]
    assert isinstance(mark, Damage) and mark.rest_lost and mark.error.index == 3


def test_a_cut_shard_ends_with_a_mark(tmp_path: Path) -> None:
    [path] = write_shards(tmp_path, [4])
    path.write_bytes(path.read_bytes()[:-30])
    *good, mark = _events(path)
    assert good == [0, 1, 2]
    assert isinstance(mark, Damage) and mark.rest_lost
    assert isinstance(mark.error, TruncatedRecordError) and mark.error.index == 3


def test_a_damaged_gzip_stream_ends_the_shard_with_a_mark(tmp_path: Path) -> None:
    [path] = write_shards(tmp_path, [30], ["gzip"])
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    events = _events(path)
    mark = events[-1]
    assert isinstance(mark, Damage) and mark.rest_lost
    assert isinstance(mark.error, CorruptRecordError) and "gzip" in str(mark.error)
    good = [e for e in events if isinstance(e, int)]
    assert good == sorted(set(good)) and len(good) < 30


def _gzip_of(plain: bytes, tmp_path: Path, kind: str = "gzip") -> Path:
    path = tmp_path / f"t.{kind}"
    path.write_bytes(gzip.compress(plain) if kind == "gzip" else zlib.compress(plain))
    return path


@pytest.mark.parametrize("damage", ["gzip crc", "gzip size", "zlib adler", "gzip cut",
                                    "zlib cut"])
def test_a_damaged_trailer_after_the_last_record_loses_no_record(tmp_path: Path,
                                                                damage: str) -> None:
    [plain] = write_shards(tmp_path / "plain", [5])
    kind, how = damage.split()
    path = _gzip_of(plain.read_bytes(), tmp_path, kind)
    raw = bytearray(path.read_bytes())
    if how == "cut":
        raw = raw[:-2]
    else:
        raw[{"crc": -8, "size": -1, "adler": -1}[how]] ^= 0x01
    path.write_bytes(bytes(raw))
    *good, mark = _events(path)
    assert good == [0, 1, 2, 3, 4]
    assert isinstance(mark, Damage) and mark.rest_lost and not mark.record_lost
    assert mark.error.at_end and mark.error.index == 5
    size = plain.stat().st_size
    assert str(mark.error).startswith(
        f"{path}, after its last record (4), byte offset {size} of the uncompressed stream: "
        f"the {kind} stream is ")


def test_a_damaged_trailer_after_data_that_ends_inside_a_record_loses_that_record(
        tmp_path: Path) -> None:
    [plain] = write_shards(tmp_path / "plain", [5])
    path = _gzip_of(plain.read_bytes()[:-7], tmp_path)
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0x01
    path.write_bytes(bytes(raw))
    *good, mark = _events(path)
    assert good == [0, 1, 2, 3]
    assert isinstance(mark, Damage) and mark.rest_lost and mark.record_lost
    assert not mark.error.at_end and mark.error.index == 4
    assert "record 4, byte offset" in str(mark.error)


def test_a_damaged_trailer_before_another_member_ends_the_shard(tmp_path: Path) -> None:
    [plain] = write_shards(tmp_path / "plain", [4])
    data = plain.read_bytes()
    member = bytearray(gzip.compress(data))
    member[-8] ^= 0x01
    path = tmp_path / "t.gz"
    path.write_bytes(bytes(member) + gzip.compress(data))
    *good, mark = _events(path)
    assert good == [0, 1, 2, 3]
    assert isinstance(mark, Damage) and mark.rest_lost and mark.record_lost
    assert not mark.error.at_end


def test_offsets_in_compressed_shards_are_said_to_be_of_the_uncompressed_stream(
        tmp_path: Path) -> None:
    [plain] = write_shards(tmp_path / "plain", [5])
    [offset] = _damage_data(plain, 2)
    path = _gzip_of(plain.read_bytes(), tmp_path)
    mark = _events(path)[2]
    assert isinstance(mark, Damage)
    assert (f"{path}, record 2, byte offset {offset} of the uncompressed stream: data CRC"
            in str(mark.error))
    with pytest.raises(CorruptRecordError,
                       match=f"record 2, byte offset {offset} of the uncompressed stream"):
        list(read_framed(path))
    with pytest.raises(CorruptRecordError, match=rf"record 2, byte offset {offset}: data"):
        list(read_framed(plain))
    with pytest.raises(RecordDecodeError, match="byte offset 7 of the uncompressed stream"):
        decode_record(b"\xff", "t.gz", 1, 7, uncompressed=True)
    with pytest.raises(ImageError, match="byte offset 7 of the uncompressed stream"):
        training_sample({"encoded": b"not an image"}, "t.gz", 1, 7, uncompressed=True)


# -- without PyTorch -----------------------------------------------------------------------

def test_the_datasets_say_how_to_install_pytorch(monkeypatch: pytest.MonkeyPatch) -> None:
    import tfrecord_lite.torch as module

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails
    for name in ("TFRecordDataset", "IndexedTFRecordDataset", "collate"):
        monkeypatch.delitem(vars(module), name, raising=False)
        with pytest.raises(ImportError, match=rf"tfrecord_lite.torch.{name} needs PyTorch, "
                                              r"any release from 2.0 on; from a clone: "
                                              r"pip install '\.\[torch\]'"):
            getattr(module, name)
