"""The local runner on worker processes: the same output whatever the numbers of
processes and threads, resume after a killed worker, no orphan after Ctrl-C or kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import detection_item, make_image_bytes
from tfrecord_lite import JsonLines, processes
from tfrecord_lite.cli import main
from tfrecord_lite.errors import WriteError
from tfrecord_lite.local import write_dataset
from tfrecord_lite.processes import default_processes

ROOT = Path(__file__).resolve().parent.parent


def _items(folder: Path, count: int = 24) -> list[dict[str, Any]]:
    """Small JPEG and PNG items, with a missing file, a bad box and a duplicate id."""
    folder.mkdir(exist_ok=True)
    jpeg, png = make_image_bytes("jpeg-rgb", 24, 16), make_image_bytes("png-rgb", 24, 16)
    items = []
    for i in range(count):
        path = folder / f"img{i}.{'png' if i % 3 == 0 else 'jpg'}"
        path.write_bytes(png if i % 3 == 0 else jpeg)
        items.append(detection_item(path.name, f"id{i}"))
    items[5]["filename"] = "missing.jpg"
    items[9]["object"]["bbox"]["xmin"][0] = 1.5  # outside the image: fails (strict)
    items[min(17, count - 1)]["id"] = "id2"  # a duplicate of an earlier id, in another shard
    return items


def _run(out: Path, items: list[dict[str, Any]], processes_: int, threads: int,
         **options: Any) -> tuple[dict[str, bytes], Any]:
    summary = write_dataset(items, "ds", out, 5, threads, num_processes=processes_,
                            progress=False, **options)
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    return files, summary


def _comparable(files: dict[str, bytes]) -> dict[str, Any]:
    manifest = json.loads(files.pop("ds.manifest.json"))
    manifest.pop("tfrecord_lite_version")
    return {**files, "manifest": manifest}


@pytest.mark.slow
@pytest.mark.parametrize("shuffle,compression", [(False, None), (True, "gzip")])
def test_same_bytes_manifest_and_failures_for_any_processes_and_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shuffle: bool,
        compression: str | None) -> None:
    monkeypatch.chdir(tmp_path)
    items = _items(tmp_path / "img")
    runs = {}
    for procs, threads in [(1, 1), (2, 1), (2, 2), (3, 2)]:
        files, summary = _run(tmp_path / f"out{procs}x{threads}", items, procs, threads,
                              shuffle=shuffle, seed=7, compression=compression,
                              root=tmp_path / "img")
        runs[procs, threads] = (_comparable(files), summary.failures)
    reference = runs[1, 1]
    assert [f["id"] for f in reference[1]] and len(reference[1]) == 3
    assert any("id2" in f["error_msg"] for f in reference[1])  # the duplicate, found
    for key, run in runs.items():
        assert run == reference, key


def test_default_processes_rule() -> None:
    assert default_processes(shards=10, items_=100_000, cores=1) == 1
    assert default_processes(shards=10, items_=100_000, cores=2) == 2
    assert default_processes(shards=10, items_=12_000, cores=2) == 2
    assert default_processes(shards=10, items_=9_999, cores=2) == 1  # start-up not repaid
    assert default_processes(shards=10, items_=2400, cores=2) == 1
    assert default_processes(shards=10, items_=100_000, cores=4) == 4
    assert default_processes(shards=3, items_=30_000, cores=8) == 3  # one per shard
    assert default_processes(shards=10, items_=4999, cores=8) == 1  # too small to gain
    # Shards of more than 10,000 items: the calling process would hold N+1 of them.
    assert default_processes(shards=10, items_=100_001, cores=8) == 1
    assert default_processes(shards=16, items_=2_000_000, cores=2) == 1
    assert default_processes(shards=10, items_=15_000, cores=8) == 3
    assert default_processes(shards=64, items_=100_000, cores=16) == 16
    # given: as given (no more than the shards); by default: threads shared out
    assert processes.processes_and_threads(3, 2, shards=10, items_=10) == (3, 2)
    assert processes.processes_and_threads(3, 2, shards=2, items_=10) == (2, 2)
    count, threads = processes.processes_and_threads(None, 4, shards=100, items_=10**6)
    assert count == default_processes(100, 10**6, processes.cores())
    assert threads == max(1, 4 // count)


@pytest.mark.slow
def test_progress_totals_and_streamed_jsonl(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    items = _items(tmp_path / "img", 40)
    lines = tmp_path / "items.jsonl"
    lines.write_text("".join(json.dumps({**item, "filename": f"img/{item['filename']}"})
                             + "\n" for item in items))
    seen: list[tuple[int, int]] = []
    summary = write_dataset(JsonLines(str(lines)), "ds", "out", 4, 1, shuffle=False,
                            num_processes=2, progress=lambda d, t: seen.append((d, t)))
    assert summary.written + summary.failed == 40
    assert seen[-1] == (40, 40) and all(t == 40 for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    one = write_dataset(JsonLines(str(lines)), "ds", "one", 4, 1, shuffle=False,
                        num_processes=1, progress=False)
    assert [s.sha256 for s in one.shards] == [s.sha256 for s in summary.shards]


@pytest.mark.slow
def test_streamed_items_in_flight_are_bounded(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamed input is read a shard at a time: with 2 processes, never more than
    about 3 shards' items ahead of the shards written."""
    monkeypatch.chdir(tmp_path)
    items = _items(tmp_path / "img", 60)
    read_ahead: list[int] = []
    done = [0]

    class Counted:
        def __len__(self) -> int:
            return len(items)

        def __iter__(self) -> Any:
            for position, item in enumerate(items):
                read_ahead.append(position - done[0])
                yield {**item, "filename": f"img/{item['filename']}"}

    def progress(finished: int, total: int) -> None:
        done[0] = finished

    write_dataset(Counted(), "ds", "out", 12, 1, shuffle=False, num_processes=2,
                  progress=progress)
    assert max(read_ahead) <= 3 * 5 + 1  # 12 shards of 5 items; 2 workers + 1 read


