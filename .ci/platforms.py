"""Check, with pip's own resolver, that the default dependencies install as binary wheels.

For each platform and CPython version below, runs

    pip install --dry-run --only-binary=:all: --platform TAG --python-version V DEPS

on ``[project].dependencies`` of pyproject.toml, which downloads metadata but installs
nothing. ``crcmod`` is left out: it has no wheels, and installs as pure Python without a
compiler. A platform that must resolve and does not fails the check (exit 1), so a new
dependency without wheels fails the build. Platforms marked "reported" are only printed:
musllinux (Alpine), where the README says what fails; and the ``fast-png`` extra.

Run as ``make platforms``; needs only pip and the network (or the configured index).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11: the copy pip carries
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
EXEMPT = {"crcmod"}  # source only; installs as pure Python without a compiler


def _manylinux(arch: str) -> list[str]:
    # A glibc 2.28 system (RHEL 8, Debian 10 and later) installs any of these.
    return [f"manylinux_2_28_{arch}", f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"]


def _musllinux(arch: str) -> list[str]:
    return [f"musllinux_1_2_{arch}", f"musllinux_1_1_{arch}"]


# (name, platform tags, CPython versions, required)
TARGETS = [
    ("manylinux x86_64", _manylinux("x86_64"), ["3.9", "3.12", "3.13", "3.14"], True),
    ("manylinux aarch64", _manylinux("aarch64"), ["3.9", "3.12", "3.13", "3.14"], True),
    ("macOS arm64", ["macosx_14_0_arm64"], ["3.12"], True),
    ("Windows amd64", ["win_amd64"], ["3.12"], True),
    ("musllinux x86_64", _musllinux("x86_64"), ["3.12"], False),
    ("musllinux aarch64", _musllinux("aarch64"), ["3.12"], False),
]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def resolve(requirements: list[str], tags: list[str], python: str) -> tuple[bool, str]:
    """(True, "name version, ...") if pip finds wheels for all; else (False, pip's error)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
                   "--disable-pip-version-check", "--ignore-installed",
                   "--only-binary=:all:", "--python-version", python,
                   "--implementation", "cp", "--target", os.path.join(tmp, "target"),
                   "--report", report]
        for tag in tags:
            command += ["--platform", tag]
        done = subprocess.run(command + requirements, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
            return False, "; ".join(errors) or done.stderr.strip()[-300:]
        with open(report) as f:
            installed = json.load(f)["install"]
    return True, ", ".join(f"{i['metadata']['name']} {i['metadata']['version']}"
                           for i in installed)


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    default = [r for r in project["dependencies"] if _name(r) not in EXEMPT]
    if any(";" in r for r in default):
        # pip evaluates markers for this machine, not the target: the check would lie.
        print("platforms: a default dependency has an environment marker; this check "
              "cannot judge it", file=sys.stderr)
        return 2
    fast_png = project["optional-dependencies"]["fast-png"]
    print(f"default dependencies (crcmod exempt: pure Python): {', '.join(default)}")
    failed = 0
    for name, tags, pythons, required in TARGETS:
        for python in pythons:
            ok, said = resolve(default, tags, python)
            if not ok:  # which of them have no wheel here
                said = "no wheels for " + ", ".join(
                    r for r in default if not resolve([r], tags, python)[0])
            verdict = "ok" if ok else ("FAILED" if required else "fails (reported only)")
            failed += not ok and required
            print(f"{name:<18} CPython {python:<5} {verdict}: {said}")
    print(f"the fast-png extra ({', '.join(fast_png)}), reported only:")
    for name, tags, pythons, _ in TARGETS:
        for python in pythons:
            ok, said = resolve(fast_png, tags, python)
            print(f"{name:<18} CPython {python:<5} {'ok' if ok else 'no wheels'}: {said}")
    if failed:
        print(f"platforms: {failed} required platform(s) do not resolve as wheels",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
