"""The gRPC listener: ``grpc.aio`` on the server's asyncio loop (the one Tornado runs on).

Binding is split from starting, as for REST: :func:`bind` takes ``--port`` (0 picks a free one)
on ``--grpc_host`` (default: the REST host, 127.0.0.1) and ``--grpc_socket_path`` before the
handshake line, without the generated protos (so without TensorFlow); :meth:`GrpcListener.start`
registers the services once the models' side is ready. Message size limits are TF Serving's
(``server.cc``: INT32_MAX both ways) unless ``--grpc_channel_arguments`` says otherwise; the
standard ``grpc.health.v1`` service answers when ``--enable_grpc_healthcheck_service``.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from tfserve_magic.serving.options import ServerOptions
from tfserve_magic.serving.process.flags import parse_channel_arguments
from tfserve_magic.serving.process.grpc_health import HealthService, ServingStatus
from tfserve_magic.serving.process.tls import TlsSettings, grpc_credentials
from tfserve_magic.serving.status_errors import ConfigError

if TYPE_CHECKING:
    from tfserve_magic.serving.api.context import ServerContext

__all__ = ["GrpcListener", "bind"]

log = logging.getLogger(__name__)

_INT32_MAX = 2**31 - 1
# TF Serving marks these two names SERVING (plus "", the server as a whole).
_HEALTH_SERVICES = ("", "ModelService", "PredictionService")


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class GrpcListener:
    """A bound, not yet started, gRPC server."""

    server: grpc.aio.Server
    host: str
    port: int
    socket_path: str
    executor: ThreadPoolExecutor
    health: HealthService | None
    tls: TlsSettings | None = None
    threads: int = 0  # the executor's size, as logged
    stopped: bool = False

    async def start(self, ctx: ServerContext) -> None:
        from tfserve_magic.serving.api.grpc_service import add_services  # generated protos

        add_services(self.server, ctx, self.executor)
        await self.server.start()
        if self.health is not None:
            for name in _HEALTH_SERVICES:
                self.health.set(name, ServingStatus.SERVING)
        where = f"{_address(self.host, self.port)}" + (
            f" and unix:{self.socket_path}" if self.socket_path else "")
        security = "plaintext" if self.tls is None else (
            "TLS, client certificates required" if self.tls.client_verify else "TLS")
        log.info("Serving gRPC on %s (%s, %d threads)", where, security, self.threads)

    async def stop(self, grace: float = 1.0) -> None:
        """Report NOT_SERVING, stop accepting, let the calls in flight finish within ``grace``
        seconds (then they are cancelled). Once: a second call returns at once."""
        if self.stopped:
            return
        self.stopped = True
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.executor.shutdown(wait=False, cancel_futures=True)


def _threads(options: ServerOptions, cpus: int) -> int:
    return options.grpc_max_threads if options.grpc_max_threads > 0 else 4 * cpus


def bind(options: ServerOptions, cpus: int, tls: TlsSettings | None = None) -> GrpcListener:
    """Create the server and bind its addresses (over TLS on both, as TF Serving, when
    ``tls``); must run on the serving loop."""
    settings: dict[str, int | str] = {"grpc.max_receive_message_length": _INT32_MAX,
                                      "grpc.max_send_message_length": _INT32_MAX,
                                      "grpc.so_reuseport": 0}
    settings.update(parse_channel_arguments(options.grpc_channel_arguments))
    threads = _threads(options, cpus)
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tfserve-grpc")
    server = grpc.aio.server(options=list(settings.items()))
    host = options.grpc_host or options.rest_api_host
    credentials = grpc_credentials(tls) if tls is not None else None

    def add(address: str) -> int:
        port: int = server.add_insecure_port(address) if credentials is None else \
            server.add_secure_port(address, credentials)
        return port

    try:
        port = add(_address(host, options.port))
        if options.grpc_socket_path:
            add(f"unix:{options.grpc_socket_path}")
    except RuntimeError as exc:
        executor.shutdown(wait=False)
        where = (f"{_address(host, options.port)}" if not options.grpc_socket_path
                 else f"{_address(host, options.port)} / unix:{options.grpc_socket_path}")
        raise ConfigError(f"Failed to start gRPC server on {where}: {exc}") from None
    servicer = None
    if options.enable_grpc_healthcheck_service:
        servicer = HealthService()
        servicer.add_to_server(server)
    return GrpcListener(server, host, port, options.grpc_socket_path, executor, servicer, tls,
                        threads)

