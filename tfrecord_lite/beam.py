"""Writing the shards with Apache Beam: ``WriteDataset`` (a PTransform) and ``run``.

Optional: this module imports ``apache_beam`` (``pip install 'apache-beam>=2.50'``);
nothing in the package imports it at module level, so ``import tfrecord_lite`` never
loads Beam.

The pipeline::

    items --Encode--> (shard, (key, record))  --CoGroupByKey with 0..n-1--> WriteShard
               \\--> failed (key, reason, item + error_msg)           |
                                                                    Finish: failures, manifest

* Each item is encoded in the workers by ``items.encode_item``, the function ``create()``
  uses, so a record is byte for byte the record ``create()`` writes for the same item and
  options. An item that cannot be stored goes to the ``failed`` side output, which is
  written as ``{name}.failures.jsonl``: one line per item, a copy of it with ``error_msg``.
* A PCollection has no order, so records are assigned to shards by a seeded hash:
  ``key = sha256(seed, id, filename)``, shard ``key mod num_shards``, records sorted by
  ``key`` within their shard. Without shuffle the hash has no seed and records are sorted
  by id (numerically where ids are whole numbers), then filename. Equal input, options
  and seed give identical files run to run, whatever the runner and its parallelism. The
  assignment differs from ``create()``'s (contiguous runs of sizes differing by at most
  one): shard sizes here vary like a multinomial draw, and with few items some shards
  may be empty. Every shard name is written, empty shards included.
* Each shard is gathered on one worker, sorted, and written by ``shards.ShardWriter``
  (the local runners' shard writer), published whole under its final name, so no file
  under a final name is ever partial. A shard must
  fit in a worker's memory: choose ``num_shards`` accordingly (a few hundred MB each).
* The items are also counted on their own. If the records and failures that reach the
  end do not add up to that count (a runner that loses elements, as the DirectRunner's
  multi_threading mode does), the pipeline fails and writes no manifest.
* Last, ``{name}.manifest.json``, in the format of ``create()``'s.

``run`` then writes ``{name}.failures.json`` (as ``create()`` does) and removes what an
earlier run of the prefix left (its other shards, record indexes), so that a run from
Python leaves the same files as the command line's ``--runner beam``.

The output directory must be a path every worker can write, or an fsspec URL (an object
store, see ``storage``). The validation checks run in the workers as in ``create()``.
Duplicate ids are found by grouping the items by id (one more shuffle, of the items
without their images): ``create()`` keeps the first in input order, a PCollection has
none, so here the one whose JSON (keys sorted) comes first is kept and the others fail
(or, lenient, are written with a warning), whatever order the items arrive in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import shlex
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineState

from . import keys, sharding, shards, storage
from .errors import OptionsError, WriteError, write_errors
from .framing import DEFAULT_MAX_RECORD_SIZE
from .items import ItemOptions, failure_reason, try_encode
from .job import (
    JobSummary,
    ShardInfo,
    check_job,
    failure_copy,
    failures_json,
    failures_line,
    remove_earlier_run,
    warn_glob_clashes,
)
from .options import JobOptions, fspath_or_none
from .validate import Problem

logger = logging.getLogger(__name__)

FAILURES_JSONL_SUFFIX = sharding.FAILURES_JSONL_SUFFIX
_FAILED = "failed"

SortKey = tuple[str, ...]

# A runner reports a failed pipeline with errors of its own types (Dataflow's
# DataflowRuntimeException derives from Exception): those become a WriteError naming the
# cause. A worker's error that is a bug in Python code, which the DirectRunner re-raises
# with its own type, propagates with its traceback instead.
_NOT_WRAPPED = (WriteError, ArithmeticError, AssertionError, AttributeError, LookupError,
                NameError, TypeError)


# -- file operations: through storage.Folder, so the output may be a URL ---------------

def _write_small_files(directory: str, files: dict[str, bytes]) -> None:
    with storage.folder(directory) as out:
        for name, data in files.items():
            out.write(name, data)


def _last_line(exc: BaseException) -> str:
    """A runner's error without the worker's traceback that it may carry in its text."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def _each(_: Any, items: list[Any]) -> list[Any]:
    return items


