"""TF Serving configuration files, parsed with TF Serving's own protobuf definitions.

* ``models.config``: a text-format ``tensorflow.serving.ModelServerConfig``
  (``tensorflow_serving.config.model_server_config_pb2`` from ``tensorflow-serving-api``),
  validated as ``server_core.cc`` ValidateModelConfigList does.
* ``--monitoring_config_file``: a text-format ``tensorflow.serving.MonitoringConfig``. The pip
  package does not ship ``monitoring_config_pb2``, so its two-message schema
  (``config/monitoring_config.proto``) is declared here as a descriptor and parsed with protobuf.

Nothing here imports TensorFlow, so the notebook side can read and write configs too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfserve_magic.files import write_atomically
from tfserve_magic.serving.models.policy import PolicyKind, VersionPolicy
from tfserve_magic.serving.proto_schemas import message_classes
from tfserve_magic.serving.status_errors import ConfigError
from tfserve_magic.status import DEFAULT_PROMETHEUS_PATH

__all__ = [
    "ModelConfig",
    "MonitoringSettings",
    "RequestLogging",
    "config_to_text",
    "load_model_config_file",
    "models_from_proto",
    "parse_model_config_text",
    "parse_version_policy",
    "read_model_config_file",
    "parse_monitoring_config",
    "single_model_config",
    "write_model_config_file",
]


@dataclass(frozen=True)
class RequestLogging:
    """A model's ``logging_config``: the share of requests logged, and where (TFRecord files
    of ``PredictionLog`` named from ``log_collector_config.filename_prefix``)."""

    filename_prefix: str
    sampling_rate: float
    collector_type: str = ""


@dataclass(frozen=True)
class ModelConfig:
    """One ``config { ... }`` entry of models.config."""

    name: str
    base_path: str
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: Mapping[str, int] = field(default_factory=dict)
    platform: str = "tensorflow"
    logging: RequestLogging | None = None


def single_model_config(name: str, base_path: str) -> list[ModelConfig]:
    """``--model_name``/``--model_base_path`` mode (``server.cc`` BuildSingleModelConfig)."""
    return [ModelConfig(name=name, base_path=base_path)]


def _policy_from_proto(proto: object) -> VersionPolicy:
    which = proto.WhichOneof("policy_choice")  # type: ignore[attr-defined]
    if which == "all":
        return VersionPolicy.all()
    if which == "specific":
        return VersionPolicy.specific(proto.specific.versions)  # type: ignore[attr-defined]
    if which == "latest":
        return VersionPolicy.latest(proto.latest.num_versions)  # type: ignore[attr-defined]
    return VersionPolicy.latest(1)


def parse_version_policy(text: str) -> VersionPolicy:
    """A policy as :meth:`VersionPolicy.describe` (and models.config) writes it, e.g.
    ``latest { num_versions: 2 }``, read with TF Serving's own proto. Raises ConfigError."""
    proto = model_server_config_pb2.ModelConfig()
    try:
        text_format.Parse(f"model_version_policy {{ {text} }}", proto)
    except text_format.ParseError as exc:
        raise ConfigError(f"Invalid version policy {text!r}: {exc}") from None
    return _policy_from_proto(proto.model_version_policy)


def parse_model_config_text(text: str) -> list[ModelConfig]:
    """Parse and validate a models.config text proto. Raises ConfigError."""
    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise ConfigError(
            f"Error parsing text-format tensorflow.serving.ModelServerConfig: {exc}") from None
    if proto.WhichOneof("config") == "custom_model_config":
        raise ConfigError("custom_model_config is not supported; use model_config_list")
    return models_from_proto(proto)


def models_from_proto(proto: model_server_config_pb2.ModelServerConfig) -> list[ModelConfig]:
    """The validated model list of a ``ModelServerConfig`` (ValidateModelConfigList)."""
    models: list[ModelConfig] = []
    seen: set[str] = set()
    for entry in proto.model_config_list.config:
        if not entry.name:
            raise ConfigError("Model config has an entry with an empty name")
        if entry.name in seen:
            raise ConfigError(f"Illegal to list model {entry.name} multiple times in config list")
        seen.add(entry.name)
        if not (os.path.isabs(entry.base_path) or "://" in entry.base_path):
            raise ConfigError(f"Expected model {entry.name} to have an absolute path or URI; "
                              f"got base_path()={entry.base_path}")
        if "://" in entry.base_path and not entry.base_path.startswith("file://"):
            raise ConfigError(f"Model {entry.name}: only local base paths are supported here, "
                              f"got {entry.base_path}")
        platform = entry.model_platform or "tensorflow"
        if platform != "tensorflow":
            raise ConfigError(f"Model {entry.name} has model_platform {platform!r}; "
                              "only 'tensorflow' is supported")
        base_path = entry.base_path.removeprefix("file://")
        models.append(ModelConfig(
            name=entry.name,
            base_path=base_path,
            policy=_policy_from_proto(entry.model_version_policy),
            labels=dict(entry.version_labels),
            platform=platform,
            logging=_logging_from_proto(entry) if entry.HasField("logging_config") else None,
        ))
    return models


