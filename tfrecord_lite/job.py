"""The job core: what a sharded job is, whichever runner runs it.

Its arguments' checks, the order its items are read in, its summary and manifest, the
failure list, and the files beside the shards (warnings of shard globs that clash, the
removal of what an earlier run of the same prefix left). A shard's own life is in
``shards``; the runners (``local``, ``beam``) sit on top and never import each other.
"""

from __future__ import annotations

import builtins
import glob
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Optional

from . import keys, plural, sharding, storage
from ._version import __version__
from .dataset import FailedItem, json_default
from .errors import DatasetError, OptionsError
from .validate import IdTracker, Problem

logger = logging.getLogger(__name__)


def check_job(dataset_name: str, num_shards: int) -> None:
    """Check the arguments of a sharded job that are not options.

    Raises:
        OptionsError: (a ValueError) ``num_shards`` is not a whole number >= 1, or
            ``dataset_name`` is not a plain file name prefix.
    """
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise OptionsError(f"num_shards must be a whole number >= 1, got {num_shards!r}")
    why = sharding.check_prefix(dataset_name)
    if why is None and os.sep in dataset_name:
        why = "must be a plain file name prefix, without '/'"
    if why is not None:
        raise OptionsError(f"the prefix (dataset_name) {why}, got {dataset_name!r}")


# (position, item, duplicate-id problem or None, skip: its shard is kept from an
# interrupted run, so it is read but not encoded)
Task = tuple[int, Any, "Problem | None", bool]


class ItemSource:
    """The items of a job in the order they are written, without holding more than needed.

    A shuffled job needs every item in memory; an unshuffled one streams a sized
    iterable (such as ``JsonLines``) once, in its order.

    Args:
        dataset: a sequence, or a sized iterable.
        shuffle, seed: the write order (``sharding.item_order``).
        track_ids: find the items whose id an earlier item has (in input order).

    Attributes:
        unknown_keys: the keys not in the item format, counted per key path over the
            items read so far.
    """

    def __init__(self, dataset: Iterable[Any], shuffle: bool, seed: int | None,
                 track_ids: bool) -> None:
        self._items: Sequence[Any] | None = None
        self._stream: Iterable[Any] | None = None
        if not shuffle and not isinstance(dataset, Sequence) and isinstance(dataset, Sized):
            self._stream = dataset
            self.total = len(dataset)
        else:
            self._items = dataset if isinstance(dataset, Sequence) else list(dataset)
            self.total = len(self._items)
        self.order = (sharding.item_order(self.total, True, seed)
                      if shuffle and self._items is not None else None)
        self._track_ids = track_ids
        self.unknown_keys = keys.UnknownKeys()

    def tasks(self, kept: Iterable[tuple[int, int]] = ()) -> Iterator[Task]:
        """Each item in write order, with its duplicate-id problem; ``skip`` is true for
        the positions in the ``kept`` ranges (``(start, stop)``, shards kept from an
        interrupted run).

        Duplicate ids are found in input order, whatever the write order.

        Raises:
            DatasetError: a streamed dataset grew or shrank while being read.
        """
        skip = bytearray(self.total)
        for start, stop in kept:
            skip[start:stop] = b"\x01" * (stop - start)
        tracker = (IdTracker(self._items if self._items is not None else self._stream)
                   if self._track_ids else None)
        if self.order is not None:
            assert self._items is not None
            items = self._items
            dups = {}
            if tracker is not None:
                for index, item in enumerate(items):
                    problem = tracker.check(index, item)
                    if problem is not None:
                        dups[index] = problem
            for position, index in enumerate(self.order):
                self.unknown_keys.add(items[index])
                yield position, items[index], dups.get(index), bool(skip[position])
            return
        source = self._items if self._items is not None else self._stream
        assert source is not None
        position = -1
        for position, item in enumerate(source):
            if position >= self.total:
                raise DatasetError(f"the dataset grew while being read (more than "
                                   f"{self.total} items)")
            dup = tracker.check(position, item) if tracker is not None else None
            self.unknown_keys.add(item)
            yield position, item, dup, bool(skip[position])
        if position + 1 != self.total:
            raise DatasetError(f"the dataset shrank while being read ({position + 1} of "
                               f"{self.total} items)")


# -- what a job did -------------------------------------------------------------------------

@dataclass
class ShardInfo:
    file: str
    records: int
    bytes: int
    sha256: str


FIRST_FAILURES = 10  # failed items a summary keeps, whatever it keeps of the others


