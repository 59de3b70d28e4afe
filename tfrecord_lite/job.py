"""The job core, shared by the local runner (``writer``) and the Beam runner (``beam``).

What a sharded job is, whichever runner runs it: its arguments' checks, the options of
its items, its summary and manifest, the failure list, how a complete shard is hashed
and published, the errors it raises when the output cannot be written, and the removal
of what an earlier run of the same prefix left. The runners sit on top, as siblings:
neither imports the other.
"""

from __future__ import annotations

import builtins
import errno
import glob
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from . import journal, sharding, storage
from ._version import __version__
from .dataset import ParseFailure, json_default
from .errors import OptionsError, WriteError
from .images import ImageOptions
from .items import ItemOptions
from .options import JobOptions

logger = logging.getLogger(__name__)


def check_job(dataset_name: str, num_shards: int) -> None:
    """Check the arguments of a sharded job that are not options.

    Raises:
        OptionsError: (a ValueError) ``num_shards`` is not a whole number >= 1, or
            ``dataset_name`` is not a plain file name prefix.
    """
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise OptionsError(f"num_shards must be a whole number >= 1, got {num_shards!r}")
    if not dataset_name or "/" in dataset_name or os.sep in dataset_name:
        raise OptionsError(
            f"the prefix (dataset_name) must be a plain file name prefix, without '/', got "
            f"{dataset_name!r}")


def item_options(options: JobOptions) -> ItemOptions:
    """What decides how each item becomes a record, from the job's options."""
    return ItemOptions(options.store_images,
                       ImageOptions(options.quality, options.max_side, options.decode_check),
                       options.validation, options.root)


# -- what a job did -------------------------------------------------------------------------

@dataclass
class ShardInfo:
    file: str
    records: int
    bytes: int
    sha256: str


@dataclass
class JobSummary:
    """What a ``write_dataset`` run did."""

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

    @property
    def failed(self) -> int:
        return len(self.failures)

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
        """A few lines for people: written, failed by reason, shards, bytes, time."""
        rate = self.total / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"wrote {self.written} of {self.total} items to {len(self.shards)} "
            f"shard{'' if len(self.shards) == 1 else 's'} "
            f"({_human_bytes(self.bytes)}) in {self.output_directory} "
            f"in {self.seconds:.1f} s ({rate:.0f} items/s)",
        ]
        if self.resumed_shards:
            lines.append(f"resumed: {self.resumed_shards} shards were already complete")
        if self.failures:
            reasons = ", ".join(f"{n} {reason}" for reason, n in
                                sorted(self.failed_by_reason.items(), key=lambda kv: -kv[1]))
            lines.append(f"failed: {self.failed} ({reasons})")
        if self.warnings:
            lines.append(f"written with warnings (lenient validation): {len(self.warnings)}")
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
    if isinstance(item, ParseFailure):
        return item.as_failure()
    failed = dict(item) if isinstance(item, Mapping) else {"item": item}
    failed["error_msg"] = error if isinstance(error, str) else str(error) or type(error).__name__
    return failed


def failures_json(failures: list[dict[str, Any]]) -> bytes:
    """The content of ``{prefix}.failures.json``: the failed items as a JSON list."""
    return (json.dumps(failures, indent=2, default=json_default) + "\n").encode()


def failures_line(failed: dict[str, Any]) -> str:
    """One failed item as a line of ``{prefix}.failures.jsonl`` (without its newline)."""
    return json.dumps(failed, default=json_default)


# -- shards and the files beside them ------------------------------------------------------------

def write_error(what: str, exc: OSError) -> WriteError:
    """The error of a job whose output cannot be written, naming what and why."""
    full = " (disk full?)" if exc.errno == errno.ENOSPC else ""
    return WriteError(f"cannot write {what}: {exc.strerror or exc}{full}; "
                      "no partial shard was left under a final name")


def finish_shard(out: storage.Folder, temp: str, name: str) -> str:
    """Hash a complete temporary shard and give it the name ``name`` (its final name, or
    the local runner's ``complete_name``); returns the sha256.

    Raises:
        WriteError: it could not be hashed or published (the temporary file is removed).
    """
    try:
        digest = storage.file_sha256(temp)
        out.publish(temp, name)
    except OSError as exc:
        storage.remove_quietly(temp)
        raise write_error(f"shard {out.location(name)}", exc) from exc
    return digest


# -- the two steps of publishing a local run's shards -----------------------------------------
#
# A complete shard first gets a hidden name of its own (``.train-00003-of-00008.complete``,
# which no shard glob matches) and is journaled under it; only when every shard of the
# run is complete are they renamed to their final names, one atomic rename each. So an
# interrupted run leaves an earlier run's dataset as it was, under its names.

COMPLETE_SUFFIX = ".complete"


def complete_name(shard: str) -> str:
    """The hidden name of a complete shard until every shard of its run is complete."""
    return f".{shard}{COMPLETE_SUFFIX}"


def _complete_shard(name: str) -> re.Pattern[str]:
    return re.compile(r"\." + re.escape(name) + r"-[0-9]{5,}-of-[0-9]{5,}"
                      + re.escape(COMPLETE_SUFFIX))


def remove_abandoned(out: storage.Folder, name: str, keep: Iterable[str]) -> None:
    """Remove the hidden complete shards of prefix ``name`` (an interrupted run's) that
    are not in ``keep`` (those a resume keeps).

    Raises:
        OSError: a file could not be removed.
    """
    pattern, kept = _complete_shard(name), set(keep)
    for file in out.names(f".{name}-"):
        if pattern.fullmatch(file) and file not in kept:
            out.remove(file)


def put_in_place(out: storage.Folder, shards: Iterable[str], in_place: Iterable[str] = ()
                 ) -> None:
    """The last step of a run, all its shards being complete: rename each from its
    hidden name to its final name (each rename atomic, replacing an earlier run's file
    of that name), but those already ``in_place`` (a resume after an interruption
    during this step); then, when durable, flush the directory's entries.

    Raises:
        OSError: a file could not be renamed.
    """
    done = set(in_place)
    for shard in shards:
        if shard not in done:
            out.rename(complete_name(shard), shard)
    out.sync_names()


def temp_patterns(name: str) -> list[str]:
    """The job's file names (globs) whose temporary files a killed run may leave."""
    shard = glob.escape(name) + "-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]"
    return [shard, glob.escape(sharding.manifest_name(name)),
            glob.escape(sharding.failures_name(name)),
            *journal.temp_patterns(glob.escape(name))]


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
