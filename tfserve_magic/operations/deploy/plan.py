"""What a deployment holds, read from a running or recorded server: a :class:`DeploymentPlan`.

The plan is everything the writers need and nothing they must look up: the models with the
versions to ship (the AVAILABLE ones of a running server; for a recorded server that is no longer
running, the versions its policy selects on disk), their policies and labels, the TF Serving flags
the server ran with, the monitoring and batching settings, and the image to build on. Bad input
raises :class:`DeployError` before anything is written. No TensorFlow, no IPython.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tfserve_magic.errors import TFServeError
from tfserve_magic.lifecycle import registry
from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.serving.models.config import ModelConfig, load_model_config_file, parse_monitoring_config
from tfserve_magic.serving.models.policy import aspired_versions
from tfserve_magic.serving.models.repository import RepositoryError, scan_versions
from tfserve_magic.serving.options import ServerOptions, tf_serving_flag_names
from tfserve_magic.serving.process.flags import build_parser
from tfserve_magic.serving.status_errors import ConfigError
from tfserve_magic.status import ServerDescription

__all__ = [
    "CONFIG_ROOT",
    "DeployError",
    "DeploymentPlan",
    "MODEL_ROOT",
    "ModelPlan",
    "TARGETS",
    "Target",
    "app_name",
    "plan_deployment",
    "serving_api_version",
    "serving_image",
]

MODEL_ROOT = "/models"  # where the container sees the version folders (TF Serving's convention)
CONFIG_ROOT = "/config"  # where it sees models.config & co (a ConfigMap mounts here on Kubernetes)

TARGETS = ("docker", "kubernetes", "kserve")
Target = str  # one of TARGETS

# TF Serving's own flags that are not carried as they are: the image's entrypoint sets the ports
# and the single model (--port=8500 --rest_api_port=8501 --model_name --model_base_path), and
# the config files' paths are rewritten for the container below. Our own flags never are
# (ServerOptions marks them; tf_serving_flag_names leaves them out).
_SET_BY_THE_IMAGE_OR_REWRITTEN = frozenset({
    "port", "rest_api_port", "model_name", "model_base_path", "model_config_file",
    "monitoring_config_file", "batching_parameters_file",
    "grpc_socket_path",  # a path on this machine: the image binds 0.0.0.0:8500
    "ssl_config_file",  # private keys on this machine: a cluster's TLS comes from its Secrets
})
_CARRIED = tuple(n for n in tf_serving_flag_names() if n not in _SET_BY_THE_IMAGE_OR_REWRITTEN)
_STORAGE_SCHEMES = ("gs://", "s3://")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")


class DeployError(TFServeError):
    """The deployment cannot be written; the message says why. Nothing was written."""


@dataclass(frozen=True)
class ModelPlan:
    """One model: its served config and the version folders to ship."""

    config: ModelConfig
    versions: Mapping[int, str]  # version -> folder on this machine
    dropped_labels: Mapping[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class DeploymentPlan:
    server: str
    app: str  # the Kubernetes name (DNS-1123 label) derived from the server name
    models: tuple[ModelPlan, ...]
    flags: tuple[str, ...]  # TF Serving flags for the container, paths already rewritten
    prometheus_path: str | None
    monitoring_text: str | None
    batching_text: str | None
    image: str  # the image the deployment runs (built from the Dockerfile unless --image)
    base_image: str  # tensorflow/serving:<version>[-gpu]
    targets: tuple[Target, ...]
    replicas: int = 1
    gpus: int = 0
    namespace: str | None = None
    storage_uri: str | None = None
    running: bool = True
    model_bytes: int = 0  # size of the shipped version folders (sizes the pods' memory)
    grace_seconds: int = 20  # the server's --shutdown_grace_seconds, rounded up

    @property
    def termination_grace_seconds(self) -> int:
        """The pods' terminationGracePeriodSeconds: the drain window (the preStop wait) and
        time to exit after it."""
        return self.grace_seconds + 10

    @property
    def copies_models(self) -> bool:
        return self.storage_uri is None

    def container_base_path(self, model: str) -> str:
        if self.storage_uri:
            return f"{self.storage_uri}/{model}"
        return f"{MODEL_ROOT}/{model}"

    def container_configs(self) -> list[ModelConfig]:
        """models.config as the container reads it: base paths rewritten, labels kept only
        for shipped versions."""
        out = []
        for model in self.models:
            labels = {k: v for k, v in model.config.labels.items() if v in model.versions}
            # logging_config stays behind: its files are this machine's, and TF Serving's
            # open-source build has no log collector to write them.
            out.append(dataclasses.replace(model.config, labels=labels, logging=None,
                                           base_path=self.container_base_path(model.name)))
        return out


def serving_api_version() -> str:
    """The installed tensorflow-serving-api's release (major.minor.patch)."""
    version = importlib.metadata.version("tensorflow-serving-api")
    found = re.match(r"\d+\.\d+\.\d+", version)
    return found.group(0) if found else version


