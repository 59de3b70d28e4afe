"""Validation before writing: each problem named with the item id and key path."""

from __future__ import annotations

import copy
import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfrecord_lite import (
    JsonLines,
    open_dataset,
    read_examples,
    validate,
    validate_dataset,
    write_dataset,
)
from tfrecord_lite.cli import main
from tfrecord_lite.validate import IdTracker, check_item, find_problems

from conftest import detection_item


def _item(**changes: Any) -> dict[str, Any]:
    item = detection_item("x.jpg", "7")
    for path, value in changes.items():
        node = item
        *parents, last = path.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return item


def _messages(item: dict[str, Any]) -> list[str]:
    return [str(p) for p in check_item(item)]


def test_a_good_item_has_no_problems() -> None:
    assert check_item(detection_item("x.jpg", "1")) == []
    assert check_item({"filename": "x.jpg", "id": 1, "class": {"label": "3"}}) == []


@pytest.mark.parametrize("changes, expected", [
    ({"object__bbox__xmax": [0.6]},
     "object: lists of unequal lengths (area 2, id 2, is_crowd 2, bbox/xmin 2, bbox/xmax 1"),
    ({"object__area": [0.1, 0.2, 0.3], "object__id": ["a", "b", "c"],
      "object__is_crowd": [0, 0, 1], "object__count": None},
     "object: lists of unequal lengths (area 3, id 3, is_crowd 3, bbox/xmin 2"),
    ({"object__parts__v": [2]}, "object/parts: lists of unequal lengths (x 2, y 2, v 1, "
                                "score 2)"),
    ({"object__bbox__xmin": [0.1, 1.2]}, "object/bbox/xmin[1]: 1.2 is outside [0, 1]"),
    ({"object__bbox__ymax": [0.7, -0.1]}, "object/bbox/ymax[1]: -0.1 is outside [0, 1]"),
    ({"object__bbox__xmin": [0.7, 0.5]}, "object/bbox[0]: reversed: xmin 0.7 > xmax 0.6"),
    ({"object__bbox__ymin": [0.2, 0.9]}, "object/bbox[1]: reversed: ymin 0.9 > ymax 0.65"),
    ({"object__area": [0.25, 3.0]}, "object/area[1]: 3.0 is outside [0, 1]"),
    ({"object__parts__x": [0.2, 1.5]},
     "object/parts/x[1]: 1.5 is outside [0, 1] (and the point is not marked v=0)"),
    ({"object__count": 3}, "object/count: 3, but 2 boxes are listed"),
    ({"object__bbox__score": [0.8, math.nan]}, "object/bbox/score[1]: nan is not a finite"),
    ({"class__conf": math.inf}, "class/conf: inf is not a finite number"),
    ({"object__bbox__xmin": ["0.1", "NaN"]}, "object/bbox/xmin[1]: nan is not a finite"),
    ({"class__label": "one"}, "class/label: not an integer: 'one'"),
    ({"object__bbox__label": [1, 2.5]}, "object/bbox/label[1]: expected an integer, got 2.5"),
    ({"object__parts__v": [2, "x"]}, "object/parts/v[1]: not an integer: 'x'"),
])
def test_each_problem_is_named_with_its_key_path(changes: dict[str, Any], expected: str
                                                 ) -> None:
    messages = _messages(_item(**changes))
    assert any(m.startswith(expected) for m in messages), messages


def test_accepted_values() -> None:
    # Numeric strings, integral floats, hidden keypoints anywhere, empty lists, edges.
    item = _item(class__label="3", object__bbox__label=["1", 2.0],
                 object__parts__x=[-1, 0.5], object__parts__v=[0, 1],
                 object__bbox__text=[], object__bbox__xmin=[0.0, 0.5],
                 object__bbox__xmax=[1.0, 0.9])
    assert _messages(item) == []


def test_duplicate_ids_are_found_in_input_order() -> None:
    tracker = IdTracker()
    problems = [tracker.check(i, {"id": ident}) for i, ident in enumerate(["a", "b", 1, "a", "1"])]
    assert problems[:4] == [None, None, None, problems[3]]
    assert problems[3] is not None and str(problems[3]) == "id: 'a' is also the id of input item 0"
    assert problems[4] is not None and "input item 2" in str(problems[4])


