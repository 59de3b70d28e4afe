"""label_map.pbtxt escapes class names as protobuf's text format does, so that a name
holding a newline, a quote or a control character cannot break the file: protobuf's own
parser reads back every name as it is in label_map.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from test_converters import make_coco

from tfrecord_lite.cli import main

NAMES = ["dog\n}\nitem {\n  id: 99\n  name: 'x'", "it's", 'say "hi"', "back\\slash",
         "tab\there\r", "bell\x07del\x7f", "caf\u00e9 \u732b"]


def _label_map_class() -> Any:
    """A message shaped as the Object Detection API's StringIntLabelMap: repeated
    ``item { name, id, display_name }``."""
    file = descriptor_pb2.FileDescriptorProto(name="label_map_test.proto",
                                              package="label_map_test", syntax="proto2")
    item = file.message_type.add(name="Item")
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    string = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    item.field.add(name="name", number=1, label=optional, type=string)
    item.field.add(name="id", number=2, label=optional,
                   type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32)
    item.field.add(name="display_name", number=3, label=optional, type=string)
    label_map = file.message_type.add(name="LabelMap")
    label_map.field.add(name="item", number=1,
                        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                        type_name=".label_map_test.Item")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("label_map_test.LabelMap"))


def test_pbtxt_names_read_back_by_protobuf_as_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    instances, _ = make_coco(Path("."))
    data = json.loads(instances.read_text())
    data["categories"] = [{"id": i + 1, "name": name} for i, name in enumerate(NAMES)]
    for annotation in data["annotations"]:
        annotation["category_id"] = 1
    instances.write_text(json.dumps(data))
    main(["from-coco", instances.name, "--images", "val2017", "--prefix", "t",
          "--output_dir", "out", "-q"])
    label_map = text_format.Parse(Path("out/label_map.pbtxt").read_text(encoding="utf-8"),
                                  _label_map_class()())
    assert [(item.id, item.name) for item in label_map.item] == [
        (i + 1, name) for i, name in enumerate(NAMES)]
    assert list(json.loads(Path("out/label_map.json").read_text()).values()) == NAMES
