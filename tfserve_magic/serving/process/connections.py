"""The REST port's connections: accepted here, bounded in number and time, slow senders shed
first; each one an :class:`http1.Http1Protocol` that hands its requests to a claim (the small
model calls) or to Tornado's application.

Each connection is in one phase: waiting for a request's headers (new or keep-alive), receiving
its body, or being answered. Headers and bodies have deadlines, enforced by a sweep over the
phases a few times a second rather than a timer around every read.

When the connection count reaches its limit, or ``accept()`` finds the descriptor
table full, the connection that has waited longest without finishing its request is closed to
make room; connections being answered are never shed. With nothing to shed, accepting pauses
until a connection closes (or briefly, when descriptors are held elsewhere) instead of spinning
on a listening socket that stays readable. Each of these events is logged once per interval.
No TensorFlow, no Jupyter.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import resource
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

import tornado.httputil

from tfserve_magic.serving.process.body_budget import BodyBudget, default_budget
from tfserve_magic.serving.process.http1 import Exchange, Http1Protocol, Phase
from tfserve_magic.serving.safelog import Throttle, clean

__all__ = ["Claim", "GuardedHTTPServer", "default_max_connections"]

log = logging.getLogger(__name__)

_RESERVED_DESCRIPTORS = 64  # model files, logs and threads keep working at the limit
_ACCEPTS_PER_EVENT = 128  # Tornado's own bound: fairness with requests in flight
_SWEEP_SECONDS = 0.25  # how often overdue headers and bodies are looked for (at most)
_PAUSE_SECONDS = 0.5  # with nothing to shed, retry accept() after this (or on a close)
_MAX_HEADER_BYTES = 64 << 10  # Tornado's default limit for a request's start line and headers
_DIGITS = re.compile(r"[0-9]+")
_FULL = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def default_max_connections() -> int:
    """What the descriptor limit leaves after the descriptors already open and a reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 64
    budget = (soft if soft != resource.RLIM_INFINITY else 65536) - used - _RESERVED_DESCRIPTORS
    return max(8, budget)


# Takes a request by its start line and header fields (``Exchange.fields``), or leaves it to the
# application (None). A claimed delegate is not called with ``headers_received``.
Claim = Callable[[Exchange], tornado.httputil.HTTPMessageDelegate | None]


