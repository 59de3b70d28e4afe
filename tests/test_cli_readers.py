"""The reader commands as users call them: globs over an output folder, several files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tfrecord_lite.cli import main
from tfrecord_lite.converters import label_map_json, label_map_pbtxt

from conftest import ROOT, detection_item


def _dataset(tmp_path: Path, image_file: Any, n: int, shards: int) -> Path:
    """``n`` detection items written as ``shards`` shards of prefix ``train`` under out/,
    with the files a job and a converter leave beside them, in tmp_path (the cwd)."""
    items = [detection_item(image_file("jpeg-rgb", width=320, height=240), f"r{i}")
             for i in range(n)]
    (tmp_path / "train.json").write_text(json.dumps(items))
    assert main(["--dataset_path", "train.json", "--prefix", "train", "--output_dir", "out",
                 "--shards", str(shards), "--store_images", "-q"]) == 0
    out = tmp_path / "out"
    (out / "label_map.json").write_text(json.dumps(label_map_json(["a", "b"], 1)))
    (out / "label_map.pbtxt").write_text(label_map_pbtxt(["a", "b"], 1))
    assert main(["index", f"out/train-00000-of-{shards:05d}"]) == 0  # a hidden .idx file
    shard = f"out/train-00000-of-{shards:05d}"
    assert main(["index", shard, "-o", shard + ".idx"]) == 0  # an earlier version's name
    return out


@pytest.fixture
def out(tmp_path: Path, image_file: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return _dataset(tmp_path, image_file, 4, 2)


def _side_files(out: Path) -> list[str]:
    # (``out/*`` matches no hidden file, such as the index ``.train-00000-of-00002.idx``)
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and (
        not p.name.startswith("train-0") or p.name.endswith(".idx")))


@pytest.mark.parametrize("command", [["verify"], ["verify", "--json"], ["stats"],
                                     ["inspect", "-n", "9"], ["index"]])
@pytest.mark.parametrize("expanded", [False, True], ids=["quoted-glob", "shell-expanded"])
def test_readers_skip_the_files_beside_the_shards(out: Path, command: list[str],
                                                  expanded: bool,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    side = _side_files(out)
    assert len(side) >= 5  # manifest, failures, two label maps, an older index
    files = sorted(f"out/{p.name}" for p in out.iterdir()
                   if not p.name.startswith(".")) if expanded else ["out/*"]
    capsys.readouterr()
    assert main([*command, *files]) == 0
    captured = capsys.readouterr()
    assert f"skipped {len(side)} files that are not shards: {', '.join(side)}" in captured.err
    assert "PROBLEM" not in captured.out and "length CRC" not in captured.out
    if command == ["verify"]:
        assert captured.out.strip() == "OK: 2 files, 4 records, 4 images decoded, 0 problems"


def test_verify_still_checks_the_manifest_when_given_everything(
        out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = next(p for p in out.iterdir() if "manifest" in p.name)
    data = json.loads(manifest.read_text())
    data["shards"][1]["records"] += 1
    manifest.write_text(json.dumps(data))
    assert main(["verify", "--no-decode", "out/*"]) == 1
    assert "the manifest says 3" in capsys.readouterr().out


def test_only_side_files_is_a_usage_error(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "out/*.json"]) == 2
    err = capsys.readouterr().err
    assert "no shard files among out/*.json" in err and "Traceback" not in err


@pytest.mark.slow
def test_verify_out_star_in_a_shell(out: Path) -> None:
    """As typed: the shell expands out/*, `python -m tfrecord_lite` runs it."""
    result = subprocess.run(f"{sys.executable} -m tfrecord_lite verify out/*", shell=True,
                            capture_output=True, text=True, cwd=out.parent,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"skipped {len(_side_files(out))} files that are not shards" in result.stderr
    assert result.stdout.startswith("OK: 2 files, 4 records")


def test_show_grid_says_how_many_it_drew(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "out/train-*", "--grid", "9", "-o", "sheet.png"]) == 0
    assert "wrote sheet.png: 4 of 9 records (the files hold 4)" in capsys.readouterr().out
    with Image.open("sheet.png") as sheet:
        # 4 records: 2 x 2 cells of at least 256 px
        assert sheet.size[0] >= 2 * 256 and sheet.size[1] >= 2 * 256
        assert sheet.size[0] == sheet.size[1]
    assert main(["show", "out/train-00000-of-00002", "--grid", "2", "-o", "two.png"]) == 0
    assert "wrote two.png: 2 records" in capsys.readouterr().out


def test_show_grid_16_cells_are_large(tmp_path: Path, image_file: Any,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    _dataset(tmp_path, image_file, 16, 1)
    assert main(["show", "out/*", "--grid", "16", "-o", "sheet.png"]) == 0
    with Image.open("sheet.png") as sheet:
        assert sheet.size[0] >= 4 * 256 and sheet.size[1] >= 4 * 256
    assert "wrote sheet.png: 16 records" in capsys.readouterr().out


def test_show_index_counts_over_several_files(out: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # shards of 2 and 2 records: record 3 is the second of the second shard
    assert main(["show", "out/train-00000-of-00002", "out/train-00001-of-00002",
                 "--index", "3", "-o", "r3.png"]) == 0
    assert "wrote r3.png: record 3 (id 'r3')" in capsys.readouterr().out
    with Image.open("r3.png") as image:
        assert image.size == (320, 240)
    assert main(["show", "out/*", "--index", "4", "-o", "r4.png"]) == 2
    assert "there is no record 4 (the files hold 4)" in capsys.readouterr().err


def test_show_finds_a_record_by_its_id(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "out/train-*", "--id", "r2", "-o", "r2.png"]) == 0
    assert "wrote r2.png: record 2 (id 'r2'), 320x240 px" in capsys.readouterr().out
    assert main(["show", "out/train-*", "--id", "r9", "-o", "r9.png"]) == 2
    assert "no record has the id 'r9' (the files hold 4 records)" in capsys.readouterr().err
    assert main(["show", "out/train-*", "--id", "r2", "--index", "1", "-o", "x.png"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_show_draws_a_huge_record_scaled_down_unless_full_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (7200, 4800), (90, 140, 200)).save("huge.jpg", quality=80)
    Image.new("RGB", (2400, 1600), (200, 140, 90)).save("large.jpg", quality=80)
    items = [detection_item(name, name.split(".")[0]) for name in ("huge.jpg", "large.jpg")]
    Path("big.json").write_text(json.dumps(items))
    assert main(["create", "--dataset_path", "big.json", "--prefix", "big", "--output_dir",
                 "out", "--no-decode-check", "-q"]) == 0
    capsys.readouterr()
    assert main(["show", "out/big-*", "--id", "huge", "-o", "huge.png"]) == 0
    assert ("wrote huge.png: record 0 (id 'huge'), 2048x1365 px (scaled down from 7200x4800; "
            "--full-size draws it whole)") in capsys.readouterr().out
    with Image.open("huge.png") as drawn:
        assert drawn.size == (2048, 1365)
    assert os.path.getsize("huge.png") < 4 << 20
    assert main(["show", "out/big-*", "--id", "large", "--full-size", "-o", "large.png"]) == 0
    assert "wrote large.png: record 1 (id 'large'), 2400x1600 px\n" in capsys.readouterr().out
    with Image.open("large.png") as drawn:
        assert drawn.size == (2400, 1600)


def test_inspect_several_files_and_globs(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "out/train-*", "-n", "3", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["image/id"] for r in shown] == ["r0", "r1", "r2"]
    assert main(["inspect", "out/train-00001-of-00002", "out/train-00000-of-00002",
                 "-n", "3"]) == 0
    text = capsys.readouterr().out
    assert "--- record 0 of out/train-00001-of-00002" in text
    assert "--- record 1 of out/train-00001-of-00002" in text
    assert "--- record 0 of out/train-00000-of-00002" in text


def test_contact_sheet_text_is_drawn_at_cell_scale() -> None:
    """A large image: its captions are drawn after it is scaled to the cell, so they are
    as high in the sheet as in a small image's cell (before, they shrank with it)."""
    import io

    from tfrecord_lite.preview import contact_sheet

    def item(width: int, height: int) -> dict[str, Any]:
        buf = io.BytesIO()
        Image.new("RGB", (width, height), (255, 255, 255)).save(buf, "JPEG")
        return {"id": "x", "encoded": buf.getvalue(),
                "object": {"bbox": {"xmin": [0.25], "xmax": [0.75], "ymin": [0.5],
                                    "ymax": [0.9], "label": [3], "text": ["WWWWWW"]}}}

    def caption_rows(sheet: Image.Image) -> int:
        # rows with 20 or more pixels of the caption's fill colour (label 3 -> COLORS[3]):
        # the caption's rows, and the few of the box's top and bottom edges
        from tfrecord_lite.preview import COLORS

        pixels = sheet.load()
        return sum(sum(pixels[x, y] == COLORS[3] for x in range(sheet.width)) >= 20
                   for y in range(sheet.height))

    small = contact_sheet([item(300, 300)])
    large = contact_sheet([item(3000, 3000)])
    assert small.size == large.size
    # the caption's height (plus the box's edges): equal for both, and legible
    assert caption_rows(small) == caption_rows(large) >= 14


def test_stats_counts_box_labels_with_their_names(out: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # Detection sets (converters) have box labels but no class label: stats used to say
    # only "classes: (no class labels)".
    capsys.readouterr()
    assert main(["stats", "--json", "out/train-*"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["box_labels"] == {"1": {"boxes": 4, "text": "bird"},
                                    "2": {"boxes": 4, "text": "cat"}}
    assert main(["stats", "out/train-*"]) == 0
    assert "box labels: 1 (bird): 4, 2 (cat): 4" in capsys.readouterr().out


def test_a_one_shard_summary_says_shard(tmp_path: Path, image_file: Any,
                                        monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "one.json").write_text(json.dumps([detection_item(image_file("jpeg-rgb"), 1)]))
    with caplog.at_level("INFO"):
        assert main(["create", "--dataset_path", "one.json", "--prefix", "one",
                     "--output_dir", "o"]) == 0
    assert "items to 1 shard (" in caplog.text, caplog.text


def test_a_bad_prefix_is_named_as_the_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.json").write_text("[]")
    assert main(["create", "--dataset_path", "d.json", "--prefix", "a/b",
                 "--output_dir", "o"]) == 2
    assert "the prefix" in capsys.readouterr().err


def test_one_skipped_file_is_named_in_the_singular(out: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["verify", "--no-decode", "out/train-00000-of-00002",
                 "out/train.manifest.json"]) == 0
    assert "skipped 1 file that is not a shard: train.manifest.json" in capsys.readouterr().err


@pytest.mark.slow
def test_a_closed_pipe_is_no_error(out: Path) -> None:
    # `inspect ... | head` used to end with "error: [Errno 32] Broken pipe", exit 2.
    done = subprocess.run(f"{sys.executable} -m tfrecord_lite inspect 'out/train-*' -n 9 "
                          "| head -1", shell=True, capture_output=True, text=True,
                          cwd=out.parent, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=60)
    assert done.stdout.count("\n") == 1
    assert "error" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_folders_a_wildcard_matches_are_skipped(out: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # The README's converters write into out/coco, out/voc ...: `verify out/*` then
    # matches those folders too.
    (out / "coco").mkdir()
    capsys.readouterr()
    assert main(["verify", "--no-decode", "out/*"]) == 0
    assert "skipped 1 folder: out/coco" in capsys.readouterr().err
    assert main(["verify", "out/coco"]) == 2  # a folder named on its own is a mistake
