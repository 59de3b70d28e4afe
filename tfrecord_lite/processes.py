"""Worker processes of the local runner: whole shards written beside each other.

A thread pool shares one interpreter lock: about 250 µs of Python work per image (the
Example encoder, validation, the image library's parsing, writing) caps it at a few
thousand images a second however many cores the machine has. ``Workers`` starts N
worker processes; each writes whole shards with today's thread pool and sends back what
the journal needs. The parent (``writer``) keeps everything that decides the output:
it reads the input, finds duplicate ids in input order, sends each worker one shard's
items at a time (with their duplicate-id problems), publishes and journals each shard as
its result comes back, and lists the failures in shard order at the end. A shard's bytes
depend only on its items and the options, so the output is the same for any number of
processes and threads.

How workers start (deliberately neither ``fork`` nor ``multiprocessing``):

- ``fork`` copies a process whose other threads may hold locks (the logging module's,
  a thread pool's, a C library's allocator): the child can deadlock on its first
  ``logging`` call. The job's caller may have threads of its own, so fork is out.
- ``spawn`` and ``forkserver`` (``multiprocessing``) re-import the caller's main script
  in every worker (as ``__mp_main__``): a script that calls ``create()`` without an
  ``if __name__ == "__main__":`` guard would run again, or fail with multiprocessing's
  bootstrapping error. Processes are on by default, so a plain script must just work.
- So a worker is a fresh interpreter running ``python -m tfrecord_lite.processes``
  (what spawn does, without the main script): it imports only the item encoder, works
  the same on Linux, macOS and Windows, and talks to the parent over its standard
  input and output (pickled messages).

No orphan, nothing partial: a worker ignores Ctrl-C (the parent decides) and a thread
of its own reads its standard input; when that ends without a "stop" (the parent died,
even by ``kill -9``), it removes the temporary file of the shard it was writing and
exits at once. The parent kills its workers on an error or an interruption and removes
their temporary files; shards already published stay journaled, so ``resume`` finishes
the job. A worker that dies (killed, out of memory) fails the job with
``WorkerDiedError`` naming its shard.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Optional

from .errors import DatasetError, WriteError
from .job import write_error

# Messages, each one pickled object:
#   parent -> worker: ("start", ItemOptions, compression, threads), then ShardTask, ...,
#                     then None (stop).
#   worker -> parent: ("progress", n), ("done", ShardResult), ("oserror", shard, errno,
#                     strerror, filename) or ("bug", shard, exception or None, traceback).
PROGRESS_EVERY = 16  # items between progress messages


class WorkerDiedError(WriteError):
    """A worker process ended while writing a shard (killed, out of memory, crashed).

    Attributes:
        shard: the name of the shard it was writing ("" between shards).
        code: its exit status (negative: the signal that ended it).
    """

    def __init__(self, message: str, shard: str, code: int | None) -> None:
        super().__init__(message)
        self.shard = shard
        self.code = code


@dataclass
class ShardTask:
    """One shard for a worker: its items (with their duplicate-id problems) in order."""

    index: int
    name: str
    temp: str
    items: list[tuple[int, Any, Any]]  # (position, item, duplicate problem or None)


@dataclass
class ShardResult:
    """A complete shard under its temporary name, with what the journal records."""

    index: int
    name: str
    temp: str
    records: int
    bytes: int
    sha256: str
    fingerprint: str
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # position, reason, msg
    copies: list[dict[str, Any]] = field(default_factory=list)  # the failure list's copies
    warnings: list[str] = field(default_factory=list)


def cores() -> int:
    """The cores this process may run on (its CPU affinity where known)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# -- the parent's side ----------------------------------------------------------------------

def _send(stream: IO[bytes], message: Any) -> None:
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


@dataclass
class _Worker:
    number: int
    process: subprocess.Popen[bytes]
    task: Optional[ShardTask] = None
    reader: Optional[threading.Thread] = None