def _logging_from_proto(entry: model_server_config_pb2.ModelConfig) -> RequestLogging:
    """``logging_config``: a sampling rate in [0, 1] and a filename prefix (every collector
    type writes TFRecord files here; TF Serving's open-source build registers none)."""
    config = entry.logging_config
    rate = config.sampling_config.sampling_rate
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"Model {entry.name}: logging_config sampling_rate must be between 0 "
                          f"and 1, got {rate}")
    prefix = config.log_collector_config.filename_prefix
    if not prefix:
        raise ConfigError(f"Model {entry.name}: logging_config needs "
                          "log_collector_config { filename_prefix: \"/path/to/requests\" }")
    if not os.path.isabs(prefix):
        raise ConfigError(f"Model {entry.name}: logging_config filename_prefix must be an "
                          f"absolute path, got {prefix}")
    return RequestLogging(prefix, rate, config.log_collector_config.type)


def read_model_config_file(path: str) -> tuple[str, list[ModelConfig]]:
    """The file's text (to notice changes) and its models, from one read. Raises ConfigError."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"Could not read model config file {path}: {exc.strerror}") from None
    return text, parse_model_config_text(text)


def load_model_config_file(path: str) -> list[ModelConfig]:
    """The models of a models.config file. Raises ConfigError."""
    return read_model_config_file(path)[1]


def config_to_text(models: Sequence[ModelConfig]) -> str:
    """Render models as a models.config that real TF Serving reads unchanged."""
    proto = model_server_config_pb2.ModelServerConfig()
    for model in models:
        entry = proto.model_config_list.config.add()
        entry.name = model.name
        entry.base_path = model.base_path
        entry.model_platform = model.platform
        policy = model.policy
        if policy.kind is PolicyKind.ALL:
            entry.model_version_policy.all.SetInParent()
        elif policy.kind is PolicyKind.SPECIFIC:
            entry.model_version_policy.specific.versions.extend(policy.versions)
        elif policy.num_versions != 1:
            entry.model_version_policy.latest.num_versions = policy.num_versions
        for label, version in sorted(model.labels.items()):
            entry.version_labels[label] = version
        if model.logging is not None:
            collector = entry.logging_config.log_collector_config
            collector.type = model.logging.collector_type
            collector.filename_prefix = model.logging.filename_prefix
            entry.logging_config.sampling_config.sampling_rate = model.logging.sampling_rate
    return str(text_format.MessageToString(proto))


def write_model_config_file(path: str, models: Sequence[ModelConfig]) -> None:
    """Write atomically (temp file + rename) so a polling server never reads half a file."""
    text = config_to_text(models)
    parse_model_config_text(text)  # never write what we would refuse to read
    write_atomically(path, text)


# --- MonitoringConfig (config/monitoring_config.proto) ---

def _monitoring_message_class() -> type:
    return message_classes("tfserve_magic/monitoring_config.proto", {
        "PrometheusConfig": [("enable", 1, "bool"), ("path", 2, "string")],
        "MonitoringConfig": [("prometheus_config", 1, "PrometheusConfig")],
    })["MonitoringConfig"]


@dataclass(frozen=True)
class MonitoringSettings:
    prometheus_enabled: bool = False
    prometheus_path: str = DEFAULT_PROMETHEUS_PATH


def parse_monitoring_config(path: str) -> MonitoringSettings:
    if not path:
        return MonitoringSettings()
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"Could not read monitoring config file {path}: {exc.strerror}") from None
    proto = _monitoring_message_class()()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise ConfigError(
            f"Error parsing text-format tensorflow.serving.MonitoringConfig: {exc}") from None
    prom = proto.prometheus_config
    return MonitoringSettings(prometheus_enabled=prom.enable,
                              prometheus_path=prom.path or DEFAULT_PROMETHEUS_PATH)
