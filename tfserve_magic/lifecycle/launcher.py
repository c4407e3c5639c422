"""Starting, finding, reusing and stopping model servers from a notebook or a script: the one
module callers import.

The launcher owns process supervision so that magics only format results: a start returns a typed
:class:`Launched`, :class:`Reused`, :class:`Failed` or :class:`TimedOut`. A child runs in its own
session (interrupting a cell does not kill it), writes its log to a file per server, announces
itself with one handshake line that we read with a deadline, and is recorded in the registry. A
record is reused only when its process is alive *and* answers with the same pid; a failed start
leaves no process behind. Servers stop with the kernel (atexit, and ``--exit_with_parent_pid`` for
a kernel that is killed) unless detached. No TensorFlow import.

The work is split along its seams: :mod:`.handle` (the public types), :mod:`.command` (models,
config file and command line), :mod:`.spawn` (claim, spawn, handshake, record),
:mod:`.readiness` (every model loaded), :mod:`.stopping` and :mod:`.lookup`.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfserve_magic.client import ClientTls
from tfserve_magic.lifecycle.command import batching_file
from tfserve_magic.lifecycle.handle import (
    Failed,
    Launched,
    LaunchError,
    Reused,
    ServerHandle,
    ServerInfo,
    ServerSpec,
    StartResult,
    TimedOut,
    log_section,
)
from tfserve_magic.lifecycle.lookup import find, find_serving, list_servers, logs
from tfserve_magic.lifecycle.spawn import launch
from tfserve_magic.lifecycle.stopping import stop
from tfserve_magic.serving.status_errors import ConfigError

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
    "batching_file",
    "find",
    "find_serving",
    "launch",
    "list_servers",
    "log_section",
    "logs",
    "start",
    "stop",
]


def start(model_dir: str | None = None, *, name: str | None = None, config: str | None = None,
          port: int = 0, host: str = "127.0.0.1", gpu: str | None = None,
          gpu_memory_fraction: float | None = None, poll: float | None = None,
          timeout: float = 120.0, detach: bool = False, extra_flags: Sequence[str] = (),
          batching: bool = False, grpc_port: int = 0,
          verbose: bool = False, tls: ClientTls | None = None) -> ServerHandle:
    """Serve ``model_dir`` (a base path of version folders) or a models.config; returns a handle.

    ``batching=True`` turns on TF Serving's batching with notebook defaults (see
    :func:`batching_file`); ``verbose=True`` logs every request and TensorFlow's native
    start-up messages. ``tls``: the authority (and client certificate) this process reaches
    the server with when ``extra_flags`` serve it over TLS (``--ssl_config_file``,
    ``--rest_api_ssl``). Reuses a live server started the same way; raises
    :class:`LaunchError` with the server's own message when it cannot start."""
    if (model_dir is None) == (config is None):
        raise ConfigError("give either model_dir or config")
    result = launch(ServerSpec(model_dir, config, name, port, host, gpu, gpu_memory_fraction,
                               poll, detach, tuple(extra_flags), batching, grpc_port,
                               verbose, tls=tls), timeout)
    if isinstance(result, (Failed, TimedOut)):
        raise LaunchError(result)
    return result.handle
