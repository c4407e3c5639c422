"""One server as the registry records it: :class:`ServerRecord` and its JSON (contract 3).

A value only: reading and writing records is :mod:`~tfserve_magic.lifecycle.registry`'s job.
Imports the status vocabulary only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tfserve_magic.client.tls import ClientTls
from tfserve_magic.status import SECRET_HEADER

__all__ = ["ServerRecord"]


@dataclass(frozen=True)
class ServerRecord:
    """What a launcher knows about one server it started."""

    name: str
    pid: int
    host: str
    rest_api_port: int
    url: str
    models: tuple[str, ...] = ()
    grpc_port: int | None = None
    model_config_file: str | None = None
    log_file: str | None = None
    argv: tuple[str, ...] = ()
    started_at: float = 0.0
    owner_pid: int = 0
    detached: bool = False
    version: str = ""
    secret: str = ""  # opens the server's /tfserve_magic/ endpoints; records are private (0600)
    extra: dict[str, Any] = field(default_factory=dict)
    # A remote server (``%tfserve connect``): not ours to stop; pid is 0.
    remote: bool = False
    grpc_target: str | None = None  # host:port of its gRPC API, when known
    proxy_allowed: bool = False  # connected from the user's own kernel: Jupyter may proxy it
    tls: dict[str, str] = field(default_factory=dict)  # ClientTls files: ca_file, cert_file...
    owner_notebook: str = ""  # the notebook whose kernel started it ("" outside Jupyter)
    requested_name: str = ""  # the name asked for, when another notebook's server had it

    @property
    def client_tls(self) -> ClientTls | None:
        """How clients reach a server over TLS (None: plaintext, or the system's authorities
        for an https:// URL)."""
        return ClientTls(**self.tls) if self.tls else None

    @property
    def owner(self) -> str:
        """Whose it is, for a person: the notebook, else the process; "detached" when no one's."""
        if self.detached:
            return "detached"
        return self.owner_notebook or (f"process {self.owner_pid}" if self.owner_pid else "")

    def public_json(self) -> dict[str, Any]:
        """The record as shown to browsers: without the secret."""
        return {k: v for k, v in self.to_json().items() if k != "secret"}

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers that open the server's management endpoints."""
        return {SECRET_HEADER: self.secret} if self.secret else {}

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["models"] = list(self.models)
        data["argv"] = list(self.argv)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["models"] = tuple(kwargs.get("models", ()))
        kwargs["argv"] = tuple(kwargs.get("argv", ()))
        return cls(**kwargs)
