"""TF Serving's status vocabulary, shared by the server that reports it and the clients that read it.

Status codes (``tensorflow.error.Code``) with their HTTP statuses, version states
(``ModelVersionStatus.State`` of ``apis/get_model_status.proto``), one row of the status API,
our server's description of itself (``GET /tfserve_magic/v1/server``: written by the core,
parsed once by the client), the handshake line a server prints once its sockets are bound
(written by the core, parsed once by the launcher), where metrics are served unless configured
otherwise, and how a launcher hands a server the secret of its management API
(``serving/api/origins.py``).
Pure: imports nothing from the package but the root error, so the serving core and the client
may both use it.
"""

from __future__ import annotations

import enum
import http
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tfserve_magic.errors import TFServeError

__all__ = ["DEFAULT_PROMETHEUS_PATH", "HANDSHAKE_FORMAT", "SECRET_ENV", "SECRET_HEADER", "Code",
           "Handshake", "ModelDescription", "ProtocolError", "ServerDescription", "VersionReport",
           "VersionState", "VersionStatus", "reason_phrase"]

# ``monitoring_config.proto``'s default path for the Prometheus exposition.
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
# The environment variable a launcher puts a server's management secret in (never argv, which
# ps shows to every user), and the header clients send it back in.
SECRET_ENV = "TFSERVE_MAGIC_SECRET"
SECRET_HEADER = "X-Tfserve-Magic-Secret"


class ProtocolError(TFServeError):
    """An answer that is not what our protocol says: a handshake line or a server description
    that does not parse (something other than our server answered)."""


class Code(enum.IntEnum):
    """absl / TensorFlow status codes (``tensorflow.error.Code``)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving's REST server answers with (``http_server.cc``)."""
        return _HTTP.get(self, 500)

    @classmethod
    def from_name(cls, name: str) -> Code:
        """``"NOT_FOUND"`` -> ``Code.NOT_FOUND``; a name this table lacks is ``UNKNOWN``."""
        return cls.__members__.get(name, cls.UNKNOWN)


_HTTP = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.INVALID_ARGUMENT: 400,
    Code.FAILED_PRECONDITION: 400,
    Code.OUT_OF_RANGE: 400,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.ABORTED: 409,
    Code.PERMISSION_DENIED: 403,
    Code.UNAUTHENTICATED: 401,
    Code.DEADLINE_EXCEEDED: 504,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.UNIMPLEMENTED: 501,
    Code.UNAVAILABLE: 503,
}


_REASONS = {status.value: status.phrase for status in http.HTTPStatus}


def reason_phrase(status: int) -> str:
    """The HTTP reason phrase of ``status`` (``Unknown`` for a code HTTP does not name): the
    one table the server's answers and the Jupyter proxy both use."""
    return _REASONS.get(status, "Unknown")


