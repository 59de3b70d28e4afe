"""One shard's life, whichever runner writes it: records -> temporary file -> hash ->
published name -> journal entry.

The protocol, told once here:

1. ``ShardWriter`` writes the records under a temporary name (hidden, beside the shard,
   or in a local folder of the job's own when the output is an object store). Failed
   items are listed with their reasons; a fingerprint of every item's id and filename
   lets a resumed run check that its input is the same.
2. ``finish`` hashes the complete file (sha256) and publishes it whole: one rename in a
   local folder, one upload to an object store. The Beam runner publishes a shard
   under its final name; the local runners under a hidden complete name
   (``.train-00003-of-00008.complete``, ``complete_name``) and journal it there.
3. When every shard of a local run is complete, ``put_in_place`` gives each its final
   name, one atomic rename each. So no file under a final shard name is ever partial,
   and an interrupted run leaves an earlier run's dataset as it was.

``ShardResult`` is what a runner learns of a written shard: the summary, the manifest and
the journal entry are read from it. ``kept`` checks a shard that an interrupted run
completed against its journal entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Callable, Optional

from . import journal, sharding, storage
from .errors import ResumeError, WriteError, write_error, write_errors
from .items import failure_reason
from .job import JobSummary, ShardInfo, failure_copy
from .records import TFRecordWriter

NOTHING_PARTIAL = "; no partial shard was left under a final name"
COMPLETE_SUFFIX = ".complete"


def complete_name(shard: str) -> str:
    """The hidden name of a complete shard of a local run until every shard of the run
    is complete (no shard glob matches it)."""
    return f".{shard}{COMPLETE_SUFFIX}"


@dataclass
class ShardResult:
    """A complete shard, with what the summary, the manifest and the journal record.

    Attributes:
        index: the shard's number, from 0.
        name: its final name (``train-00003-of-00008``).
        temp: where it is written before it is published.
        records, bytes, sha256: what it holds (sha256 once hashed).
        fingerprint: of its items' ids and filenames, in order (see ``journal``).
        failed: ``(position, reason, message)`` of each item that failed (emptied once
            journaled, see ``forget_failures``).
        copies: the failed items, each a copy with ``error_msg`` (the failure list's),
            until they are added to the job's summary (none when the writer handed
            them on as they came, see ``ShardWriter``).
        warnings: lenient validation's warnings of the items written.
    """

    index: int
    name: str
    temp: str = ""
    records: int = 0
    bytes: int = 0
    sha256: str = ""
    fingerprint: str = ""
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    copies: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def info(self) -> ShardInfo:
        """What the manifest lists of the shard."""
        return ShardInfo(self.name, self.records, self.bytes, self.sha256)

    def journal_entry(self) -> dict[str, Any]:
        """What the journal records of the shard, published under its complete name."""
        return {"shard": self.index, "file": complete_name(self.name), "final": self.name,
                "records": self.records, "bytes": self.bytes, "items": self.fingerprint,
                "failures": self.failed, "warnings": self.warnings, "sha256": self.sha256}

    def add_failures_to(self, summary: JobSummary) -> None:
        """Add the shard's failed items to a job's summary and let go of them (called in
        shard order, before the next shard's)."""
        for copy, (_, reason, _) in zip(self.copies, self.failed):
            summary.add_failure(copy, reason)
        self.copies = []

    def forget_failures(self) -> None:
        """Let go of the failures' list once the journal has it."""
        self.failed = []

    def add_to(self, summary: JobSummary) -> None:
        """Count the shard in a job's summary (called in shard order, its failures
        added already)."""
        summary.warnings += self.warnings
        summary.add_shard(self.info())


class ShardWriter:
    """Writes one shard under its temporary name; a context manager.

    ``add`` takes each item's outcome in write order (``add_record`` a record alone).
    Leaving the block closes the file and fills in ``result`` (size, fingerprint); on an
    error the temporary file is removed, and an ``OSError`` becomes a ``WriteError``
    naming the shard.

    Args:
        temp: where to write it (a local path; see ``Folder.temp_path``).
        index, name: the shard's number and final name.
        compression: "none", "gzip" or "zlib".
        where: how messages name the shard (``Folder.location``; default: ``name``).
        on_failure: called with each failed item's copy and reason as it fails (the
            shards being written in order: the job's summary takes them at once);
            without it the copies are kept in ``result.copies``.
    """

    def __init__(self, temp: str, index: int, name: str, compression: str | None,
                 where: str | None = None,
                 on_failure: Callable[[dict[str, Any], str], Any] | None = None) -> None:
        self.result = ShardResult(index, name, temp)
        self._what = f"cannot write shard {where or name}"
        self._compression = compression
        self._on_failure = on_failure
        self._fingerprint = journal.new_fingerprint()
        self._writer: Optional[TFRecordWriter] = None

    def __enter__(self) -> ShardWriter:
        with write_errors(self._what, NOTHING_PARTIAL):
            self._writer = TFRecordWriter(self.result.temp, self._compression)
        return self

    def add(self, position: int, item: Any, data: bytes | None, error: BaseException | None,
            warnings: list[str] | None) -> None:
        """One item's outcome: its record (with lenient validation's warnings), or the
        error that failed it."""
        assert self._writer is not None
        journal.item_fingerprint(self._fingerprint, item)
        result = self.result
        if data is not None:
            self._writer.write(data)
            result.records += 1
            if warnings:
                result.warnings += warnings
        else:
            assert error is not None
            copy, reason = failure_copy(item, error), failure_reason(error)
            result.failed.append((position, reason, copy["error_msg"]))
            if self._on_failure is not None:
                self._on_failure(copy, reason)
            else:
                result.copies.append(copy)

    def add_record(self, data: bytes) -> None:
        """A record whose item is not tracked here (the Beam runner lists failures apart)."""
        assert self._writer is not None
        self._writer.write(data)
        self.result.records += 1

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._writer is not None
        temp = self.result.temp
        if kind is not None:
            try:
                self._writer.close()
            except OSError:
                pass  # the error being raised is the one reported
            storage.remove_quietly(temp)
            if isinstance(exc, OSError):
                raise write_error(self._what, exc, NOTHING_PARTIAL) from exc
            return
        try:
            with write_errors(self._what, NOTHING_PARTIAL):
                self._writer.close()
                self.result.bytes = os.path.getsize(temp)
        except WriteError:
            storage.remove_quietly(temp)
            raise
        self.result.fingerprint = self._fingerprint.hexdigest()


Outcome = tuple[int, Any, Optional[bytes], Optional[BaseException], Optional[list[str]]]


def write_shard(temp: str, index: int, name: str, compression: str | None,
                outcomes: Iterable[Outcome], progress: Callable[[int], Any] | None = None,
                where: str | None = None,
                on_failure: Callable[[dict[str, Any], str], Any] | None = None
                ) -> ShardResult:
    """Write a shard under ``temp`` from its items' outcomes ``(position, item, record or
    None, error or None, warnings)``, in order; ``progress(1)`` after each item
    (``on_failure``: see ``ShardWriter``).

    Raises:
        WriteError: the file could not be written (it is removed).
    """
    with ShardWriter(temp, index, name, compression, where, on_failure) as writer:
        for outcome in outcomes:
            writer.add(*outcome)
            if progress is not None:
                progress(1)
    return writer.result


def hash_shard(result: ShardResult, where: str | None = None) -> None:
    """Fill in the sha256 of a complete shard not yet published (``where``: how
    messages name it).

    Raises:
        WriteError: the file could not be read (it is removed).
    """
    try:
        with write_errors(f"cannot write shard {where or result.name}", NOTHING_PARTIAL):
            result.sha256 = storage.file_sha256(result.temp)
    except WriteError:
        storage.remove_quietly(result.temp)
        raise


def publish(out: storage.Folder, result: ShardResult, as_name: str) -> None:
    """Give a complete, hashed shard the name ``as_name`` (its final name, or its
    ``complete_name``), in one step.

    Raises:
        WriteError: it could not be published (the temporary file is removed).
    """
    try:
        with write_errors(f"cannot write shard {out.location(as_name)}", NOTHING_PARTIAL):
            out.publish(result.temp, as_name)
    except WriteError:
        storage.remove_quietly(result.temp)
        raise


def finish(out: storage.Folder, result: ShardResult, as_name: str) -> ShardResult:
    """Hash a complete shard, then publish it as ``as_name``; returns it.

    Raises:
        WriteError: it could not be hashed or published (the temporary file is removed).
    """
    if not result.sha256:
        hash_shard(result, out.location(as_name))
    publish(out, result, as_name)
    return result


def record(out: storage.Folder, job_name: str, result: ShardResult) -> None:
    """Journal a shard published under its complete name.

    Raises:
        WriteError: the journal entry could not be written.
    """
    with write_errors(f"cannot write the job journal in {out}", NOTHING_PARTIAL):
        journal.add(out, job_name, result.journal_entry())


def kept(entry: dict[str, Any], items: Iterable[Any], start: int,
         progress: Callable[[int], Any] | None = None) -> ShardResult:
    """A shard an interrupted run completed, from its journal entry, checked against the
    items it should hold (positions from ``start``; their failures are listed again).

    Raises:
        ResumeError: the items are not those of the interrupted run.
    """
    name = str(entry["final"])
    fingerprint = journal.new_fingerprint()
    failed_at = {f[0]: f[2] for f in entry["failures"]}
    copies = []
    for position, item in enumerate(items, start):
        journal.item_fingerprint(fingerprint, item)
        if position in failed_at:
            copies.append(failure_copy(item, failed_at[position]))
        if progress is not None:
            progress(1)
    if fingerprint.hexdigest() != entry["items"]:
        raise ResumeError(
            f"cannot resume: the items of shard {name} are not those of the "
            "interrupted run (ids or filenames differ); resume with the same "
            "input, or start over (--restart; from Python, without resume)")
    return ShardResult(int(entry["shard"]), name, "", entry["records"], entry["bytes"],
                       entry["sha256"], entry["items"],
                       [tuple(f) for f in entry["failures"]],
                       copies, list(entry["warnings"]))


# -- the last step of a local run ---------------------------------------------------------

def remove_abandoned(out: storage.Folder, name: str, keep: Iterable[str]) -> None:
    """Remove the hidden complete shards of prefix ``name`` (an interrupted run's) that
    are not in ``keep`` (those a resume keeps); no other prefix's (``sharding.owned``).

    Raises:
        OSError: a file could not be removed.
    """
    keep_names = set(keep)
    for file in out.names(f".{name}-"):
        if (sharding.owned(file) == (name, "complete shard", False)
                and file not in keep_names):
            out.remove(file)


def put_in_place(out: storage.Folder, shards: Iterable[str], in_place: Iterable[str] = ()
                 ) -> None:
    """Every shard of a run being complete: rename each from its hidden complete name to
    its final name (replacing an earlier run's file of that name), but those already
    ``in_place`` (a resume after an interruption during this step); then, when durable,
    flush the directory's entries.

    Raises:
        OSError: a file could not be renamed.
    """
    done = set(in_place)
    for shard in shards:
        if shard not in done:
            out.rename(complete_name(shard), shard)
    out.sync_names()
