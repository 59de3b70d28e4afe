"""PyTorch datasets over TFRecord shards: an iterable one that splits the shards across
DataLoader workers and distributed ranks, a map-style one over the record indexes, and
the ``collate`` function that batches their samples.
"""

from __future__ import annotations

import logging
import multiprocessing
import operator
import os
import random
import uuid
from collections.abc import Iterable, Iterator, Mapping
from multiprocessing import context as _mp_context
from typing import Any, Callable, Union, cast

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, default_collate, get_worker_info

from .. import compression as _compression
from .. import sharding, storage
from ..errors import ImageError, IndexFileError, RecordError
from ..framing import DEFAULT_MAX_RECORD_SIZE
from ..plural import count
from ..reader import decode_record, find_index, read_index, read_record_at, write_index
from . import plan
from .samples import training_sample
from .stream import Damage, records

logger = logging.getLogger(__name__)

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Paths = Union[PathArg, Iterable[PathArg]]
_TENSORS = ("image", "boxes", "labels", "masks", "segmentation")
_STACKED = ("image", "segmentation")  # one per image, the image's size
# What a damaged record raises, which skip_damaged=True counts and skips instead.
_DAMAGE = (RecordError, ImageError)


def shard_files(paths: Paths) -> list[str]:
    """The shard files of ``paths``, each once: each pattern (``out/train-*``, also a
    URL's) expanded and sorted, the files the tools write beside shards (``.idx``
    indexes, manifests, failure lists) and the folders a pattern matches left out (as
    the command line does), and a file given again (by any path to it) kept only where
    it first comes.

    Raises:
        FileNotFoundError: a path or pattern that names no file, or no shard at all.
        IsADirectoryError: a folder given as a path (give its files: ``out/*``).
    """
    given = ([os.fsdecode(paths)] if isinstance(paths, (str, bytes, os.PathLike))
             else [os.fsdecode(p) for p in paths])
    files: list[str] = []
    seen: dict[str, str] = {}  # the file itself -> the path it was first given as
    for pattern in given:
        expanded, folders = storage.expand_files(pattern)
        if folders:  # out/* also matches the folders of other datasets (out/coco)
            logger.warning("%s: skipped %s: %s", pattern, count(len(folders), "folders"),
                           ", ".join(folders))
        for path in expanded:
            if not storage.is_file(path):
                raise FileNotFoundError(f"no such file: {path}")
            if sharding.is_side_file(storage.split(path)[1]):
                continue
            key = path if storage.is_url(path) else os.path.realpath(path)
            if key in seen:
                logger.warning("%s is given more than once%s: it is read once", path,
                               "" if seen[key] == path else f" (also as {seen[key]})")
                continue
            seen[key] = path
            files.append(path)
    if not files:
        raise FileNotFoundError(f"no shard files among {' '.join(given) or '(no paths)'}")
    return files


