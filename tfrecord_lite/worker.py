"""A worker process of the local runner: writes the shards its parent sends, one at a time.

Run as ``python -m tfrecord_lite.worker`` by ``processes.Workers``; it talks to the parent
over its standard input and output, one pickled message each:

* parent -> worker: ``("start", ItemOptions, compression, threads)``, then one
  ``ShardTask`` per shard (each item pickled apart, see ``processes.pack``: one that
  cannot be loaded here fails alone), then ``None`` (stop);
* worker -> parent: ``("progress", n)``, ``("done", ShardResult)`` (the shard complete
  and hashed under its temporary name), ``("oserror", shard, errno, strerror,
  filename)`` or ``("bug", shard, exception or None, traceback)``.

A worker ignores Ctrl-C (its parent decides). A thread of its own reads the parent's
messages: when they end without a stop (the parent died, even by ``kill -9``), it removes
the temporary file of the shard being written and exits at once.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, Optional

PROGRESS_EVERY = 16  # items between progress messages (or a second, if sooner)


@dataclass
class ShardTask:
    """One shard for a worker: its items (with their duplicate-id problems) in order:
    ``(position, item, duplicate problem or None)``, and as sent ``(position, pickled
    item, duplicate problem, fingerprint text)``."""

    index: int
    name: str
    temp: str
    items: list[tuple[Any, ...]]


def _load(data: bytes, fingerprint: str) -> Any:
    """An item as sent; one that cannot be loaded here (its class, say, is defined in the
    script that started the job, which this process does not run) becomes a failed item
    naming why."""
    try:
        return pickle.loads(data)
    except Exception as exc:  # a value's own code runs while it loads: anything
        from .dataset import UnsendableItem

        ident, _, filename = fingerprint.rstrip("\n").partition("\0")
        message = (f"id {ident!r}: cannot be loaded by a worker process "
                   f"({type(exc).__name__}: {exc}); give the item's values as JSON-like "
                   "types (text, numbers, lists, dicts, bytes), or run in one process "
                   "(num_processes=1, --processes 1)")
        return UnsendableItem(message, {"id": ident, "filename": filename,
                                        "error_msg": message}, fingerprint)


def send(stream: IO[bytes], message: Any) -> None:
    """Write one message to the other side."""
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


class _State:
    temp: Optional[str] = None  # the shard being written


def _watch(stdin: IO[bytes], tasks: queue.Queue[Any]) -> None:
    """Read the parent's messages; when they end without a stop, the parent died: remove
    the shard being written and end this process at once."""
    while True:
        try:
            message = pickle.load(stdin)
        except Exception:
            temp = _State.temp
            if temp is not None:
                _remove_quietly(temp)
            os._exit(1)
        tasks.put(message)
        if message is None:
            return


def _write_shard(task: ShardTask, options: Any, compression: str | None, pool: Any,
                 threads: int, report: Any) -> Any:
    """Write and hash one shard under its temporary name, as the in-process runner would."""
    from . import items, shards
    from .parallel import in_order

    def encode(entry: tuple[int, Any, Any]) -> Any:
        return items.try_encode(entry[1], options, entry[2])

    unreported, last = 0, time.monotonic()

    def progress(n: int) -> None:
        nonlocal unreported, last
        unreported += n
        if unreported >= PROGRESS_EVERY or time.monotonic() - last >= 1.0:
            report(("progress", unreported))
            unreported, last = 0, time.monotonic()

    _State.temp = task.temp
    entries = [(position, _load(data, text), dup) for position, data, dup, text in task.items]
    task.items = []  # (the pickled items)
    encoded = in_order(pool, encode, entries, window=3 * threads, chunk=8)
    outcomes = ((position, item, *outcome)
                for (position, item, _), outcome in zip(entries, encoded))
    result = shards.write_shard(task.temp, task.index, task.name, compression, outcomes,
                                progress)
    if unreported:
        report(("progress", unreported))
    shards.hash_shard(result)
    return result


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    import concurrent.futures

    from .errors import WriteError

    start = pickle.load(stdin)
    _, options, compression, threads = start
    tasks: queue.Queue[Any] = queue.Queue()
    threading.Thread(target=_watch, args=(stdin, tasks), daemon=True).start()
    lock = threading.Lock()

    def report(message: Any) -> None:
        with lock:
            send(stdout, message)

    with concurrent.futures.ThreadPoolExecutor(threads,
                                               thread_name_prefix="tfrecord-lite") as pool:
        while True:
            task = tasks.get()
            if task is None:
                return
            try:
                result = _write_shard(task, options, compression, pool, threads, report)
            except WriteError as exc:  # its temporary file is removed
                cause = exc.__cause__
                if isinstance(cause, OSError):
                    report(("oserror", task.name, cause.errno, cause.strerror or str(cause),
                            cause.filename))
                else:
                    report(("oserror", task.name, None, str(exc), None))
                continue
            except Exception as exc:
                _remove_quietly(task.temp)
                text = traceback.format_exc()
                try:
                    pickle.dumps(exc)
                except Exception:
                    exc = None
                report(("bug", task.name, exc, text))
                continue
            finally:
                _State.temp = None
            report(("done", result))


def main(argv: Sequence[str] | None = None) -> None:
    """A worker: serve shards from standard input until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if hasattr(signal, "pthread_sigmask"):  # started with SIGINT blocked (processes.py)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    stdin = sys.stdin.buffer
    # The messages go to a private copy of standard output; anything printed by a
    # library goes to standard error instead of into the messages.
    stdout = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        _serve(stdin, stdout)
        stdout.close()
    except (EOFError, OSError):  # the parent has gone: nothing to tell it
        os._exit(1)


if __name__ == "__main__":
    # Run as the package's module, not as __main__, so that what it sends back pickles
    # under its importable name (tfrecord_lite.shards.ShardResult).
    from tfrecord_lite.worker import main as _main

    _main()
