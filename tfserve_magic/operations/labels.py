"""Moving version labels the way TF Serving understands them: by editing the models.config the server
runs from, then asking it to reload; or, for a remote server whose config file is not on this
machine, by sending it the whole new config with gRPC ``HandleReloadConfigRequest``.

A file edit survives a restart, and the same file runs unchanged on real TensorFlow Serving. A
label is refused, with TF Serving's reason, when it would point at a version that is not AVAILABLE
(a *new* label may, when the server runs with ``--allow_version_labels_for_unavailable_models``,
as TF Serving allows). No TensorFlow import.
"""

from __future__ import annotations

import dataclasses
import os

from tfserve_magic.client import Client, ServingError
from tfserve_magic.errors import TFServeError
from tfserve_magic.files import write_atomically
from tfserve_magic.serving.models.config import (
    ModelConfig,
    config_to_text,
    load_model_config_file,
    parse_version_policy,
    write_model_config_file,
)
from tfserve_magic.serving.models.label_rules import (
    label_may_point_at,
    unavailable_label_message,
    valid_label_name,
)
from tfserve_magic.status import SECRET_HEADER, VersionState

__all__ = ["LabelError", "move_label", "remove_label", "served_config_file"]

class LabelError(TFServeError):
    """The label change was refused; the message says why."""


def served_config_file(client: Client) -> str:
    """The models.config the server runs from, when it is on this machine; LabelError else."""
    info = client.server_info()
    if not info or not info.model_config_file:
        raise LabelError("this server does not run from a models.config, so its labels cannot "
                         "be changed (start it with %tfserve start, or --model_config_file)")
    path = info.model_config_file
    if not os.path.exists(path):
        raise LabelError(f"this server's models.config ({path}) is not on this machine: connect "
                         "it with %tfserve connect URL --grpc HOST:PORT to move labels over gRPC")
    return path


def _served_models(client: Client) -> list[ModelConfig]:
    """The config a server runs, as it describes itself (what a reload over gRPC must resend)."""
    info = client.server_info()
    if info is None:
        raise LabelError("this server does not report its configuration (TensorFlow Serving): "
                         "move the label in the models.config it runs from")
    return [ModelConfig(name=m.name, base_path=m.base_path, policy=parse_version_policy(m.policy),
                        labels=dict(m.labels))
            for m in info.models]


def _allows_unavailable(client: Client) -> bool:
    from tfserve_magic.lifecycle import registry

    port = client.url.rsplit(":", 1)[-1]
    record = registry.find_record(port)
    return bool(record and "--allow_version_labels_for_unavailable_models" in record.argv)


def move_label(client: Client, model: str, label: str, version: int, *,
               grpc: str | None = None) -> dict[str, int]:
    """Point ``label`` of ``model`` at ``version``; returns the labels the server now has.

    ``grpc``: the server's gRPC ``host:port``; the new config is then sent with
    ``HandleReloadConfigRequest`` instead of editing its models.config."""
    if not valid_label_name(label):
        raise LabelError(f"label {label!r} must match [a-zA-Z0-9_]+ (TF Serving's rule)")
    path = None if grpc else served_config_file(client)
    models = _served_models(client) if path is None else load_model_config_file(path)
    entry = next((m for m in models if m.name == model), None)
    if entry is None:
        where = os.path.basename(path) if path else "the server"
        raise LabelError(f"{where} has no model named {model}")
    states = {s.version: s.state for s in client.status(model)}
    available = states.get(version) is VersionState.AVAILABLE
    if not label_may_point_at(available=available,
                              allow_unavailable=not available and _allows_unavailable(client),
                              current=entry.labels.get(label), version=version):
        raise LabelError(unavailable_label_message(model, version))
    labels = {**entry.labels, label: int(version)}
    if grpc:
        return _apply_over_grpc(client, grpc, models, model, labels)
    assert path is not None
    return _apply(client, path, models, model, labels)


def remove_label(client: Client, model: str, label: str) -> dict[str, int]:
    """Drop ``label`` of ``model``; returns the labels the server now has."""
    path = served_config_file(client)
    models = load_model_config_file(path)
    entry = next((m for m in models if m.name == model), None)
    if entry is None or label not in entry.labels:
        raise LabelError(f"model {model} has no label {label!r}")
    labels = {k: v for k, v in entry.labels.items() if k != label}
    return _apply(client, path, models, model, labels)


def _apply(client: Client, path: str, models: list[ModelConfig], model: str,
           labels: dict[str, int]) -> dict[str, int]:
    with open(path, encoding="utf-8") as handle:
        previous = handle.read()
    updated = [dataclasses.replace(m, labels=labels) if m.name == model else m for m in models]
    write_model_config_file(path, updated)
    try:
        info = client.reload()
    except ServingError as error:
        write_atomically(path, previous)  # the server keeps serving the old labels
        raise LabelError(error.message) from None
    served = next(m for m in info.models if m.name == model)
    return dict(served.labels)


def _apply_over_grpc(client: Client, target: str, models: list[ModelConfig], model: str,
                     labels: dict[str, int]) -> dict[str, int]:
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from tfserve_magic.client.grpc_transport import GrpcTransport

    updated = [dataclasses.replace(m, labels=labels) if m.name == model else m for m in models]
    config = text_format.Parse(config_to_text(updated),
                               model_server_config_pb2.ModelServerConfig())
    transport = GrpcTransport(target, timeout=client.timeout,
                              secret=client.headers.get(SECRET_HEADER, ""))
    try:
        transport.reload_config(config)
    except ServingError as error:
        raise LabelError(error.message) from None
    finally:
        transport.close()
    served = next(m for m in _served_models(client) if m.name == model)
    return dict(served.labels)
