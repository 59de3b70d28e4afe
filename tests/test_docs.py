"""What the README, the pages in docs/ and the tool tell users must be true: install
commands that work from PyPI or a clone, and an item format that names every key the
encoder knows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from tfrecord_lite.cli import main
from tfrecord_lite.schema import FIELDS

from conftest import ROOT

README = ROOT / "README.md"
ITEM_FORMAT = ROOT / "docs" / "item-format.md"
# PyPI distributions a hint may name beyond this project's own dependencies.
OTHER_PYPI = {"gcsfs"}
# Not on PyPI (the PyPI name tfrecord-lite is another project): never in a hint.
NOT_ON_PYPI = {"tfrecord-lite-writer", "tfrecord-lite"}
_TOKEN = r"(?:'[^'\n]*'|[A-Za-z0-9_.\-\[\]<>=!~,/*]+)"
_PIP = re.compile(rf"pip install((?:[ \t\n]+{_TOKEN})*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _allowed() -> tuple[set[str], set[str]]:
    """(PyPI names a hint may install, the extras of this repository)."""
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + [r for reqs in extras.values() for r in reqs]
    names = {_canonical(re.match(r"[A-Za-z0-9_.\-]+", r).group()) for r in requirements}
    return (names | OTHER_PYPI) - NOT_ON_PYPI, set(extras)


def _problem(token: str, names: set[str], extras: set[str]) -> str | None:
    """Why ``pip install ... token ...`` would not work for someone with a clone today."""
    spec = token.strip("'")
    if spec.startswith("-"):
        return None  # a pip option: -e, -q, --upgrade
    local = re.fullmatch(r"(?:\.|dist/[\w.*-]+\.whl)(?:\[([\w,-]+)\])?", spec)
    if local:
        unknown = set((local.group(1) or "").split(",")) - extras - {""}
        return f"no extra {sorted(unknown)} in pyproject.toml" if unknown else None
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9_.\-]*)(\[[\w,-]+\])?((?:[<>=!~]=?[\w.*]+,?)*)",
                         spec)
    if not match:
        return "not a requirement"
    if _canonical(match.group(1)) in NOT_ON_PYPI:
        return "not on PyPI (from a clone: pip install '.[EXTRA]')"
    if _canonical(match.group(1)) not in names:
        return f"{match.group(1)!r} is not a PyPI package this project names"
    return None


def _sources() -> list[Path]:
    package = ROOT / "tfrecord_lite"
    return [README, *sorted((ROOT / "docs").glob("*.md")),
            *sorted(p for p in package.rglob("*.py") if "proto" not in p.parts)]


def _hints(path: Path) -> list[str]:
    return [" ".join(m.group(0).split()) for m in _PIP.finditer(path.read_text())]


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(ROOT)))
                                  for p in _sources()])
def test_every_install_command_works_from_pypi_or_a_clone(path: Path) -> None:
    names, extras = _allowed()
    bad = []
    for hint in _hints(path):
        bad += _hint_problems(hint, names, extras)
    assert not bad, "\n".join(bad)


def _hint_problems(hint: str, names: set[str], extras: set[str]) -> list[str]:
    tokens = hint.split()[2:]
    local = "--no-index" in tokens  # from a folder of wheels, such as dist/
    bad, after_option = [], False
    for token in tokens:
        if after_option:  # the folder --find-links names
            after_option = False
            continue
        after_option = token in ("--find-links", "-f")
        if local and _canonical(token.strip("'").split("[")[0]) in NOT_ON_PYPI:
            continue
        problem = _problem(token, names, extras)
        if problem:
            bad.append(f"{hint!r}: {token}: {problem}")
    return bad


def test_the_install_check_catches_the_old_hints() -> None:
    names, extras = _allowed()
    assert _problem("'tfrecord-lite-writer[beam]'", names, extras)
    assert _problem("tfrecord-lite-writer[png]", names, extras)
    assert _problem("'.[nonexistent]'", names, extras)
    assert _problem("on", names, extras)  # a command must end where the prose starts
    assert _problem("'apache-beam>=2.50'", names, extras) is None
    assert _problem("'.[beam]'", names, extras) is None
    assert _problem("'dist/tfrecord_lite_writer-0.1.0-py3-none-any.whl[fast-png]'", names,
                    extras) is None
    assert _problem("'dist/x.whl[nonexistent]'", names, extras)
    assert _hint_problems("pip install tfrecord-lite-writer", names, extras)
    assert not _hint_problems("pip install --no-index --find-links dist tfrecord-lite-writer",
                              names, extras)
    assert _problem("gcsfs", names, extras) is None
    assert [h for h in _hints(README) if "apache-beam" in h]  # the README names Beam


def _item_format() -> str:
    return ITEM_FORMAT.read_text()


def _code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, content) of each fenced block of Markdown text."""
    blocks: list[tuple[str, str]] = []
    language, lines = None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:], []
            else:
                blocks.append((language, "\n".join(lines)))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def test_the_item_format_lists_every_key() -> None:
    section = _item_format()
    missing = [f.path for f in FIELDS if f"| `{f.path}` |" not in section]
    assert not missing, f"keys missing from docs/item-format.md: {missing}"
    for key in ("image/source_id", "image/key/sha256", "image/object/class/label",
                "image/object/class/text"):
        assert f"`{key}`" in section


