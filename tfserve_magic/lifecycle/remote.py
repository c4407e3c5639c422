"""Remote model servers: real TensorFlow Serving, or ours on another machine, registered with
``%tfserve connect`` beside the servers started here.

A remote record has no process of ours (pid 0): it is alive when it answers
(:mod:`~tfserve_magic.lifecycle.describe`), ``stop`` refuses it and ``disconnect`` forgets it.
It belongs to the kernel that connected it and is forgotten when that kernel ends (a restarted
kernel connects again).
Real TF Serving has no API listing its models, so the user names them. No TensorFlow, no
IPython.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Sequence

from tfserve_magic.client import ClientTls, RequestError, ServingError
from tfserve_magic.lifecycle import registry
from tfserve_magic.lifecycle.describe import describe
from tfserve_magic.lifecycle.record import ServerRecord
from tfserve_magic.lifecycle.refusals import ConnectError, NotOurServer, UnknownServer
from tfserve_magic.status import ProtocolError

__all__ = ["connect", "disconnect", "parse_grpc_target"]


def _split_url(url: str) -> tuple[str, int, str]:
    """(host, port, normalised url) of ``http[s]://host[:port]``; ConnectError otherwise."""
    parts = urllib.parse.urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or \
            parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConnectError(f"{url!r} is not a server address such as http://host:8501")
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return host, port, f"{parts.scheme}://{shown}:{port}"


def parse_grpc_target(target: str) -> str:
    """``host:port`` of a gRPC API, checked; ConnectError otherwise."""
    host, _, port = target.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConnectError(f"--grpc {target!r} must be HOST:PORT, such as prod.example:8500")
    return f"{host}:{int(port)}"


def connect(url: str, name: str, *, grpc: str | None = None, models: Sequence[str] = (),
            from_kernel: bool = False, timeout: float = 10.0, secret: str = "",
            tls: ClientTls | None = None) -> ServerRecord:
    """Record the server at ``url`` as ``name``. ``models`` names the models of a real TF
    Serving (ours lists them itself). ``from_kernel``: connected by the user in their own
    kernel, so the Jupyter proxy may forward to it. ``secret``: a tfserve_magic server's
    management secret (its ``TFSERVE_MAGIC_SECRET``), needed to reload it or move its labels
    from here. ``tls``: the authority (and client certificate) of a server over TLS, for an
    ``https://`` URL and its gRPC port alike. Raises :class:`ConnectError` with the reason,
    :class:`NotOurServer` when ``name`` is a server started here, ConfigError when it cannot
    name a file."""
    registry.check_name(name)
    host, port, normalised = _split_url(url)
    existing = registry.find_record(name)
    if existing is not None and not existing.remote:
        raise NotOurServer(f"{name} names a server started here ({existing.url}); choose another "
                         "--name")
    record = ServerRecord(
        name=name, pid=0, host=host, rest_api_port=port, url=normalised,
        models=tuple(dict.fromkeys(models)), started_at=time.time(), owner_pid=os.getpid(),
        owner_notebook=registry.this_notebook(),
        remote=True, grpc_target=parse_grpc_target(grpc) if grpc else None,
        proxy_allowed=from_kernel, secret=secret, tls=tls.to_json() if tls else {})
    try:
        description = describe(record, timeout)
    except ServingError as error:
        raise ConnectError(f"cannot connect to {normalised}: {error.message}") from None
    except (ProtocolError, RequestError, ValueError) as error:  # (ValueError: not JSON)
        raise ConnectError(f"cannot connect to {normalised}: {error}") from None
    served = description.model_names
    if description.pid is None:
        missing = [m.name for m in description.models if not m.versions]
        if not served:
            raise ConnectError(f"{normalised} does not list its models (TensorFlow Serving has no "
                             "API for that): name them with --models NAME[,NAME...]")
        if missing:
            raise ConnectError(f"{normalised} serves no model named {', '.join(missing)}")
    record = ServerRecord(**{**record.to_json(), "models": served, "argv": (),
                             "version": description.version})
    registry.write_record(record)
    return record


def disconnect(name: str) -> str:
    """Forget the remote server ``name``; returns its URL."""
    record = registry.find_record(name)
    if record is None:
        raise UnknownServer(f"no server named {name} (see %tfserve list)")
    if not record.remote:
        raise NotOurServer(f"{name} was started here, not connected: stop it with "
                         f"%tfserve stop {name}")
    registry.remove_record(record.name)
    return record.url