def _dataset(image_file: Any) -> list[dict[str, Any]]:
    items = [detection_item(image_file("jpeg-rgb"), f"ok{i}") for i in range(4)]
    bad = copy.deepcopy(items[0])
    bad["id"] = "bad"
    bad["object"]["bbox"]["xmin"] = [0.1, 1.5]
    dup = copy.deepcopy(items[1])  # same id as ok1
    unencodable = copy.deepcopy(items[2])
    unencodable["id"] = "unencodable"
    unencodable["class"]["label"] = "bird"
    return items + [bad, dup, unencodable]


def test_strict_fails_the_item_with_every_problem(tmp_path: Path, image_file: Any) -> None:
    summary = write_dataset(_dataset(image_file), "v", tmp_path, 2, 2, shuffle=True, seed=4,
                            progress=False)
    failed = {f["id"]: f["error_msg"] for f in summary.failures}
    assert failed == {
        "bad": "id 'bad': object/bbox/xmin[1]: 1.5 is outside [0, 1]; "
               "object/bbox[1]: reversed: xmin 1.5 > xmax 0.9",
        "ok1": "id 'ok1': id: 'ok1' is also the id of input item 1",
        "unencodable": "id 'unencodable': class/label: not an integer: 'bird'",
    }
    assert summary.failed_by_reason == {"failed validation": 2, "invalid item": 1}
    assert summary.written == 4


def test_lenient_writes_with_warnings(tmp_path: Path, image_file: Any) -> None:
    summary = write_dataset(_dataset(image_file), "v", tmp_path, 1, 2, shuffle=False,
                            validation="lenient", progress=False)
    assert [f["id"] for f in summary.failures] == ["unencodable"]  # cannot be written at all
    assert summary.written == 6
    assert len(summary.warnings) == 2 and summary.warnings[0].startswith("id 'bad': ")
    written = [r["id"] for r in read_examples(tmp_path / "v-00000-of-00001")]
    assert written == ["ok0", "ok1", "ok2", "ok3", "bad", "ok1"]
    assert json.loads((tmp_path / "v.manifest.json").read_text())["warned"] == 2


def test_off_checks_only_what_the_encoder_needs(tmp_path: Path, image_file: Any) -> None:
    summary = write_dataset(_dataset(image_file), "v", tmp_path, 1, 1, validation="off",
                            progress=False)
    assert [f["id"] for f in summary.failures] == ["unencodable"]
    assert summary.written == 6 and summary.warnings == []


def test_validate_dataset_writes_nothing(tmp_path: Path, image_file: Any) -> None:
    items = _dataset(image_file) + [{"filename": str(tmp_path / "gone.jpg"), "id": "gone"},
                                    {"id": "nofile"}, "not a dict"]
    before = sorted(tmp_path.iterdir())
    report = validate_dataset(items)
    assert sorted(tmp_path.iterdir()) == before
    failed = {f.get("id", f.get("item")): f["error_msg"] for f in report.failures}
    assert set(failed) == {"bad", "ok1", "unencodable", "gone", "nofile", "not a dict"}
    assert "file not found" in failed["gone"]
    assert "filename: missing" in failed["nofile"]
    lenient = validate_dataset(items, validation="lenient")
    assert len(lenient.warnings) == 2 and len(lenient.failures) == 4


def test_cli_validate_only(tmp_path: Path, image_file: Any,
                           capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "d.json"
    dataset.write_text(json.dumps(_dataset(image_file)))
    out = tmp_path / "out"
    args = ["--dataset_path", str(dataset), "--prefix", "v", "--output_dir", str(out),
            "--validate-only"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "3 of 7 items would fail" in err and "object/bbox/xmin[1]: 1.5" in err
    assert "nothing was written" in err and not out.exists()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_dataset(image_file)[:4]))
    assert main(["--dataset_path", str(good), "--prefix", "v", "--output_dir", str(out),
                 "--validate-only"]) == 0
    assert not out.exists()


_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 3),
                    st.sampled_from(["0.5", "x", "2", None, True]))
