"""tfrecord_lite.torch with real PyTorch (run by `make test-torch`, in its own venv):
DataLoader workers, ranks (given, and two real ones under torchrun with gloo),
shuffling, random access, damage, decoded samples, and the training loop of
docs/torch.md."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfrecord_lite import CorruptRecordError, IndexFileError, TruncatedRecordError
from tfrecord_lite.cli import main
from tfrecord_lite.reader import decode_image, read_framed

from conftest import DEMO, ROOT
from training_shards import HEIGHT, JPEG, WIDTH, class_ids, ids, instance_masks, write_shards

# Four workers on a machine of two cores is what the tests ask for: PyTorch's warning
# about it is expected.
pytestmark = [pytest.mark.torch,
              pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")]

# Skipped where PyTorch is absent; `make test-torch` imports it first, so there a missing
# PyTorch fails instead.
torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from tfrecord_lite.torch import IndexedTFRecordDataset, TFRecordDataset, collate  # noqa: E402

# (records per shard, compression per shard): one shard (split by record), three shards
# of every compression (by shard and by record), eight shards (by shard).
LAYOUTS = {
    "1 shard": ([25], ["none"]),
    "3 shards, plain gzip zlib": ([9, 7, 8], ["none", "gzip", "zlib"]),
    "8 shards": ([4, 3, 5, 4, 2, 6, 3, 4], ["none"] * 8),
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tests read relative paths, as users do."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _ids(loader: Any) -> list[str]:
    return [item["id"] for batch in loader for item in batch]


def _loader(dataset: Any, workers: int, **kwargs: Any) -> DataLoader:
    return DataLoader(dataset, batch_size=3, num_workers=workers, collate_fn=list, **kwargs)


# -- every record once ---------------------------------------------------------------------

@pytest.mark.parametrize("workers", [0, 2, 4])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("shuffle", [False, True])
def test_each_record_once_per_epoch_across_dataloader_workers(
        workdir: Path, workers: int, layout: str, shuffle: bool) -> None:
    sizes, compressions = LAYOUTS[layout]
    write_shards(workdir / "out", sizes, compressions)
    dataset = TFRecordDataset("out/train-*", shuffle=shuffle, seed=1, buffer_size=4)
    seen = _ids(_loader(dataset, workers))
    assert Counter(seen) == Counter(ids(sum(sizes)))


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_record_once_across_ranks_and_their_workers(workdir: Path, world_size: int,
                                                         layout: str) -> None:
    sizes, compressions = LAYOUTS[layout]
    write_shards(workdir / "out", sizes, compressions)
    seen: list[str] = []
    for rank in range(world_size):
        dataset = TFRecordDataset("out/train-*", shuffle=True, seed=9, rank=rank,
                                  world_size=world_size)
        mine = _ids(_loader(dataset, 2))
        assert mine, f"rank {rank} read nothing"
        seen += mine
    assert Counter(seen) == Counter(ids(sum(sizes)))


def test_two_torchrun_ranks_on_gloo_read_each_record_once_per_epoch(workdir: Path) -> None:
    write_shards(workdir / "out", [6, 5, 7], ["none", "gzip", "none"])
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
         "2", str(ROOT / "tests" / "torch_ranks.py"), "out/train-*", "result.json"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(Path("result.json").read_text())
    assert result["ranks"] == [[0, 2], [1, 2]]
    for ranks in result["epochs"]:
        assert all(ranks), "a rank read nothing"
        assert Counter(i for rank in ranks for i in rank) == Counter(ids(18))
    assert result["epochs"][0] != result["epochs"][1]  # a new order each epoch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawned_ranks(context: str, **kwargs: Any) -> list[Any]:
    """What each of two ranks started by mp.spawn read (see tests/torch_spawned_ranks.py):
    [ids or the error, (rank, world size)] per rank."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "torch_spawned_ranks.py"), "out/train-*",
         "result.json", str(_free_port()), context, json.dumps(kwargs)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return list(json.loads(Path("result.json").read_text()))


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_ranks_of_a_process_group_made_after_the_dataset_read_each_record_once(
        workdir: Path, context: str) -> None:
    write_shards(workdir / "out", [6, 5, 7, 4, 3], ["none", "gzip", "none", "none", "zlib"])
    ranks = _spawned_ranks(context, shuffle=True, seed=3)
    assert [tuple(r[1]) for r in ranks] == [(0, 2), (1, 2)]
    assert all(r[0] for r in ranks), "a rank read nothing"
    assert Counter(i for r in ranks for i in r[0]) == Counter(ids(25))