def _write_json(value: Any, directory: str, name: str) -> None:
    _write_small_files(directory, {name: json.dumps(value).encode()})


# -- the plan: everything a worker needs, picklable ---------------------------------------

@dataclass(frozen=True)
class _Plan:
    name: str
    output_directory: str
    num_shards: int
    options: JobOptions  # seeded

    def place(self, item: Any) -> tuple[int, SortKey]:
        """The shard of an item and its sort key within the shard."""
        ident = filename = ""
        if isinstance(item, Mapping):
            ident = "" if item.get("id") is None else str(item["id"])
            filename = "" if item.get("filename") is None else str(item["filename"])
        shuffle = self.options.shuffle
        salt = [self.options.seed] if shuffle else []
        digest = hashlib.sha256(json.dumps([*salt, ident, filename]).encode()).hexdigest()
        shard = int(digest, 16) % self.num_shards
        if shuffle:
            return shard, (digest,)
        # Whole-number ids in numeric order: shorter first, then by digits.
        rank = f"{len(ident):012d}" if ident.isdigit() else "~"
        return shard, (rank, ident, filename)


# -- the steps ----------------------------------------------------------------------------

def _by_id(item: Any) -> tuple[tuple[str, str], Any]:
    """(("id", id), item); items without an id get a key of their own."""
    if isinstance(item, Mapping) and item.get("id") is not None:
        return ("id", str(item["id"])), item
    return ("none", uuid.uuid4().hex), item


def _canonical(item: Any) -> str:
    return json.dumps(item, sort_keys=True, default=repr)


def _mark_duplicates(group: tuple[tuple[str, str], Iterable[Any]]
                     ) -> Iterator[tuple[Any, Problem | None]]:
    """(item, the problem of a duplicate id or None) for each item of an id's group."""
    (kind, ident), members = group
    ranked = sorted(members, key=_canonical)
    yield ranked[0], None
    if kind != "id":
        return
    first = ranked[0].get("filename")
    for item in ranked[1:]:
        yield item, Problem("id", f"{ident!r} is also the id of the item with filename "
                                  f"{first!r}")


def _no_duplicates_sought(item: Any) -> tuple[Any, None]:
    return item, None


class _EncodeFn(beam.DoFn):
    """(item, duplicate) -> (shard, (key, record)), or to ``failed``: (key, reason,
    item + error_msg)."""

    def __init__(self, plan: _Plan) -> None:
        self._plan = plan
        self._item_options = ItemOptions(plan.options)

    def process(self, element: tuple[Any, Problem | None]) -> Iterator[Any]:
        item, duplicate = element
        shard, key = self._plan.place(item)
        data, error, warnings = try_encode(item, self._item_options, duplicate)
        for message in warnings:  # lenient validation: written, with a warning
            logger.warning("%s", message)
        if data is not None:
            yield shard, (key, data)
            return
        assert error is not None
        yield beam.pvalue.TaggedOutput(_FAILED, (key, failure_reason(error),
                                                 failure_copy(item, error)))


class _WriteShardFn(beam.DoFn):
    """(shard, {"records": [(key, record), ...]}) -> (shard, ShardInfo), the file written."""

    def __init__(self, plan: _Plan) -> None:
        self._plan = plan

    def process(self, element: tuple[int, Mapping[str, Iterable[Any]]]) -> Iterator[Any]:
        index, grouped = element
        plan = self._plan
        records = sorted(grouped["records"])  # by key; equal keys by their bytes
        name = sharding.shard_name(plan.name, index, plan.num_shards)
        with storage.folder(plan.output_directory) as out:
            with write_errors(f"cannot create output directory {out}"):
                out.makedirs()
            # Unique per attempt: a runner may run the same shard twice at once (retries,
            # speculative execution); both write identical bytes, the last one published wins.
            temp = f"{out.temp_path(name)}-{uuid.uuid4().hex}"
            with shards.ShardWriter(temp, index, name, plan.options.compression,
                                    out.location(name)) as writer:
                for _, data in records:
                    writer.add_record(data)
            result = shards.finish(out, writer.result, name)
        yield index, result.info()