@dataclass
class JobSummary:
    """What a ``write_dataset`` run did.

    ``failed`` counts the failed items; ``first_failures`` holds the copies (each with
    ``error_msg``) of the first ``FIRST_FAILURES`` of them, and ``failures`` those of all
    of them, unless the job was asked not to keep them
    (``keep_failures=False``: the failures file on disk has them, and memory does not
    grow with their number).
    """

    name: str
    output_directory: str
    total: int
    written: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    shards: list[ShardInfo] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    resumed_shards: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    unknown_keys: dict[str, int] = field(default_factory=dict)
    published: bool = True
    failed: int = 0
    first_failures: list[dict[str, Any]] = field(default_factory=list)
    keep_failures: bool = field(default=True, repr=False)
    problems: int = 0  # entries of the failures file found outside the items
    stream: Optional[FailuresFile] = field(default=None, repr=False, compare=False)

    def add_failure(self, failed: dict[str, Any], reason: str | None = None) -> None:
        """Count a failed item (its copy, with ``error_msg``) and its reason, in the
        job's order: kept when the job keeps them, written to ``stream`` when there is
        one."""
        self.failed += 1
        if reason is not None:
            self.failed_by_reason[reason] = self.failed_by_reason.get(reason, 0) + 1
        if len(self.first_failures) < FIRST_FAILURES:
            self.first_failures.append(failed)
        if self.keep_failures:
            self.failures.append(failed)
        if self.stream is not None:
            self.stream.add(failed)

    def add_shard(self, info: ShardInfo) -> None:
        """Count a shard of the job (written, or kept from an interrupted run)."""
        self.shards.append(info)
        self.written += info.records
        self.bytes += info.bytes

    def manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": "tfrecord",
            "records": self.written,
            "failed": self.failed,
            "problems": self.problems,
            "warned": len(self.warnings),
            "num_shards": len(self.shards),
            "bytes": self.bytes,
            "shards": [asdict(s) for s in self.shards],
            "options": self.options,
            "tfrecord_lite_version": __version__,
        }

    def manifest_json(self) -> builtins.bytes:  # (``bytes`` is a field here)
        """The content of ``{name}.manifest.json``."""
        return (json.dumps(self.manifest(), indent=2) + "\n").encode()

    def describe(self) -> str:
        """A few lines for people: written, failed by reason, shards, bytes, time, the
        compression and how TensorFlow reads it, the keys not written."""
        rate = self.total / self.seconds if self.seconds > 0 else 0.0
        compression = str(self.options.get("compression") or "none").upper()
        packed = "" if compression == "NONE" else f"{compression}, "
        if self.published:
            lines = [
                f"wrote {self.written} of {self.total} items to "
                f"{plural.count(len(self.shards), 'shards')} ({packed}"
                f"{_human_bytes(self.bytes)}) in {self.output_directory} in "
                f"{self.seconds:.1f} s ({plural.count(round(rate), 'items')}/s)"]
        else:
            given = f"{plural.count(self.total, 'items')} given"
            if not self.total and self.problems:
                given += (f": {plural.count(self.problems, 'problems')} with the dataset's "
                          "files left every image out")
            lines = [f"wrote no record ({given}): nothing "
                     f"was published, and what {self.output_directory} held of "
                     f"{self.name!r} is as it was"]
        if self.resumed_shards:
            lines.append(f"resumed: {plural.count(self.resumed_shards, 'shards were')} "
                         "already complete")
        if self.failed:
            reasons = ", ".join(f"{n} {reason}" for reason, n in
                                sorted(self.failed_by_reason.items(), key=lambda kv: -kv[1]))
            lines.append(f"failed: {self.failed} ({reasons})")
        if self.warnings:
            mode = self.options.get("validation") or "lenient"
            lines.append(f"written with warnings (validation: {mode}): {len(self.warnings)}")
        if self.unknown_keys:
            lines.append(keys.describe(self.unknown_keys))
        if packed and self.published:
            lines.append(f"the shards are {compression}-compressed: TensorFlow reads them "
                         f'with tf.data.TFRecordDataset(files, compression_type="{compression}")')
        return "\n".join(lines)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


# -- failed items -----------------------------------------------------------------------------

def failure_copy(item: Any, error: BaseException | str) -> dict[str, Any]:
    """What the failure list holds for an item: a copy with ``error_msg`` added."""
    if isinstance(item, FailedItem):
        return item.as_failure()
    failed = dict(item) if isinstance(item, Mapping) else {"item": item}
    failed["error_msg"] = error if isinstance(error, str) else str(error) or type(error).__name__
    return failed


def failures_json(failures: list[dict[str, Any]]) -> bytes:
    """The content of ``{prefix}.failures.json``: the failed items as a JSON list."""
    return (json.dumps(failures, indent=2, default=json_default) + "\n").encode()