class GuardedHTTPServer:
    """The REST port's server: a connection limit, shedding, timeouts and a self-pausing
    accept loop, around connections that serve Tornado's ``application``."""

    def __init__(self, application: tornado.httputil.HTTPServerConnectionDelegate, *,
                 max_body_size: int, max_connections: int = 0, claim: Claim | None = None,
                 idle_connection_timeout: float | None = None,
                 body_timeout: float | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 max_buffered_bytes: int = 0) -> None:
        """``max_connections`` (0: what the descriptor limit allows); ``claim``, which may
        take a request by its start line and headers before the application's routing sees
        it (``serving.api.small_requests``). The two timeouts (keep-alive waits are header
        waits; by default an hour and none) are swept for. ``ssl_context``: HTTPS.
        ``max_buffered_bytes``: the budget for bodies held across connections (``body_budget``;
        0: sized to the machine)."""
        self.application = application
        self.claim = claim
        self._ssl = ssl_context
        self._draining: asyncio.Event | None = None  # set once the last connection is gone
        self._connecting = 0  # accepted, their transports (a TLS handshake) being made
        self.max_header_size = _MAX_HEADER_BYTES
        self.max_body_size = max_body_size
        self.bodies = BodyBudget(max_buffered_bytes or default_budget(max_body_size))
        self.reserve = self.bodies.reserve
        self.release = self.bodies.release
        header_timeout = idle_connection_timeout or 3600.0
        body_timeout = body_timeout or float("inf")
        self.max_connections = max_connections or default_max_connections()
        self._loop = asyncio.get_running_loop()
        self._phases: dict[Http1Protocol, tuple[str, float]] = {}
        # Accepted, its connection not made yet (the next loop turn): counted, and sheddable.
        self._pending: dict[socket.socket, float] = {}
        self._limits = {Phase.HEADERS: header_timeout, Phase.BODY: body_timeout}
        self._listeners: list[Callable[[bool], None]] = []
        self._paused: list[Callable[[], None]] = []
        self._events = Throttle(interval=10.0, max_causes=64)
        self.shed_count = 0
        self.timed_out_count = 0
        interval = min(_SWEEP_SECONDS, header_timeout / 4, body_timeout / 4)
        self._sweeper = self._loop.call_later(interval, self._sweep, interval)

    def stop(self) -> None:
        """Stop accepting and close the listening sockets (connections already open finish
        what they are doing)."""
        self._sweeper.cancel()
        self._stop_listening(accept_queued=False)

    def _stop_listening(self, *, accept_queued: bool) -> None:
        for remove in self._listeners:
            remove(accept_queued)
        self._listeners = []

    async def drain(self, grace: float) -> int:
        """Stop accepting (the connections the kernel already queued are taken first: their
        clients have sent their requests), close idle keep-alive connections, answer every
        request (each answer then says ``Connection: close`` and closes its connection), and
        wait up to ``grace`` seconds for the last connection to go; those still open then are
        cut. Returns how many were cut."""
        self._draining = asyncio.Event()
        self._stop_listening(accept_queued=True)
        for connection in list(self._phases):
            self._close_if_idle(connection)
        self._check_drained()
        if not self._draining.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._draining.wait(), grace)
        self._sweeper.cancel()
        left = list(self._phases)
        for connection in left:
            connection.abort()
        return len(left)

    def _close_if_idle(self, connection: Http1Protocol) -> None:
        if connection.kept_alive_idle and connection in self._phases:
            connection.close()

    def _sweep(self, interval: float) -> None:
        """Close the connections whose headers or body are overdue."""
        now = time.monotonic()
        overdue = [conn for conn, (phase, since) in self._phases.items()
                   if phase != Phase.ANSWERING and now - since > self._limits[phase]]
        for conn in overdue:
            phase = self._phases.pop(conn)[0]
            idle = phase == Phase.HEADERS and conn.idle
            conn.abort()
            if idle:  # every browser leaves kept-alive connections: routine, not a warning
                log.debug("Closed a connection idle for longer than %.0f s",
                          self._limits[phase])
                continue
            self.timed_out_count += 1
            self._note("timeout", "Closed a connection %s for longer than %.0f s (%d so far)",
                       phase, self._limits[phase], self.timed_out_count)
        self._sweeper = self._loop.call_later(interval, self._sweep, interval)

    # ---------------------------------------------------------------- connections

    def start_request(self, exchange: Exchange
                      ) -> tuple[tornado.httputil.HTTPMessageDelegate, bool]:
        if self._draining is not None:
            exchange.keep_alive = False  # answered, then closed: the server is going away
        delegate = self.claim(exchange) if self.claim else None
        if delegate is not None:
            return delegate, True
        return self.application.start_request(exchange.protocol, exchange), False

    def opened(self, connection: Http1Protocol) -> None:
        self._phases[connection] = (Phase.HEADERS, time.monotonic())

    def mark(self, connection: Http1Protocol, phase: str) -> None:
        if connection in self._phases:  # not one already shed or timed out
            self._phases[connection] = (phase, time.monotonic())
            if self._draining is not None and phase == Phase.HEADERS:
                # After a keep-alive answer begun before the drain: close, unless a request
                # pipelined behind it starts now (then its own answer closes).
                self._loop.call_soon(self._close_if_idle, connection)

    def closed(self, connection: Http1Protocol) -> None:
        if self._phases.pop(connection, None) is None:
            return
        self._check_drained()
        self._resume()

    def _check_drained(self) -> None:
        if self._draining is not None and not (self._phases or self._pending or
                                               self._connecting):
            self._draining.set()

    def malformed(self, connection: Http1Protocol, reason: str) -> None:
        # One line per kind of refusal and interval: the kind is the reason without the
        # client's own words or numbers, so a hostile client cannot make every line new.
        kind = _DIGITS.sub("N", ":".join(reason.split(":", 2)[:2]))[:60]
        self._note(f"malformed {kind}", "Refused a request from %s: %s", connection.context,
                   clean(reason[:300]))

    def _admit(self, sock: socket.socket) -> None:
        """A new connection, if there is room (or a waiting one can be shed for it)."""
        if len(self._phases) + len(self._pending) >= self.max_connections and \
                not self._shed_one("the limit"):
            sock.close()  # everyone is being answered: the newcomer waits for a retry
            self._note("refused", "Refused a connection: all %d are being answered",
                       self.max_connections)
            return
        self._pending[sock] = time.monotonic()
        self._loop.create_task(self._connect(sock))

    async def _connect(self, sock: socket.socket) -> None:
        if self._pending.pop(sock, None) is None:
            return  # shed before its turn came
        self._connecting += 1
        try:
            if self._ssl is None:
                await self._loop.connect_accepted_socket(lambda: Http1Protocol(self), sock)
            else:  # a TLS handshake gets the time a request's headers get
                await self._loop.connect_accepted_socket(
                    lambda: Http1Protocol(self), sock, ssl=self._ssl,
                    ssl_handshake_timeout=min(self._limits[Phase.HEADERS], 60.0))
        except OSError as exc:  # the client left before its transport was made, or failed
            # the TLS handshake (ssl.SSLError and the handshake's TimeoutError are OSErrors)
            sock.close()
            log.debug("A connection closed before it was set up: %s", exc)
        finally:
            self._connecting -= 1
            self._check_drained()

    def _shed_one(self, reason: str) -> bool:
        """Close the connection that has waited longest without finishing its request (one
        accepted a moment ago and not yet set up counts as waiting since its accept)."""
        waiting: list[tuple[float, Http1Protocol | socket.socket, str]] = [
            (since, conn, phase) for conn, (phase, since) in self._phases.items()
            if phase != Phase.ANSWERING]
        waiting += [(since, sock, Phase.HEADERS) for sock, since in self._pending.items()]
        if not waiting:
            return False
        _, oldest, phase = min(waiting, key=lambda item: item[0])
        if isinstance(oldest, socket.socket):
            del self._pending[oldest]
            oldest.close()
        else:
            del self._phases[oldest]
            oldest.abort()
        self.shed_count += 1
        self._note("shed", "Closed a connection %s to make room (%s; %d shed so far, "
                   "limit %d connections)", phase, reason, self.shed_count,
                   self.max_connections)
        return True

    def _note(self, cause: str, message: str, *args: Any) -> None:
        allowed, held = self._events.allow(cause)
        if allowed:
            log.warning("%s (%d more like this since the last line)", message % args, held)

    # ---------------------------------------------------------------- accepting

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            sock.setblocking(False)
            self._listeners.append(self._accept_on(sock))

    def _accept_on(self, sock: socket.socket) -> Callable[[bool], None]:
        loop = self._loop
        state = {"listening": True, "removed": False}

        def on_readable() -> None:
            for _ in range(_ACCEPTS_PER_EVENT):
                try:
                    connection, _address = sock.accept()
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
                self._admit(connection)

        def pause() -> None:
            if state["listening"]:
                loop.remove_reader(sock)
                state["listening"] = False
                self._paused.append(resume)
                loop.call_later(_PAUSE_SECONDS, resume)

        def resume() -> None:
            if not state["listening"] and not state["removed"]:
                loop.add_reader(sock, on_readable)
                state["listening"] = True

        def remove(accept_queued: bool) -> None:
            if accept_queued:
                on_readable()
            if state["listening"]:
                loop.remove_reader(sock)
            state["listening"], state["removed"] = False, True
            sock.close()

        loop.add_reader(sock, on_readable)
        return remove

    def _resume(self) -> None:
        paused, self._paused = self._paused, []
        for resume in paused:
            resume()