class _FinishFn(beam.DoFn):
    """Writes the failures file, then the manifest; yields the summary as a dict."""

    def __init__(self, plan: _Plan) -> None:
        self._plan = plan

    def process(self, _: Any, shards: list[tuple[int, ShardInfo]],
                failures: list[tuple[SortKey, str, dict[str, Any]]], count: int
                ) -> Iterator[dict[str, Any]]:
        plan = self._plan
        delivered = sum(info.records for _, info in shards) + len(failures)
        if delivered != count:
            raise WriteError(
                f"{plan.name}: the runner lost items: {count} went in, {delivered} reached "
                f"the shard writers and the failures file; the shards in "
                f"{plan.output_directory} are incomplete and no manifest was written (Beam's "
                "DirectRunner does this in multi_threading mode: use in_memory or "
                "multi_processing)")
        lines = sorted((key, failures_line(failed)) for key, _, failed in failures)
        summary = JobSummary(plan.name, plan.output_directory, count,
                             options=plan.options.manifest())
        for _, info in sorted(shards, key=lambda s: s[0]):
            summary.add_shard(info)
        for _, reason, failed in failures:
            summary.add_failure(failed, reason)
        directory = plan.output_directory
        with write_errors(f"cannot write the failures file or the manifest in {directory}"):
            _write_small_files(directory, {  # the failures first: the manifest comes last
                plan.name + FAILURES_JSONL_SUFFIX: "".join(line + "\n" for _, line in lines
                                                           ).encode(),
                sharding.manifest_name(plan.name): summary.manifest_json()})
        yield {"manifest": summary.manifest(), "failed_by_reason": summary.failed_by_reason}


class WriteDataset(beam.PTransform):
    """Write a PCollection of items (docs/item-format.md) as ``num_shards`` files.

    The shards are those ``create()`` writes: same names (``{name}-{i:05d}-of-{n:05d}``),
    same records byte for byte, plus ``{name}.failures.jsonl`` and
    ``{name}.manifest.json``; only the assignment of records to shards differs (see the
    module docstring). The output is a PCollection of one dict: ``manifest`` (as written)
    and ``failed_by_reason``.

    Args:
        dataset_name: shard name prefix.
        output_directory: a path every worker can write (created when missing).
        num_shards: any number >= 1.
        shuffle: spread items over shards and order them by a seeded hash; without it,
            by a hash without seed, each shard ordered by id.
        store_images, seed, compression, quality, max_side, decode_check, validation,
            root, max_record_size: as for ``create()``. Without a seed, a random one is chosen and
            recorded. Lenient validation's warnings are logged by the workers.
    Raises:
        ValueError: an argument is out of range (when the transform is made).
    """

    def __init__(self, dataset_name: str, output_directory: str | os.PathLike[str],
                 num_shards: int, *, shuffle: bool = True, store_images: bool = True,
                 seed: int | None = None, compression: str | None = None, quality: int = 95,
                 max_side: int | None = None, decode_check: bool = True,
                 validation: str = "strict", root: str | os.PathLike[str] | None = None,
                 max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> None:
        super().__init__()
        options = JobOptions(shuffle=shuffle, seed=seed, store_images=store_images,
                             compression=compression, quality=quality, max_side=max_side,
                             decode_check=decode_check, validation=validation,
                             root=fspath_or_none(root), max_record_size=max_record_size)
        check_job(dataset_name, num_shards)
        self.plan = _Plan(dataset_name, os.fspath(output_directory), num_shards,
                          options.seeded())

    @classmethod
    def from_options(cls, dataset_name: str, output_directory: str | os.PathLike[str],
                     num_shards: int, options: JobOptions) -> WriteDataset:
        """The transform for a job's options given as one ``JobOptions`` (``resume`` and
        ``fsync`` are the local runner's, refused here).

        Raises:
            OptionsError: (a ValueError) an argument is out of range.
        """
        _refuse_local_options(options)
        return cls(dataset_name, output_directory, num_shards,
                   **{f.name: getattr(options, f.name) for f in dataclasses.fields(options)
                      if not f.metadata.get("local")})

    def expand(self, items: Any) -> Any:
        plan = self.plan
        if plan.options.validation == "off":
            checked = items | "NoIdCheck" >> beam.Map(_no_duplicates_sought)
        else:
            checked = (items
                       | "KeyById" >> beam.Map(_by_id).with_output_types(Any)
                       | "GroupById" >> beam.GroupByKey()
                       | "MarkDuplicates" >> beam.FlatMap(_mark_duplicates))
        encoded = checked | "Encode" >> beam.ParDo(_EncodeFn(plan)).with_outputs(
            _FAILED, main="records")
        every_shard = items.pipeline | "ShardIndices" >> beam.Create(
            [(i, None) for i in range(plan.num_shards)])
        shards = (
            {"index": every_shard, "records": encoded.records}
            | "GroupByShard" >> beam.CoGroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShardFn(plan))
        )
        # Counted apart from the records, so that a runner losing elements is caught.
        count = items | "CountItems" >> beam.combiners.Count.Globally()
        return (
            items.pipeline
            | "Once" >> beam.Create([None])
            | "Finish" >> beam.ParDo(_FinishFn(plan), beam.pvalue.AsList(shards),
                                     beam.pvalue.AsList(encoded[_FAILED]),
                                     beam.pvalue.AsSingleton(count))
        )