# Mostly plain lists of numbers near [0, 1], so that many items pass the fast screen.
_pair = st.lists(st.floats(-0.2, 1.2), min_size=2, max_size=2)
_numbers = st.one_of(_pair, st.lists(st.floats(-0.2, 1.2), min_size=1, max_size=3),
                     st.lists(st.integers(-1, 2), min_size=2, max_size=2),
                     st.lists(_number, max_size=3), _number)
_low = st.one_of(st.lists(st.floats(0, 0.5), min_size=2, max_size=2), _pair)
_high = st.one_of(st.lists(st.floats(0.5, 1), min_size=2, max_size=2), _pair)
_box = st.fixed_dictionaries(
    {"xmin": _low, "xmax": _high, "ymin": _low, "ymax": _high},
    optional={"label": _numbers, "score": _numbers, "conf": _numbers})
_parts = st.fixed_dictionaries({"x": _pair, "y": _pair},
                               optional={"v": _numbers, "score": _numbers})
_group = st.dictionaries(st.sampled_from(["xmin", "xmax", "ymin", "ymax", "label", "x", "y",
                                          "v", "area", "count", "is_crowd", "score"]),
                         _numbers, max_size=6)


@settings(max_examples=1500, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "class": st.dictionaries(st.sampled_from(["label", "conf"]), _number),
    "height": _number,
    "object": st.fixed_dictionaries({}, optional={
        "bbox": st.one_of(_box, _group), "parts": st.one_of(_parts, _group),
        "area": _numbers, "count": st.one_of(st.integers(0, 3), _number),
        "is_crowd": _numbers}),
}))
def test_the_fast_screen_never_hides_a_problem(item: dict[str, Any]) -> None:
    item.update(filename="x.jpg", id=1)
    if check_item(item) == []:
        assert find_problems(item) == []


# -- every failure names the item, and the key path ------------------------------------------

def _odd_items() -> list[dict[str, Any]]:
    huge = _item(object__bbox__xmin=[0.1, 10**400])
    huge.update(id="huge", filename="a.jpg")
    return [huge,
            {"filename": ["a.jpg"], "id": "listed"},
            {"filename": "a\0.jpg", "id": "nul"},
            {"filename": "a\ud800.jpg", "id": "surrogate-file"},
            {"filename": "a.jpg", "id": "surrogate\udc00"},
            {"filename": {"path": "a.jpg"}, "id": "dict"}]


_ODD_MESSAGES = {
    "huge": "id 'huge': object/bbox/xmin[1]: an integer of about 401 digits is too large "
            "for a float",
    "listed": "id 'listed': filename: expected one path, got a list",
    "nul": "id 'nul': filename: 'a\\x00.jpg' holds a NUL byte, which no file name can hold",
    "surrogate-file": "id 'surrogate-file': filename: 'a\\ud800.jpg' cannot be written as "
                      "UTF-8: a lone surrogate '\\ud800' at position 1",
    "surrogate\udc00": "id 'surrogate\\udc00': id: 'surrogate\\udc00' cannot be written as "
                        "UTF-8: a lone surrogate '\\udc00' at position 9",
    "dict": "id 'dict': filename: expected one path, got a dict",
}


def test_a_huge_integer_does_not_stop_the_checks() -> None:
    item = _item(object__bbox__xmin=[0.1, 10**400], object__bbox__xmax=[10**400, 0.9])
    assert check_item(item) == find_problems(item)  # no OverflowError from the fast screen
    assert check_item(_item(object__count=10**400))[0].message.startswith(
        "an integer of about 401 digits does not fit in int64")


@pytest.mark.parametrize("validation", ["strict", "lenient", "off"])
def test_values_no_record_can_hold_fail_naming_item_and_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_file: Any,
        validation: str) -> None:
    monkeypatch.chdir(tmp_path)
    image_file("jpeg-rgb", name="a.jpg")
    items = _odd_items() + [detection_item("a.jpg", "good"),
                            detection_item("a.jpg", "nul\0in id")]  # a NUL in an id is fine
    summary = write_dataset(items, "v", "out", 1, 2, shuffle=False, validation=validation,
                            progress=False)
    assert {f["id"]: f["error_msg"] for f in summary.failures} == _ODD_MESSAGES
    assert summary.failed_by_reason == {"invalid item": len(_ODD_MESSAGES)}
    ids = [r["id"] for r in read_examples(Path("out") / "v-00000-of-00001")]
    assert ids == ["good", "nul\0in id"]
    report = validate_dataset(items, validation=validation)
    assert {f["id"]: f["error_msg"] for f in report.failures} == _ODD_MESSAGES