@pytest.mark.slow
def test_cli_processes_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    items = _items(tmp_path / "img", 12)
    Path("items.json").write_text(json.dumps(
        [{**i, "filename": f"img/{i['filename']}"} for i in items]))
    for procs in ("1", "2"):
        code = main(["create", "--dataset_path", "items.json", "--prefix", "ds", "--output_dir",
                     f"out{procs}", "--shards", "3", "--processes", procs, "--quiet"])
        assert code == 1  # failed items
    for name in ("ds-00000-of-00003", "ds-00002-of-00003", "ds.failures.json"):
        assert (Path("out1") / name).read_bytes() == (Path("out2") / name).read_bytes()
    assert main(["create", "--dataset_path", "items.json", "--prefix", "ds", "--output_dir", "o",
                 "--processes", "0"]) == 2


# -- killed workers, killed parents ---------------------------------------------------------

_SCRIPT = """
import os, sys, time
from tfrecord_lite import write_dataset, processes
from tests.conftest import detection_item

items = [detection_item("slow.jpg", f"id{{i}}") for i in range({count})]
original = processes.Workers.submit
def submit(self, worker, task):
    original(self, worker, task)
    with open("pids", "a") as f:
        f.write(f"{{worker.process.pid}} {{task.index}}\\n")
processes.Workers.submit = submit
{extra}
print("started", flush=True)
write_dataset(items, "ds", "out", {shards}, 1, shuffle=False, num_processes=2,
              progress=False, resume={resume})
print("finished", flush=True)
"""


def _slow_image(tmp_path: Path) -> None:
    (tmp_path / "slow.jpg").write_bytes(make_image_bytes("jpeg-rgb", 32, 24))


def _start(tmp_path: Path, count: int, shards: int, resume: bool = False,
           delay: float = 0.05) -> subprocess.Popen[str]:
    """The job in a child process, whose workers take ``delay`` seconds per item."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import time
        from tfrecord_lite import items
        original = items.try_encode
        def try_encode(*args, **kw):
            time.sleep({delay})
            return original(*args, **kw)
        items.try_encode = try_encode
    """))
    code = _SCRIPT.format(count=count, shards=shards, resume=resume, extra="")
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    return subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for_workers(tmp_path: Path, proc: subprocess.Popen[str]) -> list[int]:
    """The pids of the two workers, once both have been given a shard and one has its
    temporary file open (polled, with a generous bound)."""
    deadline = time.monotonic() + 120
    pids, out = tmp_path / "pids", tmp_path / "out"
    while time.monotonic() < deadline:
        lines = pids.read_text().splitlines() if pids.exists() else []
        if len(lines) >= 2 and out.exists() and any(".tmp-" in p.name for p in out.iterdir()):
            return [int(line.split()[0]) for line in lines]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the workers did not start")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("sig,group", [(signal.SIGINT, False), (signal.SIGINT, True),
                                       (signal.SIGKILL, False)])
