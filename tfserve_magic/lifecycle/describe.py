"""What a remote server (``%tfserve connect``) says about itself: our server describes itself
(``GET /tfserve_magic/v1/server``); a real TF Serving has no API listing its models, so the
record names them and their status comes from ``GET /v1/models/<name>``.

Used by the registry's liveness probe and by ``connect``; reads records, never writes them. No
TensorFlow, no IPython.
"""

from __future__ import annotations

from tfserve_magic.client import Client, RequestError, ServingError
from tfserve_magic.lifecycle.record import ServerRecord
from tfserve_magic.status import ModelDescription, ProtocolError, ServerDescription, VersionReport

__all__ = ["describe", "describe_remote"]


def _status_of(client: Client, model: str) -> ModelDescription:
    try:
        versions = tuple(VersionReport(s.version, s.state, s.error_message)
                         for s in client.status(model))
    except ServingError as error:
        if error.status == 0:
            raise
        versions = ()  # the server answers, but not for this model (yet)
    return ModelDescription(model, versions=versions)


def describe(record: ServerRecord, timeout: float) -> ServerDescription:
    """The remote's description, as our server gives it; raises ServingError (ProtocolError
    when its answer is not a description)."""
    client = Client(record.url, timeout=timeout, headers=record.auth_headers,
                    tls=record.client_tls)
    info = client.server_info()
    if info is not None:
        return info
    return ServerDescription(models=tuple(_status_of(client, m) for m in record.models),
                             version="tensorflow_model_server")


def describe_remote(record: ServerRecord, timeout: float = 2.0) -> ServerDescription | None:
    """What :func:`registry.probe` returns for a remote: its description, or None when it does
    not answer."""
    try:
        return describe(record, timeout)
    except (ServingError, ProtocolError, RequestError, ValueError):  # (ValueError: not JSON)
        return None
