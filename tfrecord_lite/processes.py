"""The process runner of the local job: whole shards written by worker processes beside
each other.

A thread pool shares one interpreter lock, which caps it at a few thousand images a
second however many cores the machine has. ``Workers`` starts N worker processes
(``worker``); each writes whole shards with a thread pool of its own. This process keeps
everything that decides the output: it reads the input, finds duplicate ids in input
order, sends each worker one shard's items at a time, publishes and journals each shard
as its result comes back, and lists the failures in shard order. A shard's bytes depend
only on its items and the options, so the output is the same for any number of processes
and threads.

How workers start (neither ``fork`` nor ``multiprocessing``):

- ``fork`` copies a process whose other threads may hold locks (the logging module's,
  a thread pool's, a C library's allocator): the child can deadlock on its first
  ``logging`` call, and the job's caller may have threads of its own.
- ``spawn`` and ``forkserver`` re-import the caller's main script in every worker: a
  script that calls ``create()`` without an ``if __name__ == "__main__":`` guard would
  run again. Processes are on by default, so a plain script must just work.
- So a worker is a fresh interpreter running ``python -m tfrecord_lite.worker``: it
  imports only the item encoder and works the same on Linux, macOS and Windows.

No orphan, nothing partial: the parent kills its workers on an error or an interruption
and removes their temporary files; shards already published stay journaled, so
``resume`` finishes the job. A worker that dies (killed, out of memory) fails the job
with ``WorkerDiedError`` naming its shard; one that reports no progress for
``worker_timeout`` seconds (stopped, deadlocked) is killed, with ``WorkerTimeoutError``.

Each item crosses to a worker on its own (pickled apart): an item that cannot (a value
of a class defined in the caller's script, which a worker does not run; a function)
fails alone, naming the key and the value's type, and the others are written.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import journal, sharding, shards, storage
from .coerce import item_label
from .dataset import UnsendableItem, json_default
from .errors import WriteError, write_error
from .items import ItemOptions
from .job import ItemSource, JobSummary, failure_copy
from .options import JobOptions
from .progress import make_progress
from .shards import NOTHING_PARTIAL, ShardResult, complete_name
from .worker import ShardTask, send


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


class WorkerTimeoutError(WorkerDiedError):
    """A worker process reported no progress for ``worker_timeout`` seconds (stopped,
    deadlocked, or an item slower than that): it was killed."""


def cores() -> int:
    """The cores this process may run on (its CPU affinity where known)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_cores = cores  # (``default_processes`` has a parameter of that name)


# -- the parent's side ----------------------------------------------------------------------

@dataclass
class _Worker:
    number: int
    process: subprocess.Popen[bytes]
    task: Optional[ShardTask] = None
    reader: Optional[threading.Thread] = None
    heard: float = 0.0  # when it last reported (time.monotonic)


