"""from-csv: the Object Detection API tutorial CSV, on the sample photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tfrecord_lite import read_examples
from tfrecord_lite.cli import main
from tfrecord_lite.converters.odcsv import OdCsvConverter
from tfrecord_lite.errors import DatasetError
from tfrecord_lite.verify import verify_files

from conftest import DEMO

PHOTOS = DEMO / "images"

# astronaut.jpg 512x512, coffee.jpg 600x400, rocket.jpg 640x427, camera.png 512x512
ROWS = """filename,width,height,class,xmin,ymin,xmax,ymax
astronaut.jpg,512,512,person,51.2,102.4,256,512
coffee.jpg,600,400,cup,60,40,300,200
astronaut.jpg,512,512,rocket,400,0,600,128
astronaut.jpg,512,512,person,10,10,10,50
rocket.jpg,640,480,rocket,0,0,64,42.7
camera.png,512,512,person,0,0,ten,20
camera.png,512,512,person,0,0,100
camera.png,512,512,camera,256,0,512,256
"""


def make_csv(root: Path, text: str = ROWS) -> Path:
    """``root/images/`` with four photos and ``root/train_labels.csv``.

    Rows: line 2 and 4 boxes on astronaut (4 past the right edge), 5 zero width,
    6 rocket.jpg's height is wrong (427), 7 not a number, 8 seven fields.
    """
    for name in ("astronaut.jpg", "coffee.jpg", "rocket.jpg", "camera.png"):
        (root / "images").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PHOTOS / name, root / "images" / name)
    (root / "train_labels.csv").write_text(text)
    return root / "train_labels.csv"


def test_csv_groups_normalizes_and_reports(tmp_path: Path) -> None:
    csv_file = make_csv(tmp_path)
    conv = OdCsvConverter(str(csv_file), str(tmp_path / "images"))
    items = list(conv)
    assert conv.labels == ["camera", "cup", "person", "rocket"]
    # camera.png is left out: its line 7 does not parse (see the lenient run below).
    assert [i["id"] for i in items] == ["astronaut.jpg", "coffee.jpg"]
    astronaut = items[0]
    assert (astronaut["width"], astronaut["height"]) == (512, 512)
    assert astronaut["filename"] == str(tmp_path / "images" / "astronaut.jpg")
    obj = astronaut["object"]
    assert obj["count"] == 2 and obj["id"] == ["2", "4"]
    assert obj["bbox"]["text"] == ["person", "rocket"] and obj["bbox"]["label"] == [2, 3]
    assert obj["bbox"]["xmin"] == pytest.approx([0.1, 400 / 512])
    assert obj["bbox"]["xmax"] == pytest.approx([0.5, 1.0])  # clipped at the edge
    assert obj["bbox"]["ymin"] == pytest.approx([0.2, 0.0])
    assert obj["bbox"]["ymax"] == pytest.approx([1.0, 0.25])
    assert items[1]["object"]["bbox"]["xmin"] == [0.1]
    assert conv.report["boxes clipped at the image edge"] == 1
    assert conv.report["boxes dropped (zero or negative size)"] == 1
    # rocket.jpg is skipped; camera.png is left out, counted once, as such
    assert conv.report["images skipped"] == 1 and conv.report["boxes"] == 3
    assert conv.report["images left out (rejected annotations)"] == 1
    assert conv.problems == [
        f"{csv_file}:6: image 'rocket.jpg': the CSV says 640x480, the image is 640x427",
        f"{csv_file}:7: image 'camera.png': xmax: not a number: 'ten': the image is left out",
        # a row of the wrong length names its image, which loses that row's box with it
        f"{csv_file}:8: image 'camera.png': expected 8 fields (filename,width,height,class,"
        "xmin,ymin,xmax,ymax), got 7: the image is left out",
    ]
    lenient = OdCsvConverter(str(csv_file), str(tmp_path / "images"))
    lenient.keep_rejected = True
    items = list(lenient)
    assert [i["id"] for i in items] == ["astronaut.jpg", "coffee.jpg", "camera.png"]
    assert items[2]["object"]["bbox"]["text"] == ["camera"]
    assert lenient.report["annotations dropped (--validation lenient)"] == 2  # lines 7, 8


def test_csv_column_order_from_the_header_and_label_names(tmp_path: Path) -> None:
    csv_file = make_csv(tmp_path, "class,xmin,ymin,xmax,ymax,filename\n"
                                  "cup,60,40,300,200,coffee.jpg\n"
                                  "saucer,0,0,60,40,coffee.jpg\n"
                                  ",,,,,rocket.jpg\n")
    conv = OdCsvConverter(str(csv_file), str(tmp_path / "images"), ["cup", "plate"],
                          label_offset=1)
    items = list(conv)
    assert [i["id"] for i in items] == ["coffee.jpg", "rocket.jpg"]
    assert items[0]["object"]["bbox"]["label"] == [1]
    assert items[0]["object"]["bbox"]["ymax"] == [0.5]
    assert items[1]["object"]["count"] == 0  # a row with no class and no box
    assert conv.problems == [f"{csv_file}:3: class 'saucer' is not in the label map"]


def test_csv_usage_errors(tmp_path: Path) -> None:
    csv_file = make_csv(tmp_path, "filename,class,x0,y0\n")
    with pytest.raises(DatasetError, match="missing: xmin, ymin, xmax, ymax"):
        OdCsvConverter(str(csv_file), str(tmp_path / "images"))
    with pytest.raises(DatasetError, match="--images .*nowhere.*no such folder"):
        OdCsvConverter(str(csv_file), str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="FILE .*none.csv.*no such file"):
        OdCsvConverter(str(tmp_path / "none.csv"), str(tmp_path / "images"))


def test_cli_relative_paths_shards_and_label_maps(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    make_csv(tmp_path / "pets")
    monkeypatch.chdir(tmp_path)
    status = main(["from-csv", "pets/train_labels.csv", "--images", "pets/images",
                   "--prefix", "train", "--output_dir", "out", "--shards", "2", "-q",
                   "--validation", "lenient"])
    assert status == 1  # three bad rows, reported; the other images written
    err = capsys.readouterr().err
    assert "pets/train_labels.csv:6: image 'rocket.jpg': the CSV says 640x480" in err
    shards = [str(p) for p in sorted(Path("out").glob("train-0000?-of-00002"))]
    report = verify_files(shards, 1)
    assert report.ok and report.records == 3, report.problems
    records = [r for s in shards for r in read_examples(s)]
    assert sorted(r["filename"] for r in records) == [str(tmp_path / "pets/images" / f) for f in
                                                      ("astronaut.jpg", "camera.png", "coffee.jpg")]
    label_map = json.loads(Path("out/label_map.json").read_text())
    offset = min(map(int, label_map))  # whatever the default --label-offset
    assert label_map == {str(i + offset): n
                         for i, n in enumerate(["camera", "cup", "person", "rocket"])}
    by_id = {r["id"]: r for r in records}
    assert by_id["astronaut.jpg"]["object"]["bbox"]["label"] == [2 + offset, 3 + offset]

    Path("names.json").write_text(json.dumps(["person", "rocket", "cup", "camera"]))
    assert main(["from-csv", "pets/train_labels.csv", "--images", "pets/images",
                 "--label-map", "names.json", "--label-offset", "0", "--to-json",
                 "items.json"]) == 1
    items = json.loads(Path("items.json").read_text())
    assert items[0]["object"]["bbox"]["label"] == [0, 1]


def test_cli_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    make_csv(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["from-csv", "train_labels.csv", "--prefix", "p", "--output_dir", "o"]) == 2
    assert main(["from-csv", "train_labels.csv", "--images", "pics", "--prefix", "p",
                 "--output_dir", "o"]) == 2
    assert main(["from-csv", "labels.csv", "--images", "images", "--prefix", "p",
                 "--output_dir", "o"]) == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --images" in err
    assert "from-csv --images: no such directory: pics" in err
    assert "from-csv FILE: no such file: labels.csv" in err
    assert "Traceback" not in err and not Path("o").exists()