def serving_image(gpu: bool = False) -> str:
    """``tensorflow/serving:<version>`` matching the installed API (``-gpu`` on request)."""
    return f"tensorflow/serving:{serving_api_version()}" + ("-gpu" if gpu else "")


def app_name(server: str) -> str:
    """A name for Kubernetes objects made from a server name: a DNS-1035 label, as Service
    names must be (lowercase letters, digits and '-', starting with a letter)."""
    name = re.sub(r"[^a-z0-9-]+", "-", server.lower()).strip("-")
    if name[:1].isdigit():
        name = f"model-{name}"
    name = name[:63].rstrip("-")
    if not _DNS_LABEL.match(name):
        raise DeployError(f"cannot make a Kubernetes name out of the server name {server!r}; "
                          "name the server with letters and digits")
    return name


def _record(server: str) -> ServerRecord:
    record = registry.find_record(server)
    if record is None:
        known = ", ".join(r.name for r in registry.read_records()) or "none"
        raise DeployError(f"no server named {server} (known servers: {known}; see %tfserve list)")
    return record


def _flag_values(record: ServerRecord) -> dict[str, Any]:
    """The flags the server ran with, by name (None when not given)."""
    argv = list(record.argv)
    if "tfserve_magic.serving" in argv:  # [python, -m, tfserve_magic.serving, flags...]
        argv = argv[argv.index("tfserve_magic.serving") + 1:]
    parser = build_parser()
    try:
        namespace, _ = parser.parse_known_args(argv)
    except SystemExit:
        raise DeployError(f"server {record.name} was started with flags this version cannot "
                          f"read: {' '.join(argv)}") from None
    return {k: v for k, v in vars(namespace).items() if v is not None}


