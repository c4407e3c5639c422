"""TLS for both ports, from TF Serving's ``--ssl_config_file``.

The file is a text-format ``tensorflow.serving.SSLConfig`` (``config/ssl_config.proto``; the pip
package does not ship it, so its one message is declared here as a descriptor): ``server_key``
and ``server_cert`` hold PEM text (not paths), ``custom_ca`` the PEM of the authority client
certificates must chain to, and ``client_verify`` asks for mutual TLS. As in TF Serving's
``server.cc`` (BuildServerCredentials), gRPC then serves over TLS on its port and its Unix socket,
requiring and verifying a client certificate when ``client_verify`` is set. The REST port serves
HTTPS with the same key, certificate and client rule only with our ``--rest_api_ssl`` (TF Serving
has no REST TLS). Everything is read and checked before the handshake: a key that does not fit
its certificate stops the server with a message instead of failing every handshake later.
No TensorFlow.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass

import grpc
from google.protobuf import text_format

from tfserve_magic.serving.proto_schemas import message_classes
from tfserve_magic.serving.status_errors import ConfigError

__all__ = ["TlsSettings", "grpc_credentials", "read_ssl_config", "rest_ssl_context"]


@dataclass(frozen=True)
class TlsSettings:
    """What an SSLConfig file says, checked."""

    server_key: bytes
    server_cert: bytes
    custom_ca: bytes | None
    client_verify: bool


def _ssl_config_class() -> type:
    return message_classes("tfserve_magic/ssl_config.proto", {"SSLConfig": [
        ("server_key", 1, "string"), ("server_cert", 2, "string"), ("custom_ca", 3, "string"),
        ("client_verify", 4, "bool")]})["SSLConfig"]


def read_ssl_config(path: str) -> TlsSettings:
    """Parse and check ``--ssl_config_file``. Raises ConfigError with the message users see."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"Could not read --ssl_config_file {path}: {exc.strerror}") from None
    proto = _ssl_config_class()()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise ConfigError(f"Error parsing text-format tensorflow.serving.SSLConfig in {path}: "
                          f"{exc}") from None
    if not proto.server_key or not proto.server_cert:
        raise ConfigError(f"--ssl_config_file {path}: server_key and server_cert must both hold "
                          "PEM text (the file's contents, not a path)")
    if proto.client_verify and not proto.custom_ca:
        raise ConfigError(f"--ssl_config_file {path}: client_verify needs custom_ca, the PEM of "
                          "the authority that signs the client certificates")
    settings = TlsSettings(proto.server_key.encode(), proto.server_cert.encode(),
                           proto.custom_ca.encode() or None, proto.client_verify)
    rest_ssl_context(settings, path)  # the key, certificate and authority are checked here
    return settings


def grpc_credentials(settings: TlsSettings) -> grpc.ServerCredentials:
    """TF Serving's SslServerCredentials: a client certificate required and verified against
    ``custom_ca`` when ``client_verify``, none asked for otherwise."""
    return grpc.ssl_server_credentials(
        [(settings.server_key, settings.server_cert)],
        root_certificates=settings.custom_ca if settings.client_verify else None,
        require_client_auth=settings.client_verify)


def rest_ssl_context(settings: TlsSettings, source: str = "--ssl_config_file") -> ssl.SSLContext:
    """An HTTPS server context with the same key, certificate and client rule."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl reads a key and certificate only from files: a private folder, removed at once.
    with tempfile.TemporaryDirectory(prefix="tfserve-tls-") as folder:
        os.chmod(folder, 0o700)
        key, cert = os.path.join(folder, "key.pem"), os.path.join(folder, "cert.pem")
        for path, data in ((key, settings.server_key), (cert, settings.server_cert)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise ConfigError(f"{source}: server_key and server_cert are not a usable PEM key "
                              f"and certificate pair ({exc.reason or exc})") from None
    if settings.custom_ca:
        try:
            context.load_verify_locations(cadata=settings.custom_ca.decode())
        except ssl.SSLError as exc:
            raise ConfigError(f"{source}: custom_ca is not a PEM certificate "
                              f"({exc.reason or exc})") from None
    if settings.client_verify:
        context.verify_mode = ssl.CERT_REQUIRED
    return context