def test_interrupted_or_killed_parent_leaves_no_worker_and_nothing_partial(
        tmp_path: Path, sig: int, group: bool) -> None:
    """SIGINT to the parent, Ctrl-C in a terminal (SIGINT to the whole process group),
    and SIGKILL of the parent."""
    _slow_image(tmp_path)
    proc = _start(tmp_path, 40, 4, delay=0.5)  # 5 s a shard
    workers = _wait_for_workers(tmp_path, proc)
    assert all(_alive(w) for w in workers)
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    proc.wait(timeout=30)  # (not communicate: a worker holds the parent's stderr)
    deadline = time.monotonic() + 60  # (a generous bound: they end at once)
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "a worker outlived its parent"
    left = [p.name for p in (tmp_path / "out").iterdir()]
    assert not [n for n in left if ".tmp-" in n], left  # no temporary file
    assert "ds.manifest.json" not in left
    _, err = proc.communicate(timeout=30)
    if sig == signal.SIGINT:
        assert proc.returncode != 0
        assert err.count("KeyboardInterrupt") == 1, err  # the parent's, none of a worker


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_killed_worker_fails_the_job_and_resume_finishes_it(tmp_path: Path) -> None:
    _slow_image(tmp_path)
    proc = _start(tmp_path, 30, 6)
    workers = _wait_for_workers(tmp_path, proc)
    victim = workers[1]
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "WorkerDiedError" in err and "killed by signal 9" in err, err
    assert "--resume" in err and "complete shards are kept" in err
    assert "ds-0000" in err.split("WorkerDiedError")[-1]  # names the shard
    assert not _children(proc.pid)
    (tmp_path / "pids").unlink()
    again = _start(tmp_path, 30, 6, resume=True)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    resumed = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("ds-*")}
    items = [detection_item("slow.jpg", f"id{i}") for i in range(30)]
    whole = write_dataset(items, "ds", tmp_path / "whole", 6, 2, shuffle=False,
                          num_processes=1, progress=False, root=tmp_path)
    assert sorted(resumed) == [s.file for s in whole.shards]
    for shard in whole.shards:
        assert resumed[shard.file] == (tmp_path / "whole" / shard.file).read_bytes()


@pytest.mark.slow
def test_worker_exiting_by_itself_names_its_shard(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """An injected fault: the worker ends in the middle of shard 2 (os._exit)."""
    monkeypatch.chdir(tmp_path)
    items = _items(tmp_path / "img", 20)
    for item in items:
        item["filename"] = f"img/{item['filename']}"
    items[12]["filename"] = "img/CRASH.jpg"
    Path("img/CRASH.jpg").write_bytes(make_image_bytes("jpeg-rgb", 24, 16))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import os
        from tfrecord_lite import items
        original = items.try_encode
        def try_encode(item, *args, **kw):
            if "CRASH" in str(item.get("filename")):
                os._exit(9)
            return original(item, *args, **kw)
        items.try_encode = try_encode
    """))
    monkeypatch.setenv("PYTHONPATH", f"{site}{os.pathsep}{ROOT}")
    with pytest.raises(processes.WorkerDiedError) as info:
        write_dataset(items, "ds", "out", 4, 1, shuffle=False, num_processes=2,
                      progress=False)
    assert info.value.shard == "ds-00002-of-00004" and info.value.code == 9
    assert "ds-00002-of-00004" in str(info.value) and "resume" in str(info.value)
    assert not list(Path("out").glob(".*tmp-*"))
    Path("items.json").write_text(json.dumps(items))
    argv = ["create", "--dataset_path", "items.json", "--prefix", "ds", "--output_dir",
            "cli", "--shards", "4", "--threads", "1", "--processes", "2", "--quiet"]
    assert main(argv) == 3  # a write error
    err = capsys.readouterr().err
    assert "worker process" in err and "ds-00002-of-00004" in err and "--resume" in err
    assert "Traceback" not in err
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    summary = write_dataset(items, "ds", "out", 4, 1, shuffle=False, num_processes=2,
                            progress=False, resume=True)
    assert summary.resumed_shards >= 1
    assert summary.written + summary.failed == 20


# -- a Beam run prints what a local run prints ----------------------------------------------

@pytest.mark.beam
def test_beam_run_is_as_quiet_as_a_local_run(tmp_path: Path) -> None:
    pytest.importorskip("apache_beam")
    items = _items(tmp_path / "img", 12)
    for item in items:
        item["filename"] = f"img/{item['filename']}"
    del items[9], items[5]  # no failed item: exit 0
    items[-1]["id"] = "last"
    (tmp_path / "items.json").write_text(json.dumps(items))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(*flags: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "tfrecord_lite", "create", "--dataset_path", "items.json",
             "--prefix", "ds", "--output_dir", "out", "--shards", "2", *flags],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return (done.stdout + done.stderr).splitlines()

    local = run()
    beam = run("--runner", "beam", "--beam-options=--direct_num_workers=2 "
               "--direct_running_mode=multi_processing")
    assert len(beam) == len(local) == 1, beam
    assert beam[0].startswith("wrote 10 of 10 items to 2 shards")
    verbose = run("--runner", "beam", "-v", "--beam-options=--direct_num_workers=2 "
                  "--direct_running_mode=multi_processing")
    assert len(verbose) > 5 and verbose[-1].startswith("wrote 10 of 10 items")


@pytest.mark.slow
def test_disk_full_in_a_worker_is_a_write_error_naming_the_shard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    items = _items(tmp_path / "img", 20)
    for item in items:
        item["filename"] = f"img/{item['filename']}"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import errno
        from tfrecord_lite import records
        original = records.TFRecordWriter.__init__
        def full(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        def init(self, path, *args, **kw):
            original(self, path, *args, **kw)
            if "00003" in str(path):
                self.write = full
        records.TFRecordWriter.__init__ = init
    """))
    monkeypatch.setenv("PYTHONPATH", f"{site}{os.pathsep}{ROOT}")
    with pytest.raises(WriteError) as info:
        write_dataset(items, "ds", "out", 4, 1, shuffle=False, num_processes=2,
                      progress=False)
    assert "ds-00003-of-00004" in str(info.value) and "disk full" in str(info.value)
    assert not list(Path("out").glob(".*tmp-*"))
    assert not list(Path("out").glob("ds-00003*"))


