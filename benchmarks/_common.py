"""What the benchmarks share: where they write, their sizes from the environment,
best-of timing, fresh child processes that measure their own peak memory, and quiet
TensorFlow logs.

Each benchmark runs as a script (``python benchmarks/bench_create.py``), so Python puts
this folder first on ``sys.path``: ``from _common import ...`` and ``from photos import
...`` need no path setup. A child process started by ``run_python`` gets the same path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

# TensorFlow's C++ start-up logs, off in this process and in the children it starts.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
OUT = Path(os.environ.get("BENCH_DIR", ROOT / "bench-out"))


def env_int(name: str, default: int) -> int:
    """A size from the environment (BENCH_IMAGES, BENCH_ROUNDS, ...), else ``default``."""
    return int(os.environ.get(name, str(default)))


def images(default: int) -> int:
    """How many images a benchmark uses: BENCH_IMAGES, else ``default``."""
    return env_int("BENCH_IMAGES", default)


def rounds(default: int) -> int:
    """How many rounds a benchmark takes the best of: BENCH_ROUNDS, else ``default``."""
    return env_int("BENCH_ROUNDS", default)


def best_of(fn: Callable[[], object], n: int) -> float:
    """The shortest of ``n`` runs of ``fn``, in seconds."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def fresh_dir(path: Path) -> Path:
    """``path`` as an empty directory (what an earlier run left is removed)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB. Not ru_maxrss, which keeps a
    forking parent's (TensorFlow's) peak."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status
                    if line.startswith("VmHWM")) / 1024


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter that can import this folder's modules, with
    ``env`` added to the environment; its standard output."""
    path = os.pathsep.join(filter(None, [str(BENCHMARKS), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, **(env or {}), "PYTHONPATH": path})
    return done.stdout


def usage() -> dict[str, float]:
    """CPU seconds and peak memory of this process and of its children that ended
    (``resource.getrusage``): ``cpu``, ``children_cpu``, ``rss_mb`` (VmHWM) and
    ``children_rss_mb`` (the largest child's peak)."""
    import resource

    me, kids = (resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN))
    return {"cpu": me.ru_utime + me.ru_stime, "children_cpu": kids.ru_utime + kids.ru_stime,
            "rss_mb": peak_rss_mb(), "children_rss_mb": kids.ru_maxrss / 1024}