class FailuresFile:
    """``{prefix}.failures.json`` written as the failed items come, a few at a time: the
    same bytes as ``failures_json`` of the whole list, without holding the list.

    Args:
        f: the (temporary) file, open for writing bytes; ``close`` ends the list.
    """

    BATCH = 128  # items encoded together (the encoder costs something per call)

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._batch: list[dict[str, Any]] = []
        self.count = 0

    def add(self, failed: dict[str, Any]) -> None:
        self._batch.append(failed)
        if len(self._batch) >= self.BATCH:
            self._write()

    def _write(self) -> None:
        if not self._batch:
            return
        # The batch as a JSON list, between its brackets: "[\n" + elements + "\n]".
        text = json.dumps(self._batch, indent=2, default=json_default)[2:-2]
        self._f.write(f"{',' if self.count else '['}\n{text}".encode())
        self.count += len(self._batch)
        self._batch = []

    def close(self) -> None:
        """Write what is left, and end the list (the file is the caller's to close)."""
        self._write()
        self._f.write(b"\n]\n" if self.count else b"[]\n")


def failures_line(failed: dict[str, Any]) -> str:
    """One failed item as a line of ``{prefix}.failures.jsonl`` (without its newline)."""
    return json.dumps(failed, default=json_default)


# -- the files beside the shards ------------------------------------------------------------

def remove_stale_temps(out: storage.Folder, name: str) -> None:
    """Remove the temporary files a killed run of prefix ``name`` left (those of its
    shards, manifest, failures and journal; never another prefix's)."""
    out.remove_stale_temps(lambda target: sharding.owner(target) == name)


def warn_glob_clashes(out: storage.Folder, name: str) -> list[str]:
    """Warn (logging WARNING) when the shard glob ``{name}-*`` would read files of
    another dataset in ``out``, or when another prefix's glob would read this one's
    (``train`` and ``train-a`` in one folder: ``train-*`` matches both).

    Returns:
        The warnings logged.
    """
    try:
        matched, covering = sharding.glob_clashes(name, out.names(""))
    except OSError:
        return []
    hint = f"{glob.escape(name)}-?????-of-?????"
    warnings = []
    if matched:
        shown = ", ".join(matched[:5]) + (f", ... ({len(matched)} in all)"
                                          if len(matched) > 5 else "")
        warnings.append(
            f"the shard glob {out.location(name + '-*')} also matches files that are not "
            f"shards of {name!r}: {shown}; readers of this dataset should glob "
            f"{out.location(hint)} instead, or give the dataset another prefix")
    for other in covering:
        warnings.append(
            f"{out} holds the dataset {other!r}, whose shard glob "
            f"{out.location(other + '-*')} will also match the shards of {name!r}; its "
            f"readers should glob {out.location(glob.escape(other) + '-?????-of-?????')} "
            "instead, or give this dataset another prefix (one without a '-' after "
            f"{other!r}, or another folder)")
    for warning in warnings:
        logger.warning("%s", warning)
    return warnings


def remove_earlier_run(out: storage.Folder, name: str, shards: Iterable[str],
                       kept: Iterable[str] = ()) -> list[str]:
    """Remove what an earlier run of prefix ``name`` left that no longer describes the
    dataset: shards (``name-NNNNN-of-NNNNN``) not in ``shards``, the record indexes
    (``.name-NNNNN-of-NNNNN.idx``, or an older ``name-NNNNN-of-NNNNN.idx``) of every shard
    but those ``kept`` unchanged from an earlier run (a resume), and a manifest or failures
    file under an earlier version's names.

    Called once a run is complete (after its manifest), so that the shard glob of the
    prefix matches exactly this run's shards. Other prefixes are never touched
    (``train2-...`` does not start with ``train-``). Each removal is logged by name.

    Returns:
        The names removed.
    Raises:
        OSError: a file could not be removed.
    """
    shard = re.compile(re.escape(name) + r"-[0-9]{5,}-of-[0-9]{5,}")
    earlier = {name + suffix for suffix in sharding.OLD_SIDE_SUFFIXES}
    this_run, unchanged = set(shards), set(kept)
    removed = []
    # Record indexes: ``.train-00000-of-00003.idx`` (hidden), or ``train-...idx`` (older).
    hidden = [f for f in out.names("." + name + "-") if f.endswith(sharding.INDEX_SUFFIX)]
    for file in out.names(name + "-") + hidden:
        stem = (file[:-len(".idx")].removeprefix(".") if file.endswith(".idx") else None)
        if (file in earlier or (shard.fullmatch(file) and file not in this_run)
                or (stem is not None and shard.fullmatch(stem) and stem not in unchanged)):
            out.remove(file)
            logger.info("removed %s (from an earlier run of %r)", out.location(file), name)
            removed.append(file)
    return removed
