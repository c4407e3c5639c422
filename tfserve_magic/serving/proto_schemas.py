"""Message classes for TF Serving's text formats that ``tensorflow-serving-api`` does not ship
(``monitoring_config.proto``, ``ssl_config.proto``, ``session_bundle_config.proto``'s
``BatchingParameters``), built once from their field lists.

TF Serving's files are parsed with protobuf's own text parser, so their syntax, comments and
errors are protobuf's; only the schema is written here, field for field as in TF Serving's
``.proto`` files. Pure: no TensorFlow, imports nothing from the package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

__all__ = ["Field", "message_classes"]

# (name, number, type): "bool", "string", "int64", "repeated int64", a wrapper such as
# "google.protobuf.Int64Value", or the name of another message of the same file.
Field = tuple[str, int, str]

_SCALARS = {"bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
            "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64}
_WRAPPERS = "google.protobuf."


def message_classes(file_name: str, messages: Mapping[str, Sequence[Field]],
                    package: str = "tensorflow.serving") -> dict[str, type]:
    """The message classes of a proto3 file holding ``messages`` (name -> fields), by name."""
    pool = descriptor_pool.DescriptorPool()
    file_proto = descriptor_pb2.FileDescriptorProto(name=file_name, package=package,
                                                    syntax="proto3")
    if any(kind.startswith(_WRAPPERS) for fields in messages.values() for _, _, kind in fields):
        wrappers = descriptor_pb2.FileDescriptorProto()
        wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
        pool.Add(wrappers)
        file_proto.dependency.append(wrappers.name)
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    repeated = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    for message_name, fields in messages.items():
        message = file_proto.message_type.add(name=message_name)
        for name, number, declared in fields:
            label = repeated if declared.startswith("repeated ") else optional
            kind = declared.removeprefix("repeated ")
            if kind in _SCALARS:
                message.field.add(name=name, number=number, type=_SCALARS[kind], label=label)
            else:
                message.field.add(name=name, number=number, label=label,
                                  type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                                  type_name=f".{kind}" if kind.startswith(_WRAPPERS)
                                  else f".{package}.{kind}")
    pool.Add(file_proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
            for name in messages}
