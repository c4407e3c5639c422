"""One HTTP/1.1 connection of the REST port: requests parsed in C by ``httptools`` (llhttp,
what uvicorn uses) on an asyncio protocol, and handed to Tornado through its own
``HTTPConnection`` / ``HTTPMessageDelegate`` interfaces, so Tornado's ``Application`` and
handlers serve them unchanged. Tornado's ``HTTP1Connection`` reads and parses headers in Python
and arms an epoll change per request: about 200 us of a small request's CPU here, where this
costs about 15 (``benchmarks/peers.py``; the README has the numbers).

What a client sees is what Tornado's connection gives: keep-alive as HTTP/1.0 and 1.1 say,
pipelined requests answered in order, ``100 (Continue)`` when asked for, gzip bodies inflated
(``gzip_body``; ``X-Consumed-Content-Encoding`` says so, a malformed one is a 400),
``400 Bad Request`` and a close for what cannot be parsed, a close when headers or a body
outgrow their limits, and Tornado's flow control: a
delegate that returns a future from ``headers_received`` or ``data_received`` gets nothing more
until it resolves (``flow_control``). The connection's owner (``connections``) tracks each
connection's phase for its timeouts and limits.

RFC 9112 as uvicorn applies it: field values lose surrounding whitespace; ``Connection`` is a
list of tokens (``keep-alive, close`` closes); an HTTP/1.0 request with ``Transfer-Encoding``
is answered, then closed; an absolute-form target (``GET http://host/path``) is served as its
path, its authority taking the place of ``Host``; an HTTP/1.1 request without ``Host``, or
with more than one, is a 400, on both request paths alike; a transfer coding other than
``chunked`` is a 501; an answer that says ``Connection: close`` closes.

:class:`Exchange` implements what Tornado's ``web`` and ``httputil`` use of a connection, not
only the ``HTTPConnection`` interface: ``set_close_callback``, ``detach`` and ``stream``
(``tests/serving/process/test_http_interfaces.py`` reads Tornado's source to keep it so). No
TensorFlow, no Jupyter.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import httptools
import orjson
import tornado.httputil
import tornado.iostream

from tfserve_magic.serving.process.flow_control import FlowControl
from tfserve_magic.serving.process.gzip_body import Inflating
from tfserve_magic.status import reason_phrase

__all__ = ["SMALL_BODY", "ConnectionOwner", "Exchange", "Http1Protocol", "Phase"]

log = logging.getLogger(__name__)

_CONTINUE = b"HTTP/1.1 100 (Continue)\r\n\r\n"
SMALL_BODY = 64 << 10  # bodies this small are always admitted: good small requests go on
_HEADERS, _BODY, _END, _ERROR = 0, 1, 2, 3  # parsed events waiting for their delegate


class _Stop(Exception):
    """Raised from a parser callback to stop parsing: a limit broke, its event is queued."""


class Phase:
    """Where a connection is, for its owner's timeouts and limits."""
    HEADERS = "waiting for headers"  # a new or kept-alive connection between requests too
    BODY = "receiving a body"
    ANSWERING = "being answered"


class ConnectionOwner(Protocol):
    """What a connection needs from the server that accepted it."""

    max_header_size: int
    max_body_size: int

    def start_request(self, exchange: Exchange
                      ) -> tuple[tornado.httputil.HTTPMessageDelegate, bool]:
        """The delegate that takes this request, and whether it was claimed by its start line
        and fields (then it is not given Tornado's headers: it has what it needs)."""

    def opened(self, connection: Http1Protocol) -> None:
        """A new connection, waiting for its first request's headers."""

    def mark(self, connection: Http1Protocol, phase: str) -> None:
        """The connection entered ``phase``."""

    def closed(self, connection: Http1Protocol) -> None:
        """The connection is gone."""

    def malformed(self, connection: Http1Protocol, reason: str) -> None:
        """A request could not be parsed or broke a limit (logged, throttled)."""

    def reserve(self, size: int, small: bool) -> str | None:
        """Count ``size`` more bytes of request bodies held in memory; None when they fit the
        budget (a ``small`` body always does), else why not (the request gets a 503)."""

    def release(self, size: int) -> None:
        """Bytes counted by ``reserve`` are no longer held."""


