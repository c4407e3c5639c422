"""The HTTP server's connections: bounded in number and time, slow senders shed first.

Each connection is in one phase: waiting for a request's headers (new or keep-alive), receiving
its body, or being answered. Headers and bodies have deadlines, enforced by a sweep over the
phases a few times a second (Tornado's own header and body timeouts would arm a timer around
every read of every request, a tenth of a small request's CPU).

When the connection count reaches its limit, or ``accept()`` finds the descriptor
table full, the connection that has waited longest without finishing its request is closed to
make room; connections being answered are never shed. With nothing to shed, accepting pauses
until a connection closes (or briefly, when descriptors are held elsewhere) instead of spinning
on a listening socket that stays readable. Each of these events is logged once per interval.
No TensorFlow, no Jupyter.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import resource
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import tornado.httpserver
import tornado.httputil
from tornado.ioloop import IOLoop, PeriodicCallback

from tfserve_magic.serving.safelog import Throttle

__all__ = ["Claim", "GuardedHTTPServer", "default_max_connections"]

log = logging.getLogger(__name__)

_RESERVED_DESCRIPTORS = 64  # model files, logs and threads keep working at the limit
_ACCEPTS_PER_EVENT = 128  # Tornado's own bound: fairness with requests in flight
_SWEEP_SECONDS = 0.25  # how often overdue headers and bodies are looked for (at most)
_PAUSE_SECONDS = 0.5  # with nothing to shed, retry accept() after this (or on a close)
_FULL = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class _Phase(enum.Enum):
    HEADERS = "waiting for headers"
    BODY = "receiving a body"
    ANSWERING = "being answered"


def default_max_connections() -> int:
    """What the descriptor limit leaves after the descriptors already open and a reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 64
    budget = (soft if soft != resource.RLIM_INFINITY else 65536) - used - _RESERVED_DESCRIPTORS
    return max(8, budget)


Claim = Callable[[tornado.httputil.RequestStartLine, tornado.httputil.HTTPHeaders,
                  tornado.httputil.HTTPConnection], tornado.httputil.HTTPMessageDelegate | None]


class _Request(tornado.httputil.HTTPMessageDelegate):
    """One request on a connection: notes when its headers and its body have arrived, and
    passes it to the delegate that claims it (or to the application's routing)."""

    def __init__(self, server: GuardedHTTPServer, server_conn: object,
                 request_conn: tornado.httputil.HTTPConnection) -> None:
        self._server = server
        self._server_conn = server_conn
        self._request_conn = request_conn
        self._inner: tornado.httputil.HTTPMessageDelegate | None = None

    def headers_received(self, start_line: Any, headers: Any) -> Any:
        server = self._server
        server.mark(self._server_conn, _Phase.BODY)
        inner = server.claim(start_line, headers, self._request_conn) if server.claim else None
        if inner is None:
            inner = server.full_request(self._server_conn, self._request_conn)
        self._inner = inner
        return inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        assert self._inner is not None
        return self._inner.data_received(chunk)

    def finish(self) -> None:
        assert self._inner is not None
        self._server.mark(self._server_conn, _Phase.ANSWERING)
        self._inner.finish()

    def on_connection_close(self) -> None:
        if self._inner is not None:
            self._inner.on_connection_close()


class GuardedHTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTPServer with a connection limit, shedding and a self-pausing accept loop."""

    def initialize(self, *args: Any, max_connections: int = 0, claim: Claim | None = None,
                   idle_connection_timeout: float | None = None,
                   body_timeout: float | None = None, **kwargs: Any) -> None:
        """Tornado's arguments, and: ``max_connections`` (0: what the descriptor limit
        allows); ``claim``, which may take a request by its start line and headers before the
        application's routing sees it (``serving.api.small_requests``). The two timeouts
        (keep-alive waits are header waits; Tornado's defaults: an hour, none) are swept for."""
        super().initialize(*args, **kwargs)
        self.conn_params.header_timeout = None  # no timer around each read: swept instead
        header_timeout = idle_connection_timeout or 3600.0
        body_timeout = body_timeout or float("inf")
        self.claim = claim
        self.max_connections = max_connections or default_max_connections()
        self._phases: dict[Any, tuple[_Phase, float]] = {}
        self._limits = {_Phase.HEADERS: header_timeout, _Phase.BODY: body_timeout}
        self._paused: list[Callable[[], None]] = []
        self._events = Throttle(interval=10.0)
        self.shed_count = 0
        self.timed_out_count = 0
        interval = min(_SWEEP_SECONDS, header_timeout / 4, body_timeout / 4)
        self._sweeper = PeriodicCallback(self._sweep, interval * 1000)
        self._sweeper.start()

    def stop(self) -> None:
        self._sweeper.stop()
        super().stop()

    def _sweep(self) -> None:
        """Close the connections whose headers or body are overdue."""
        now = time.monotonic()
        overdue = [conn for conn, (phase, since) in self._phases.items()
                   if phase is not _Phase.ANSWERING and now - since > self._limits[phase]]
        for conn in overdue:
            phase = self._phases.pop(conn)[0]
            conn.stream.close()
            self.timed_out_count += 1
            self._note("timeout", "Closed a connection %s for longer than %.0f s (%d so far)",
                       phase.value, self._limits[phase], self.timed_out_count)

    # ---------------------------------------------------------------- phases

    def start_request(self, server_conn: object,
                      request_conn: tornado.httputil.HTTPConnection) -> Any:
        self._phases[server_conn] = (_Phase.HEADERS, time.monotonic())
        return _Request(self, server_conn, request_conn)

    def full_request(self, server_conn: object,
                     request_conn: tornado.httputil.HTTPConnection) -> Any:
        """The application's delegate for a request nobody claimed."""
        return super().start_request(server_conn, request_conn)

    def mark(self, server_conn: object, phase: _Phase) -> None:
        if server_conn in self._phases:
            self._phases[server_conn] = (phase, time.monotonic())

    def on_close(self, server_conn: object) -> None:
        self._phases.pop(server_conn, None)
        super().on_close(server_conn)
        self._resume()

    def handle_stream(self, stream: Any, address: Any) -> None:
        if len(self._phases) >= self.max_connections and not self._shed_one("the limit"):
            stream.close()  # everyone is being answered: the newcomer waits for a retry
            self._note("refused", "Refused a connection: all %d are being answered",
                       self.max_connections)
            return
        super().handle_stream(stream, address)

    def _shed_one(self, reason: str) -> bool:
        """Close the connection that has waited longest without finishing its request."""
        waiting = [(since, conn) for conn, (phase, since) in self._phases.items()
                   if phase is not _Phase.ANSWERING]
        if not waiting:
            return False
        _, conn = min(waiting, key=lambda item: item[0])
        phase = self._phases.pop(conn)[0]
        conn.stream.close()
        self.shed_count += 1
        self._note("shed", "Closed a connection %s to make room (%s; %d shed so far, "
                   "limit %d connections)", phase.value, reason, self.shed_count,
                   self.max_connections)
        return True

    def _note(self, cause: str, message: str, *args: Any) -> None:
        allowed, held = self._events.allow(cause)
        if allowed:
            log.warning("%s (%d more like this since the last line)", message % args, held)

    # ---------------------------------------------------------------- accepting

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)

    def _accept_on(self, sock: socket.socket) -> Callable[[], None]:
        loop = IOLoop.current()
        state = {"listening": True, "removed": False}

        def on_readable(fd: Any, events: int) -> None:
            for _ in range(_ACCEPTS_PER_EVENT):
                try:
                    connection, address = sock.accept()
                except (BlockingIOError, InterruptedError):
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    if exc.errno not in _FULL:
                        raise
                    if self._shed_one(f"accept() failed: {exc.strerror}"):
                        continue
                    self._note("full", "accept() failed (%s) and no connection can be shed; "
                               "pausing new connections", exc.strerror)
                    pause()
                    return
                self._handle_connection(connection, address)

        def pause() -> None:
            if state["listening"]:
                loop.remove_handler(sock)
                state["listening"] = False
                self._paused.append(resume)
                loop.call_later(_PAUSE_SECONDS, resume)

        def resume() -> None:
            if not state["listening"] and not state["removed"]:
                loop.add_handler(sock, on_readable, IOLoop.READ)
                state["listening"] = True

        def remove() -> None:
            if state["listening"]:
                loop.remove_handler(sock)
            state["listening"], state["removed"] = False, True

        loop.add_handler(sock, on_readable, IOLoop.READ)
        return remove

    def _resume(self) -> None:
        paused, self._paused = self._paused, []
        for resume in paused:
            resume()
