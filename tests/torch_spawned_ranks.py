"""Two ranks started by ``torch.multiprocessing.spawn``, as a launcher that sets no
``RANK`` or ``WORLD_SIZE`` does (``mp.spawn``, ``srun``, an explicit ``init_method``);
run by tests/test_torch.py.

    python tests/torch_spawned_ranks.py PATTERN RESULT.json PORT CONTEXT KWARGS-JSON

Each rank makes a TFRecordDataset of PATTERN (with the keyword arguments KWARGS-JSON)
*before* it joins a gloo process group at ``tcp://127.0.0.1:PORT``, then reads one epoch
through a DataLoader of two workers started by CONTEXT ("fork" or "spawn"), without
calling ``set_epoch``: a typical validation loader. Rank 0 writes to RESULT.json, per
rank, the ids read or the error raised, and the (rank, world size) read as. Nothing is
asserted here: the test reads the file.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from tfrecord_lite.torch import TFRecordDataset


def rank_main(rank: int, pattern: str, result: str, port: str, context: str,
              kwargs: dict[str, Any]) -> None:
    dataset = TFRecordDataset(pattern, **kwargs)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=list,
                        multiprocessing_context=context)
    try:
        mine: Any = [item["id"] for batch in loader for item in batch]
    except ValueError as exc:
        mine = f"ValueError: {exc}"
    everyone: list[Any] = [None] * 2
    dist.all_gather_object(everyone, [mine, dataset.rank_and_world_size()])
    if rank == 0:
        with open(result, "w") as f:
            json.dump(everyone, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    pattern, result, port, context, kwargs = sys.argv[1:6]
    mp.spawn(rank_main, args=(pattern, result, port, context, json.loads(kwargs)),
             nprocs=2)
