"""Dataset files: JSON lists, and JSON Lines streamed with bounded memory."""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import DatasetError, JsonLines, open_dataset, read_examples, write_dataset
from tfrecord_lite.cli import main
from tfrecord_lite.dataset import ParseFailure

from conftest import detection_item


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_json_lines_count_and_stream(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "d.jsonl", ['{"id": 1, "filename": "a"}', "",
                                               '{"id": 2, "filename": "b"}', "{broken",
                                               "  "])
    data = open_dataset(path)
    assert isinstance(data, JsonLines) and len(data) == 3
    items = list(data)
    assert items[:2] == [{"id": 1, "filename": "a"}, {"id": 2, "filename": "b"}]
    assert isinstance(items[2], ParseFailure) and items[2].line == 4
    assert str(items[2]).startswith(f"{path}, line 4: not valid JSON")
    assert list(data)[:2] == items[:2]  # iterable again


@pytest.mark.parametrize("content, message", [
    ("{not json", "line 1 column 2: not valid JSON"),
    ('{"a": 1}', "expected a JSON list of items, found a dict"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_bad_json_files(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "d.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        open_dataset(path)
    with pytest.raises(DatasetError, match="cannot read dataset file"):
        open_dataset(tmp_path / "missing.jsonl")


def test_a_bad_line_fails_alone(tmp_path: Path, image_file: Any,
                                capsys: pytest.CaptureFixture[str]) -> None:
    good = [json.dumps(detection_item(image_file("jpeg-rgb"), i)) for i in range(3)]
    path = _write_jsonl(tmp_path / "d.jsonl", [good[0], '{"id": 9, ', good[1], "[1, 2]",
                                               good[2]])
    out = tmp_path / "out"
    status = main(["--dataset_path", str(path), "--prefix", "s", "--output_dir", str(out),
                   "--shards", "2", "-q"])
    assert status == 1
    failures = json.loads((out / "s.failures.json").read_text())
    assert failures[0]["line"] == 2 and "line 2: not valid JSON" in failures[0]["error_msg"]
    assert failures[1] == {"item": [1, 2], "error_msg": "an item must be a dict, got list"}
    ids = [r["id"] for n in ("s-00000-of-00002", "s-00001-of-00002")
           for r in read_examples(out / n)]
    assert ids == ["0", "1", "2"]


class _Item(dict):  # type: ignore[type-arg]
    """A dict that can be watched with a weak reference."""


class _Watched:
    """A sized stream of items that knows how many are alive at once."""

    def __init__(self, n: int, image: str) -> None:
        self.n = n
        self.image = image
        self.freed = 0
        self.most_alive = 0
        self.yielded = 0

    def _free(self) -> None:
        self.freed += 1

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[_Item]:
        for i in range(self.n):
            item = _Item(filename=self.image, id=i, height=48, width=64,
                         **{"class": {"label": i % 3}})
            weakref.finalize(item, self._free)
            self.yielded += 1
            self.most_alive = max(self.most_alive, self.yielded - self.freed)
            yield item


def test_unshuffled_sized_input_is_streamed(tmp_path: Path, image_file: Any) -> None:
    stream = _Watched(3000, image_file("jpeg-rgb"))
    summary = write_dataset(stream, "s", tmp_path, 3, 2, shuffle=False, store_images=False,
                            progress=False)
    assert summary.written == 3000 and stream.yielded == 3000  # read once
    assert stream.most_alive < 200  # the in-flight window, not the dataset


def test_shuffled_input_is_held(tmp_path: Path, image_file: Any) -> None:
    stream = _Watched(300, image_file("jpeg-rgb"))
    summary = write_dataset(stream, "s", tmp_path, 2, 2, shuffle=True, seed=1,
                            store_images=False, progress=False)
    assert summary.written == 300 and stream.most_alive == 300


def test_jsonl_and_json_give_the_same_shards(tmp_path: Path, image_file: Any) -> None:
    items = [detection_item(image_file("png-rgb"), i) for i in range(7)]
    (tmp_path / "d.json").write_text(json.dumps(items))
    _write_jsonl(tmp_path / "d.jsonl", [json.dumps(i) for i in items])
    for name in ("d.json", "d.jsonl"):
        assert main(["--dataset_path", str(tmp_path / name), "--prefix", "s", "--output_dir",
                     str(tmp_path / name.replace(".", "-")), "--shards", "3", "-q"]) == 0
    for i in range(3):
        shard = f"s-0000{i}-of-00003"
        assert (tmp_path / "d-json" / shard).read_bytes() == (
            tmp_path / "d-jsonl" / shard).read_bytes()


def test_a_stream_that_changes_length_is_an_error(tmp_path: Path, image_file: Any) -> None:
    stream = _Watched(10, image_file("jpeg-rgb"))
    with pytest.raises(DatasetError, match="shrank"):
        write_dataset(_Lying(stream, 12), "s", tmp_path, 1, 1, shuffle=False,
                      store_images=False, progress=False)
    with pytest.raises(DatasetError, match="grew"):
        write_dataset(_Lying(stream, 8), "s", tmp_path, 1, 1, shuffle=False,
                      store_images=False, progress=False)


class _Lying:
    def __init__(self, stream: _Watched, length: int) -> None:
        self.stream = stream
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[_Item]:
        return iter(self.stream)


# -- dataset files that fight back -----------------------------------------------------------

_DEEP = "[" * 100_000 + "]" * 100_000
_HUGE_INT = '{"id": "huge", "filename": "a.jpg", "class": {"label": ' + "7" * 5000 + "}}"


def _read_failures(out: Path, prefix: str) -> list[dict[str, Any]]:
    failures: list[dict[str, Any]] = json.loads(
        next(out.glob(f"{prefix}[.-]failures.json")).read_text())
    return failures


@pytest.mark.parametrize("content, message", [
    (_DEEP, "d.json: not readable: lists or objects nested too deeply"),
    (f"[{_HUGE_INT}]", "d.json: not readable: Exceeds the limit (4300 digits)"),
])
def test_a_json_list_the_parser_refuses_is_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        content: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("d.json").write_text(content)
    for extra in ([], ["--validate-only"]):
        assert main(["--dataset_path", "d.json", "--prefix", "s", "--output_dir", "out",
                     *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"tfrecord-lite: error: {message}"), err
        assert "Traceback" not in err and len(err) < 400
    assert not Path("out").exists()


def test_json_lines_the_parser_refuses_fail_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_file: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    image_file("jpeg-rgb", name="a.jpg")
    good = [json.dumps(detection_item("a.jpg", i)) for i in range(3)]
    _write_jsonl(Path("d.jsonl"), [good[0], _DEEP, good[1], _HUGE_INT, good[2]])
    args = ["--dataset_path", "d.jsonl", "--prefix", "s", "--output_dir", "out", "-q"]
    assert main(args + ["--validate-only"]) == 1
    err = capsys.readouterr().err
    assert "2 of 5 items would fail" in err, err
    assert "d.jsonl, line 2: not readable: lists or objects nested too deeply" in err
    assert "d.jsonl, line 4: not readable: Exceeds the limit (4300 digits)" in err
    assert main(args) == 1
    failures = _read_failures(Path("out"), "s")
    assert [f["line"] for f in failures] == [2, 4]
    assert failures[0]["error_msg"].startswith("d.jsonl, line 2: not readable: lists or ")
    assert failures[1]["error_msg"].startswith("d.jsonl, line 4: not readable: Exceeds")
    assert [r["id"] for r in read_examples(Path("out") / "s-00000-of-00001")] == ["0", "1", "2"]
    assert "Traceback" not in capsys.readouterr().err


def test_a_byte_order_mark_is_accepted_in_json_and_json_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_file: Any) -> None:
    monkeypatch.chdir(tmp_path)
    image_file("jpeg-rgb", name="a.jpg")
    items = [detection_item("a.jpg", i) for i in range(3)]
    bom = b"\xef\xbb\xbf"
    Path("d.json").write_bytes(bom + json.dumps(items).encode())
    Path("d.jsonl").write_bytes(bom + b"".join(json.dumps(i).encode() + b"\n" for i in items))
    for name in ("d.json", "d.jsonl"):
        assert main(["--dataset_path", name, "--prefix", "s", "--output_dir",
                     name.replace(".", "-"), "-q"]) == 0
        assert len(open_dataset(name)) == 3
    shard = "s-00000-of-00001"
    assert (Path("d-json") / shard).read_bytes() == (Path("d-jsonl") / shard).read_bytes()
    # Only at the start of the file: elsewhere it is a stray character, as in a JSON list.
    Path("late.jsonl").write_bytes(json.dumps(items[0]).encode() + b"\n" + bom
                                   + json.dumps(items[1]).encode() + b"\n")
    late = list(open_dataset("late.jsonl"))
    assert isinstance(late[1], ParseFailure) and "BOM" in str(late[1])


def test_a_csv_or_json_lines_given_to_create_says_what_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("labels.csv").write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n"
                                  "a.jpg,64,48,cat,1,1,10,10\n")
    assert main(["create", "--dataset_path", "labels.csv", "--prefix", "t",
                 "--output_dir", "out"]) == 2
    assert ("it looks like the Object Detection API CSV (filename,width,height,class,"
            "xmin,...): convert it with python -m tfrecord_lite from-csv"
            in capsys.readouterr().err)
    Path("items.json").write_text('{"filename": "a.jpg", "id": "1"}\n'
                                  '{"filename": "b.jpg", "id": "2"}\n')
    assert main(["create", "--dataset_path", "items.json", "--prefix", "t",
                 "--output_dir", "out"]) == 2
    assert ("items.json, line 2 column 1: not valid JSON: Extra data; it holds JSON Lines "
            "(one item a line): a file named .jsonl is read as such (e.g. items.jsonl)"
            in capsys.readouterr().err)