def _refuse_local_options(options: JobOptions) -> None:
    for field in dataclasses.fields(options):
        if field.metadata.get("local") and getattr(options, field.name) != field.default:
            raise OptionsError(f"{field.name} is for the local runner (a Beam pipeline is "
                               "retried and made durable by its runner)")


def pipeline_options(beam_options: Sequence[str] | str | None) -> PipelineOptions:
    """Beam pipeline options from flags (a list, or one string split as a shell would).

    Raises:
        OptionsError: (a ValueError) an option's value does not parse.
    """
    flags = shlex.split(beam_options) if isinstance(beam_options, str) else list(beam_options or [])
    options = PipelineOptions(flags)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):  # Beam's parser prints, then exits
            options.get_all_options()
    except SystemExit as exc:
        problem = printed.getvalue().strip().rpartition("error: ")[2]
        raise OptionsError(
            f"invalid Beam pipeline options {' '.join(flags)!r}: {problem}") from exc
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = "DirectRunner"
    return options


def run(
    items: Iterable[Mapping[str, Any]],
    dataset_name: str,
    output_directory: str | os.PathLike[str],
    num_shards: int,
    options: JobOptions | None = None,
    *,
    beam_options: Sequence[str] | str | None = None,
) -> JobSummary:
    """Run ``WriteDataset`` on ``items`` and wait for it; the Beam twin of the local
    runner (``local.run``), with the job's options as one ``JobOptions``.

    The items travel inside the pipeline's definition; for a large dataset on a remote
    runner, read them in the pipeline instead (e.g. ``ReadFromText`` of JSON Lines) and
    apply ``WriteDataset``. After the pipeline, ``{name}.failures.json`` is written and
    what an earlier run of the prefix left is removed, as the local runner does.

    Args:
        items: the items (nested dicts; docs/item-format.md). Never modified.
        options: the job's options (default: ``JobOptions()``; ``resume`` and ``fsync``
            are the local runner's).
        beam_options: pipeline options, e.g. ``"--runner=DataflowRunner --project=p"``
            (default: the DirectRunner).
        The others: see ``WriteDataset``.
    Returns:
        A JobSummary as ``write_dataset`` returns it; ``failures`` are read back from
        ``{name}.failures.jsonl`` (bytes values shown as ``"<N bytes>"``).
    Raises:
        ValueError: an argument or a pipeline option is invalid.
        WriteError: the pipeline failed or the output could not be written (no partial
            shard is left under a final name).
    """
    started = time.perf_counter()
    transform = WriteDataset.from_options(dataset_name, output_directory, num_shards,
                                          JobOptions() if options is None else options)
    plan = transform.plan
    pipeline = pipeline_options(beam_options)
    _make_directory(plan.output_directory, plan.name)
    handoff = f".{plan.name}-summary-{uuid.uuid4().hex}.json"
    dataset = list(items)
    _run_pipeline(pipeline, transform, dataset, handoff)
    summary = _read_summary(plan, handoff)
    if summary.total != len(dataset):
        raise WriteError(f"the Beam pipeline accounted for {summary.total} of "
                         f"{len(dataset)} items; the output in {plan.output_directory} is "
                         "incomplete")
    _finish(plan, summary)
    summary.seconds = time.perf_counter() - started
    unknown = keys.UnknownKeys()
    for item in dataset:
        unknown.add(item)
    summary.unknown_keys = unknown.as_dict()
    logger.info("%s", summary.describe())
    return summary


