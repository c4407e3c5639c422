"""The server side of a warm spare: a process that imports ahead what every server imports
(TensorFlow's runtime, the loader, both surfaces) and then waits for the command line of the
server it is to become.

A launcher starts ``python -m tfserve_magic.serving --spare`` with a pipe on stdin, and later
writes one JSON line to it: ``{"argv": [...flags], "secret": ..., "log": path, "cwd": path}``.
The spare then sends its stderr to that log, takes the management secret into its environment
(never argv), moves to the directory, and runs as ``tfserve-server FLAGS`` would, handshake
included, on the same stdout. End of file instead of orders (the launcher stopped it, or its
kernel exited or was killed, which closes the pipe) ends it: a spare never outlives its kernel.
No Jupyter imports.
"""

from __future__ import annotations

import json
import os
import sys

from tfserve_magic.serving.process.native_log import quiet_native_startup
from tfserve_magic.status import SECRET_ENV

__all__ = ["SPARE_FLAG", "await_orders"]

SPARE_FLAG = "--spare"


def _warm() -> None:
    """Import what a server imports on its way to serving (not configure: the GPU plan and the
    threads depend on the flags still to come)."""
    with quiet_native_startup(False):
        from tfserve_magic.serving.models.tensorflow_import import use_lean_tensorflow

        use_lean_tensorflow()
        import tfserve_magic.serving.api.grpc_service
        import tfserve_magic.serving.api.rest
        import tfserve_magic.serving.api.small_requests
        import tfserve_magic.serving.batching.servable
        import tfserve_magic.serving.models.loader
        import tfserve_magic.serving.process.server  # noqa: F401


def await_orders() -> list[str] | None:
    """Warm up, then wait for orders; the server's flags, or None when there will be none."""
    _warm()
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return None
    orders = json.loads(line)
    log = os.open(orders["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log, 2)
    os.close(log)
    os.chdir(orders["cwd"])
    os.environ[SECRET_ENV] = orders["secret"]
    nothing = os.open(os.devnull, os.O_RDONLY)  # the pipe is done with; a server reads nothing
    os.dup2(nothing, 0)
    os.close(nothing)
    return [str(flag) for flag in orders["argv"]]
