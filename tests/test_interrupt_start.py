"""Ctrl-C while the command starts up, and while it starts its worker processes: the
clean "interrupted" exit, never a traceback from an import or a worker's start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, make_image_bytes


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signals")
@pytest.mark.parametrize("delay", [0.05, 0.15, 0.3, 0.5, 0.8])
def test_ctrl_c_while_starting_prints_no_traceback(tmp_path: Path, delay: float) -> None:
    (tmp_path / "a.jpg").write_bytes(make_image_bytes("jpeg-rgb", 64, 48))
    (tmp_path / "d.json").write_text(json.dumps([{"filename": "a.jpg", "id": str(i)}
                                                 for i in range(200)]))
    process = subprocess.Popen(
        [sys.executable, "-m", "tfrecord_lite", "create", "--dataset_path", "d.json",
         "--prefix", "t", "--output_dir", "out", "--processes", "2", "--shards", "4"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGINT)  # as the terminal sends it: to every process
    err = process.communicate(timeout=60)[1]
    if "<frozen site>" in err:  # Python's own start, before any of the package runs
        pytest.skip("the interrupt came before Python had started")
    assert "Traceback" not in err and "Fatal Python error" not in err, err
    assert process.returncode in (0, 130), err  # 0: it finished first
    if process.returncode == 130:
        assert "interrupted" in err, err  # said, whenever it came
