"""docs/development.md's layout names every module of the package once, with its job, in
the layer the import-linter contract puts it in: the document cannot go stale."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT

PACKAGE = ROOT / "tfrecord_lite"
DOC = ROOT / "docs" / "development.md"
# An entry of the layout: indentation, a module (``name.py``) or package (``name/``), its job.
_ENTRY = re.compile(r"^(?P<indent> *)(?P<name>\w+(?:\.py|/))(?: +(?P<job>\S.*))?$")
_GROUP = re.compile(r"^ *-- \S")


def _layout_block(text: str) -> list[str]:
    """The lines of the code block under "## Layout", without the ``tfrecord_lite/`` line."""
    section = text.split("\n## Layout\n", 1)[1]
    block = section.split("```\n", 2)[1]
    lines = block.splitlines()
    assert lines[0] == "tfrecord_lite/"
    return lines[1:]


def _modules() -> set[str]:
    """Every module of the package as the layout names it: ``x.py``, ``sub/`` for a
    sub-package (its ``__init__``), ``sub/x.py``; the generated ``proto/`` as a whole."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if parts[0] == "proto":
            found.add("proto/")
        elif len(parts) > 1 and parts[-1] == "__init__.py":
            found.add("/".join(parts[:-1]) + "/")
        else:
            found.add("/".join(parts))
    return found


def _layers() -> list[set[str]]:
    """The layers of the package's contract, from the top: sets of module names."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"]
                   if c["id"] == "layers"]
    return [{name.strip() for name in layer.split("|")} for layer in contract["layers"]]


def _problems(text: str, modules: set[str], layers: list[set[str]]) -> list[str]:
    """What is wrong with the layout of ``text``: modules missing, listed twice, not in
    the package, without a job, or in a group other than their layer's."""
    problems = []
    listed: list[str] = []
    groups: list[set[str]] = []
    package = ""
    for line in _layout_block(text):
        if _GROUP.match(line):
            groups.append(set())
            continue
        entry = _ENTRY.match(line)
        if entry is None:
            continue  # a job's second line
        name, nested = entry["name"], len(entry["indent"]) > 2
        path = package + name if nested else name
        if not nested:
            package = name if name.endswith("/") else ""
            if groups:
                groups[-1].add(name.removesuffix(".py").removesuffix("/"))
            elif name != "__init__.py":
                problems.append(f"{path}: listed before the first layer")
        if not entry["job"]:
            problems.append(f"{path}: no sentence saying its job")
        listed.append(path)
    for path in sorted(modules - set(listed)):
        problems.append(f"{path}: a module of the package missing from the layout")
    for path in sorted(set(listed) - modules):
        problems.append(f"{path}: listed, but not in the package")
    for path in sorted({p for p in listed if listed.count(p) > 1}):
        problems.append(f"{path}: listed more than once")
    if len(groups) != len(layers):
        problems.append(f"{len(groups)} groups for the contract's {len(layers)} layers")
    for number, (group, layer) in enumerate(zip(groups, layers), 1):
        if group != layer:
            problems.append(f"group {number} lists {sorted(group)}, the contract's layer "
                            f"{number} holds {sorted(layer)}")
    return problems


def test_the_layout_names_every_module_once_in_its_layer() -> None:
    assert _problems(DOC.read_text(), _modules(), _layers()) == []


def test_a_module_left_out_of_the_layout_is_named() -> None:
    text = DOC.read_text()
    without = re.sub(r"\n  rgb\.py .*", "", text)
    assert without != text
    assert _problems(without, _modules(), _layers())[0] == (
        "rgb.py: a module of the package missing from the layout")
    without = re.sub(r"\n    plan\.py .*", "", text)
    assert _problems(without, _modules(), _layers()) == [
        "torch/plan.py: a module of the package missing from the layout"]


def test_a_module_listed_in_another_layer_is_named() -> None:
    text = DOC.read_text()
    line = re.search(r"\n  jpeg\.py .*", text)[0]
    floor = "\n  -- the ground floor"
    moved = text.replace(line, "").replace(floor, floor + line)
    assert moved != text
    problems = _problems(moved, _modules(), _layers())
    assert [p.split(" lists")[0] for p in problems] == ["group 13", "group 14"]
    assert all("'jpeg'" in p for p in problems)


def test_a_module_without_its_job_is_named() -> None:
    text = re.sub(r"\n  wire\.py .*", "\n  wire.py", DOC.read_text())
    assert _problems(text, _modules(), _layers()) == ["wire.py: no sentence saying its job"]