def _render_flag(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"--{name}={'true' if value else 'false'}"
    return f"--{name}={value}"


def _container_flags(values: Mapping[str, Any], has_monitoring: bool,
                     has_batching_file: bool) -> tuple[str, ...]:
    flags = [f"--model_config_file={CONFIG_ROOT}/models.config"]
    if has_monitoring:
        flags.append(f"--monitoring_config_file={CONFIG_ROOT}/monitoring.config")
    if has_batching_file:
        flags.append(f"--batching_parameters_file={CONFIG_ROOT}/batching.config")
    for name, value in values.items():  # the parser's order: ServerOptions' field order
        if name in _CARRIED:
            flags.append(_render_flag(name, value))
    return tuple(flags)


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise DeployError(f"cannot read the server's {what} {path}: {exc.strerror}") from None


def _models(record: ServerRecord, values: Mapping[str, Any]) -> list[ModelConfig]:
    path = values.get("model_config_file") or record.model_config_file
    if path:
        try:
            return load_model_config_file(path)
        except ConfigError as exc:
            raise DeployError(f"server {record.name}: {exc}") from None
    if values.get("model_base_path"):
        return [ModelConfig(name=values.get("model_name", "default"),
                            base_path=os.path.abspath(values["model_base_path"]))]
    raise DeployError(f"server {record.name} has neither a models.config nor a base path")


def _versions(model: ModelConfig, description: ServerDescription | None,
              server: str) -> dict[int, str]:
    try:
        on_disk = scan_versions(model.base_path)
    except RepositoryError as exc:
        raise DeployError(f"model {model.name}: {exc}") from None
    if description is not None:
        served = description.model(model.name)
        reports = served.versions if served else ()
        chosen = set(served.available) if served else set()
        if not chosen:
            seen = ", ".join(f"{r.version} {r.state.name}"
                             for r in sorted(reports, key=lambda r: r.version)) or "none"
            raise DeployError(f"model {model.name} on server {server} has no AVAILABLE version "
                              f"to deploy (versions: {seen}); see %tfserve status {server}")
    else:
        chosen = aspired_versions(model.policy, on_disk, model.name)
        if not chosen:
            raise DeployError(f"model {model.name} of server {server} (not running) has no "
                              f"version its policy serves in {model.base_path}")
    missing = sorted(v for v in chosen if v not in on_disk)
    if missing:
        raise DeployError(f"model {model.name}: version folder(s) {missing} are gone from "
                          f"{model.base_path}")
    return {v: on_disk[v] for v in sorted(chosen)}


def _folder_bytes(paths: Sequence[str]) -> int:
    total = 0
    for path in paths:
        for root, _, files in os.walk(path):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def _check_storage_uri(uri: str | None) -> str | None:
    if uri is None:
        return None
    if not uri.startswith(_STORAGE_SCHEMES) or len(uri.rstrip("/")) <= len("gs://"):
        raise DeployError(f"--storage-uri must be a gs:// or s3:// URI holding one folder per "
                          f"model, got {uri!r}")
    return uri.rstrip("/")


def plan_deployment(server: str, *, targets: Sequence[Target] = TARGETS, replicas: int = 1,
                    gpus: int = 0, image: str | None = None, storage_uri: str | None = None,
                    namespace: str | None = None) -> DeploymentPlan:
    """Read server ``server`` (by name or port) into a plan. Raises DeployError."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise DeployError(f"unknown target {', '.join(unknown) or '(none)'}: choose from "
                          f"{', '.join(TARGETS)} or all")
    if replicas < 1:
        raise DeployError(f"--replicas must be at least 1, got {replicas}")
    if gpus < 0:
        raise DeployError(f"--gpu must not be negative, got {gpus}")
    if namespace is not None and not _DNS_LABEL.match(namespace):
        raise DeployError(f"--namespace {namespace!r} is not a valid Kubernetes namespace "
                          "(lowercase letters, digits and '-')")
    storage = _check_storage_uri(storage_uri)
    record = _record(server)
    if record.remote:
        raise DeployError(f"{record.name} is a remote server ({record.url}): deploy writes the "
                          "folder of a server started here, to roll out there")
    description = registry.probe(record)
    values = _flag_values(record)
    models = _models(record, values)
    plans = []
    for model in models:
        versions = _versions(model, description, record.name)
        dropped = {k: v for k, v in model.labels.items() if v not in versions}
        plans.append(ModelPlan(model, versions, dropped))
    monitoring_path = values.get("monitoring_config_file")
    monitoring_text = prometheus = None
    if monitoring_path:
        monitoring_text = _read_text(monitoring_path, "monitoring config")
        try:
            settings = parse_monitoring_config(monitoring_path)
        except ConfigError as exc:
            raise DeployError(str(exc)) from None
        prometheus = settings.prometheus_path if settings.prometheus_enabled else None
    batching_path = values.get("batching_parameters_file")
    batching_text = _read_text(batching_path, "batching parameters") if batching_path else None
    base = serving_image(gpus > 0)
    app = app_name(record.name)
    return DeploymentPlan(
        server=record.name, app=app, models=tuple(plans),
        flags=_container_flags(values, monitoring_text is not None, batching_text is not None),
        prometheus_path=prometheus, monitoring_text=monitoring_text,
        batching_text=batching_text, image=image or f"{app}:latest", base_image=base,
        targets=tuple(dict.fromkeys(targets)), replicas=replicas, gpus=gpus,
        namespace=namespace, storage_uri=storage, running=description is not None,
        model_bytes=_folder_bytes([p for m in plans for p in m.versions.values()]),
        grace_seconds=math.ceil(float(values.get("shutdown_grace_seconds",
                                                 ServerOptions.shutdown_grace_seconds))))