def test_shuffling_without_a_seed_fails_when_the_ranks_are_found_at_iteration(
        workdir: Path) -> None:
    write_shards(workdir / "out", [6, 5])
    for ids_or_error, _ in _spawned_ranks("fork", shuffle=True):
        assert "ValueError: shuffle=True across 2 ranks needs the same seed" in ids_or_error


def test_the_rank_is_found_when_an_epoch_starts_not_when_the_dataset_is_made(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_shards(workdir / "out", [5, 5, 5, 5])
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dataset = TFRecordDataset("out/train-*", shuffle=True, seed=4)
    unseeded = TFRecordDataset("out/train-*", shuffle=True)
    assert dataset.rank_and_world_size() == (0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert dataset.rank_and_world_size() == (1, 2)
    for workers in (0, 2):
        second = _ids(_loader(dataset, workers))
        monkeypatch.setenv("RANK", "0")
        first = _ids(_loader(dataset, workers))
        monkeypatch.setenv("RANK", "1")
        assert len(first) == len(second) == 10
        assert Counter(first + second) == Counter(ids(20))
    with pytest.raises(ValueError, match="across 2 ranks needs the same seed"):
        unseeded.set_epoch(1)
    with pytest.raises(ValueError, match="across 2 ranks needs the same seed"):
        _ids(_loader(unseeded, 0))


def test_a_pattern_expands_to_shards_only_and_a_list_works_as_well(workdir: Path) -> None:
    paths = write_shards(workdir / "out", [3, 4])
    (workdir / "out" / "train.manifest.json").write_text("{}")
    main(["index", "out/train-00000-of-00002"])
    dataset = TFRecordDataset("out/*")
    assert dataset.files == [os.path.join("out", p.name) for p in paths]
    assert sorted(_ids(_loader(dataset, 0)), key=int) == ids(7)
    listed = TFRecordDataset([paths[1], str(paths[0])])
    assert _ids(_loader(listed, 0)) == ids(7)[3:] + ids(7)[:3]


def test_shards_behind_a_url_are_read_too(workdir: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    paths = write_shards(workdir / "out", [4, 3, 5], ["none", "gzip", "none"])
    _damage(paths[2], 1)
    memory = fsspec.filesystem("memory")
    for path in paths:
        memory.pipe(f"/bucket/{path.name}", path.read_bytes())
    try:
        dataset = TFRecordDataset("memory://bucket/train-*", shuffle=True, seed=1,
                                  skip_damaged=True)
        assert [f.rsplit("/", 1)[1] for f in dataset.files] == [p.name for p in paths]
        assert Counter(_ids(_loader(dataset, 2))) == Counter(ids(12)[:8] + ids(12)[9:])
        assert dataset.skipped == 1
    finally:
        memory.rm("/bucket", recursive=True)


def test_a_pattern_that_matches_nothing_is_named(workdir: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"out/val-\*: no file matches this pattern"):
        TFRecordDataset("out/val-*")
    with pytest.raises(FileNotFoundError, match=r"no such file: out/train-00000"):
        TFRecordDataset(["out/train-00000"])


def test_a_folder_is_refused_as_a_path_and_skipped_with_a_note_by_a_pattern(
        workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = write_shards(workdir / "sub", [3, 4])
    write_shards(workdir / "sub" / "val", [2])
    for folder in ("sub", "sub/"):
        with pytest.raises(IsADirectoryError, match=rf"^{folder} is a directory: give its "
                                                    r"files, e.g. sub/\* or sub/PREFIX-\*$"):
            TFRecordDataset(folder)
        with pytest.raises(IsADirectoryError, match="is a directory"):
            IndexedTFRecordDataset(["sub/train-00000-of-00002", folder])
    with caplog.at_level(logging.WARNING, logger="tfrecord_lite.torch.datasets"):
        dataset = TFRecordDataset("sub/*")
    assert dataset.files == [os.path.join("sub", p.name) for p in paths]
    assert "sub/*: skipped 1 folder: sub/val" in caplog.text
    assert sorted(_ids(_loader(dataset, 0)), key=int) == ids(7)


def test_a_shard_given_twice_is_read_once_where_it_first_comes(
        workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_shards(workdir / "out", [3, 2])
    os.symlink("train-00000-of-00002", workdir / "out" / "link")
    twice = ["out/train-00001-of-00002", "out/train-*", "./out/train-00000-of-00002",
             "out/link", str(workdir / "out" / "train-00001-of-00002")]
    with caplog.at_level(logging.WARNING, logger="tfrecord_lite.torch.datasets"):
        dataset = TFRecordDataset(twice)
    assert dataset.files == ["out/train-00001-of-00002", "out/train-00000-of-00002"]
    assert _ids(_loader(dataset, 0)) == ids(5)[3:] + ids(5)[:3]
    assert ("out/train-00001-of-00002 is given more than once: it is read once"
            in caplog.text)
    assert ("out/link is given more than once (also as out/train-00000-of-00002)"
            in caplog.text)
    assert len(IndexedTFRecordDataset(twice)) == 5


def test_paths_may_be_bytes(workdir: Path) -> None:
    write_shards(workdir / "out", [3, 2])
    assert len(_ids(_loader(TFRecordDataset(b"out/train-*"), 0))) == 5
    listed = TFRecordDataset([b"out/train-00001-of-00002", Path("out/train-00000-of-00002")])
    assert _ids(_loader(listed, 0)) == ids(5)[3:] + ids(5)[:3]
    with pytest.raises(TypeError, match="not int"):
        TFRecordDataset([3])  # type: ignore[list-item]


def test_rank_and_world_size_are_checked() -> None:
    with pytest.raises(ValueError, match=r"rank 2 is not in range\(world_size=2\)"):
        TFRecordDataset([], rank=2, world_size=2)
    with pytest.raises(ValueError, match="together"):
        TFRecordDataset([], rank=0)


def test_shuffling_across_ranks_needs_a_seed(workdir: Path) -> None:
    write_shards(workdir / "out", [3])
    with pytest.raises(ValueError, match="same seed on every rank: pass seed="):
        TFRecordDataset("out/train-*", shuffle=True, rank=0, world_size=2)


def test_torchrun_variables_give_the_rank_when_no_process_group_is_made(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_shards(workdir / "out", [5, 5, 5, 5])
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    dataset = TFRecordDataset("out/train-*")
    assert dataset.rank_and_world_size() == (1, 2)
    assert sorted(_ids(_loader(dataset, 0)), key=int) == ids(20)[5:10] + ids(20)[15:]
    alone = TFRecordDataset("out/train-*", rank=0, world_size=1)  # e.g. evaluation
    assert len(_ids(_loader(alone, 0))) == 20


# -- order ---------------------------------------------------------------------------------

def test_without_shuffle_records_come_in_file_order(workdir: Path) -> None:
    write_shards(workdir / "out", [4, 3, 5])
    assert _ids(_loader(TFRecordDataset("out/train-*"), 0)) == ids(12)


@pytest.mark.parametrize("workers", [0, 2])
def test_shuffling_differs_between_epochs_and_repeats_for_the_same_seed_and_epoch(
        workdir: Path, workers: int) -> None:
    write_shards(workdir / "out", [10, 10, 10, 10])

    def order(seed: int, epoch: int) -> list[str]:
        dataset = TFRecordDataset("out/train-*", shuffle=True, seed=seed, buffer_size=8)
        dataset.set_epoch(epoch)
        return _ids(_loader(dataset, workers))

    first = order(3, 0)
    assert sorted(first, key=int) == ids(40) and first != ids(40)
    assert order(3, 0) == first
    assert order(3, 1) != first
    assert order(3, 1) == order(3, 1)
    assert order(4, 0) != first


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_set_epoch_reaches_persistent_workers(workdir: Path, context: str) -> None:
    write_shards(workdir / "out", [6, 6, 6, 6])
    dataset = TFRecordDataset("out/train-*", shuffle=True, seed=2, buffer_size=4)
    loader = _loader(dataset, 2, persistent_workers=True, multiprocessing_context=context)
    epochs = []
    for epoch in range(3):
        dataset.set_epoch(epoch)
        epochs.append(_ids(loader))
    assert all(Counter(e) == Counter(ids(24)) for e in epochs)
    assert len({tuple(e) for e in epochs}) == 3
    fresh = TFRecordDataset("out/train-*", shuffle=True, seed=2, buffer_size=4)
    fresh.set_epoch(2)
    assert _ids(_loader(fresh, 2)) == epochs[2]  # as a new loader at that epoch


def test_an_epoch_that_does_not_fit_64_bits_is_refused(workdir: Path) -> None:
    write_shards(workdir / "out", [3])
    dataset = TFRecordDataset("out/train-*", shuffle=True, seed=1)
    dataset.set_epoch(2**63 - 1)
    for epoch in (2**63, 2**70, -2**63 - 1):
        with pytest.raises(ValueError, match=rf"epoch {epoch} does not fit the 64-bit"):
            dataset.set_epoch(epoch)
    assert dataset.epoch == 2**63 - 1
    with pytest.raises(TypeError):
        dataset.set_epoch(1.5)  # type: ignore[arg-type]


# -- damage --------------------------------------------------------------------------------

def read_framed_bytes(path: Path, skip: int) -> bytes:
    """The framed records of a plain shard, less record ``skip``."""
    offsets = [at for _, at, _ in read_framed(path, verify=False)] + [path.stat().st_size]
    raw = path.read_bytes()
    return raw[:offsets[skip]] + raw[offsets[skip + 1]:]


def _damage(path: Path, *indexes: int) -> None:
    """Flip a byte in the data of these records of a plain shard."""
    offsets = [at for _, at, _ in read_framed(path)]
    raw = bytearray(path.read_bytes())
    for index in indexes:
        raw[offsets[index] + 40] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("workers", [0, 2])
def test_a_damaged_shard_raises_the_error_naming_file_and_record(workdir: Path,
                                                                 workers: int) -> None:
    paths = write_shards(workdir / "out", [5, 5])
    _damage(paths[1], 3)
    loader = _loader(TFRecordDataset("out/train-*"), workers)
    with pytest.raises(CorruptRecordError,
                       match=r"out/train-00001-of-00002, record 3, byte offset \d+: data CRC "
                             "mismatch") as caught:
        _ids(loader)
    if workers == 0:
        assert (caught.value.path, caught.value.index) == ("out/train-00001-of-00002", 3)


@pytest.mark.parametrize("workers", [0, 3])
def test_skip_damaged_skips_and_counts_each_damaged_record_once(
        workdir: Path, workers: int, caplog: pytest.LogCaptureFixture) -> None:
    # one shard, so with 3 workers every worker reads it and keeps a third of it
    [path] = write_shards(workdir / "out", [12])
    _damage(path, 4, 7)
    dataset = TFRecordDataset("out/train-*", skip_damaged=True)
    with caplog.at_level(logging.WARNING, logger="tfrecord_lite.torch.datasets"):
        seen = _ids(_loader(dataset, workers))
    assert Counter(seen) == Counter(i for i in ids(12) if i not in ("4", "7"))
    assert dataset.skipped == 2
    if workers == 0:
        assert "skipped a damaged record: out/train-00000-of-00001, record 4" in caplog.text


def test_skip_damaged_counts_a_cut_file_once_and_reads_the_other_shards(workdir: Path) -> None:
    paths = write_shards(workdir / "out", [5, 5])
    paths[0].write_bytes(paths[0].read_bytes()[:-30])
    dataset = TFRecordDataset("out/train-*", skip_damaged=True)
    assert Counter(_ids(_loader(dataset, 2))) == Counter(ids(10)[:4] + ids(10)[5:])
    assert dataset.skipped == 1
    with pytest.raises(TruncatedRecordError, match="out/train-00000-of-00002, record 4"):
        _ids(_loader(TFRecordDataset("out/train-*"), 0))


@pytest.mark.parametrize("workers", [0, 3])
def test_a_damaged_gzip_end_after_the_last_record_counts_as_the_streams_not_a_record(
        workdir: Path, workers: int, caplog: pytest.LogCaptureFixture) -> None:
    # one shard, so with 3 workers every worker reads it to its end
    [plain] = write_shards(workdir / "plain", [9])
    _damage(plain, 2)
    path = workdir / "out" / "train-00000-of-00001"
    path.parent.mkdir()
    compressed = bytearray(gzip.compress(plain.read_bytes()))
    compressed[-8] ^= 0x01  # the CRC-32 in the trailer
    path.write_bytes(bytes(compressed))
    dataset = TFRecordDataset("out/train-*", skip_damaged=True)
    with caplog.at_level(logging.WARNING, logger="tfrecord_lite.torch.datasets"):
        seen = _ids(_loader(dataset, workers))
    assert Counter(seen) == Counter(i for i in ids(9) if i != "2")
    assert (dataset.skipped, dataset.stream_faults) == (1, 1)
    if workers == 0:
        assert ("passed the damaged end of a compressed stream: out/train-00000-of-00001, "
                "after its last record (8), byte offset "
                f"{plain.stat().st_size} of the uncompressed stream" in caplog.text)
    compressed = bytearray(gzip.compress(read_framed_bytes(plain, skip=2)))
    compressed[-8] ^= 0x01
    path.write_bytes(bytes(compressed))  # without the damaged record: only the end fails
    with pytest.raises(CorruptRecordError, match=r"after its last record \(7\)"):
        _ids(_loader(TFRecordDataset("out/train-*"), workers))


# -- decoded samples -----------------------------------------------------------------------

@pytest.mark.parametrize("workers", [0, 2])
def test_decoded_batches_hold_stacked_images_and_per_image_boxes(workdir: Path,
                                                                 workers: int) -> None:
    write_shards(workdir / "out", [5, 5])
    dataset = TFRecordDataset("out/train-*", decode_images=True)
    batches = list(DataLoader(dataset, batch_size=4, num_workers=workers, collate_fn=collate))
    assert sorted((i for b in batches for i in b["id"]), key=int) == ids(10)
    batch = batches[0]
    assert batch["image"].shape == (4, HEIGHT, WIDTH, 3) and batch["image"].dtype == torch.uint8
    np.testing.assert_array_equal(batch["image"][0].numpy(), decode_image(JPEG))
    assert batch["label"].dtype == torch.int64 and batch["label"].shape == (4,)
    assert [int(i) % 5 for i in batch["id"]] == batch["label"].tolist()
    assert len(batch["boxes"]) == 4
    assert all(b.shape == (2, 4) and b.dtype == torch.float32 for b in batch["boxes"])
    assert all(la.tolist() == [1, 2] and la.dtype == torch.int64 for la in batch["labels"])
    assert batch["item"][0]["object"]["bbox"]["text"] == ["bird", "cat"]
    assert "masks" not in batch


def test_masks_and_class_id_images_come_batched_when_the_records_hold_them(
        workdir: Path) -> None:
    write_shards(workdir / "out", [3, 3], masks=True)
    dataset = TFRecordDataset("out/train-*", decode_images=True, channels_first=True)
    batches = list(DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate))
    for batch in batches:
        assert batch["image"].shape == (3, 3, HEIGHT, WIDTH)
        assert batch["segmentation"].shape == (3, HEIGHT, WIDTH)
        for n, masks, segmentation in zip(batch["id"], batch["masks"], batch["segmentation"]):
            assert masks.shape == (2, HEIGHT, WIDTH) and masks.dtype == torch.uint8
            np.testing.assert_array_equal(masks.numpy(), np.stack(instance_masks(int(n))))
            np.testing.assert_array_equal(segmentation.numpy(), class_ids(int(n)))


def test_tensors_false_gives_numpy_arrays(workdir: Path) -> None:
    write_shards(workdir / "out", [2])
    sample = next(iter(TFRecordDataset("out/train-*", decode_images=True, tensors=False)))
    assert isinstance(sample["image"], np.ndarray) and isinstance(sample["boxes"], np.ndarray)
    batch = collate([sample, sample])
    assert isinstance(batch["image"], torch.Tensor) and batch["image"].shape[0] == 2


def test_the_transform_runs_in_the_workers_on_each_sample(workdir: Path) -> None:
    write_shards(workdir / "out", [3, 3])
    dataset = TFRecordDataset("out/train-*", transform=_tag_with_process)
    tagged = _ids(_loader(dataset, 2))
    assert sorted(tagged) == sorted(f"{i}@worker" for i in ids(6))


def _tag_with_process(item: dict) -> dict:
    in_worker = torch.utils.data.get_worker_info() is not None
    return {**item, "id": f"{item['id']}@{'worker' if in_worker else 'main'}"}


def test_collate_refuses_images_of_different_sizes_unless_asked_to_keep_a_list() -> None:
    def sample(n: int, height: int) -> dict:
        return {"id": str(n), "image": torch.zeros(height, 4, 3, dtype=torch.uint8),
                "label": torch.tensor(n), "boxes": torch.zeros(n, 4), "item": {}}

    batch = [sample(1, 5), sample(2, 6)]
    with pytest.raises(ValueError, match=r"cannot stack the images.*'1': \(5, 4, 3\), "
                                         r"'2': \(6, 4, 3\).*stack_images=False"):
        collate(batch)
    kept = collate(batch, stack_images=False)
    assert [tuple(i.shape) for i in kept["image"]] == [(5, 4, 3), (6, 4, 3)]
    assert [tuple(b.shape) for b in kept["boxes"]] == [(1, 4), (2, 4)]
    with pytest.raises(TypeError, match="collate_fn=list"):
        collate([{"id": "1"}])


def _image_and_label(sample: dict) -> tuple:
    return sample["image"], sample["label"]


def _image_and_target(sample: dict) -> tuple:
    return sample["image"], {"boxes": sample["boxes"], "labels": sample["labels"],
                             "id": sample["id"]}


@pytest.mark.parametrize("workers", [0, 2])
def test_collate_batches_the_pairs_a_transform_returns(workdir: Path, workers: int) -> None:
    write_shards(workdir / "out", [3, 3])

    def batches(transform: Any) -> list[Any]:
        dataset = TFRecordDataset("out/train-*", decode_images=True, transform=transform)
        return list(DataLoader(dataset, batch_size=3, num_workers=workers,
                               collate_fn=collate))

    for images, labels in batches(_image_and_label):
        assert images.shape == (3, HEIGHT, WIDTH, 3) and images.dtype == torch.uint8
        assert labels.shape == (3,) and labels.dtype == torch.int64
    seen = []
    for images, target in batches(_image_and_target):
        assert images.shape == (3, HEIGHT, WIDTH, 3)
        assert [b.shape for b in target["boxes"]] == [(2, 4)] * 3
        assert [la.tolist() for la in target["labels"]] == [[1, 2]] * 3
        seen += target["id"]
    assert sorted(seen, key=int) == ids(6)


def test_collate_names_what_it_cannot_batch() -> None:
    image = torch.zeros(4, 4, 3, dtype=torch.uint8)
    with pytest.raises(TypeError, match=r"this batch holds a Tensor: have the transform "
                                        "return one kind, or pass a collate_fn"):
        collate([image, image])
    with pytest.raises(TypeError, match="holds a Tensor beside tuples"):
        collate([(image, 1), image])
    with pytest.raises(TypeError, match="tuples of 2 and 3 items"):
        collate([(image, 1), (image, 1, 2)])
    with pytest.raises(TypeError, match="without decode_images, use collate_fn=list"):
        collate([{"id": "1"}])
    with pytest.raises(ValueError, match=r"cannot stack item 0 of the tuples of this batch, "
                                         r"their sizes differ \(\(4, 4, 3\), \(5, 4, 3\)\)"):
        collate([(image, 1), (torch.zeros(5, 4, 3), 2)])
    kept = collate([(image, 1), (torch.zeros(5, 4, 3), 2)], stack_images=False)
    assert [tuple(i.shape) for i in kept[0]] == [(4, 4, 3), (5, 4, 3)]
    assert kept[1].tolist() == [1, 2]
    assert collate([(image, "a", None), (image, "b", None)])[1:] == (["a", "b"], [None, None])


# -- random access -------------------------------------------------------------------------

def test_random_access_returns_the_record_iteration_gives(workdir: Path) -> None:
    write_shards(workdir / "out", [4, 6, 5])
    indexed = IndexedTFRecordDataset("out/train-*")
    assert len(indexed) == 15
    iterated = list(TFRecordDataset("out/train-*"))
    assert [indexed[i] for i in range(15)] == iterated
    assert indexed[-1] == iterated[-1] and indexed.locate(-1) == ("out/train-00002-of-00003", 4)
    assert indexed.locate(7) == ("out/train-00001-of-00003", 3)
    with pytest.raises(IndexError, match="record 15 is out of range: the dataset has 15"):
        indexed[15]
    # the indexes are hidden beside the shards, where the shard glob never finds them
    assert sorted(p.name for p in (workdir / "out").iterdir()) == [
        f".train-0000{i}-of-00003.idx" for i in range(3)] + [
        f"train-0000{i}-of-00003" for i in range(3)]
    decoded = IndexedTFRecordDataset("out/train-*", decode_images=True)
    np.testing.assert_array_equal(decoded[3]["boxes"].numpy(),
                                  next(s for s in TFRecordDataset(
                                      "out/train-*", decode_images=True)
                                       if s["id"] == "3")["boxes"].numpy())


@pytest.mark.parametrize("workers", [0, 2])
def test_random_access_in_a_shuffling_loader_and_across_ranks_gives_each_record_once(
        workdir: Path, workers: int) -> None:
    write_shards(workdir / "out", [7, 6])
    dataset = IndexedTFRecordDataset("out/train-*")
    seen = _ids(_loader(dataset, workers, shuffle=True))
    assert Counter(seen) == Counter(ids(13)) and seen != ids(13)
    ranks = [_ids(DataLoader(dataset, batch_size=2, num_workers=workers, collate_fn=list,
                             sampler=DistributedSampler(dataset, num_replicas=2, rank=r,
                                                        shuffle=True, seed=1,
                                                        drop_last=True)))
             for r in range(2)]
    assert len(set(ranks[0]) | set(ranks[1])) == 12  # drop_last: one of 13 left out
    assert not set(ranks[0]) & set(ranks[1])


def test_an_index_from_the_index_command_is_used_as_it_is(workdir: Path) -> None:
    write_shards(workdir / "out", [4])
    assert main(["index", "out/train-00000-of-00001"]) == 0
    index = workdir / "out" / ".train-00000-of-00001.idx"
    before = index.stat().st_mtime_ns
    assert len(IndexedTFRecordDataset("out/train-*", build_index=False)) == 4
    assert index.stat().st_mtime_ns == before


def test_a_missing_or_stale_index_is_rebuilt_or_named_with_the_command(workdir: Path) -> None:
    write_shards(workdir / "out", [4])
    with pytest.raises(IndexFileError, match=r"out/train-00000-of-00001 has no index .*"
                                             r"tfrecord-lite index out/train-00000-of-00001"):
        IndexedTFRecordDataset("out/train-*", build_index=False)
    assert len(IndexedTFRecordDataset("out/train-*")) == 4
    time.sleep(0.01)
    write_shards(workdir / "out", [9])  # the job run again into the same folder
    with pytest.raises(IndexFileError, match="older than .*stale"):
        IndexedTFRecordDataset("out/train-*", build_index=False)
    rebuilt = IndexedTFRecordDataset("out/train-*")
    assert len(rebuilt) == 9 and rebuilt[8]["id"] == "8"


def test_an_index_that_cannot_be_written_says_how(workdir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tfrecord_lite.torch import datasets

    def read_only(path: str, target: str, **kwargs: Any) -> str:
        raise PermissionError(13, "Permission denied", target)

    write_shards(workdir / "out", [2])
    monkeypatch.setattr(datasets, "write_index", read_only)  # a folder we may not write
    with pytest.raises(IndexFileError, match=r"has no index .*cannot be written here "
                                             r"\(Permission denied\): write it with: "
                                             "tfrecord-lite index out/train-00000-of-00001"):
        IndexedTFRecordDataset("out/train-*")
    assert sorted(p.name for p in (workdir / "out").iterdir()) == ["train-00000-of-00001"]


def test_random_access_refuses_compressed_shards(workdir: Path) -> None:
    write_shards(workdir / "out", [3], ["gzip"])
    with pytest.raises(IndexFileError, match=r"out/train-00000-of-00001: gzip-compressed: "
                                             "random access needs plain shards"):
        IndexedTFRecordDataset("out/train-*")


def test_random_access_to_a_damaged_record_names_it_and_says_what_to_do(
        workdir: Path) -> None:
    write_shards(workdir / "out", [3])
    [path] = write_shards(workdir / "out", [5], prefix="val")
    dataset = IndexedTFRecordDataset(["out/train-*", "out/val-*"])
    _damage(path, 2)
    assert dataset[4]["id"] == "1"
    with pytest.raises(CorruptRecordError) as raised:
        dataset[5]
    offset = [at for _, at, _ in read_framed(path, verify=False)][2]
    shard = "out/val-00000-of-00001"
    assert str(raised.value).startswith(
        f"{shard}, record 2, byte offset {offset}: data CRC mismatch")
    assert str(raised.value).endswith(
        f", read as dataset[5]. To list every damaged record: python -m tfrecord_lite "
        f"verify {shard}; if the shard was rewritten after its index, rebuild the index: "
        f"python -m tfrecord_lite index {shard}; to train past damaged records, read the "
        "shards with TFRecordDataset(..., skip_damaged=True), which skips and counts them")
    assert (raised.value.path, raised.value.index) == (shard, 2)
    path.write_bytes(path.read_bytes()[:offset + 5])  # cut inside record 2
    with pytest.raises(IndexFileError, match=rf"^{shard}: index entry 2: .*, read as "
                                             r"dataset\[-3\]\. To list every damaged record"):
        dataset[-3]


def test_an_index_is_not_written_for_a_damaged_shard_and_the_error_says_what_to_do(
        workdir: Path) -> None:
    [path] = write_shards(workdir / "out", [4])
    _damage(path, 1)
    with pytest.raises(CorruptRecordError) as raised:
        IndexedTFRecordDataset("out/train-*")
    shard = "out/train-00000-of-00001"
    assert str(raised.value).startswith(f"{shard}, record 1, byte offset ")
    assert str(raised.value).endswith(
        "(the data is damaged), met while writing the index. To list every damaged record: "
        f"python -m tfrecord_lite verify {shard}; to train past damaged records, read the "
        "shards with TFRecordDataset(..., skip_damaged=True), which skips and counts them")
    assert sorted(p.name for p in (workdir / "out").iterdir()) == [path.name]


# -- the package ---------------------------------------------------------------------------

def test_import_tfrecord_lite_does_not_import_torch() -> None:
    code = ("import sys, tfrecord_lite, tfrecord_lite.torch; "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "False"]


def _docs_script() -> str:
    text = (ROOT / "docs" / "torch.md").read_text()
    start = text.index("```python\nimport contextlib")
    return text[start + len("```python\n"):text.index("\n```", start)]


def _demo_items() -> list[dict[str, Any]]:
    return list(json.loads((DEMO / "dataset.json").read_text()))


def _demo_shards(workdir: Path, dataset: list[dict[str, Any]] | None = None,
                 shards: int = 2) -> None:
    """Shards of the demo dataset, or of these of its items, in out/."""
    dataset = _demo_items() if dataset is None else dataset
    for item in dataset:
        item["filename"] = str(ROOT / item["filename"])
    (workdir / "dataset.json").write_text(json.dumps(dataset))
    assert main(["--dataset_path", "dataset.json", "--prefix", "train", "--output_dir", "out",
                 "--shards", str(shards), "--threads", "2", "--store_images"]) == 0


def _run_docs_training(ranks: int) -> list[tuple[int, int, int, int, str]]:
    """Run the docs' train.py on ``ranks`` ranks; its (rank, epoch, images, boxes, mean
    loss) reports."""
    Path("train.py").write_text(_docs_script())
    launch = ([sys.executable] if ranks == 1 else
              [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(ranks)])
    done = subprocess.run([*launch, "train.py"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # The ranks share one pipe, so their lines may come interleaved: find each report.
    reports = re.findall(r"rank (\d+) epoch (\d+): (\d+) images, (\d+) boxes, "
                         r"mean loss (none|\d+\.\d{3})", done.stdout)
    assert len(reports) == 3 * ranks, done.stdout
    return [(int(r), int(e), int(n), int(b), loss) for r, e, n, b, loss in reports]


@pytest.mark.parametrize("ranks", [1, 2])
def test_the_training_loop_of_the_docs_runs(workdir: Path, ranks: int) -> None:
    _demo_shards(workdir)
    reports = _run_docs_training(ranks)
    for epoch in range(3):
        seen = [(n, b) for _, e, n, b, _ in reports if e == epoch]
        assert len(seen) == ranks
        assert sum(n for n, _ in seen) == 5  # the 5 demo photos, once each
        assert sum(b for _, b in seen) == 12  # and their 12 boxes
    if ranks == 1:  # the loss comes down from about ln(4), the 4 classes' guess
        losses = [float(loss) for *_, loss in sorted(reports, key=lambda r: r[1])]
        assert 1.0 < losses[0] < 2.5 and losses[0] > losses[1] > losses[2], losses


def test_the_training_loop_of_the_docs_runs_with_fewer_photos_than_ranks_and_no_box(
        workdir: Path) -> None:
    cat = _demo_items()[1]
    del cat["object"]  # a photo without boxes
    _demo_shards(workdir, [cat], shards=1)
    reports = _run_docs_training(2)
    for epoch in range(3):  # one rank reads the photo, the other nothing
        assert sorted((n, b, loss == "none") for _, e, n, b, loss in reports
                      if e == epoch) == [(0, 0, True), (1, 0, False)]


def test_the_random_access_example_of_the_docs_runs(workdir: Path) -> None:
    _demo_shards(workdir)
    text = (ROOT / "docs" / "torch.md").read_text()
    start = text.index("```python\nfrom torch.utils.data import DataLoader")
    code = text[start + len("```python\n"):text.index("\n```", start)]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "5"