@pytest.mark.slow
def test_a_script_without_a_main_guard_runs_once(tmp_path: Path) -> None:
    """Workers do not import the caller's main script (multiprocessing's spawn and
    forkserver would, running this script's job again in every worker)."""
    _items(tmp_path / "img", 12)
    (tmp_path / "job.py").write_text(textwrap.dedent("""
        import json, os
        from tfrecord_lite import write_dataset
        from tests.conftest import detection_item
        with open("runs", "a") as f:
            f.write("run\\n")
        items = [detection_item(f"img/img{i}.jpg", f"id{i}") for i in (1, 2, 4, 5, 7, 8)]
        summary = write_dataset(items, "ds", "out", 3, 1, num_processes=2, progress=False)
        print(summary.written)
    """))
    done = subprocess.run([sys.executable, "job.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6"]
    assert (tmp_path / "runs").read_text() == "run\n"


@pytest.mark.slow
def test_items_that_cannot_be_sent_to_a_worker(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = make_image_bytes("jpeg-rgb", 24, 16)
    items = [{"id": f"id{i}", "filename": f"{i}.jpg", "encoded": memoryview(data),
              "height": 16, "width": 24, "format": "JPEG", "colorspace": "RGB", "channels": 3}
             for i in range(6)]
    one = write_dataset(items, "ds", "one", 2, 1, num_processes=1, seed=1, progress=False)
    two = write_dataset(items, "ds", "two", 2, 1, num_processes=2, seed=1, progress=False)
    assert [s.sha256 for s in one.shards] == [s.sha256 for s in two.shards]
    assert one.written == 6
    items[4]["extra"] = lambda: None  # cannot be pickled: that item fails, alone
    three = write_dataset(items, "ds", "three", 2, 1, num_processes=2, progress=False)
    assert three.written == 5 and [f["id"] for f in three.failures] == ["id4"]
    message = three.failures[0]["error_msg"]
    assert message.startswith("id 'id4': extra: a value of type function ")
    assert "cannot be sent to a worker process" in message


_CALLER = """
import json, sys
from tfrecord_lite import write_dataset
from tests.conftest import detection_item
{setup}
items = [detection_item("slow.jpg", f"id{{i}}") for i in range(12)]
items[5]["extra"] = {value}
def stop(done, total):  # after the first shard is journaled (3 items a shard)
    if done >= 9:
        raise KeyboardInterrupt
try:
    write_dataset(items, "ds", "out", 4, 1, shuffle=False, num_processes=2, progress=stop)
except KeyboardInterrupt:
    pass
s = write_dataset(items, "ds", "out", 4, 1, shuffle=False, num_processes=2,
                  progress=False, resume=True)
print(json.dumps([s.written, s.resumed_shards, s.failures], default=repr))
"""


@pytest.mark.slow
@pytest.mark.parametrize("setup, value, message", [
    ("class Point:\n    def __repr__(self):\n        return 'Point()'", "Point()",
     "id 'id5': extra: a value of type __main__.Point cannot be sent to a worker process "
     "(defined in the script that started the job (__main__)"),
    ("sys.path.insert(0, 'mine')\nfrom mytypes import Point", "Point()",
     "id 'id5': cannot be loaded by a worker process (ModuleNotFoundError: No module "
     "named 'mytypes')"),
])
def test_an_item_a_worker_cannot_take_fails_alone_and_resume_goes_on(
        tmp_path: Path, setup: str, value: str, message: str) -> None:
    # Such an item used to end the job with "WorkerDiedError ... out of memory, or
    # killed?", and every resume met it again. A class of the caller's script (which a
    # worker does not run), or of a module the caller found on a path of its own.
    _slow_image(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "mytypes.py").write_text(
        "class Point:\n    def __repr__(self):\n        return 'Point()'\n")
    code = _CALLER.format(setup=setup, value=value)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    written, resumed, failures = json.loads(done.stdout.splitlines()[-1])
    assert written == 11 and resumed >= 1
    assert [f["id"] for f in failures] == ["id5"]
    assert failures[0]["error_msg"].startswith(message), failures[0]["error_msg"]
    assert "WorkerDiedError" not in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_stopped_worker_is_killed_after_the_timeout_and_resume_finishes(
        tmp_path: Path) -> None:
    # A stopped (or deadlocked) worker used to hang the job for ever.
    _slow_image(tmp_path)
    (tmp_path / "items.json").write_text(json.dumps(
        [detection_item("slow.jpg", f"id{i}") for i in range(40)]))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import time
        from tfrecord_lite import items, processes
        original = items.try_encode
        def try_encode(*args, **kw):
            time.sleep(0.05)
            return original(*args, **kw)
        items.try_encode = try_encode
        submit = processes.Workers.submit
        def record(self, worker, task):
            submit(self, worker, task)
            with open("pids", "a") as f:
                f.write(f"{worker.process.pid} {task.index}\\n")
        processes.Workers.submit = record
    """))
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    argv = [sys.executable, "-m", "tfrecord_lite", "create", "--dataset_path", "items.json",
            "--prefix", "ds", "--output_dir", "out", "--shards", "4", "--threads", "1",
            "--processes", "2", "--worker-timeout", "5"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    stopped = _wait_for_workers(tmp_path, proc)[0]
    os.kill(stopped, signal.SIGSTOP)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        os.kill(stopped, signal.SIGCONT) if _alive(stopped) else None
    assert proc.returncode == 3, err
    assert f"worker process {stopped} writing shard out/ds-0000" in err
    assert "reported no progress for 5 s" in err and "--resume" in err, err
    assert "Traceback" not in err
    assert not _alive(stopped) and not _children(proc.pid)
    assert not [p.name for p in (tmp_path / "out").iterdir() if ".tmp-" in p.name]
    resumed = subprocess.run([*argv, "--resume"], cwd=tmp_path, env=env, timeout=300,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    whole = write_dataset([detection_item("slow.jpg", f"id{i}") for i in range(40)], "ds",
                          tmp_path / "whole", 4, 1, shuffle=False, num_processes=1,
                          progress=False, root=tmp_path)
    for shard in whole.shards:
        assert ((tmp_path / "out" / shard.file).read_bytes()
                == (tmp_path / "whole" / shard.file).read_bytes())


@pytest.mark.slow
def test_worker_start_up_imports_only_what_the_job_uses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker without the decode check does not import numpy (through simplejpeg:
    tens of milliseconds of every worker's start-up), and runs numpy's BLAS on one thread
    when it does import it; the bytes are the same either way."""
    monkeypatch.chdir(tmp_path)
    Path("img").mkdir()
    Path("img/a.jpg").write_bytes(make_image_bytes("jpeg-rgb", 24, 16))
    items = [detection_item("img/a.jpg", f"id{i}") for i in range(4)]
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import atexit, os, sys
        def record():
            with open(f"modules-{os.getpid()}", "w") as f:
                f.write(f"{'numpy' in sys.modules} {os.environ.get('OPENBLAS_NUM_THREADS')}")
        atexit.register(record)
    """))
    monkeypatch.setenv("PYTHONPATH", f"{site}{os.pathsep}{ROOT}")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    seen = {}
    for check in (False, True):
        for old in Path().glob("modules-*"):
            old.unlink()
        summary = write_dataset(items, "ds", f"out{check}", 2, 1, shuffle=False,
                                decode_check=check, num_processes=2, progress=False)
        assert summary.written == 4
        seen[check] = sorted(p.read_text() for p in Path().glob("modules-*"))
    assert seen[False] == ["False 1", "False 1"]
    assert seen[True] == ["True 1", "True 1"]
    assert ([p.read_bytes() for p in sorted(Path("outFalse").glob("ds-*"))]
            == [p.read_bytes() for p in sorted(Path("outTrue").glob("ds-*"))])
