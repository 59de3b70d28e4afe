"""Writing TFRecord files: one file (``TFRecordWriter``), and the sharded job (``create``).

The job reads items in a seeded order, encodes them on a pool of threads and writes
the records in that order, so the output bytes do not depend on the thread count.
Each shard is written under a hidden temporary name and renamed when complete: no
file ever carries a final shard name while partial.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Callable

from . import __version__, sharding
from . import compression as _compression
from .crc32c import CrcFn, crc32c
from .errors import TFRecordLiteError, WriteError
from .framing import RecordFramer
from .parallel import in_order
from .progress import make_progress

logger = logging.getLogger(__name__)

MANIFEST_SUFFIX = "-manifest.json"


class TFRecordWriter:
    """Writes records to one TFRecord file, plain or compressed as a whole stream.

    Use as a context manager::

        with TFRecordWriter("data.tfrecord", compression="gzip") as w:
            w.write(example_bytes)

    Args:
        path: the file to write (truncated if it exists).
        compression: None / "none", "gzip" or "zlib" (TensorFlow's names work too).
        crc_fn: the CRC32C function (tests swap it).
    """

    def __init__(self, path: str | os.PathLike[str], compression: str | None = None,
                 crc_fn: CrcFn = crc32c) -> None:
        self.path = os.fspath(path)
        self.compression = _compression.normalize(compression)
        self._file: IO[bytes] = _compression.open_file(self.path, "w", self.compression)
        self._framer = RecordFramer(self._file, crc_fn)
        # write(data: bytes) -> int frames and writes one record, returning the framed
        # size; bound directly to the framer to keep per-record overhead minimal.
        self.write = self._framer.write

    def flush(self) -> None:
        """Push every record written so far to the operating system."""
        self._framer.flush()
        self._file.flush()

    def close(self) -> None:
        """Flush and close; idempotent."""
        if not self._file.closed:
            try:
                self._framer.flush()
            finally:
                self._file.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the sharded job --------------------------------------------------------------------

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
    shards: list[ShardInfo] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": "tfrecord",
            "records": self.written,
            "failed": self.failed,
            "num_shards": len(self.shards),
            "bytes": self.bytes,
            "shards": [asdict(s) for s in self.shards],
            "options": self.options,
            "tfrecord_lite_version": __version__,
        }

    def describe(self) -> str:
        """A few lines for people: written, failed by reason, shards, bytes, time."""
        rate = self.total / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"wrote {self.written} of {self.total} items to {len(self.shards)} shards "
            f"({_human_bytes(self.bytes)}) in {self.output_directory} "
            f"in {self.seconds:.1f} s ({rate:.0f} items/s)",
        ]
        if self.failures:
            reasons = ", ".join(f"{n} {reason}" for reason, n in
                                sorted(self.failed_by_reason.items(), key=lambda kv: -kv[1]))
            lines.append(f"failed: {self.failed} ({reasons})")
        return "\n".join(lines)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _encode_one(encode: Callable[[Mapping[str, Any]], bytes], item: Any
                ) -> tuple[bytes | None, BaseException | None]:
    try:
        return encode(item), None
    except TFRecordLiteError as exc:
        return None, exc
    except Exception as exc:  # a bug or an unforeseen input: reported, never lost
        logger.debug("unexpected error encoding an item", exc_info=True)
        return None, exc


def _write_atomically(path: str, data: bytes) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def check_job_arguments(dataset_name: str, num_shards: int, quality: int,
                        max_side: int | None) -> None:
    """Raise ValueError for an argument of a sharded job that is out of range."""
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"num_shards must be a whole number >= 1, got {num_shards!r}")
    if not dataset_name or "/" in dataset_name or os.sep in dataset_name:
        raise ValueError(f"dataset_name must be a plain file name prefix, got {dataset_name!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")


def write_dataset(
    dataset: Iterable[Mapping[str, Any]],
    dataset_name: str,
    output_directory: str | os.PathLike[str],
    num_shards: int,
    num_threads: int,
    shuffle: bool = True,
    store_images: bool = True,
    *,
    seed: int | None = None,
    compression: str | None = None,
    quality: int = 95,
    max_side: int | None = None,
    decode_check: bool = True,
    progress: bool | Callable[[int, int], Any] = True,
) -> JobSummary:
    """Write ``dataset`` as ``num_shards`` TFRecord files; the engine behind ``create``.

    Returns:
        A JobSummary: counts, failures (copies of the items, each with
        ``error_msg``), shard names with their counts, bytes and sha256.
    Raises:
        ValueError: an argument is out of range.
        WriteError: the output could not be written (no partial shard is left).
    """
    from .images import ImageOptions
    from .items import ItemOptions, encode_item, failure_reason

    check_job_arguments(dataset_name, num_shards, quality, max_side)
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a whole number >= 1, got {num_threads!r}")
    comp = _compression.normalize(compression)
    items: Sequence[Mapping[str, Any]] = (dataset if isinstance(dataset, Sequence)
                                          else list(dataset))
    if shuffle and seed is None:
        seed = sharding.new_seed()
    out_dir = os.fspath(output_directory)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise WriteError(
            f"cannot create output directory {out_dir}: {exc.strerror or exc}") from exc

    options = ItemOptions(store_images, ImageOptions(quality, max_side, decode_check))
    summary = JobSummary(dataset_name, out_dir, len(items), options={
        "shuffle": shuffle, "seed": seed if shuffle else None, "store_images": store_images,
        "compression": comp, "quality": quality, "max_side": max_side,
        "decode_check": decode_check,
    })
    order = sharding.item_order(len(items), shuffle, seed)
    ranges = sharding.shard_ranges(len(order), num_shards)
    reasons: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    bar = make_progress(progress, len(items), f"{dataset_name}")

    def encode(item: Mapping[str, Any]) -> bytes:
        return encode_item(item, options)

    pool = concurrent.futures.ThreadPoolExecutor(num_threads, thread_name_prefix="tfrecord-lite")
    results = in_order(pool, lambda i: _encode_one(encode, items[i]), order,
                        window=3 * num_threads, chunk=8)
    tmp: str | None = None
    digests: list[concurrent.futures.Future[str]] = []
    try:
        for index, (start, stop) in enumerate(ranges):
            name = sharding.shard_name(dataset_name, index, num_shards)
            final = os.path.join(out_dir, name)
            tmp = os.path.join(out_dir, f".{name}.tmp-{os.getpid()}")
            records = 0
            try:
                with TFRecordWriter(tmp, comp) as writer:
                    for position in range(start, stop):
                        data, error = next(results)
                        if data is not None:
                            writer.write(data)
                            records += 1
                        else:
                            item = items[order[position]]
                            failed = dict(item) if isinstance(item, Mapping) else {"item": item}
                            failed["error_msg"] = str(error) or type(error).__name__
                            summary.failures.append(failed)
                            reasons[failure_reason(error)] += 1
                        bar.update(1)
                os.replace(tmp, final)
            except OSError as exc:
                raise WriteError(
                    f"cannot write shard {final}: {exc.strerror or exc}"
                    f"{' (disk full?)' if getattr(exc, 'errno', None) == 28 else ''}; "
                    "no partial shard was left under a final name") from exc
            tmp = None
            size = os.path.getsize(final)
            # Hash the finished shard on the pool, beside the encoding of the next ones.
            digests.append(pool.submit(_compression.file_sha256, final))
            summary.shards.append(ShardInfo(name, records, size, ""))
            summary.written += records
            summary.bytes += size
        for shard, digest in zip(summary.shards, digests):
            shard.sha256 = digest.result()
        summary.failed_by_reason = dict(reasons)
        summary.seconds = time.perf_counter() - started
        try:
            _write_atomically(os.path.join(out_dir, dataset_name + MANIFEST_SUFFIX),
                              (json.dumps(summary.manifest(), indent=2) + "\n").encode())
        except OSError as exc:
            raise WriteError(
                f"cannot write the manifest in {out_dir}: {exc.strerror or exc}") from exc
    finally:
        bar.close()
        if tmp is not None:
            _remove_quietly(tmp)
        pool.shutdown(wait=True, cancel_futures=True)
    logger.info("%s", summary.describe())
    return summary


def create(
    dataset: Iterable[Mapping[str, Any]],
    dataset_name: str,
    output_directory: str | os.PathLike[str],
    num_shards: int,
    num_threads: int,
    shuffle: bool = True,
    store_images: bool = True,
    **options: Any,
) -> list[dict[str, Any]]:
    """Write a dataset of SPEC items as sharded TFRecord files (the original tool's call).

    Args:
        dataset: the items (nested dicts; see SPEC.md). Never reordered or modified.
        dataset_name: shard name prefix: ``{name}-{i:05d}-of-{num_shards:05d}``.
        output_directory: created when missing.
        num_shards: any number >= 1 (no longer a multiple of ``num_threads``).
        num_threads: encoding threads.
        shuffle: write items in a seeded random order.
        store_images: store the image bytes (``image/encoded``).
        **options: ``seed``, ``compression``, ``quality``, ``max_side``,
            ``decode_check``, ``progress`` (see ``write_dataset``).
    Returns:
        The items that failed, each a copy with an added ``error_msg``.
    Raises:
        WriteError: the output could not be written.
    """
    return write_dataset(dataset, dataset_name, output_directory, num_shards, num_threads,
                         shuffle, store_images, **options).failures