def _finish(plan: _Plan, summary: JobSummary) -> None:
    """After the pipeline: ``{name}.failures.json``, then the removal of what an earlier
    run of the prefix left (as the local runner does once its manifest is written)."""
    with storage.folder(plan.output_directory) as out:
        failures = sharding.failures_name(plan.name)
        with write_errors(f"cannot write {out.location(failures)}"):
            out.write(failures, failures_json(summary.failures))
        with write_errors(f"cannot remove the shards of an earlier run of {plan.name!r} in "
                          f"{out}"):
            remove_earlier_run(out, plan.name, [s.file for s in summary.shards])


def _make_directory(directory: str, name: str) -> None:
    """Create the output directory; warn when another prefix there shares a shard glob."""
    with storage.folder(directory) as out:
        with write_errors(f"cannot create output directory {directory}"):
            out.makedirs()
        warn_glob_clashes(out, name)


def _run_pipeline(options: PipelineOptions, transform: WriteDataset, dataset: list[Any],
                  handoff: str) -> None:
    """Run ``transform`` on the items and wait; the summary is left in file ``handoff``.

    Raises:
        WriteError: the pipeline failed (the runner's error, named and chained).
    """
    pipeline = beam.Pipeline(options=options)
    # Not beam.Create(dataset): it infers a type from every value of every item, which
    # takes longer than encoding them on a remote runner.
    _ = (pipeline
         | "Start" >> beam.Impulse()
         | "Items" >> beam.FlatMap(_each, dataset).with_output_types(Any)
         | "Spread" >> beam.Reshuffle()
         | "WriteDataset" >> transform
         | "HandOff" >> beam.Map(_write_json, transform.plan.output_directory, handoff))
    try:
        state = pipeline.run().wait_until_finish()
    except _NOT_WRAPPED:
        raise
    except Exception as exc:  # the runner's own error (e.g. DataflowRuntimeException)
        raise WriteError(f"the Beam pipeline failed: {_last_line(exc)}") from exc
    if state is not None and state != PipelineState.DONE:
        raise WriteError(f"the Beam pipeline ended in state {state}")


def _read_summary(plan: _Plan, handoff: str) -> JobSummary:
    """The JobSummary of a finished pipeline, from the hand-off file (then removed) and
    the failures file."""
    directory = plan.output_directory
    with storage.folder(directory) as out, write_errors(
            f"the Beam pipeline finished but its summary cannot be read in {directory}"):
        result = json.loads(out.read(handoff) or b"null")
        failures_file = out.read(plan.name + FAILURES_JSONL_SUFFIX)
        out.remove(handoff)
    if result is None or failures_file is None:
        raise WriteError(f"the Beam pipeline finished but its summary is missing in {directory}")
    manifest = result["manifest"]
    summary = JobSummary(plan.name, directory, manifest["records"] + manifest["failed"],
                         written=manifest["records"], bytes=manifest["bytes"],
                         options=manifest["options"],
                         failed_by_reason=result["failed_by_reason"],
                         shards=[ShardInfo(**s) for s in manifest["shards"]])
    for line in failures_file.splitlines():
        summary.add_failure(json.loads(line))  # (counted by reason already)
    return summary


__all__ = ["FAILURES_JSONL_SUFFIX", "WriteDataset", "pipeline_options", "run"]