class VersionState(enum.IntEnum):
    """``ModelVersionStatus.State``: where one model version is in its lifecycle."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50

    @classmethod
    def from_name(cls, name: str) -> VersionState:
        """``"AVAILABLE"`` -> ``VersionState.AVAILABLE``; a name this table lacks is ``UNKNOWN``."""
        return cls.__members__.get(name, cls.UNKNOWN)


@dataclass(frozen=True)
class VersionStatus:
    """One row of the status API (``GET /v1/models/NAME``): a version, its state, its last error."""

    version: int
    state: VersionState
    error_code: Code = Code.OK
    error_message: str = ""


@dataclass(frozen=True)
class VersionReport:
    """One version in a server description: its state and its last load error ("" if none)."""

    version: int
    state: VersionState
    error: str = ""

    @property
    def failed(self) -> bool:
        """Ended with a load error (a version retrying after one is still LOADING)."""
        return self.state is VersionState.END and bool(self.error)


@dataclass(frozen=True)
class ModelDescription:
    """One configured model: its folder and policy (as models.config writes it), its labels,
    its versions highest first. ``base_path`` is "" when the server keeps it to itself (no
    secret) or does not say (a real TF Serving)."""

    name: str
    base_path: str = ""
    policy: str = ""
    labels: Mapping[str, int] = field(default_factory=dict)
    versions: tuple[VersionReport, ...] = ()

    @property
    def available(self) -> tuple[int, ...]:
        return tuple(v.version for v in self.versions if v.state is VersionState.AVAILABLE)


# Keys only a caller holding the server's secret is told (folders, process, config file).
_PRIVATE_KEYS = frozenset({"pid", "model_config_file", "base_path"})


@dataclass(frozen=True)
class ServerDescription:
    """What ``GET /tfserve_magic/v1/server`` (and ``POST .../reload``) answer.

    ``private`` says whether the secret-only fields (``pid``, ``model_config_file``, each
    model's ``base_path``) were told: without the secret the server leaves them out, and they
    read as None / "". A real TF Serving (described from its status API) has ``pid`` None.
    """

    models: tuple[ModelDescription, ...] = ()
    pid: int | None = None
    version: str = ""
    started_at: float | None = None
    model_config_file: str | None = None
    prometheus_path: str | None = None
    private: bool = True

    def model(self, name: str) -> ModelDescription | None:
        return next((m for m in self.models if m.name == name), None)

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    def to_json(self, *, private: bool | None = None) -> dict[str, Any]:
        """The wire shape (contract 2); ``private=False`` leaves the secret-only keys out."""
        told = self.private if private is None else private and self.private
        data: dict[str, Any] = {
            "pid": self.pid, "version": self.version, "started_at": self.started_at,
            "model_config_file": self.model_config_file,
            "prometheus_path": self.prometheus_path,
            "models": [{"name": m.name, "base_path": m.base_path, "policy": m.policy,
                        "labels": dict(m.labels),
                        "versions": [{"version": v.version, "state": v.state.name,
                                      "error": v.error} for v in m.versions]}
                       for m in self.models]}
        if not told:
            data = {k: v for k, v in data.items() if k not in _PRIVATE_KEYS}
            data["models"] = [{k: v for k, v in m.items() if k not in _PRIVATE_KEYS}
                              for m in data["models"]]
        return data

    @classmethod
    def from_json(cls, data: Any) -> ServerDescription:
        """The one parser of a description; ProtocolError when ``data`` is not one."""
        try:
            return cls(
                models=tuple(_model_from_json(m) for m in data["models"]),
                pid=None if data.get("pid") is None else int(data["pid"]),
                version=str(data.get("version") or ""),
                started_at=None if data.get("started_at") is None else float(data["started_at"]),
                model_config_file=data.get("model_config_file") or None,
                prometheus_path=data.get("prometheus_path") or None,
                private="pid" in data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ProtocolError(f"not a tfserve_magic server description: {error!r}") from None


def _model_from_json(data: Mapping[str, Any]) -> ModelDescription:
    name, base_path = str(data["name"]), str(data.get("base_path") or "")

    def error(text: str) -> str:
        # The server writes a model's folder as "<base_path of NAME>" in load errors (its status
        # API tells no paths); a caller told the folder reads the real path.
        return text.replace(f"<base_path of {name}>", base_path.rstrip("/")) if base_path \
            else text

    return ModelDescription(
        name=name, base_path=base_path, policy=str(data.get("policy") or ""),
        labels={str(k): int(v) for k, v in (data.get("labels") or {}).items()},
        versions=tuple(VersionReport(int(v["version"]), VersionState.from_name(v["state"]),
                                     error(str(v.get("error") or "")))
                       for v in data.get("versions") or ()))


# The handshake's layout; a reader accepts a line without one as format 1 (servers before it).
HANDSHAKE_FORMAT = 1


@dataclass(frozen=True)
class Handshake:
    """The one JSON line a server prints on stdout once its sockets are bound (contract 1).

    ``grpc_port`` is None when gRPC is off; ``grpc_socket_path`` None without a Unix socket;
    ``version`` is the package version of the server that wrote it; ``rest_scheme`` is
    ``https`` with ``--rest_api_ssl``; ``grpc_tls`` says whether gRPC wants TLS.
    """

    pid: int
    rest_api_port: int
    host: str = "127.0.0.1"
    grpc_port: int | None = None
    grpc_socket_path: str | None = None
    version: str = ""
    rest_scheme: str = "http"
    grpc_tls: bool = False
    models: tuple[str, ...] = ()
    format: int = HANDSHAKE_FORMAT

    def to_json(self) -> dict[str, Any]:
        """The wire shape: one object, tagged ``"tfserve_magic": "handshake"``."""
        return {"tfserve_magic": "handshake", "format": self.format, "pid": self.pid,
                "host": self.host, "rest_api_port": self.rest_api_port,
                "grpc_port": self.grpc_port, "grpc_socket_path": self.grpc_socket_path,
                "version": self.version, "rest_scheme": self.rest_scheme,
                "grpc_tls": self.grpc_tls, "models": list(self.models)}

    @classmethod
    def from_json(cls, data: Any) -> Handshake:
        """The one parser of a handshake; ProtocolError when ``data`` is not one."""
        if not isinstance(data, Mapping) or data.get("tfserve_magic") != "handshake":
            raise ProtocolError("not a tfserve_magic handshake")
        try:
            grpc_port = data.get("grpc_port")
            return cls(
                pid=int(data["pid"]), rest_api_port=int(data["rest_api_port"]),
                host=str(data.get("host") or "127.0.0.1"),
                grpc_port=None if grpc_port is None else int(grpc_port),
                grpc_socket_path=data.get("grpc_socket_path") or None,
                version=str(data.get("version") or ""),
                rest_scheme=str(data.get("rest_scheme") or "http"),
                grpc_tls=bool(data.get("grpc_tls", False)),
                models=tuple(str(m) for m in data.get("models") or ()),
                format=int(data.get("format", 1)))
        except (KeyError, TypeError, ValueError) as error:
            raise ProtocolError(f"not a tfserve_magic handshake: {error!r}") from None
