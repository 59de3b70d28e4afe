"""Regenerate tfrecord_lite/proto/*_pb2.py(i) from the vendored .proto files.

Run as ``make proto`` (or ``python proto/generate.py [OUT_DIR]``). Needs protoc;
use protoc 3.21.x (Debian's ``protobuf-compiler``): its modules load under every
protobuf runtime from 4.21 to 7.x, while newer protoc versions emit modules that
refuse older runtimes.

The generated modules are rewritten in two ways so that they can live in the same
process as TensorFlow, which registers the very same ``tensorflow.*`` messages in
protobuf's default descriptor pool:

* the descriptors go into the private pool of ``tfrecord_lite.proto._pool``
  instead of the default pool (no "duplicate symbol" clash in either import order);
* ``import tensorflow.core.example...`` becomes a package-relative import.

Message and field names are untouched, so the wire format -- and every byte
serialized -- is exactly that of ``tf.train.Example``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "tfrecord_lite" / "proto"
PROTOS = ("feature", "example")
PROTO_DIR = "tensorflow/core/example"
UPSTREAM_MODULE = "tensorflow.core.example"
PACKAGE = "tfrecord_lite.proto"


def source_digest() -> str:
    """sha256 over the vendored .proto files, recorded in each generated module."""
    h = hashlib.sha256()
    for name in PROTOS:
        h.update((HERE / PROTO_DIR / f"{name}.proto").read_bytes())
    return h.hexdigest()


def _rewrite(text: str, digest: str) -> str:
    text = text.replace(
        f"from {UPSTREAM_MODULE} import ", f"from {PACKAGE} import "
    )
    text = text.replace(f"'{UPSTREAM_MODULE}.", f"'{PACKAGE}.")
    if "_descriptor_pool.Default()" in text:
        text = text.replace("_descriptor_pool.Default()", "_pool.POOL")
        text = text.replace(
            "from google.protobuf import symbol_database as _symbol_database\n",
            "from google.protobuf import symbol_database as _symbol_database\n"
            f"from {PACKAGE} import _pool\n",
        )
    header = f"# source sha256: {digest}\n"
    return re.sub(r"\A(# -\*- coding: utf-8 -\*-\n)?",
                  lambda m: (m.group(0) or "") + header, text, count=1)


def generate(out_dir: Path) -> None:
    protoc = shutil.which("protoc")
    if protoc is None:
        sys.exit("protoc not found: apt-get install protobuf-compiler (protoc 3.21.x)")
    digest = source_digest()
    with tempfile.TemporaryDirectory() as tmp:
        files = [f"{PROTO_DIR}/{name}.proto" for name in PROTOS]
        subprocess.run(
            [protoc, f"-I{HERE}", f"--python_out={tmp}", f"--pyi_out={tmp}", *files],
            check=True,
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in PROTOS:
            for suffix in (".py", ".pyi"):
                src = Path(tmp) / PROTO_DIR / f"{name}_pb2{suffix}"
                text = _rewrite(src.read_text(encoding="utf-8"), digest)
                (out_dir / f"{name}_pb2{suffix}").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