class Workers:
    """N worker processes writing one shard each at a time; a context manager.

    ``submit`` gives an idle worker a shard; ``next_event`` returns what the workers
    report (progress, a finished shard) and raises what went wrong. Leaving the context
    stops the workers: on an error, at once (killed, their temporary files removed).
    """

    def __init__(self, count: int, item_options: Any, compression: str | None,
                 threads: int) -> None:
        self.events: queue.Queue[tuple[int, Any]] = queue.Queue()
        self.workers: list[_Worker] = []
        self.closing = False
        env = _worker_environment()
        try:
            for number in range(count):
                process = subprocess.Popen(
                    [sys.executable, "-m", "tfrecord_lite.processes"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
                worker = _Worker(number, process)
                self.workers.append(worker)
                assert process.stdin is not None
                _send(process.stdin, ("start", item_options, compression, threads))
                worker.reader = threading.Thread(target=self._read, args=(worker,),
                                                 name=f"tfrecord-lite-worker-{number}",
                                                 daemon=True)
                worker.reader.start()
        except BaseException:
            self.close(kill=True)
            raise

    def _read(self, worker: _Worker) -> None:
        stream = worker.process.stdout
        assert stream is not None
        while True:
            try:
                message = pickle.load(stream)
            except Exception:  # EOF (the worker ended) or a cut message
                self.events.put((worker.number, ("exit",)))
                return
            self.events.put((worker.number, message))

    def idle(self) -> Optional[_Worker]:
        return next((w for w in self.workers if w.task is None), None)

    def busy(self) -> bool:
        return any(w.task is not None for w in self.workers)

    def submit(self, worker: _Worker, task: ShardTask) -> None:
        """Give ``worker`` (idle) the shard ``task``.

        Raises:
            DatasetError: an item cannot be sent to a process (it holds an object that
                cannot be pickled).
        """
        task.items = [(p, _sendable(item), dup) for p, item, dup in task.items]
        try:
            data = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise _unsendable(task, exc) from exc
        worker.task = task
        assert worker.process.stdin is not None
        try:
            worker.process.stdin.write(data)
            worker.process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._died(worker)

    def next_event(self) -> tuple[str, Any]:
        """The next report: ``("progress", n)`` or ``("done", ShardResult)`` (that
        worker is idle again).

        Raises:
            WorkerDiedError: a worker ended while writing a shard.
            WriteError: a worker could not write its shard.
            Exception: a bug in a worker (its traceback is chained).
        """
        while True:
            try:  # a timeout keeps Ctrl-C prompt on every platform
                number, message = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            worker = self.workers[number]
            kind = message[0]
            if kind == "progress":
                return "progress", message[1]
            if kind == "done":
                worker.task = None
                return "done", message[1]
            if kind == "exit":
                if worker.task is not None or not self.closing:
                    self._died(worker)
                continue
            if kind == "oserror":
                _, shard, errno, strerror, filename = message
                worker.task = None  # its temporary file is removed
                raise write_error(f"shard {shard}", OSError(errno, strerror, filename))
            # "bug": raised here with the worker's traceback chained
            _, shard, exc, text = message
            remote = _RemoteTraceback(f"in the worker writing {shard}:\n{text}")
            if isinstance(exc, BaseException):
                raise exc from remote
            raise RuntimeError(f"a worker failed writing {shard}") from remote

    def _died(self, worker: _Worker) -> None:
        try:
            code = worker.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        shard = worker.task.name if worker.task is not None else ""
        doing = f"writing shard {shard}" if shard else "between shards"
        how = (f"killed by signal {-code}" if code is not None and code < 0
               else f"exit status {code}")
        raise WorkerDiedError(
            f"worker process {worker.process.pid} {doing} ended ({how}; out of memory, "
            "or killed?); the complete shards are kept: run the same job again with "
            "resume (--resume) to finish it", shard, code)

    def close(self, kill: bool) -> None:
        """Stop the workers: asked to (``kill`` False, after the job) or killed at once
        (after an error or an interruption: the temporary files of their shards are
        removed)."""
        self.closing = True
        for worker in self.workers:
            stdin = worker.process.stdin
            if kill:
                worker.process.kill()
            else:
                try:
                    assert stdin is not None
                    _send(stdin, None)
                except (OSError, ValueError):
                    worker.process.kill()
        for worker in self.workers:
            try:
                if worker.process.stdin is not None:
                    worker.process.stdin.close()
            except OSError:
                pass
            try:
                worker.process.wait(timeout=None if kill else 30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            if worker.reader is not None:
                worker.reader.join(timeout=5)
            if worker.process.stdout is not None:
                worker.process.stdout.close()
            if worker.task is not None:
                _remove_quietly(worker.task.temp)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, kind: Any, *rest: Any) -> None:
        self.close(kill=kind is not None)


def _sendable(item: Any) -> Any:
    """An item as sent to a worker: image bytes given as a ``memoryview`` (which does not
    pickle) as ``bytes``, the rest as is."""
    if isinstance(item, dict) and isinstance(item.get("encoded"), memoryview):
        return {**item, "encoded": bytes(item["encoded"])}
    return item


def _unsendable(task: ShardTask, exc: Exception) -> DatasetError:
    """The error for a shard whose items cannot be pickled, naming the first such item."""
    for _, item, _ in task.items:
        try:
            pickle.dumps(item)
        except Exception as error:
            ident = item.get("id") if isinstance(item, dict) else None
            what = f"item {ident!r}" if ident is not None else f"an item of {task.name}"
            return DatasetError(
                f"{what} cannot be sent to a worker process ({type(error).__name__}: "
                f"{error}); give its values as JSON-like types, or run in one process "
                "(num_processes=1, --processes 1)")
    return DatasetError(f"the items of {task.name} cannot be sent to a worker process "
                        f"({type(exc).__name__}: {exc}); run in one process "
                        "(num_processes=1, --processes 1)")


def _worker_environment() -> dict[str, str]:
    """The environment of a worker: this one, with the folder this package was imported
    from put first on ``PYTHONPATH`` when it is not an installed location (a clone, or a
    path added at run time), so that the worker runs this same code; and numpy's BLAS
    on one thread."""
    import site
    import sysconfig

    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = {os.path.abspath(p) for p in (*site.getsitepackages(),
                                              site.getusersitepackages(),
                                              sysconfig.get_paths()["purelib"],
                                              sysconfig.get_paths()["platlib"])}
    env = dict(os.environ)
    # numpy (imported by the JPEG check's decoder) starts a BLAS thread per core at
    # import, which a worker never uses: one is enough, unless the user says otherwise.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    if parent not in installed:
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = parent + (os.pathsep + path if path else "")
    return env


class _RemoteTraceback(Exception):
    """A worker's traceback, chained to the error it raised."""


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


# -- the worker's side ----------------------------------------------------------------------

class _WorkerState:
    temp: Optional[str] = None


def _watch(stdin: IO[bytes], tasks: queue.Queue[Any]) -> None:
    """Read the parent's messages; when they end without a stop, the parent died: remove
    the shard being written and end this process at once."""
    while True:
        try:
            message = pickle.load(stdin)
        except Exception:
            temp = _WorkerState.temp
            if temp is not None:
                _remove_quietly(temp)
            os._exit(1)
        tasks.put(message)
        if message is None:
            return


def _write_shard(task: ShardTask, options: Any, compression: str | None, pool: Any,
                 threads: int, report: Any) -> ShardResult:
    """Write one shard under its temporary name, as the in-process runner would."""
    from . import items, journal, storage
    from .job import failure_copy
    from .parallel import in_order
    from .records import TFRecordWriter

    def encode(entry: tuple[int, Any, Any]) -> Any:
        return items.try_encode(entry[1], options, entry[2])

    fingerprint = journal.new_fingerprint()
    result = ShardResult(task.index, task.name, task.temp, 0, 0, "", "")
    _WorkerState.temp = task.temp
    unreported = 0
    with TFRecordWriter(task.temp, compression) as writer:
        encoded = in_order(pool, encode, task.items, window=3 * threads, chunk=8)
        for (position, item, _), (data, error, warnings) in zip(task.items, encoded):
            journal.item_fingerprint(fingerprint, item)
            if data is not None:
                writer.write(data)
                result.records += 1
                if warnings:
                    result.warnings += warnings
            else:
                copy = failure_copy(item, error)
                result.copies.append(copy)
                result.failed.append((position, items.failure_reason(error),
                                      copy["error_msg"]))
            unreported += 1
            if unreported >= PROGRESS_EVERY:
                report(("progress", unreported))
                unreported = 0
    if unreported:
        report(("progress", unreported))
    result.bytes = os.path.getsize(task.temp)
    result.sha256 = storage.file_sha256(task.temp)
    result.fingerprint = fingerprint.hexdigest()
    return result


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    import concurrent.futures

    start = pickle.load(stdin)
    _, options, compression, threads = start
    tasks: queue.Queue[Any] = queue.Queue()
    threading.Thread(target=_watch, args=(stdin, tasks), daemon=True).start()
    lock = threading.Lock()

    def report(message: Any) -> None:
        with lock:
            _send(stdout, message)

    with concurrent.futures.ThreadPoolExecutor(threads,
                                               thread_name_prefix="tfrecord-lite") as pool:
        while True:
            task = tasks.get()
            if task is None:
                return
            try:
                result = _write_shard(task, options, compression, pool, threads, report)
            except OSError as exc:
                _remove_quietly(task.temp)
                report(("oserror", task.name, exc.errno, exc.strerror or str(exc),
                        exc.filename))
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
                _WorkerState.temp = None
            report(("done", result))


def main(argv: Sequence[str] | None = None) -> None:
    """A worker: serve shards from standard input until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
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
    # under its importable name (tfrecord_lite.processes.ShardResult).
    from tfrecord_lite.processes import main as _main

    _main()
