"""The generated modules: up to date, in a private pool, serializing like TensorFlow."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool

from tfrecord_lite.proto import example_pb2, feature_pb2

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "tfrecord_lite" / "proto"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["example_pb2.py", "feature_pb2.py",
                                  "example_pb2.pyi", "feature_pb2.pyi"])
def test_generated_modules_match_the_vendored_protos(name: str) -> None:
    recorded = re.search(r"# source sha256: ([0-9a-f]{64})",
                         (GENERATED / name).read_text()).group(1)  # type: ignore[union-attr]
    assert recorded == _generator().source_digest(), "stale: run `make proto`"


@pytest.mark.slow
def test_regenerating_gives_the_committed_files(tmp_path: Path) -> None:
    if shutil.which("protoc") is None:
        if os.environ.get("CI"):
            pytest.fail("protoc is missing in CI: apt-get install protobuf-compiler")
        pytest.skip("protoc not installed (apt-get install protobuf-compiler)")
    _generator().generate(tmp_path)
    for name in ("example_pb2.py", "feature_pb2.py", "example_pb2.pyi", "feature_pb2.pyi"):
        assert (tmp_path / name).read_text() == (GENERATED / name).read_text(), (
            f"{name} is stale or was edited by hand: run `make proto`")


def test_messages_live_in_a_private_pool() -> None:
    assert example_pb2.Example.DESCRIPTOR.full_name == "tensorflow.Example"
    assert example_pb2.DESCRIPTOR.pool is not descriptor_pool.Default()
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindMessageTypeByName("tensorflow.BytesList")


@pytest.mark.slow
@pytest.mark.parametrize("ours_first", [True, False])
def test_coexists_with_tensorflow_style_registration(ours_first: bool) -> None:
    """TensorFlow registers tensorflow.* in protobuf's default pool at import."""
    import subprocess

    files = [feature_pb2.DESCRIPTOR.serialized_pb, example_pb2.DESCRIPTOR.serialized_pb]
    register = ("from google.protobuf import descriptor_pool\n"
                f"for data in {files!r}:\n"
                "    descriptor_pool.Default().AddSerializedFile(data)\n")
    ours = ("from tfrecord_lite import decode_example, encode_example\n"
            "item = {'filename': 'f', 'id': 1, 'height': 1, 'width': 1}\n"
            "assert decode_example(encode_example(item))['id'] == '1'\n")
    code = ours + register if ours_first else register + ours
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_wire_format_known_bytes() -> None:
    ex = example_pb2.Example()
    ex.features.feature["b"].int64_list.value.extend([1, -1])
    ex.features.feature["a"].bytes_list.value.append(b"x")
    ex.features.feature["c"].float_list.value.append(0.5)
    # Hand-assembled from the proto definitions: keys sorted, packed ints and floats.
    entry_a = b"\n\x01a\x12\x05\n\x03\n\x01x"
    entry_b = b"\n\x01b\x12\x0f\x1a\r\n\x0b\x01" + b"\xff" * 9 + b"\x01"
    entry_c = b"\n\x01c\x12\x08\x12\x06\n\x04\x00\x00\x00?"
    features = b"".join(b"\n" + bytes([len(e)]) + e for e in (entry_a, entry_b, entry_c))
    assert ex.SerializeToString(deterministic=True) == b"\n" + bytes([len(features)]) + features


def test_runtime_version_is_supported() -> None:
    from google.protobuf import __version__

    major = int(__version__.split(".")[0])
    assert 4 <= major <= 7, f"protobuf {__version__} is outside the supported 4.21-7.x"
    print("protobuf runtime", __version__, file=sys.stderr)