class Workers:
    """N worker processes writing one shard each at a time; a context manager.

    ``submit`` gives an idle worker a shard; ``next_event`` returns what the workers
    report (progress, a finished shard) and raises what went wrong, or kills a worker
    busy with a shard that has reported nothing for ``timeout`` seconds (None: never).
    Leaving the context stops the workers: on an error, at once (killed, their
    temporary files removed).
    """

    def __init__(self, count: int, item_options: ItemOptions, compression: str | None,
                 threads: int, where: Callable[[str], str] = str,
                 timeout: float | None = None) -> None:
        self.where = where  # how messages name a shard
        self.timeout = timeout
        self.events: queue.Queue[tuple[int, Any]] = queue.Queue()
        self.workers: list[_Worker] = []
        self.closing = False
        env = _worker_environment()
        try:
            for number in range(count):
                with _sigint_held():
                    process = subprocess.Popen(
                        [sys.executable, "-m", "tfrecord_lite.worker"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
                worker = _Worker(number, process)
                self.workers.append(worker)
                assert process.stdin is not None
                send(process.stdin, ("start", item_options, compression, threads))
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
            worker.heard = time.monotonic()
            self.events.put((worker.number, message))

    def idle(self) -> Optional[_Worker]:
        return next((w for w in self.workers if w.task is None), None)

    def busy(self) -> bool:
        return any(w.task is not None for w in self.workers)

    def submit(self, worker: _Worker, task: ShardTask) -> None:
        """Give ``worker`` (idle) the shard ``task`` (its items as ``(position, item,
        duplicate problem)``), each item pickled apart (``pack``). Sent by a thread of
        its own, so that a worker that stops reading cannot hold this one up."""
        task.items = [pack(*entry) for entry in task.items]
        data = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        worker.task = task
        worker.heard = time.monotonic()
        threading.Thread(target=self._send, args=(worker, data), daemon=True,
                         name=f"tfrecord-lite-send-{worker.number}").start()

    @staticmethod
    def _send(worker: _Worker, data: bytes) -> None:
        stdin = worker.process.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            stdin.flush()
        except (OSError, ValueError):  # it ended (its reader reports it), or it was closed
            pass

    def next_event(self) -> tuple[str, Any]:
        """The next report: ``("progress", n)`` or ``("done", ShardResult)`` (that
        worker is idle again; the shard is complete and hashed under its temporary
        name).

        Raises:
            WorkerDiedError: a worker ended while writing a shard.
            WriteError: a worker could not write its shard.
            Exception: a bug in a worker (its traceback is chained).
        """
        while True:
            try:  # a timeout keeps Ctrl-C prompt on every platform
                number, message = self.events.get(timeout=0.5)
            except queue.Empty:
                self._check_progress()
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
                raise write_error(f"cannot write shard {self.where(shard)}",
                                  OSError(errno, strerror, filename), NOTHING_PARTIAL)
            # "bug": raised here with the worker's traceback chained
            _, shard, exc, text = message
            remote = _RemoteTraceback(f"in the worker writing {shard}:\n{text}")
            if isinstance(exc, BaseException):
                raise exc from remote
            raise RuntimeError(f"a worker failed writing {shard}") from remote

    def _check_progress(self) -> None:
        """Kill a worker busy with a shard that has reported nothing for ``timeout``
        seconds.

        Raises:
            WorkerTimeoutError: naming it and its shard.
        """
        if self.timeout is None:
            return
        now = time.monotonic()
        for worker in self.workers:
            if worker.task is not None and now - worker.heard > self.timeout:
                worker.process.kill()
                raise WorkerTimeoutError(
                    f"worker process {worker.process.pid} writing shard "
                    f"{self.where(worker.task.name)} reported no progress for "
                    f"{self.timeout:g} s (stopped, or stuck?) and was killed; the complete "
                    "shards are kept: run the same job again with resume (--resume) to "
                    "finish it (with a longer worker_timeout, --worker-timeout SECONDS, "
                    "if its items take that long)", worker.task.name, None)

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
                    send(stdin, None)
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
                storage.remove_quietly(worker.task.temp)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, kind: Any, *rest: Any) -> None:
        self.close(kill=kind is not None)


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """SIGINT blocked for the block, in this thread: a worker started in it inherits the
    blocked signal, until it ignores Ctrl-C (the parent's to handle), so that Ctrl-C while
    it starts up prints no traceback of its own. A Ctrl-C held here is raised after."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _sendable(item: Any) -> Any:
    """An item as sent to a worker: image bytes given as a ``memoryview`` (which does not
    pickle) as ``bytes``, the rest as is."""
    if isinstance(item, dict) and isinstance(item.get("encoded"), memoryview):
        return {**item, "encoded": bytes(item["encoded"])}
    return item


class _WorkerPickler(pickle.Pickler):
    """Pickles as a worker process can load: refuses a value of a class, or a function,
    defined in the script that started the job (``__main__``), which a worker does not
    run (pickle would take it, and the worker could not load it)."""

    def reducer_override(self, obj: Any) -> Any:
        owner = obj if isinstance(obj, (type, types.FunctionType)) else type(obj)
        if getattr(owner, "__module__", None) == "__main__":
            raise pickle.PicklingError("defined in the script that started the job "
                                       "(__main__), which a worker process does not run")
        return NotImplemented


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _WorkerPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def pack(position: int, item: Any, duplicate: Any) -> tuple[int, bytes, Any, str]:
    """An item as it crosses to a worker: ``(position, pickled item, duplicate problem,
    fingerprint text)``. An item that cannot cross becomes an ``UnsendableItem``, which
    fails alone in the worker (the fingerprint lets the worker name one that it cannot
    load)."""
    item = _sendable(item)
    try:
        data = _dumps(item)
    except Exception as exc:  # any value's own __reduce__ may raise anything
        data = pickle.dumps(_unsendable(item, exc), protocol=pickle.HIGHEST_PROTOCOL)
    return position, data, duplicate, journal.fingerprint_text(item)


def _type_name(value: Any) -> str:
    kind = value if isinstance(value, type) else type(value)
    name = f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else (
        kind.__qualname__)
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return f"{name} {value.__qualname__}"
    return f"class {name}" if isinstance(value, type) else name


def _first_unsendable(value: Any, path: str) -> tuple[str, Any, Exception] | None:
    """The key path, value and error of the first value of an item that cannot cross."""
    if isinstance(value, Mapping):
        children: Any = ((f"{path}/{key}" if path else str(key), child)
                         for key, child in value.items())
    elif isinstance(value, (list, tuple)):
        children = ((f"{path}[{i}]", child) for i, child in enumerate(value))
    else:
        try:
            _dumps(value)
        except Exception as exc:
            return path, value, exc
        return None
    for child_path, child in children:
        found = _first_unsendable(child, child_path)
        if found is not None:
            return found
    return None


def _unsendable(item: Any, exc: Exception) -> UnsendableItem:
    """What stands for an item that cannot cross to a worker: its message names the key
    and the value's type; its failure entry holds the item's values as the failures
    file shows them (JSON, the others as their repr)."""
    path, value, error = _first_unsendable(item, "") or ("", item, exc)
    where = f"{path}: " if path else ""
    message = (f"{item_label(item)}: {where}a value of type {_type_name(value)} cannot be "
               f"sent to a worker process ({error}); give the item's values as JSON-like "
               "types (text, numbers, lists, dicts, bytes), or run in one process "
               "(num_processes=1, --processes 1)")
    shown = json.loads(json.dumps(failure_copy(item, message), default=json_default))
    return UnsendableItem(message, shown, journal.fingerprint_text(item))


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


# -- how many processes ---------------------------------------------------------------------
#
# Threads decode images in parallel but share one interpreter lock for the rest of the
# work, so a job gains from processes on several cores. A worker's start-up (a fresh
# interpreter importing the encoder) costs about a tenth of a second of CPU, so a process
# gets at least MIN_ITEMS_PER_PROCESS items. The calling process holds the items of up to
# one shard more than there are workers: with large shards that grows with the dataset,
# so a job whose shards average more than MAX_ITEMS_PER_SHARD_FOR_PROCESSES items stays in
# one process, where streamed memory does not grow. (docs/performance.md has the figures.)
MIN_CORES_FOR_PROCESSES = 2
MIN_ITEMS_PER_PROCESS = 5000
MAX_ITEMS_PER_SHARD_FOR_PROCESSES = 10_000


def default_processes(shards: int, items_: int, cores: int | None = None) -> int:
    """How many worker processes a job uses when ``num_processes`` is not given: with
    fewer than ``MIN_CORES_FOR_PROCESSES`` cores (CPU affinity), 1; with shards of more
    than ``MAX_ITEMS_PER_SHARD_FOR_PROCESSES`` items on average, 1 (memory); else one per
    core, no more than the shards to write, and no more than one per
    ``MIN_ITEMS_PER_PROCESS`` items (a small job stays in this process)."""
    cores = _cores() if cores is None else cores
    if cores < MIN_CORES_FOR_PROCESSES or items_ > shards * MAX_ITEMS_PER_SHARD_FOR_PROCESSES:
        return 1
    return max(1, min(cores, shards, items_ // MIN_ITEMS_PER_PROCESS))


def processes_and_threads(num_processes: int | None, num_threads: int, shards: int,
                          items_: int) -> tuple[int, int]:
    """The processes and threads per process of a job: as given, or by default
    ``default_processes``, each with ``num_threads // processes`` threads (at least 1),
    so that the job runs about ``max(num_threads, processes)`` encoders at once."""
    if num_processes is not None:
        return min(num_processes, max(1, shards)), num_threads
    count = default_processes(shards, items_)
    return count, max(1, num_threads // count)


# -- the runner ------------------------------------------------------------------------------

def write_shards(out: storage.Folder, name: str, num_shards: int, num_threads: int,
                 num_processes: int, options: JobOptions, source: ItemSource,
                 completed: dict[int, dict[str, Any]], summary: JobSummary,
                 progress: bool | Callable[[int, int], Any]) -> None:
    """Write (or, resuming, keep) each shard under its complete name, journaled, on
    ``num_processes`` workers of ``num_threads`` threads; the summary lists them.

    This process reads the items in write order, sends each shard's items to an idle
    worker (at most ``num_processes + 1`` shards' items in memory), publishes and
    journals each shard as it comes back, then lists the shards in shard order.

    Raises:
        WriteError: a shard could not be written; WorkerDiedError: a worker died.
        ResumeError: a kept shard's items are not those of the interrupted run.
        DatasetError: an item cannot be sent to a worker, or the input changed.
    """
    ranges = sharding.shard_ranges(source.total, num_shards)
    bar = make_progress(progress, source.total, f"{name}")
    results: dict[int, ShardResult] = {}
    tasks = source.tasks(ranges[i] for i in completed)

    next_index = [0]  # the first shard whose failures are not in the summary yet

    def add_failures() -> None:
        """The failures of the shards back so far, in shard order: up to the first
        shard still being written."""
        while next_index[0] in results:
            result = results[next_index[0]]
            result.add_failures_to(summary)
            result.forget_failures()  # the journal has them
            next_index[0] += 1

    def handle(workers: Workers) -> None:
        kind, value = workers.next_event()
        if kind == "progress":
            bar.update(value)
            return
        result: ShardResult = value
        shards.publish(out, result, complete_name(result.name))
        shards.record(out, name, result)
        results[result.index] = result
        add_failures()

    try:
        with Workers(num_processes, ItemOptions(options), options.compression, num_threads,
                     out.location, options.worker_timeout) as workers:
            for index, (start, stop) in enumerate(ranges):
                shard = sharding.shard_name(name, index, num_shards)
                part = list(itertools.islice(tasks, stop - start))
                entry = completed.get(index)
                if entry is not None:
                    results[index] = shards.kept(entry, (t[1] for t in part), start,
                                                 bar.update)
                    add_failures()
                    continue
                worker = workers.idle()
                while worker is None:
                    handle(workers)
                    worker = workers.idle()
                workers.submit(worker, ShardTask(index, shard, out.temp_path(shard),
                                                 [t[:3] for t in part]))
                del part
            next(tasks, None)  # the input's own checks (it did not grow or shrink)
            while workers.busy():
                handle(workers)
        add_failures()
        for index in range(num_shards):
            results[index].add_to(summary)
    finally:
        bar.close()
