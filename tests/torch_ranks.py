"""One rank of a distributed read, started by tests/test_torch.py under ``torchrun``.

    torchrun --standalone --nproc_per_node 2 tests/torch_ranks.py PATTERN RESULT.json

Each rank joins a gloo process group (CPU), reads PATTERN with TFRecordDataset in a
DataLoader of two workers, shuffled, for two epochs, and the ids every rank saw are
gathered: rank 0 writes them, per epoch and rank, to RESULT.json, with the (rank, world
size) each rank read as. Nothing is asserted here: the test reads the file.
"""

from __future__ import annotations

import json
import sys

import torch.distributed as dist
from torch.utils.data import DataLoader

from tfrecord_lite.torch import TFRecordDataset


def main(pattern: str, result: str) -> None:
    dist.init_process_group("gloo")
    dataset = TFRecordDataset(pattern, shuffle=True, seed=5, buffer_size=8)
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=list)
    epochs = []
    for epoch in range(2):
        dataset.set_epoch(epoch)
        mine = [item["id"] for batch in loader for item in batch]
        everyone: list[list[str] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(everyone, mine)
        epochs.append(everyone)
    ranks: list[tuple[int, int] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(ranks, dataset.rank_and_world_size())
    if dist.get_rank() == 0:
        with open(result, "w") as f:
            json.dump({"epochs": epochs, "ranks": ranks}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
