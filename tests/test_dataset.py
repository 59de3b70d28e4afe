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
