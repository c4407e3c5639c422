"""A small typed client of TensorFlow Serving: one server, REST or gRPC for the model calls.

Works against tfserve_magic's server and against a real ``tensorflow_model_server`` alike (only
``server_info``, ``metrics`` paths and ``reload`` use our own endpoints, and say so when they are
absent). Model calls go through one :class:`~tfserve_magic.client.transport.Transport`: REST by
default, gRPC with ``grpc="host:port"``; our own endpoints always go over REST. Errors raise
:class:`~tfserve_magic.client.transport.ServingError` with TF Serving's message. No TensorFlow
import (the gRPC transport imports TF Serving's protos when it is created).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tfserve_magic.client.grpc_transport import GrpcTransport
from tfserve_magic.client.rest_transport import RestTransport
from tfserve_magic.client.tls import ClientTls
from tfserve_magic.client.transport import Prediction, ServingError, Transport, signature_defs
from tfserve_magic.status import (
    DEFAULT_PROMETHEUS_PATH,
    SECRET_HEADER,
    ServerDescription,
    VersionStatus,
)

__all__ = ["Client"]


class Client:
    """TF Serving client bound to one server URL (``http://host:port``).

    With ``grpc="host:port"`` predict, classify, regress, status, metadata and signatures go
    over TF Serving's gRPC API instead (:class:`GrpcTransport`), with the same return types;
    ``server_info``, ``metrics`` and ``reload`` are ours and stay on REST."""

    def __init__(self, url: str, *, timeout: float = 60.0,
                 headers: Mapping[str, str] | None = None, grpc: str | None = None,
                 tls: ClientTls | None = None) -> None:
        """``tls``: the authority and client certificate for a server over TLS (an
        ``https://`` URL; gRPC over TLS when ``grpc`` is given too)."""
        self.rest = RestTransport(url, timeout=timeout, headers=headers, tls=tls)
        self.grpc: GrpcTransport | None = GrpcTransport(
            grpc, timeout=timeout, secret=(headers or {}).get(SECRET_HEADER, ""),
            tls=tls) if grpc else None
        self._calls: Transport = self.grpc if self.grpc is not None else self.rest

    @property
    def url(self) -> str:
        return self.rest.url

    @property
    def timeout(self) -> float:
        return self.rest.timeout

    @property
    def headers(self) -> dict[str, str]:
        return self.rest.headers

    def __repr__(self) -> str:
        grpc = f", grpc={self.grpc.target!r}" if self.grpc else ""
        return f"Client({self.url!r}{grpc})"

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one REST request; returns the decoded JSON, raises ServingError on failure."""
        return self.rest.request(method, path, body)

    def status(self, model: str, version: int | None = None) -> list[VersionStatus]:
        return self._calls.status(model, version)

    def metadata(self, model: str, *, version: int | None = None,
                 label: str | None = None) -> dict[str, Any]:
        return self._calls.metadata(model, version=version, label=label)

    def signatures(self, model: str, *, version: int | None = None,
                   label: str | None = None) -> dict[str, Any]:
        """The SignatureDefs of the served version, without TF Serving's double nesting."""
        return signature_defs(self.metadata(model, version=version, label=label))

    def predict(self, model: str, data: Any, *, version: int | None = None,
                label: str | None = None, signature: str | None = None,
                columnar: bool = False) -> Prediction:
        return self._calls.predict(model, data, version=version, label=label,
                                   signature=signature, columnar=columnar)

    def classify(self, model: str, examples: Sequence[Mapping[str, Any]], *,
                 context: Mapping[str, Any] | None = None, version: int | None = None,
                 label: str | None = None, signature: str | None = None) -> list[Any]:
        return self._calls.classify(model, examples, context=context, version=version,
                                    label=label, signature=signature)

    def regress(self, model: str, examples: Sequence[Mapping[str, Any]], *,
                context: Mapping[str, Any] | None = None, version: int | None = None,
                label: str | None = None, signature: str | None = None) -> list[Any]:
        return self._calls.regress(model, examples, context=context, version=version,
                                   label=label, signature=signature)

    def server_info(self) -> ServerDescription | None:
        """tfserve_magic's own description of the server; None against real TF Serving. Without
        the server's secret (``headers`` from its registry record) the description is not
        ``private``: no pid, config file or folders. ProtocolError if the answer is not one."""
        try:
            return ServerDescription.from_json(self.rest.request("GET", "/tfserve_magic/v1/server"))
        except ServingError as error:
            if error.status in (403, 404):
                return None
            raise

    def metrics(self) -> str | None:
        """The Prometheus exposition text, from the path the server reports (TF Serving's
        default path against a real TF Serving); None when monitoring is off."""
        info = self.server_info()
        path = info.prometheus_path if info is not None else DEFAULT_PROMETHEUS_PATH
        if not path:
            return None
        try:
            return self.rest.send("GET", path).decode("utf-8", errors="replace")
        except ServingError as error:
            if error.status == 404:
                return None
            raise

    def reload(self) -> ServerDescription:
        """Re-read the model config and re-scan base paths now (tfserve_magic servers only);
        returns the server's description after the reload."""
        return ServerDescription.from_json(self.rest.request("POST", "/tfserve_magic/v1/reload", b""))
