"""The Beam runner on the job core: a bug in a worker surfaces (run by `make test-beam`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite.cli import main

from conftest import detection_item

pytestmark = pytest.mark.beam
pytest.importorskip("apache_beam")

from tfrecord_lite import beam as tfl_beam  # noqa: E402


def test_a_bug_in_a_worker_is_not_a_write_error(tmp_path: Path, image_file: Any,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    def bug(*args: Any, **kwargs: Any) -> Any:
        return 1 // 0

    monkeypatch.setattr(tfl_beam.shards.ShardWriter, "add_record", bug)  # in the DirectRunner
    monkeypatch.chdir(tmp_path)
    Path("train.json").write_text(json.dumps([detection_item(image_file("jpeg-rgb"), 1)]))
    status = main(["--dataset_path", "train.json", "--prefix", "t", "--output_dir", "out",
                   "--runner", "beam", "-q"])
    err = capsys.readouterr().err
    assert status == 70, err
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert err.strip().splitlines()[-1].startswith("tfrecord-lite: internal error: ")
    assert not Path("out/t.manifest.json").exists()


def test_pipeline_options_error_is_an_options_error() -> None:
    from tfrecord_lite.errors import OptionsError

    with pytest.raises(OptionsError, match="invalid Beam pipeline options"):
        tfl_beam.pipeline_options("--direct_num_workers=two")