class _Shared:
    """What a dataset shares with its DataLoader worker processes, persistent ones too:
    the epoch (written by the training loop) and the counts of damaged records skipped
    and of damaged stream ends passed (written by the workers, each in a slot of its
    own, so no lock is needed: a lock made in one multiprocessing context cannot go to
    workers of another).

    The numbers live in shared memory (``multiprocessing.RawArray``), which forked
    workers inherit and spawned ones are handed. Pickled at any other time, they become
    a copy of their own.
    """

    # After the epoch, per count: the making process's slot, then one per worker id % 255.
    SLOTS = 256
    SKIPPED, STREAM_FAULTS = 0, 1

    def __init__(self, values: list[int] | None = None) -> None:
        self._values: Any = multiprocessing.RawArray("q", values or [0] * (1 + 2 * self.SLOTS))

    @property
    def epoch(self) -> int:
        return int(self._values[0])

    @epoch.setter
    def epoch(self, value: int) -> None:
        value = operator.index(value)
        if not -(1 << 63) <= value < 1 << 63:
            raise ValueError(f"epoch {value} does not fit the 64-bit integer the DataLoader "
                             "workers share: give an epoch in [-2**63, 2**63)")
        self._values[0] = value

    def add(self, count: int, worker: int | None) -> None:
        """One more to ``count`` (SKIPPED, STREAM_FAULTS), in ``worker``'s slot."""
        first = 1 + count * self.SLOTS
        self._values[first if worker is None else first + 1 + worker % (self.SLOTS - 1)] += 1

    def total(self, count: int) -> int:
        first = 1 + count * self.SLOTS
        return int(sum(self._values[first:first + self.SLOTS]))

    def __getstate__(self) -> dict[str, Any]:
        if _mp_context.get_spawning_popen() is not None:  # starting a worker process
            return {"shared": self._values}
        return {"copy": list(self._values)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "shared" in state:
            self._values = state["shared"]
        else:
            self.__init__(state["copy"])  # type: ignore[misc]


def _distributed() -> tuple[int, int] | None:
    """(rank, world size) of ``torch.distributed`` when it is initialized, else of the
    ``RANK``/``WORLD_SIZE`` variables that ``torchrun`` sets, else None."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is not None and world is not None and rank.isdigit() and world.isdigit():
        return int(rank), int(world)
    return None


def _as_tensors(sample: dict[str, Any]) -> dict[str, Any]:
    out = dict(sample)
    for key in _TENSORS:
        if key in out:
            out[key] = torch.from_numpy(out[key])
    out["label"] = torch.tensor(int(sample["label"]), dtype=torch.int64)
    return out


class _Samples:
    """What the two datasets share: a record's bytes -> the sample the loader gets."""

    def __init__(self, decode_images: bool, channels_first: bool, tensors: bool,
                 transform: Callable[[Any], Any] | None) -> None:
        self.decode_images = decode_images
        self.channels_first = channels_first
        self.tensors = tensors
        self.transform = transform

    def __call__(self, path: str, index: int, offset: int, data: bytes,
                 uncompressed: bool = False) -> Any:
        sample: Any = decode_record(data, path, index, offset, uncompressed=uncompressed)
        if self.decode_images:
            sample = training_sample(sample, path, index, offset, self.channels_first,
                                     uncompressed=uncompressed)
            if self.tensors:
                sample = _as_tensors(sample)
        return sample if self.transform is None else self.transform(sample)


class TFRecordDataset(IterableDataset):
    """The records of TFRecord shards, each read exactly once per epoch across every
    DataLoader worker and every distributed rank.

    Args:
        paths: a file, a pattern (``"out/train-*"``, also a URL's), or a list of them;
            plain, GZIP or ZLIB shards (detected, or given by ``compression``).
        shuffle: a new order each epoch (see :meth:`set_epoch`): the shard order is
            shuffled, then the records through a buffer of ``buffer_size``.
        seed: the shuffle's seed; the same seed and epoch give the same order. Without
            one, a random seed is drawn here, which only a single process may use: across
            several ranks (every rank needs the same seed) reading is a ``ValueError``.
        buffer_size: records held for shuffling, per reader (DataLoader worker).
        decode_images: samples of training arrays (the image decoded, boxes, labels,
            masks) instead of item dicts; see ``tfrecord_lite.torch.samples``.
        channels_first: with ``decode_images``, images as [3, H, W].
        tensors: with ``decode_images``, arrays as torch tensors (else numpy arrays).
        transform: called on each sample in the worker; what it returns is what the
            DataLoader gets.
        compression: "none", "gzip" or "zlib" for every file; None detects each.
        rank, world_size: this process's rank and the number of ranks; by default
            found each time an epoch starts (:meth:`rank_and_world_size`), so the
            dataset may be made before ``init_process_group``.
        skip_damaged: skip a damaged record (CRC, truncation, not an Example, an image
            or mask that does not decode) and count it in :attr:`skipped`, logging a
            warning, instead of raising.
        max_record_size: the longest record accepted.
    Raises:
        FileNotFoundError: a path or pattern that names no file.
        ValueError: a rank outside ``range(world_size)``, or ``shuffle`` without a
            ``seed`` across several ranks (here, or when an epoch starts or is set).
    """

    def __init__(self, paths: Paths, *, shuffle: bool = False, seed: int | None = None,
                 buffer_size: int = 1024, decode_images: bool = False,
                 channels_first: bool = False, tensors: bool = True,
                 transform: Callable[[Any], Any] | None = None,
                 compression: str | None = None, rank: int | None = None,
                 world_size: int | None = None, skip_damaged: bool = False,
                 max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> None:
        super().__init__()
        if (rank is None) != (world_size is None):
            raise ValueError("give rank and world_size together")
        if rank is not None and world_size is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in range(world_size={world_size})")
        if buffer_size < 0:
            raise ValueError(f"buffer_size must be >= 0, not {buffer_size}")
        self.files = shard_files(paths)
        self.compression = None if compression is None else _compression.normalize(compression)
        self._explicit = None if rank is None or world_size is None else (rank, world_size)
        # The ranks a DataLoader worker reads as, when the process that started it
        # handed them over (see __getstate__); None elsewhere.
        self._parent_ranks: tuple[int, int] | None = None
        self._seed_drawn = shuffle and seed is None
        if self._seed_drawn:
            seed = random.SystemRandom().randrange(1 << 63)
        self.shuffle = shuffle
        self.seed = seed
        self._check_seed(self.rank_and_world_size()[1])
        self.buffer_size = buffer_size
        self.skip_damaged = skip_damaged
        self.max_record_size = max_record_size
        self._samples = _Samples(decode_images, channels_first, tensors, transform)
        self._shared = _Shared()

    @property
    def epoch(self) -> int:
        """The epoch whose order the next iteration takes."""
        return self._shared.epoch

    def set_epoch(self, epoch: int) -> None:
        """Take the order of ``epoch`` from the next iteration on (persistent DataLoader
        workers too). Call it before each epoch, as with ``DistributedSampler``.

        Raises:
            ValueError: ``epoch`` outside the 64-bit signed integers; ``shuffle``
                without a ``seed`` across several ranks.
        """
        self._shared.epoch = epoch
        self._check_seed(self.rank_and_world_size()[1])

    @property
    def skipped(self) -> int:
        """Damaged records skipped so far by this process and its DataLoader workers
        (with ``skip_damaged=True``)."""
        return self._shared.total(_Shared.SKIPPED)

    @property
    def stream_faults(self) -> int:
        """Compressed streams found damaged or cut after their last record, so far (with
        ``skip_damaged=True``): their trailer does not match, but every record came out
        whole and passed its own CRCs, so none is lost or counted in :attr:`skipped`."""
        return self._shared.total(_Shared.STREAM_FAULTS)

    def rank_and_world_size(self) -> tuple[int, int]:
        """The (rank, world size) this process reads as, now: the ``rank`` and
        ``world_size`` given, else those of ``torch.distributed`` when it is initialized,
        else of the ``RANK`` and ``WORLD_SIZE`` variables (``torchrun``), else (0, 1).
        Each epoch reads as they are when it starts; a DataLoader worker, where
        ``torch.distributed`` is not initialized, takes those of the process that
        started it."""
        if self._parent_ranks is not None and get_worker_info() is not None:
            return self._parent_ranks
        return self._explicit or _distributed() or (0, 1)

    def _check_seed(self, world_size: int) -> None:
        if self._seed_drawn and world_size > 1:
            raise ValueError(f"shuffle=True across {world_size} ranks needs the same seed "
                             "on every rank: pass seed= (without one, each rank draws "
                             "its own, and records would be read twice or never)")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if _mp_context.get_spawning_popen() is not None:
            # Starting a DataLoader worker (spawn, forkserver): it cannot see this
            # process's torch.distributed, so it is handed the ranks found here. A forked
            # worker inherits torch.distributed itself.
            state["_parent_ranks"] = self.rank_and_world_size()
        return state

    def _read_shard(self, i: int) -> Iterator[tuple[str, int, int, bytes, bool] | Damage]:
        path = self.files[i]
        comp = self.compression or _compression.detect(path)
        for record in records(path, comp, self.max_record_size):
            yield record if isinstance(record, Damage) else (path, *record, comp != "none")

    def _damaged(self, error: Exception, rest_lost: bool = False,
                 record_lost: bool = True) -> None:
        if not self.skip_damaged:
            raise error
        worker = get_worker_info()
        if record_lost:
            self._shared.add(_Shared.SKIPPED, None if worker is None else worker.id)
            logger.warning("skipped a damaged record: %s%s", error,
                           " (nothing after it in that file can be read)" if rest_lost else "")
        else:
            self._shared.add(_Shared.STREAM_FAULTS, None if worker is None else worker.id)
            logger.warning("passed the damaged end of a compressed stream: %s (every record "
                           "before it came out whole and passed its CRCs: none is lost)", error)

    def __iter__(self) -> Iterator[Any]:
        worker = get_worker_info()
        workers, worker_id = (1, 0) if worker is None else (worker.num_workers, worker.id)
        rank, world = self.rank_and_world_size()
        self._check_seed(world)
        reader, readers = rank * workers + worker_id, world * workers
        epoch = self._shared.epoch
        seed = self.seed if self.shuffle else None
        share = plan.share(plan.shard_order(len(self.files), seed, epoch), reader, readers)
        stream: Iterator[Any] = plan.take(share, self._read_shard)
        if seed is not None:
            stream = plan.shuffled(stream, self.buffer_size, plan.rng(seed, epoch, reader))
        make = self._samples
        for record in stream:
            if isinstance(record, Damage):
                self._damaged(record.error, record.rest_lost, record.record_lost)
                continue
            try:
                sample = make(*record)
            except _DAMAGE as exc:
                self._damaged(exc)
                continue
            yield sample


def _index_of(path: str, build: bool, max_record_size: int) -> np.ndarray:
    """The index of a plain local shard as an int64 array of (offset, length) rows;
    written (hidden beside it, as the ``index`` command does) when missing or stale and
    ``build`` allows."""
    if storage.is_url(path):
        raise IndexFileError(f"{path}: random access reads local files: copy the shards, "
                             "or read them with TFRecordDataset")
    kind = _compression.detect(path)
    if kind != "none":
        raise IndexFileError(f"{path}: {kind}-compressed: random access needs plain shards "
                             "(read these with TFRecordDataset, or write them uncompressed)")
    size = os.path.getsize(path)
    target = find_index(path)
    how = f"write it with: tfrecord-lite index {path}"
    problem = None
    if not os.path.exists(target):
        problem = f"{path} has no index ({target})"
    elif os.path.getmtime(target) < os.path.getmtime(path):
        problem = f"{target} is older than {path} (stale)"
    else:
        try:
            entries = read_index(target, size, max_record_size)
        except IndexFileError as exc:
            problem = str(exc)
        else:
            end = entries[-1][0] + entries[-1][1] if entries else 0
            if end == size:
                return np.array(entries, dtype=np.int64).reshape(-1, 2)
            problem = f"{target} covers {end} of the {size} bytes of {path} (stale)"
    if not build:
        raise IndexFileError(f"{problem}: {how} (or pass build_index=True)")
    logger.info("%s: writing the index", problem)
    # Under a name of this process's own, then renamed: ranks that build the same index
    # at once do not write into each other's file.
    part = f"{target}.{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write_index(path, part, max_record_size=max_record_size)
        os.replace(part, target)
    except RecordError as exc:  # a damaged shard has no index: nothing is left written
        storage.remove_quietly(part)
        raise type(exc)(f"{exc.reason}, met while writing the index. "
                        f"{_what_to_do(path, indexed=False)}", path=exc.path,
                        index=exc.index, offset=exc.offset) from exc
    except OSError as exc:
        storage.remove_quietly(part)
        raise IndexFileError(f"{problem}, and it cannot be written here "
                             f"({exc.strerror or exc}): {how}, as a user who can "
                             "write there, or copy the shards") from exc
    return _index_of(path, False, max_record_size)


class IndexedTFRecordDataset(Dataset):
    """Random access to the records of plain TFRecord shards, through their ``.idx``
    indexes: ``len(dataset)`` records, ``dataset[i]`` the i-th, counted over the files
    in order (the order ``TFRecordDataset`` reads them without shuffling).

    Args:
        paths: a file, a pattern (``"out/train-*"``) or a list of them: local, plain
            (uncompressed) shards.
        build_index: write a missing or stale index (hidden beside its shard:
            ``out/.train-00000-of-00004.idx``, as ``tfrecord-lite index`` does); when
            False, such an index is an error that says how to write it.
        decode_images, channels_first, tensors, transform, max_record_size: as for
            :class:`TFRecordDataset`.
    Raises:
        FileNotFoundError: a path or pattern that names no file.
        IndexFileError: a compressed shard or a URL; an index that is missing or stale
            and may not (or cannot) be written.
        CorruptRecordError, TruncatedRecordError: a damaged shard whose index is to be
            written (saying what to do, as below).

    ``dataset[i]`` raises ``CorruptRecordError`` or ``TruncatedRecordError`` for a
    damaged record, and ``IndexFileError`` for an index entry past the end of a cut
    shard, naming the file, the record number in it and ``i``, and saying what to do:
    verify the shard, rebuild its index, or read with ``TFRecordDataset(skip_damaged=True)``.
    """

    def __init__(self, paths: Paths, *, decode_images: bool = False,
                 channels_first: bool = False, tensors: bool = True,
                 transform: Callable[[Any], Any] | None = None, build_index: bool = True,
                 max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> None:
        super().__init__()
        self.files = shard_files(paths)
        self.max_record_size = max_record_size
        self._indexes = [_index_of(f, build_index, max_record_size) for f in self.files]
        self._ends = np.cumsum([len(index) for index in self._indexes])
        self._samples = _Samples(decode_images, channels_first, tensors, transform)

    def __len__(self) -> int:
        return int(self._ends[-1])

    def locate(self, i: int) -> tuple[str, int]:
        """(file, record number in it) of record ``i``.

        Raises:
            IndexError: no record ``i``.
        """
        shard, number = self._locate(i)
        return self.files[shard], number

    def _locate(self, i: int) -> tuple[int, int]:
        n = len(self)
        position = operator.index(i)
        if position < 0:
            position += n
        if not 0 <= position < n:
            raise IndexError(f"record {i} is out of range: the dataset has {n} records")
        shard = int(np.searchsorted(self._ends, position, side="right"))
        return shard, position - (int(self._ends[shard - 1]) if shard else 0)

    def __getitem__(self, i: int) -> Any:
        shard, number = self._locate(i)
        path, index = self.files[shard], self._indexes[shard]
        try:
            data = read_record_at(path, number, cast("list[tuple[int, int]]", index),
                                  max_record_size=self.max_record_size)
        except RecordError as exc:
            raise type(exc)(f"{exc.reason}, read as dataset[{i}]. {_what_to_do(path)}",
                            path=exc.path, index=exc.index, offset=exc.offset) from exc
        except IndexFileError as exc:  # an entry past the end: the shard was cut or rewritten
            raise IndexFileError(f"{exc}, read as dataset[{i}]. {_what_to_do(path)}") from exc
        return self._samples(path, number, int(index[number][0]), data)


def _what_to_do(path: str, indexed: bool = True) -> str:
    """What to do about a damaged record of ``path``, met through its index or (not
    ``indexed``) while writing the index."""
    rebuild = (f"if the shard was rewritten after its index, rebuild the index: python -m "
               f"tfrecord_lite index {path}; " if indexed else "")
    return (f"To list every damaged record: python -m tfrecord_lite verify {path}; "
            f"{rebuild}to train past damaged records, read the shards with "
            "TFRecordDataset(..., skip_damaged=True), which skips and counts them")


def collate(batch: list[Any], stack_images: bool = True) -> Any:
    """Batch the samples of ``decode_images=True`` (``DataLoader(collate_fn=collate)``).

    ``image`` (and ``segmentation``) are stacked into [B, ...] tensors and ``label``
    into [B]; ``boxes``, ``labels``, ``masks``, ``id`` and ``item``, whose sizes differ
    from image to image, stay lists with one entry per image (``None`` where a sample
    lacks the key). With ``stack_images=False`` images stay a list too (for images of
    different sizes, as detection models take them).

    Samples that a ``transform`` made tuples, such as ``(image, target)``, give a tuple
    of batches, one per position: tensors and arrays stacked (a list with
    ``stack_images=False``), numbers as a [B] tensor, dicts as above (``target["boxes"]``
    a list), anything else a list.

    Raises:
        TypeError: a sample that is neither a dict with an ``image`` nor a tuple, or
            tuples of different lengths.
        ValueError: images (or label images, or a tuple's tensors) of different sizes to
            stack.
    """
    if batch and all(isinstance(sample, tuple) for sample in batch):
        lengths = sorted({len(sample) for sample in batch})
        if len(lengths) != 1:
            raise TypeError(f"collate batches tuples of one length; this batch holds tuples "
                            f"of {' and '.join(map(str, lengths))} items")
        parts = [_collate_position(list(values), position, stack_images)
                 for position, values in enumerate(zip(*batch))]
        first = batch[0]
        return type(first)(*parts) if hasattr(first, "_fields") else tuple(parts)
    if not batch or not all(isinstance(s, Mapping) and "image" in s for s in batch):
        raise TypeError(_not_samples(batch))
    return _collate_dicts(batch, stack_images)


def _not_samples(batch: list[Any]) -> str:
    """Why ``collate`` cannot batch ``batch``, and what to do."""
    if not batch:
        return "collate was given an empty batch"
    odd = next(s for s in batch if not (isinstance(s, tuple)
                                         or isinstance(s, Mapping) and "image" in s))
    if isinstance(odd, Mapping):
        return ("collate batches the samples of decode_images=True (dicts with an 'image'); "
                "without decode_images, use collate_fn=list")
    return (f"collate batches dicts with an 'image' (decode_images=True) and tuples (what a "
            f"transform may return); this batch holds a {type(odd).__name__}"
            + (" beside tuples" if any(isinstance(s, tuple) for s in batch) else "")
            + ": have the transform return one kind, or pass a collate_fn of your own")


def _is_array(value: Any) -> bool:
    return isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim > 0


def _collate_position(values: list[Any], position: int, stack_images: bool) -> Any:
    """The batch of one position of tuple samples (see :func:`collate`)."""
    if all(isinstance(v, Mapping) for v in values):
        return _collate_dicts(values, stack_images)
    if all(_is_array(v) for v in values):
        if not stack_images:
            return [torch.as_tensor(v) for v in values]
        shapes = [tuple(v.shape) for v in values]
        if len(set(shapes)) != 1:
            raise ValueError(f"cannot stack item {position} of the tuples of this batch, their "
                             f"sizes differ ({', '.join(map(str, shapes))}): resize them in "
                             "the transform, or collate with stack_images=False to keep a "
                             "list")
        return default_collate([torch.as_tensor(v) for v in values])
    if all(isinstance(v, (bool, int, float, np.number, np.ndarray, torch.Tensor))
           for v in values):  # numbers, and tensors of one number
        return default_collate([torch.as_tensor(v) for v in values])
    return values


def _collate_dicts(batch: list[Mapping[str, Any]], stack_images: bool) -> dict[str, Any]:
    keys = list(dict.fromkeys(k for sample in batch for k in sample))
    out: dict[str, Any] = {}
    for key in keys:
        values = [sample.get(key) for sample in batch]
        if key == "label":
            out[key] = torch.as_tensor(np.array([-1 if v is None else int(v) for v in values],
                                                dtype=np.int64))
        elif key in _STACKED and stack_images:
            shapes = {tuple(v.shape) for v in values if v is not None}
            if len(shapes) != 1 or any(v is None for v in values):
                sizes = ", ".join(f"{s.get('id')!r}: {tuple(s[key].shape)}" if key in s
                                  else f"{s.get('id')!r}: none" for s in batch)
                raise ValueError(f"cannot stack the {key}s of this batch, their sizes differ "
                                 f"({sizes}): resize them in the transform, or collate "
                                 "with stack_images=False to keep a list")
            # Stacked straight into shared memory in a worker process: no copy on the
            # way to the training loop.
            out[key] = default_collate([torch.as_tensor(v) for v in values])
        elif key in _TENSORS:
            out[key] = _one_piece(values)
        else:
            out[key] = values
    return out


def _one_piece(values: list[Any]) -> list[Any]:
    """Per-image arrays as tensors that are views of one: from a DataLoader worker they
    cross to the training loop as one piece of shared memory, where each tensor of its
    own would cost a round trip between the processes. ``None`` entries stay."""
    tensors = [None if v is None else torch.as_tensor(v) for v in values]
    present = [t for t in tensors if t is not None]
    if len(present) < 2 or len({t.dtype for t in present}) != 1:
        return tensors
    flat = torch.cat([t.reshape(-1) for t in present])
    out: list[Any] = []
    start = 0
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        out.append(flat[start:start + t.numel()].view(t.shape))
        start += t.numel()
    return out