def test_the_worked_example_is_what_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    section = _item_format()
    example = section[section.index("**A worked example.**"):]
    (_, item_text), (_, listing) = _code_blocks(example)[:2]
    item = json.loads(item_text)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "images").mkdir()
    Image.new("RGB", (640, 480), (120, 140, 160)).save("images/0001.jpg")
    (tmp_path / "d.json").write_text(json.dumps([item]))
    assert main(["create", "--dataset_path", "d.json", "--prefix", "ex", "--output_dir", "out",
                 "-q"]) == 0
    capsys.readouterr()
    assert main(["inspect", "out/ex-00000-of-00001"]) == 0
    printed = capsys.readouterr().out.splitlines()[1:]  # after '--- record 0 of ...'

    def pairs(lines: list[str]) -> dict[str, str]:
        return {key: value.strip() for key, _, value in
                (line.strip().partition(" ") for line in lines if line.strip())}

    documented, actual = pairs(listing.splitlines()), pairs(printed)
    assert documented.keys() == actual.keys()
    assert re.fullmatch(r"[0-9a-f]{64}", actual.pop("image/key/sha256"))
    assert actual.pop("image/encoded").startswith("<") and "JPEG 640x480" in printed[5]
    for key in ("image/key/sha256", "image/encoded"):
        documented.pop(key)
    assert documented == actual


def _masks_section() -> str:
    section = _item_format()
    return section[section.index("## Masks"):]


def test_the_masks_worked_example_is_what_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import ImageDraw

    section = _masks_section()
    example = section[section.index("**A worked example.**"):]
    (_, item_text), (_, listing) = _code_blocks(example)[:2]
    item = json.loads(item_text)
    monkeypatch.chdir(tmp_path)
    for folder in ("images", "masks", "labels"):
        (tmp_path / folder).mkdir()
    Image.new("RGB", (640, 480), (120, 140, 160)).save("images/0002.jpg")
    mask = Image.new("L", (640, 480))
    ImageDraw.Draw(mask).ellipse([288, 264, 448, 408], fill=255)
    mask.save("masks/0002-2.png")
    ids = Image.new("P", (640, 480))
    draw = ImageDraw.Draw(ids)
    draw.polygon(item["object"]["mask"][0][0], fill=15, outline=255)
    draw.ellipse([288, 264, 448, 408], fill=12, outline=255)
    ids.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [64] * (253 * 3))
    ids.save("labels/0002.png")
    (tmp_path / "d.json").write_text(json.dumps([item]))
    assert main(["create", "--dataset_path", "d.json", "--prefix", "ex", "--output_dir", "out",
                 "-q"]) == 0
    capsys.readouterr()
    assert main(["inspect", "out/ex-00000-of-00001"]) == 0
    printed = capsys.readouterr().out

    def sizes_out(text: str) -> str:  # zlib's output may differ a little between versions
        return re.sub(r"<[\d,]+ bytes", "<N bytes", text)

    for line in listing.splitlines():
        assert sizes_out(line) in sizes_out(printed), line


def test_the_mask_errors_shown_are_the_ones_written(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tfrecord_lite import write_dataset

    section = _masks_section()
    shown = _code_blocks(section)[0][1].splitlines()
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (640, 480)).save("wide.jpg")
    Image.new("RGB", (640, 427)).save("short.jpg")
    square = [[10, 10, 50, 10, 50, 50, 10, 50]]
    items = [
        {"filename": "wide.jpg", "id": "0002", "object": {"mask": [square, [[1, 1, 9, 9]]]}},
        {"filename": "short.jpg", "id": "0003",
         "object": {"mask": [{"size": [480, 640], "counts": [307200]}]}},
        {"filename": "wide.jpg", "id": "0004", "object": {
            "mask": [square, square, [[10, 10, 50, 10, 50, 50, 700, 20]]]}},
    ]
    for item in items:  # each mask beside its box (a mask without one disagrees)
        n = len(item["object"]["mask"])
        item["object"]["bbox"] = {"xmin": [0.0] * n, "xmax": [0.5] * n, "ymin": [0.0] * n,
                                  "ymax": [0.5] * n, "label": [1] * n}
    summary = write_dataset(items, "t", "out", 1, 1, shuffle=False, progress=False)
    assert [f["error_msg"] for f in summary.failures] == shown


def test_every_exit_status_is_in_one_table_and_in_the_help(
        capsys: pytest.CaptureFixture[str]) -> None:
    from tfrecord_lite.cli import common

    statuses = sorted({value for name, value in vars(common).items()
                       if name.startswith("EXIT_") and isinstance(value, int)})
    assert statuses == [0, 1, 2, 3, 70, 130, 141, 143]
    lines = (ROOT / "docs" / "usage.md").read_text().splitlines()
    start = lines.index("| exit status | meaning |")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break  # one table: Markdown ends it at the first other line
        rows.append(int(line.split("|")[1]))
    assert rows == statuses
    for page in (README, ROOT / "docs" / "migrating.md"):
        text = page.read_text()
        assert all(re.search(rf"\b{status}\b", text) for status in statuses), page
        assert "usage.md#the-command-line" in text
    assert main(["create", "--help"]) == 0
    epilog = capsys.readouterr().out.split("exit status:")[1]
    assert all(re.search(rf"\b{status}\b", epilog) for status in statuses), epilog
