"""Graceful shutdown: what SIGTERM does to a serving process.

Kubernetes sends SIGTERM on every rolling update and scale-down, then waits its
``terminationGracePeriodSeconds`` before SIGKILL. Here SIGTERM (or SIGINT, or the parent going
away) stops accepting on both ports at once, reports the server not ready (the listening REST
socket is closed, so a readiness probe is refused; gRPC health says NOT_SERVING), closes idle
keep-alive connections and lets every request already begun, REST or gRPC, finish within
``--shutdown_grace_seconds``; answers sent meanwhile say ``Connection: close``. Only then are the
models unloaded and the process exits 0. No TensorFlow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfserve_magic.serving.process.connections import GuardedHTTPServer
    from tfserve_magic.serving.process.grpc_server import GrpcListener

__all__ = ["drain"]

log = logging.getLogger("tfserve_magic.serving")


async def drain(rest: GuardedHTTPServer, grpc: GrpcListener, grace: float) -> int:
    """Stop both surfaces gracefully; returns how many REST connections were still busy when
    the grace period ran out (and were cut)."""
    started = time.monotonic()
    log.info("Shutting down: no new connections; requests in flight have up to %g s to finish "
             "(--shutdown_grace_seconds)", grace)
    cut, _ = await asyncio.gather(rest.drain(grace), grpc.stop(grace))
    if cut:
        log.warning("Grace period of %g s over: %d REST connection(s) still busy were closed",
                    grace, cut)
    else:
        log.info("Requests in flight answered in %.2f s", time.monotonic() - started)
    return cut
