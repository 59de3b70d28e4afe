"""A filesystem library's own exceptions (botocore's NoCredentialsError, a client's
errors) at the storage boundary: a failed item, exit 3 for an output, exit 2 for verify,
never an internal error (70) with a traceback.

The filesystem here is a fake fsspec one, registered as ``nocreds://``, whose every call
raises what s3fs raises on a machine without AWS credentials.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tfrecord_lite import storage
from tfrecord_lite.cli import main

from conftest import detection_item, make_image_bytes

fsspec = pytest.importorskip("fsspec")
from fsspec.spec import AbstractFileSystem  # noqa: E402

try:
    from botocore.exceptions import NoCredentialsError  # type: ignore[import-untyped]
except ImportError:  # the same exception, as a library of a third party defines it
    class NoCredentialsError(Exception):  # type: ignore[no-redef]
        def __init__(self) -> None:
            super().__init__("Unable to locate credentials")

    NoCredentialsError.__module__ = "botocore.exceptions"


class ClientTimeout(Exception):
    """An exception of some client library that is neither an OSError nor Python's."""


ClientTimeout.__module__ = "someclient.errors"


class _Failing(AbstractFileSystem):
    """Every call that would talk to the store raises ``self.error()``."""

    protocol = "nocreds"
    error: Any = NoCredentialsError

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error()

    _open = info = ls = cat_file = pipe_file = put_file = makedirs = mkdir = _fail
    rm_file = mv = glob = _fail


class _Timing(_Failing):
    protocol = "timesout"
    error = ClientTimeout


class _Buggy(_Failing):
    protocol = "buggy"
    error = TypeError


class _Interrupted(_Failing):
    protocol = "interrupted"
    error = KeyboardInterrupt


@pytest.fixture(autouse=True)
def _fake_stores() -> None:
    for cls in (_Failing, _Timing, _Buggy, _Interrupted):
        fsspec.register_implementation(cls.protocol, cls, clobber=True)


def _dataset(tmp_path: Path, *urls: str) -> str:
    (tmp_path / "a.jpg").write_bytes(make_image_bytes("jpeg-rgb"))
    items = [detection_item("a.jpg", "local")]
    items += [detection_item(url, f"remote{i}") for i, url in enumerate(urls)]
    (tmp_path / "ds.json").write_text(json.dumps(items))
    return "ds.json"


def test_an_image_without_credentials_fails_its_item_naming_the_url(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    dataset = _dataset(tmp_path, "nocreds://bucket/b.jpg", "timesout://bucket/c.jpg")
    status = main(["--dataset_path", dataset, "--prefix", "train", "--output_dir", "out",
                   "--store_images"])
    err = capsys.readouterr().err
    assert status == 1, err
    assert "Traceback" not in err and "internal error" not in err
    failures = {f["id"]: f["error_msg"]
                for f in json.loads((tmp_path / "out/train.failures.json").read_text())}
    assert sorted(failures) == ["remote0", "remote1"]
    assert "no credentials for nocreds://bucket/b.jpg" in failures["remote0"]
    assert "timesout://bucket/c.jpg" in failures["remote1"]
    assert "ClientTimeout" in failures["remote1"]
    assert len(list((tmp_path / "out").glob("train-*"))) == 1  # the local item is written


def test_an_output_folder_without_credentials_is_exit_3_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    dataset = _dataset(tmp_path)
    assert main(["--dataset_path", dataset, "--prefix", "train",
                 "--output_dir", "nocreds://bucket/out"]) == 3
    err = capsys.readouterr().err
    assert "no credentials for nocreds://bucket/out" in err
    assert "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize("target", ["nocreds://bucket/out/train-00000-of-00001",
                                    "nocreds://bucket/out/train-*"])
def test_verify_without_credentials_is_exit_2(
        target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", target]) == 2
    err = capsys.readouterr().err
    assert "no credentials for nocreds://bucket/out/train-" in err
    assert "Traceback" not in err and "internal error" not in err


def test_a_bug_and_an_interrupt_pass_the_boundary_unchanged() -> None:
    with pytest.raises(TypeError):
        storage.size("buggy://bucket/a.jpg")
    with pytest.raises(KeyboardInterrupt):
        storage.read_bytes("interrupted://bucket/a.jpg")
    with pytest.raises(storage.NoCredentialsError, match="nocreds://bucket/a.jpg") as info:
        storage.open_read("nocreds://bucket/a.jpg")
    assert isinstance(info.value.__cause__, NoCredentialsError)
    assert isinstance(info.value, PermissionError)
