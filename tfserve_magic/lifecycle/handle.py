"""The launcher's public types: what to serve (:class:`ServerSpec`), a running server
(:class:`ServerHandle`), and the typed outcomes of a start (:class:`Launched`, :class:`Reused`,
:class:`Failed`, :class:`TimedOut`) and of a listing (:class:`ServerInfo`).

Values only: nothing here starts a process or reads the registry (``ServerHandle.stop`` goes
through :mod:`~tfserve_magic.lifecycle.stopping`). No TensorFlow import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from tfserve_magic.client import Client, ClientTls, Prediction, ServingError, VersionStatus
from tfserve_magic.errors import TFServeError
from tfserve_magic.files import tail_lines
from tfserve_magic.lifecycle.refusals import AmbiguousName
from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.lifecycle.stopping import stop
from tfserve_magic.status import ServerDescription

__all__ = [
    "Failed",
    "LaunchError",
    "Launched",
    "Reused",
    "ServerHandle",
    "ServerInfo",
    "ServerSpec",
    "StartResult",
    "TimedOut",
    "log_section",
    "log_tail",
    "reachable_host",
]


@dataclass(frozen=True)
class ServerSpec:
    """What to serve and how; one spec, whether it came from a magic or from Python."""

    model_dir: str | None = None
    config: str | None = None
    name: str | None = None
    port: int = 0
    host: str = "127.0.0.1"
    gpu: str | None = None
    gpu_memory_fraction: float | None = None
    poll: float | None = None  # seconds between rescans; None: 1 s, 0: never (reload only)
    detach: bool = False
    extra_flags: tuple[str, ...] = ()
    batching: bool = False  # TF Serving's batching, parameters file written beside models.config
    grpc_port: int = 0  # TF Serving's --port; 0 picks a free one
    verbose: bool = False  # log every request and TensorFlow's native start-up messages
    spare: bool = False  # adopt this kernel's warm spare process, and keep one for the next start
    tls: ClientTls | None = None  # how clients reach it when extra_flags ask for TLS

    @property
    def server_name(self) -> str:
        if self.name:
            return self.name
        source = self.model_dir or self.config or "model"
        stem = os.path.basename(os.path.normpath(source))
        return os.path.splitext(stem)[0] if self.config and not self.model_dir else stem


class ServerHandle:
    """A running server: its URL, a client, and shortcuts. Usable as a context manager."""

    def __init__(self, record: ServerRecord) -> None:
        self.record = record
        self.client = Client(record.url, headers=record.auth_headers, tls=record.client_tls)
        self._grpc_client: Client | None = None

    def grpc_client(self) -> Client:
        """A client whose model calls go over gRPC (imports TF Serving's protos on first use)."""
        if self._grpc_client is None:
            if self.grpc_target is None:
                raise ServingError(0, f"server {self.name} announced no gRPC port")
            self._grpc_client = Client(self.record.url, grpc=self.grpc_target,
                                       headers=self.record.auth_headers,
                                       tls=self.record.client_tls)
        return self._grpc_client

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def url(self) -> str:
        return self.record.url

    @property
    def models(self) -> tuple[str, ...]:
        return self.record.models

    @property
    def grpc_port(self) -> int | None:
        return self.record.grpc_port

    @property
    def grpc_target(self) -> str | None:
        """``host:port`` for ``grpc.insecure_channel`` (TF Serving's PredictionService)."""
        if self.record.remote:
            return self.record.grpc_target
        if self.record.grpc_port is None:
            return None
        return f"{reachable_host(self.record.host)}:{self.record.grpc_port}"

    @property
    def batching_parameters_file(self) -> str | None:
        """The BatchingParameters file the server reads (started with batching), else None."""
        flag = "--batching_parameters_file="
        return next((a[len(flag):] for a in self.record.argv if a.startswith(flag)), None)

    def predict(self, model: str | None, data: Any, **kwargs: Any) -> Prediction:
        return self.client.predict(model or self._only_model(), data, **kwargs)

    def status(self, model: str | None = None) -> list[VersionStatus]:
        return self.client.status(model or self._only_model())

    def stop(self, *, force: bool = False) -> None:
        """Stop this server (another live notebook's only with ``force``)."""
        stop(str(self.record.rest_api_port), force=force)  # its port: this one, by any name

    def _only_model(self) -> str:
        if len(self.models) != 1:
            raise AmbiguousName(f"server {self.name} serves {list(self.models)}: name the model")
        return self.models[0]

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        grpc = f", gRPC {self.grpc_target}" if self.grpc_target else ""
        return f"<ServerHandle {self.name} at {self.url}{grpc} serving {', '.join(self.models)}>"


def reachable_host(host: str) -> str:
    """Where a local client reaches a server bound to ``host`` (all addresses: loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@dataclass(frozen=True)
class Launched:
    handle: ServerHandle
    seconds: float
    notes: tuple[str, ...] = ()  # what a person should know, e.g. a model with nothing to serve


@dataclass(frozen=True)
class Reused:
    """A running server started the same way: this kernel's own, or a detached one (shared on
    purpose); another live notebook's server is never reused (that start gets its own)."""

    handle: ServerHandle


@dataclass(frozen=True)
class Failed:
    name: str
    message: str
    log_tail: str = ""
    log_file: str = ""  # the whole log, kept after a failed start


@dataclass(frozen=True)
class TimedOut:
    name: str
    seconds: float
    log_tail: str = ""
    log_file: str = ""


StartResult = Launched | Reused | Failed | TimedOut


def log_tail(path: str | None, lines: int = 25) -> str:
    """The last ``lines`` non-blank lines of a server's log ("" when there is none)."""
    return "\n".join(tail_lines(path, lines))


def log_section(result: Failed | TimedOut) -> str:
    """The server's last log lines and where its whole log is, shown after a failed start."""
    if not result.log_tail:
        return ""
    where = f" of {result.log_file}" if result.log_file else ""
    return f"\n--- server log (last lines{where}) ---\n{result.log_tail}"


class LaunchError(TFServeError):
    """``start()`` could not bring a server up; the message includes the server's own words."""

    def __init__(self, result: Failed | TimedOut) -> None:
        if isinstance(result, Failed):
            text = result.message
        else:
            text = f"server {result.name} was not ready within {result.seconds:.0f} s"
        super().__init__(text + log_section(result))
        self.result = result


@dataclass(frozen=True)
class ServerInfo:
    record: ServerRecord
    alive: bool
    uptime: float
    models: tuple[str, ...] = ()
    description: ServerDescription | None = field(default=None, compare=False)