def test_cli_validate_only_names_them_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.jpg").write_bytes(b"")
    text = json.dumps(_odd_items()).replace("1" + "0" * 400, "1" + "0" * 400)
    Path("d.json").write_text(text)
    assert main(["--dataset_path", "d.json", "--prefix", "v", "--output_dir", "out",
                 "--validate-only"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "6 of 6 items would fail" in err
    for message in _ODD_MESSAGES.values():
        assert message in err, message


# -- duplicate ids: exact, in a few bytes per item --------------------------------------------

def _verdicts(tracker: IdTracker, items: list[Any]) -> list[str | None]:
    return [None if p is None else str(p) for p in
            (tracker.check(i, item) for i, item in enumerate(items))]


def _bad_hash(text: str) -> int:
    """A digest under which most ids collide: a match must never be taken for a duplicate."""
    return len(text) % 3


_ids = st.lists(st.one_of(st.sampled_from(["a", "b", "1", "A", "a\u00e9", "", " a"]),
                          st.integers(0, 3), st.text(max_size=3)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(_ids, st.booleans())
def test_duplicates_of_a_list_are_those_every_id_kept_finds(ids: list[Any],
                                                            collide: bool) -> None:
    items: list[Any] = [{"id": i, "filename": "x"} for i in ids] + ["not a dict", {"id": None}]
    expected = _verdicts(IdTracker(), items)  # keeps every id: the reference
    with pytest.MonkeyPatch.context() as patch:
        if collide:
            patch.setattr(validate, "hash", _bad_hash, raising=False)
        assert _verdicts(IdTracker(items), items) == expected


_LINES = [
    '{"id": "a", "filename": "x"}',
    '{"filename": "x", "id":"\\u0061"}',           # "a" again, escaped
    '{"id" :  1, "object": {"id": ["a", "b"]}}',
    '{"id": "1"}',                                  # 1 again, as text
    '{"id": 1.0}',                                  # "1.0": another id
    '{"\\u0069d": "b"}',                            # the key escaped
    '{"class": {"id": "b"}, "id": "c"}',            # a nested "id" is no id
    '{"id": "b", "filename": "C:\\\\images\\\\b.jpg"}',
    '{"id": true}', '{"id": "True"}',
    '{"id": ["list"]}', '{"id": ["list"]}',         # fail anyway: not tracked
    '{"id": "c", broken', '[{"id": "c"}]',
    '{"id": "c"}',
]


@pytest.mark.parametrize("collide", [False, True])
def test_duplicates_of_json_lines_are_those_every_id_kept_finds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collide: bool) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\ufeff" + "\n".join(_LINES) + "\n", encoding="utf-8")
    if collide:
        monkeypatch.setattr(validate, "hash", _bad_hash, raising=False)
    items = list(open_dataset(path))
    found = _verdicts(IdTracker(open_dataset(path)), items)
    assert found == _verdicts(IdTracker(), items)
    assert [i for i, p in enumerate(found) if p] == [1, 3, 7, 9, 14]
    assert found[1] == "id: 'a' is also the id of input item 0"
    assert found[9] == "id: 'True' is also the id of input item 8"


_scalar_ids = st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.booleans())


@settings(max_examples=300, deadline=None)
@given(ident=_scalar_ids, nested=st.dictionaries(st.sampled_from(["id", "x"]), _scalar_ids),
       ascii_only=st.booleans(), separators=st.sampled_from([(", ", ": "), (",", ":"),
                                                            (" , ", " :  ")]))
def test_json_lines_id_texts_never_miss_an_id(tmp_path_factory: pytest.TempPathFactory,
                                              ident: Any, nested: dict[str, Any],
                                              ascii_only: bool,
                                              separators: tuple[str, str]) -> None:
    item = {"object": nested, "id": ident, "filename": "x"}
    path = tmp_path_factory.mktemp("lines") / "d.jsonl"
    path.write_text(json.dumps(item, ensure_ascii=ascii_only, separators=separators) + "\n",
                    encoding="utf-8", errors="surrogatepass")
    lines = open_dataset(path)
    assert isinstance(lines, JsonLines)
    (parsed,) = list(lines)
    if isinstance(parsed, dict):
        assert str(parsed["id"]) in list(lines.id_texts())


def test_the_id_tracker_keeps_almost_nothing_per_item() -> None:
    # Every id used to be kept: about 100 bytes per item.
    items = [{"id": f"image-{i:07d}", "filename": "x"} for i in range(100_000)]
    items.append({"id": "image-0000007", "filename": "x"})
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracker = IdTracker(items)
        problems = [tracker.check(i, item) for i, item in enumerate(items)]
        kept, peak = (m - before for m in tracemalloc.get_traced_memory())
    finally:
        tracemalloc.stop()
    per_item = 8 + 1  # a list slot for each result, and the list's slack
    assert kept < 4096 + per_item * len(items), kept
    assert peak < 4096 + (per_item + 9) * len(items), peak
    assert problems.count(None) == len(items) - 1
    assert str(problems[-1]) == "id: 'image-0000007' is also the id of input item 7"


def test_cli_finds_duplicate_ids_in_streamed_json_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_file: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    image_file("jpeg-rgb", name="a.jpg")
    ids = ["a", "b", "a", 1, "1", "c"]
    Path("d.jsonl").write_text("".join(json.dumps(detection_item("a.jpg", i)) + "\n"
                                       for i in ids))
    args = ["--dataset_path", "d.jsonl", "--prefix", "s", "--output_dir", "out", "-q"]
    assert main(args + ["--validate-only"]) == 1
    err = capsys.readouterr().err
    assert "id 'a': id: 'a' is also the id of input item 0" in err
    assert "id '1': id: '1' is also the id of input item 3" in err
    assert main(args) == 1
    assert [r["id"] for r in read_examples(Path("out") / "s-00000-of-00001")] == [
        "a", "b", "1", "c"]


# -- lists beside empty boxes, and codes that are not codes ----------------------------------

_WITHOUT_BOXES = {
    "mask-only": ({"count": 1, "mask": [[[0.1, 0.1, 0.5, 0.1, 0.5, 0.5]]]},
                  "object: lists of unequal lengths (bbox/xmin missing, bbox/xmax missing, "
                  "bbox/ymin missing, bbox/ymax missing, bbox/label missing, mask 1); "
                  "object/count: 1, but 0 boxes are listed"),
    "text-only": ({"bbox": {"xmin": [], "xmax": [], "ymin": [], "ymax": [], "text": ["cat"]}},
                  "object: lists of unequal lengths (bbox/xmin missing, bbox/xmax missing, "
                  "bbox/ymin missing, bbox/ymax missing, bbox/label missing, bbox/text 1)"),
    "area-only": ({"area": [0.2, 0.3]},
                  "object: lists of unequal lengths (area 2, bbox/xmin missing"),
    "count-only": ({"count": 2}, "object/count: 2, but 0 boxes are listed"),
}


@pytest.mark.parametrize("ident", sorted(_WITHOUT_BOXES))
def test_a_per_object_list_beside_empty_boxes_disagrees(ident: str) -> None:
    obj, expected = _WITHOUT_BOXES[ident]
    item = {"filename": "a.jpg", "id": ident, "object": obj}
    assert "; ".join(_messages(item)).startswith(expected)
    assert _messages(item) == [str(p) for p in find_problems(item)]  # the fast screen too


_NOT_CODES = {
    "visibility": (dict(object__parts__v=[2, 3]),
                   "object/parts/v[1]: 3, but visibility is 0 (not labelled), 1 (occluded) "
                   "or 2 (visible)"),
    "negative-visibility": (dict(object__parts__v=[-1, 2]), "object/parts/v[0]: -1, but"),
    "negative-class": (dict(class__label=-2),
                       "class/label: -2, but class indices are 0 or more (-1: no class)"),
    "negative-box-label": (dict(object__bbox__label=[1, -1]),
                           "object/bbox/label[1]: -1, but class indices are 0 or more"),
    "bool-class": (dict(class__label=True),
                   "class/label: True is a bool, not a class index (give an integer)"),
    "bool-box-label": (dict(object__bbox__label=[False, 1]),
                       "object/bbox/label[0]: False is a bool, not a class index"),
    "bool-visibility": (dict(object__parts__v=[True, 2]),
                        "object/parts/v[0]: True is a bool, not a visibility"),
}


@pytest.mark.parametrize("ident", sorted(_NOT_CODES))
def test_labels_and_visibility_must_be_their_codes(ident: str) -> None:
    changes, expected = _NOT_CODES[ident]
    messages = _messages(_item(**changes))
    assert len(messages) == 1 and messages[0].startswith(expected), messages
    assert _messages(_item(class__label=-1, object__parts__v=[0, "1"])) == []  # no class


def test_strict_fails_lenient_warns_for_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             image_file: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    image_file("jpeg-rgb", name="a.jpg")
    items = [{"filename": "a.jpg", "id": "masked", "object": _WITHOUT_BOXES["mask-only"][0]},
             {**_item(class__label=True), "filename": "a.jpg", "id": "bool"},
             {**_item(object__parts__v=[2, 7]), "filename": "a.jpg", "id": "seven"},
             {**_item(), "filename": "a.jpg", "id": "good"}]
    Path("d.json").write_text(json.dumps(items))
    argv = ["create", "--dataset_path", "d.json", "--prefix", "p", "--output_dir", "out"]
    assert main(argv) == 1
    failed = {f["id"]: f["error_msg"] for f in
              json.loads(Path("out/p.failures.json").read_text())}
    assert sorted(failed) == ["bool", "masked", "seven"]
    assert failed["seven"] == ("id 'seven': object/parts/v[1]: 7, but visibility is 0 (not "
                               "labelled), 1 (occluded) or 2 (visible)")
    assert failed["masked"].startswith("id 'masked': object: lists of unequal lengths")
    capsys.readouterr()
    assert main([*argv, "--validation", "lenient"]) == 0
    err = capsys.readouterr().err
    assert "3 items were written with warnings" in err and "id 'bool': class/label" in err
    assert [r["id"] for r in read_examples(Path("out/p-00000-of-00001"))] == [
        "masked", "bool", "seven", "good"]


@pytest.mark.parametrize("mode", ["off", "lenient"])
def test_the_summary_names_the_validation_mode_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_file: Any,
        capsys: pytest.CaptureFixture[str], mode: str) -> None:
    # A mask that cannot be made is written empty with a warning unless strict.
    monkeypatch.chdir(tmp_path)
    image_file("jpeg-rgb", name="a.jpg")
    item = {**_item(), "filename": "a.jpg"}
    item["object"]["mask"] = [[[0.1, 0.1, 0.5]], [[0.1, 0.1, 0.5, 0.1, 0.5, 0.5]]]
    Path("d.json").write_text(json.dumps([item]))
    argv = ["create", "--dataset_path", "d.json", "--prefix", "p", "--output_dir", "out",
            "--validation", mode]
    other = {"off": "lenient", "lenient": "off"}[mode]
    for extra in ([], ["--validate-only"]):
        assert main([*argv, *extra]) == 0
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert f"validation: {mode})" in text and "object 0: object/mask" in text, text
        assert other not in text.replace("validation is not strict", "")


def test_parts_that_are_not_a_multiple_of_the_objects_are_taken(tmp_path: Path) -> None:
    # the original format's parts need not belong to the boxes: one point beside two
    # boxes (as the benchmark's photos have it) is written under strict validation
    item = detection_item(str(tmp_path / "a.jpg"), "1")
    item["object"]["bbox"] = {"xmin": [0.1, 0.4], "xmax": [0.5, 0.9], "ymin": [0.2, 0.3],
                              "ymax": [0.6, 0.8], "label": [1, 2], "text": ["a", "b"]}
    item["object"]["parts"] = {"x": [0.3], "y": [0.4], "v": [2]}
    item["object"].pop("count", None)
    assert check_item(item) == []
    assert find_problems([item]) == []
