"""Assembling and running one server process: config -> sockets -> handshake -> models -> serve.

The order is the launcher contract: bind the REST socket and the gRPC port first (port 0 picks a
free one), print one JSON handshake line on stdout, then import TensorFlow, configure devices and
load models while already answering the status API on both. SIGTERM/SIGINT stop the server
gracefully (``drain``: requests in flight are answered first); with ``--exit_with_parent_pid`` it
also stops when that process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tornado.netutil

from tfserve_magic import __version__
from tfserve_magic.pids import pid_alive
from tfserve_magic.serving.api.origins import AccessPolicy
from tfserve_magic.serving.batching.parameters import BatchingConfig, load_batching_file
from tfserve_magic.serving.models.config import (
    ModelConfig,
    MonitoringSettings,
    parse_monitoring_config,
    read_model_config_file,
    single_model_config,
)
from tfserve_magic.serving.models.label_rules import unavailable_label_message
from tfserve_magic.serving.models.tensorflow_import import use_lean_tensorflow
from tfserve_magic.serving.options import ServerOptions
from tfserve_magic.serving.process import loop as event_loop
from tfserve_magic.serving.process.connections import GuardedHTTPServer
from tfserve_magic.serving.process.drain import drain
from tfserve_magic.serving.process.native_log import quiet_native_startup
from tfserve_magic.serving.process.tls import TlsSettings, read_ssl_config
from tfserve_magic.serving.status_errors import ConfigError, FailedPrecondition
from tfserve_magic.status import SECRET_ENV, Handshake

if TYPE_CHECKING:
    from tfserve_magic.serving.api.context import ServerContext
    from tfserve_magic.serving.batching.servable import Batching
    from tfserve_magic.serving.models.manager import ServableManager
    from tfserve_magic.serving.models.watcher import Watcher
    from tfserve_magic.serving.process.grpc_server import GrpcListener

__all__ = ["PreparedServer", "prepare", "run"]

log = logging.getLogger("tfserve_magic.serving")


class PreparedServer:
    """Validated configuration plus bound sockets: everything that can fail before serving."""

    def __init__(self, options: ServerOptions, models: list[ModelConfig], config_text: str | None,
                 monitoring: MonitoringSettings, sockets: list[socket.socket],
                 batching: BatchingConfig | None = None, tls: TlsSettings | None = None) -> None:
        self.options = options
        self.tls = tls  # None: plaintext (no --ssl_config_file)
        self.batching = batching  # None: batching off
        self.models = models
        self.config_text = config_text
        self.monitoring = monitoring
        self.sockets = sockets
        self.grpc_port: int | None = None  # known once the gRPC listener is bound

    @property
    def port(self) -> int:
        port: int = self.sockets[0].getsockname()[1]
        return port

    def handshake(self) -> Handshake:
        return Handshake(pid=os.getpid(), host=self.options.rest_api_host,
                         rest_api_port=self.port, grpc_port=self.grpc_port,
                         grpc_socket_path=self.options.grpc_socket_path or None,
                         version=__version__,
                         rest_scheme="https" if self.options.rest_api_ssl else "http",
                         grpc_tls=self.tls is not None,
                         models=tuple(m.name for m in self.models))


def prepare(options: ServerOptions) -> PreparedServer:
    """Read configs and bind. Raises ConfigError with the message users see."""
    config_text = None
    if options.model_config_file:
        config_text, models = read_model_config_file(options.model_config_file)
    else:
        if not os.path.isabs(options.model_base_path) and "://" not in options.model_base_path:
            options = options.replace(model_base_path=os.path.abspath(options.model_base_path))
        models = single_model_config(options.model_name, options.model_base_path)
    monitoring = parse_monitoring_config(options.monitoring_config_file)
    tls = read_ssl_config(options.ssl_config_file) if options.ssl_config_file else None
    batching = None
    if options.enable_batching:
        batching = (load_batching_file(options.batching_parameters_file)
                    if options.batching_parameters_file else BatchingConfig())
    if not options.allow_version_labels_for_unavailable_models:
        for model in models:
            for _label, version in sorted(model.labels.items()):
                # At startup nothing is loaded yet, so TF Serving refuses any label.
                raise ConfigError(
                    f"{unavailable_label_message(model.name, version)} (start with "
                    "--allow_version_labels_for_unavailable_models to set labels in the "
                    "startup config)")
    try:
        sockets = tornado.netutil.bind_sockets(options.rest_api_port, options.rest_api_host)
    except OSError as exc:
        raise ConfigError(f"Failed to start HTTP Server on {options.rest_api_host}:"
                          f"{options.rest_api_port}: {exc.strerror}") from None
    # Several addresses (IPv4 and IPv6 for "localhost") must share one port.
    return PreparedServer(options, models, config_text, monitoring, sockets, batching, tls)


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if not pid_alive(pid):
            log.info("Parent process %d is gone; stopping", pid)
            stop.set()
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def _main(prepared: PreparedServer) -> None:
    from tfserve_magic.serving.process.grpc_server import bind

    try:
        listener = bind(prepared.options, os.cpu_count() or 1, prepared.tls)
    except ConfigError:
        for sock in prepared.sockets:
            sock.close()
        raise
    prepared.grpc_port = listener.port
    _announce(prepared)
    try:
        await _serve(prepared, listener)
    finally:
        await listener.stop()


@dataclass
class _Parts:
    """The objects one server runs with, and the order they stop in."""

    ctx: ServerContext
    manager: ServableManager
    watcher: Watcher
    loads: ThreadPoolExecutor
    batching: Batching | None

    def close(self) -> None:
        if self.ctx.request_log is not None:
            self.ctx.request_log.close()
        self.manager.unload_all()
        if self.batching:
            self.batching.stop()
        self.ctx.executor.shutdown(wait=False, cancel_futures=True)
        self.loads.shutdown(wait=False, cancel_futures=True)


async def _serve(prepared: PreparedServer, listener: GrpcListener) -> None:
    """Build the server's parts, open both surfaces, load the models, run the background tasks
    until SIGTERM / SIGINT (or the parent is gone), then shut down."""
    parts = _build(prepared)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    http_server: GuardedHTTPServer | None = None
    tasks: list[asyncio.Task[None]] = []
    drained = False
    # Whatever fails after the parts exist still stops their threads and closes the REST
    # sockets: a server that cannot serve exits with its error instead of hanging on them.
    try:
        http_server = _serve_rest(prepared, parts.ctx)
        await listener.start(parts.ctx)
        for flag in prepared.options.ignored_flags:
            log.warning("Flag --%s is accepted for compatibility and ignored", flag)
        try:
            parts.manager.apply_config(prepared.models, initial=True)
        except FailedPrecondition as exc:  # only when labels are allowed but still invalid
            log.error("%s", exc.message)
        tasks = [loop.create_task(task) for task in _background(prepared.options, parts, stop)]
        await stop.wait()
        await drain(http_server, listener, prepared.options.shutdown_grace_seconds)
        drained = True
    finally:
        for task in tasks:
            task.cancel()
        if http_server is not None and not drained:
            http_server.stop()
        parts.close()


def _build(prepared: PreparedServer) -> _Parts:
    """Import the TensorFlow side (its native start-up noise dropped unless --verbose),
    configure devices, and make what both surfaces share: metrics, pools, manager, watcher."""
    options = prepared.options
    with quiet_native_startup(options.verbose):
        from tfserve_magic.serving.api.context import ServerContext
        from tfserve_magic.serving.api.request_log import RequestLog
        from tfserve_magic.serving.api.warmup import replay_version
        from tfserve_magic.serving.metrics import ServerMetrics
        from tfserve_magic.serving.models.loader import (  # TensorFlow loads here
            SavedModelLoader,
            configure_tensorflow,
            open_tfrecord,
            read_tfrecords,
            tensor_to_array,
        )
        from tfserve_magic.serving.models.manager import ServableManager
        from tfserve_magic.serving.models.watcher import Watcher

        configure_tensorflow(options)
    metrics = ServerMetrics()
    workers = ThreadPoolExecutor(max_workers=max(4, (os.cpu_count() or 1) * 2),
                                 thread_name_prefix="tfserve-request")
    loads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfserve-load")
    batching = None
    if prepared.batching is not None:
        from tfserve_magic.serving.batching.servable import Batching

        batching = Batching(prepared.batching, options.enable_per_model_batching_parameters,
                            metrics.observe_batch)
    manager = ServableManager(
        SavedModelLoader(options, functools.partial(
            replay_version, read_records=read_tfrecords, to_array=tensor_to_array,
            iterations=options.num_request_iterations_for_warmup)), loads,
        max_load_retries=options.max_num_load_retries,
        load_retry_interval=options.load_retry_interval_seconds,
        allow_labels_for_unavailable=options.allow_version_labels_for_unavailable_models,
        on_load=lambda model, version, ok: metrics.observe_load(f"{model}/{version}", ok),
        wrap=batching.wrap if batching else None)
    watcher = Watcher(manager, options.model_config_file, prepared.config_text)

    async def reload() -> None:
        await watcher.poll_config_once(force=True)
        watcher.poll_filesystem_once()

    ctx = ServerContext(options=options, manager=manager, executor=workers, metrics=metrics,
                        reload=reload, started_at=time.time(), pid=os.getpid(),
                        version=__version__, access=AccessPolicy(
                            options.rest_api_host, options.allowed_hosts,
                            # Out of the environment: nothing this process starts inherits it.
                            os.environ.pop(SECRET_ENV, "")),
                        prometheus_path=prepared.monitoring.prometheus_path
                        if prepared.monitoring.prometheus_enabled else None,
                        request_log=RequestLog(
                            manager.config_of, open_tfrecord,
                            max_file_bytes=options.request_log_file_bytes,
                            max_files=options.request_log_max_files))
    return _Parts(ctx, manager, watcher, loads, batching)


def _serve_rest(prepared: PreparedServer, ctx: ServerContext) -> GuardedHTTPServer:
    """The REST surface on the sockets bound before the handshake."""
    from tfserve_magic.serving.api.rest import make_app
    from tfserve_magic.serving.api.small_requests import SmallRequests
    from tfserve_magic.serving.process.tls import rest_ssl_context

    options = prepared.options
    https = options.rest_api_ssl and prepared.tls is not None
    # The connection layer's cap on a body: 1 MiB above --max_request_bytes, which the handlers
    # enforce first with their own message; the body budget always admits one such body.
    max_body = options.max_request_bytes + (1 << 20)
    http_server = GuardedHTTPServer(
        make_app(ctx), max_body_size=max_body,
        idle_connection_timeout=options.http_header_timeout_seconds,
        body_timeout=options.http_body_timeout_seconds,
        max_connections=options.max_connections, claim=SmallRequests(ctx).claim,
        ssl_context=rest_ssl_context(prepared.tls) if https and prepared.tls else None,
        max_buffered_bytes=options.max_buffered_request_bytes and max(
            options.max_buffered_request_bytes, max_body))
    http_server.add_sockets(prepared.sockets)
    log.info("Serving REST on %s://%s:%d (at most %d connections and %d MiB of request "
             "bodies%s)", "https" if https else "http", options.rest_api_host, prepared.port,
             http_server.max_connections, http_server.bodies.limit >> 20,
             ", client certificates required" if https and prepared.tls and
             prepared.tls.client_verify else "")
    return http_server


def _background(options: ServerOptions, parts: _Parts,
                stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
    """What runs beside the surfaces: file-system and config polling, the parent watch, and
    the collector freeze once the first loads are done."""
    work = []
    if options.file_system_poll_wait_seconds > 0:
        work.append(parts.watcher.run_filesystem(options.file_system_poll_wait_seconds))
    if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
        work.append(parts.watcher.run_config(options.model_config_file_poll_wait_seconds))
    if options.exit_with_parent_pid:
        work.append(_watch_parent(options.exit_with_parent_pid, stop))
    work.append(_freeze_after_initial_loads(parts.manager))
    return work


async def _freeze_after_initial_loads(manager: ServableManager) -> None:
    await manager.wait_idle()
    # Large JSON bodies make many small objects; keeping TensorFlow's long-lived objects out
    # of the collector's way halves large-request latency (measured with `make bench`).
    gc.freeze()


def _announce(prepared: PreparedServer) -> None:
    sys.stdout.write(json.dumps(prepared.handshake().to_json()) + "\n")
    sys.stdout.flush()
    # Nothing else may reach stdout: the launcher stops reading it after the handshake.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def run(options: ServerOptions) -> int:
    # Before anything imports from tensorflow (the gRPC protos do too): its runtime, not its API.
    use_lean_tensorflow()
    try:
        prepared = prepare(options)
    except ConfigError as exc:
        print(f"tfserve-server: error: {exc}", file=sys.stderr)
        return 1
    log.info("Event loop: %s", event_loop.loop_name(options.event_loop))
    try:
        event_loop.run(_main(prepared), options.event_loop)
    except ConfigError as exc:  # a gRPC address that cannot be bound; --gpu_devices naming a
        # GPU that is not there
        print(f"tfserve-server: error: {exc}", file=sys.stderr)
        return 1
    return 0
