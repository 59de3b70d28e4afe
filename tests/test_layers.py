"""The layers contract (pyproject.toml, ``[tool.importlinter]``) that ``make check`` runs:
it holds for the package, and an upward import breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytest.importorskip("importlinter", reason="import-linter is a dev dependency")

LINT = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=where,
                          capture_output=True, text=True, env={"PYTHONPATH": str(where)})


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "tfrecord_lite", tmp_path / "tfrecord_lite",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.slow
def test_the_package_keeps_the_layers(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("module", "upward"), [
    ("storage.py", "from . import compression"),  # the cycle that file_sha256 made
    ("job.py", "from .local import write_dataset"),  # the job core using a runner
    ("beam.py", "from . import local"),  # one runner using the other
    ("local.py", "from . import __version__"),  # a module importing its own package
    ("shards.py", "from . import threads"),  # the shard writer using a runner
    ("schema.py", "from . import example"),  # the schema using the encoder
    ("cli/read.py", "from . import create"),  # one command using another
    ("cli/common.py", "from . import main"),  # what the commands share using the entry point
])
def test_an_upward_import_breaks_the_contract(tmp_path: Path, module: str,
                                              upward: str) -> None:
    copy = _copy(tmp_path)
    source = copy / "tfrecord_lite" / module
    source.write_text(source.read_text() + f"\n{upward}  # noqa\n")
    done = _lint(copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BROKEN" in done.stdout