class _Context:
    """Tornado's per-connection context: who is on the other end."""

    __slots__ = ("address", "protocol", "remote_ip")

    def __init__(self, address: Any) -> None:
        self.address = address
        self.remote_ip = address[0] if isinstance(address, tuple) and address else "0.0.0.0"
        self.protocol = "http"

    def __str__(self) -> str:
        return str(self.remote_ip)


class Http1Protocol(asyncio.Protocol):
    """One client connection: parses its bytes and runs its requests one after another."""

    def __init__(self, owner: ConnectionOwner) -> None:
        self._owner = owner
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._flow: FlowControl | None = None
        self.context = _Context(None)
        self._events: deque[tuple[int, Any]] = deque()  # parsed, not yet delivered
        self._exchange: Exchange | None = None  # the request being received or answered
        self._waiting = False  # a delegate's future has not resolved yet
        self._pumping = False
        self._in_headers = False  # between requests: nothing pending
        self._began_here = False
        self._header_bytes = 0
        self._url = b""
        self._header_list: list[tuple[bytes, bytes]] = []
        self._body_bytes = 0
        self._hold = _Hold(owner)  # the body bytes of the request being parsed
        self._stopped_parsing = False  # an upgrade or an error: nothing more is read
        self._answered = False  # at least one request answered (then idle means kept alive)
        self.is_closed = False

    # ---------------------------------------------------------------- transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._flow = FlowControl(self._transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.context = _Context(transport.get_extra_info("peername"))
        self._owner.opened(self)

    def _clear_events(self) -> None:
        """Drop what was parsed and not delivered, and the body bytes it held."""
        for kind, value in self._events:
            if kind == _HEADERS:
                value[-1].release()
        self._events.clear()
        self._hold.release()

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_closed = True
        self._clear_events()
        if self._flow is not None:
            self._flow.close()  # nobody waits for a drain that cannot come
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            exchange.connection_lost()
        self._owner.closed(self)

    def eof_received(self) -> bool:
        """The client shut its side: answer the requests it sent whole, then close; a request
        cut short can never be answered, so then close at once (False: the transport does)."""
        self._stopped_parsing = True
        exchange = self._exchange
        if exchange is not None and not exchange.reading:
            return True  # being answered
        return any(kind == _END and value is None for kind, value in self._events)

    def pause_writing(self) -> None:
        if self._flow is not None:
            self._flow.pause_writing()

    def resume_writing(self) -> None:
        if self._flow is not None:
            self._flow.resume_writing()

    def close(self) -> None:
        """Close after what was written has left (not waiting for the client)."""
        if not self.is_closed and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close now, dropping anything not yet sent."""
        if not self.is_closed and self._transport is not None:
            self._transport.abort()

    def send(self, data: bytes) -> Awaitable[None] | None:
        """Write; a future when the transport asked us to wait for it to drain."""
        if self.is_closed or self._transport is None or self._transport.is_closing():
            return None
        self._transport.write(data)
        return self._flow.drain() if self._flow is not None else None

    def detach(self) -> asyncio.Transport:
        """Stop HTTP processing and hand over the transport (Tornado's ``detach``, for a
        protocol that takes the connection over; the REST API has none)."""
        assert self._transport is not None
        self._stopped_parsing = True
        self._clear_events()
        self._exchange = None
        self._owner.closed(self)
        return self._transport

    @property
    def idle(self) -> bool:
        """No request begun since the last answer (or since the connection opened): a
        browser's kept-alive connection, not a client sending headers slowly."""
        return not self._in_headers and not self._events and self._exchange is None

    @property
    def kept_alive_idle(self) -> bool:
        """Idle after an answer (a fresh connection's client is about to send a request)."""
        return self._answered and self.idle

    # ---------------------------------------------------------------- parsing

    def data_received(self, data: bytes) -> None:
        if self._stopped_parsing:
            return
        self._began_here = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._stopped_parsing = True  # no protocol upgrades: answer, then close
        except httptools.HttpParserError as exc:
            if not self._stopped_parsing:  # else a limit broke: its event is queued
                cause = exc.__context__ if isinstance(exc.__context__, ValueError) else exc
                self._stop(400, f"Malformed HTTP request: {cause or type(cause).__name__}")
        if self._in_headers and not self._stopped_parsing:
            # Headers not complete yet: count what arrived since they began (a read that began
            # them may hold a previous body: only later reads count, so at most one read of
            # slack), and refuse what outgrows the limit before the parser buffers more.
            self._header_bytes = 0 if self._began_here else self._header_bytes + len(data)
            if self._header_bytes > self._owner.max_header_size:
                self._stop(431, self._headers_too_large())
        self._pump()

    def _headers_too_large(self) -> str:
        return f"Request headers are larger than the limit of {self._owner.max_header_size} bytes"

    def _stop(self, status: int, message: str) -> None:
        """Parse nothing more; answer ``status`` once the requests before this one are."""
        self._stopped_parsing = True
        self._events.append((_ERROR, (status, message)))

    def on_message_begin(self) -> None:
        self._in_headers = True
        self._began_here = True
        self._header_bytes = 0
        self._url = b""
        self._header_list = []
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # RFC 9112 5: the field value is what lies between optional whitespace on either side.
        self._header_list.append((name, value.strip(b" \t")))

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        size = len(self._url) + sum(len(name) + len(value) + 4 for name, value in
                                    self._header_list)
        if size > self._owner.max_header_size:
            self._stop(431, self._headers_too_large())
            raise _Stop
        raw, self._header_list = self._header_list, []
        fields = {name.decode("latin1").lower(): value.decode("latin1") for name, value in raw}
        version = "HTTP/" + self._parser.get_http_version()
        if version not in ("HTTP/1.1", "HTTP/1.0"):  # llhttp takes a line with none as 0.9
            raise ValueError(f"Unsupported HTTP version in request line: {version}")
        target = self._url.decode("latin1")
        authority = None
        if not target.startswith("/") and "://" in target:  # absolute-form (RFC 9112 3.2.2)
            parts = urllib.parse.urlsplit(target)
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise ValueError(f"Malformed request target: {target[:200]}")
            authority = parts.netloc
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        hosts = sum(1 for name, _ in raw if name.lower() == b"host")
        if hosts > 1:
            raise ValueError("Multiple Host headers")
        if not hosts and authority is None and version == "HTTP/1.1":
            raise ValueError("Missing Host header")  # RFC 9112 3.2: on both request paths
        codings = [token.strip().lower() for name, value in raw
                   if name.lower() == b"transfer-encoding"
                   for token in value.decode("latin1").split(",")]
        if codings and codings != ["chunked"]:
            # llhttp frames a body by a final "chunked" whatever comes before it; we decode no
            # other coding, so a body sent in one must not be read as if it were plain.
            self._stop(501, "Unsupported Transfer-Encoding: " + ", ".join(codings)[:200])
            raise _Stop
        start_line = tornado.httputil.RequestStartLine(
            self._parser.get_method().decode("ascii"), target, version)
        declared = fields.get("content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        self._hold = _Hold(self._owner)
        if length is not None and length <= self._owner.max_body_size:
            refusal = self._hold.add(length)  # the whole body, before any of it is read
            if refusal is not None:
                self._stop(503, refusal)
                raise _Stop
        self._events.append((_HEADERS, (start_line, raw, fields, authority, self._hold)))
        if length is not None and length > self._owner.max_body_size:
            # Tornado's limit: the application may answer first (413), then the
            # connection closes without reading the body.
            self._events.append((_END, (413, (f"Request body of {declared} bytes is larger "
                                        f"than the limit of {self._owner.max_body_size} bytes"))))
            self._stopped_parsing = True
            raise _Stop  # nothing more is parsed

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._owner.max_body_size:
            self._events.append((_END, (413, (f"Request body is larger than the limit of "
                                        f"{self._owner.max_body_size} bytes"))))
            self._stopped_parsing = True
            raise _Stop
        if self._body_bytes > self._hold.size:  # a chunked body: counted as it arrives
            refusal = self._hold.add(self._body_bytes - self._hold.size)
            if refusal is not None:
                self._events.append((_END, (503, refusal)))
                self._stopped_parsing = True
                raise _Stop
        self._events.append((_BODY, body))

    def on_message_complete(self) -> None:
        self._events.append((_END, None))

    # ---------------------------------------------------------------- delivering

    def _pump(self) -> None:
        """Deliver parsed events to the request they belong to, in order, while nothing
        (a delegate's future, an answer still being written) holds them back."""
        if self._pumping:
            return  # an answer finished inside a delegate step: the loop below goes on
        self._pumping = True
        try:
            self._deliver_events()
        finally:
            self._pumping = False
        if self._events and not self.is_closed:
            self._pause_reading()  # bounded: at most what one read brought stays parsed
        elif not self._waiting and not self._stopped_parsing:
            self._resume_reading()

    def _deliver_events(self) -> None:
        events = self._events
        while events and not self._waiting and not self.is_closed:
            kind, value = events[0]
            exchange = self._exchange
            if kind == _HEADERS:
                if exchange is not None:
                    break  # pipelined: the previous answer is still being written
                events.popleft()
                exchange = self._exchange = Exchange(self, *value)
                self._owner.mark(self, Phase.BODY)
                self._deliver(exchange.begin, None)
            elif kind == _BODY:
                events.popleft()
                if exchange is not None:
                    self._deliver(exchange.body, value)
            elif kind == _ERROR:
                if exchange is not None and not exchange.reading:
                    break  # answer the requests before it first
                events.popleft()  # (or it broke inside the request still arriving)
                self._refuse(*value)
            else:
                events.popleft()
                if exchange is None:
                    continue
                if value is not None:  # a limit broke while the body arrived
                    exchange.abandon(*value)
                    continue
                self._owner.mark(self, Phase.ANSWERING)
                self._deliver(exchange.end, None)

    def _deliver(self, step: Callable[[Any], Awaitable[None] | None], value: Any) -> None:
        """Run one delegate step; a pending future holds the rest back until it resolves."""
        try:
            pending = step(value)
        except tornado.httputil.HTTPInputError as exc:
            return self._refuse(400, f"Malformed HTTP request: {exc}")
        except Exception:
            log.exception("Uncaught exception on a REST connection")
            return self.abort()
        if pending is None:
            return
        future = asyncio.ensure_future(pending)
        if future.done():
            self._crashed(future)
            return
        self._waiting = True
        self._pause_reading()
        future.add_done_callback(self._resolved)

    def _resolved(self, future: asyncio.Future[Any]) -> None:
        self._waiting = False
        if not self._crashed(future):
            self._pump()

    def _crashed(self, future: asyncio.Future[Any]) -> bool:
        """Whether a delegate step's future failed (logged, and the connection dropped)."""
        if future.cancelled() or future.exception() is None:
            return False
        exc = future.exception()
        if isinstance(exc, tornado.httputil.HTTPInputError):  # the client's mistake: 400
            self._refuse(400, f"Malformed HTTP request: {exc}")
            return True
        log.error("Uncaught exception on a REST connection", exc_info=exc)
        self.abort()
        return True

    def answered(self, exchange: Exchange, keep_alive: bool) -> None:
        """The exchange's answer has been written: next request, or close."""
        if exchange is not self._exchange:
            return
        self._exchange = None
        self._answered = True
        if not keep_alive:
            self._clear_events()
            return self.close()
        self._owner.mark(self, Phase.HEADERS)
        self._pump()
        if self._stopped_parsing and not self._events and self._exchange is None:
            self.close()  # the client shut its side, or asked for an upgrade: nothing more

    def _refuse(self, status: int, message: str) -> None:
        """TF Serving's error shape with ``status``, then close (a close alone when an answer
        has already begun: a second status line would corrupt it)."""
        self._stopped_parsing = True
        self._clear_events()
        self._owner.malformed(self, message)
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            exchange.connection_lost()
        if exchange is None or not exchange.started:
            body = orjson.dumps({"error": message})
            self.send(b"".join((
                f"HTTP/1.1 {status} {reason_phrase(status)}".encode(),
                b"\r\nContent-Type: application/json\r\nConnection: close\r\n",
                f"Content-Length: {len(body)}\r\n\r\n".encode(), body)))
        self.close()

    def _pause_reading(self) -> None:
        if self._flow is not None and not self.is_closed:
            self._flow.pause_reading()

    def _resume_reading(self) -> None:
        if self._flow is not None and not self.is_closed:
            self._flow.resume_reading()


class Exchange(tornado.httputil.HTTPConnection):
    """One request and its answer on a connection: Tornado's ``HTTPConnection`` for the
    delegate that takes it (``RequestHandler`` writes through it)."""

    def __init__(self, protocol: Http1Protocol, start_line: tornado.httputil.RequestStartLine,
                 raw_headers: list[tuple[bytes, bytes]], fields: dict[str, str],
                 authority: str | None = None, hold: _Hold | None = None) -> None:
        self.protocol = protocol
        self._hold = hold or _Hold(protocol._owner)
        self.context = protocol.context
        self.start_line = start_line
        self.fields = fields  # lower-case names; the last of a repeated one
        self.repeated_fields = len(fields) != len(raw_headers)
        self._raw_headers = raw_headers
        self._authority = authority  # an absolute-form target's: it replaces Host
        # What the request names as its host, for the access policy on either path (no Host at
        # all, as HTTP/1.0 allows, names none: "").
        self.host = authority if authority is not None else fields.get("host", "")
        self.keep_alive = _can_keep_alive(start_line, fields)
        self.started = False  # the status line has been written
        self._delegate: tornado.httputil.HTTPMessageDelegate | None = None
        self._read_finished = False
        self._write_finished = False
        self._chunking = False
        self._remaining: int | None = None
        self._close_callback: Callable[[], None] | None = None
        self._gone = False

    @property
    def reading(self) -> bool:
        """Whether the request is still arriving."""
        return not self._read_finished

    # ---------------------------------------------------------------- the request

    @functools.cached_property
    def headers(self) -> tornado.httputil.HTTPHeaders:
        """Tornado's headers, made only for a request the application's handlers serve."""
        headers = tornado.httputil.HTTPHeaders()
        for name, value in self._raw_headers:
            headers.add(name.decode("latin1"), value.decode("latin1"))
        if self._authority is not None:
            headers["Host"] = self._authority
        return headers

    @property
    def stream(self) -> _Stream:
        """What Tornado's ``HTTPServerRequest.get_ssl_certificate`` reads (``stream.socket``)."""
        transport = self.protocol._transport
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        return _Stream(ssl_object or (transport.get_extra_info("socket") if transport else None))

    def detach(self) -> asyncio.Transport:
        """Tornado's ``RequestHandler.detach``: no more HTTP on this connection; the caller
        owns the transport (an asyncio one: this connection has no ``IOStream``)."""
        self._write_finished = self._read_finished = True
        return self.protocol.detach()

    def begin(self, _: None) -> Awaitable[None] | None:
        delegate, claimed = self.protocol._owner.start_request(self)
        if claimed:
            self._delegate = delegate
            pending = None
        else:
            headers = self.headers
            if headers.get("Content-Encoding") == "gzip":
                headers["X-Consumed-Content-Encoding"] = headers.pop("Content-Encoding")
                headers.pop("Content-Length", None)  # no longer the length the delegate gets
                delegate = Inflating(delegate, lambda: self.started)
            self._delegate = delegate
            pending = delegate.headers_received(self.start_line, headers)
        if self.fields.get("expect") != "100-continue":
            return pending
        if pending is None:
            self._continue()
            return None
        return self._continue_after(pending)

    async def _continue_after(self, pending: Awaitable[None]) -> None:
        await pending
        self._continue()

    def _continue(self) -> None:
        """``100 (Continue)`` once the handler has looked at the headers, unless it already
        answered (a 413, a 403): then the client need not send the body at all."""
        if not self.started:
            self.protocol.send(_CONTINUE)

    def body(self, chunk: bytes) -> Awaitable[None] | None:
        if self.started:
            return None  # answered already (a 413): the rest is read past, never inflated
        assert self._delegate is not None
        return self._delegate.data_received(chunk)

    def end(self, _: None) -> None:
        self._read_finished = True
        if not self._write_finished:
            assert self._delegate is not None
            self._delegate.finish()

    def abandon(self, status: int, reason: str) -> None:
        """The body outgrew the connection's limit (413) or the server's budget for bodies
        (503): that answer unless one has begun (the handler's own 413), and the connection
        closes without reading the rest."""
        if not self.started:
            return self.protocol._refuse(status, reason)
        self.protocol._owner.malformed(self.protocol, reason)
        self.connection_lost()
        self.protocol.close()

    def connection_lost(self) -> None:
        """The client left (or the connection is closing): a request still arriving is told
        so, an answered one's handler hears of it through its close callback. Once."""
        if self._gone:
            return
        self._gone = True
        self._hold.release()
        if self._delegate is not None and not self._read_finished:
            self._delegate.on_connection_close()
        elif self._close_callback is not None and not self._write_finished:
            callback, self._close_callback = self._close_callback, None
            callback()

    # ---------------------------------------------------------------- the answer

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        self._close_callback = callback

    def write_headers(self, start_line: tornado.httputil.RequestStartLine |
                      tornado.httputil.ResponseStartLine,
                      headers: tornado.httputil.HTTPHeaders,
                      chunk: bytes | None = None) -> asyncio.Future[None]:
        assert isinstance(start_line, tornado.httputil.ResponseStartLine)
        request = self.start_line
        code = start_line.code
        self._chunking = (request.version == "HTTP/1.1" and request.method != "HEAD"
                          and code not in (204, 304) and not 100 <= code < 200
                          and "Content-Length" not in headers)
        if "close" in _tokens(headers.get("Connection")):
            self.keep_alive = False  # the handler's own "close" (its early 413) closes
        connection = self._connection_header()
        if connection:
            headers["Connection"] = connection
        if self._chunking:
            headers["Transfer-Encoding"] = "chunked"
        if request.method == "HEAD" or code == 304:
            self._remaining = 0
        elif "Content-Length" in headers:
            self._remaining = int(headers["Content-Length"])
        else:
            self._remaining = None
        lines = [f"HTTP/1.1 {code} {start_line.reason}"]
        lines.extend(f"{name}: {value}" for name, value in headers.get_all())
        data = "\r\n".join(lines).encode("latin1")
        if any(b"\r" in line or b"\n" in line for line in data.split(b"\r\n")):
            raise ValueError(f"Illegal characters (CR or LF) in header: {data!r}")
        self.started = True
        return self._sent(data + b"\r\n\r\n" + (self._format(chunk) if chunk else b""))

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        return self._sent(self._format(chunk))

    def answer(self, head: bytes, body: bytes) -> None:
        """The small-request path's whole answer in one write: ``head`` is the status line and
        headers (with Content-Length, without the blank line)."""
        self.started = True
        connection = self._connection_header()
        tail = f"\r\nConnection: {connection}\r\n\r\n".encode() if connection else b"\r\n\r\n"
        self.protocol.send(head + tail + body)
        self.finish()

    def _connection_header(self) -> str | None:
        """What the answer says of the connection: ``close`` to an HTTP/1.1 client whose
        connection ends, ``Keep-Alive`` to an HTTP/1.0 client that asked for it."""
        version = self.start_line.version
        if version == "HTTP/1.1" and not self.keep_alive:
            return "close"
        if version == "HTTP/1.0" and self.keep_alive:
            return "Keep-Alive"
        return None

    def finish(self) -> None:
        if self._remaining and not self.protocol.is_closed:
            self.protocol.abort()
            raise tornado.httputil.HTTPOutputError(
                f"Tried to write {self._remaining} bytes less than Content-Length")
        if self._chunking:
            self.protocol.send(b"0\r\n\r\n")
        self._write_finished = True
        self._close_callback = None
        self._hold.release()
        if not self._read_finished:
            self.keep_alive = False  # answered before the body arrived: close, do not read it
        self.protocol.answered(self, self.keep_alive)

    def _format(self, chunk: bytes) -> bytes:
        if self._remaining is not None:
            self._remaining -= len(chunk)
            if self._remaining < 0:
                self.protocol.abort()
                raise tornado.httputil.HTTPOutputError(
                    "Tried to write more data than Content-Length")
        if self._chunking and chunk:
            return b"%x\r\n%s\r\n" % (len(chunk), chunk)
        return chunk

    def _sent(self, data: bytes) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.protocol.is_closed:
            future.set_exception(tornado.iostream.StreamClosedError())
            future.exception()  # retrieved: nobody need await it
            return future
        drained = self.protocol.send(data)
        if drained is None:
            future.set_result(None)
        else:
            asyncio.ensure_future(drained).add_done_callback(lambda _: _settle(future))
        return future


class _Hold:
    """The bytes of one request's body counted against the server's budget for bodies held in
    memory (``ConnectionOwner.reserve``), given back once when the request is done or gone."""

    __slots__ = ("_owner", "size")

    def __init__(self, owner: ConnectionOwner) -> None:
        self._owner = owner
        self.size = 0

    def add(self, size: int) -> str | None:
        refusal = self._owner.reserve(size, small=self.size + size <= SMALL_BODY)
        if refusal is None:
            self.size += size
        return refusal

    def release(self) -> None:
        size, self.size = self.size, 0
        if size:
            self._owner.release(size)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Stream:
    """The one attribute of an ``IOStream`` Tornado's request reads: its socket (an SSL
    object on a TLS connection, whose ``getpeercert`` it calls)."""

    __slots__ = ("socket",)

    def __init__(self, sock: Any) -> None:
        self.socket = sock


def _tokens(value: str | None) -> set[str]:
    """The tokens of a list-valued field such as ``Connection`` (RFC 9110 5.6.1)."""
    return {token.strip().lower() for token in value.split(",")} if value else set()


def _can_keep_alive(start_line: tornado.httputil.RequestStartLine,
                    fields: dict[str, str]) -> bool:
    """HTTP/1.1 unless the client says close; HTTP/1.0 only when asked, with a known length
    and no ``Transfer-Encoding`` (RFC 9112 6.1: its framing is faulty, close after it)."""
    connection = _tokens(fields.get("connection"))
    if start_line.version == "HTTP/1.1":
        return "close" not in connection
    if "transfer-encoding" in fields:
        return False
    if "content-length" in fields or start_line.method in ("HEAD", "GET"):
        return "keep-alive" in connection
    return False
