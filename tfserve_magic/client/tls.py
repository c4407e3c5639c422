"""TLS for a client: the authority a server's certificate must chain to, and a client
certificate for a server that asks for one (TF Serving's ``client_verify``).

REST over HTTPS gets an ``ssl.SSLContext``, gRPC ``grpc.ssl_channel_credentials``, from the same
PEM files. A server with a certificate from a public authority needs no ``ca_file``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from tfserve_magic.client.transport import RequestError

__all__ = ["ClientTls"]


@dataclass(frozen=True)
class ClientTls:
    """PEM file paths: ``ca_file`` (default: the system's authorities), and ``cert_file`` with
    ``key_file`` for mutual TLS."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise RequestError("a client certificate needs both cert_file and key_file")

    def ssl_context(self) -> ssl.SSLContext:
        """For HTTPS; raises RequestError naming a file that cannot be used."""
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file is not None:
                context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise RequestError(f"cannot use the TLS files {self._files()}: {exc}") from None
        return context

    def grpc_credentials(self) -> Any:
        """``grpc.ssl_channel_credentials`` from the same files."""
        import grpc

        try:
            read = [_read(path) for path in (self.ca_file, self.key_file, self.cert_file)]
        except OSError as exc:
            raise RequestError(f"cannot read the TLS files {self._files()}: {exc}") from None
        return grpc.ssl_channel_credentials(root_certificates=read[0], private_key=read[1],
                                            certificate_chain=read[2])

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in (("ca_file", self.ca_file), ("cert_file", self.cert_file),
                                  ("key_file", self.key_file)) if v}

    def _files(self) -> str:
        return ", ".join(self.to_json().values())


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as handle:
        return handle.read()
