"""The small-request path: model calls with a declared body under 64 KiB (what notebooks,
scripts, web pages and load tests send), answered straight from the HTTP/1.1 connection
(``process.http1``) without Tornado's Application and RequestHandler machinery, which cost
about half of such a request's server CPU (py-spy under ``benchmarks/peers.py``).

:meth:`SmallRequests.claim` looks at a request's start line and headers and takes it only when
nothing about it is unusual: ``POST`` to a model call URL, a ``Content-Length`` within the limits,
no ``Transfer-Encoding`` or ``Content-Encoding``, a Host the access policy accepts. Anything else
goes to the full handlers in ``rest``. The work itself is a :class:`model_calls.ModelCall`, as
there, and the headers are ``answers.json_headers``, so the answer, its status and headers, the
deadline, the metrics and the log lines are the same; only Tornado's per-request objects are
skipped.
"""

from __future__ import annotations

import time
from email.utils import formatdate

import tornado.httputil

from tfserve_magic.serving.api import answers, model_calls
from tfserve_magic.serving.api.access_log import log_finished
from tfserve_magic.serving.api.context import ServerContext
from tfserve_magic.serving.api.exchange import Exchange
from tfserve_magic.status import SECRET_HEADER

__all__ = ["SmallRequests"]

# A body sent in chunks or compressed is the full handler's: it bounds the bytes received
# (and the connection inflates gzip for it).
_UNUSUAL_HEADERS = ("transfer-encoding", "content-encoding")
_SECRET_FIELD = SECRET_HEADER.lower()


class SmallRequests:
    """Claims the small model calls of one server (see the module doc)."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._limit = min(model_calls.INLINE_JSON_BYTES - 1, ctx.options.max_request_bytes)
        headers = answers.json_headers(ctx.options.rest_api_enable_cors_support)
        self._headers = "".join(f"{name}: {value}\r\n" for name, value in headers
                                ).encode("latin1")
        self._date = (0, b"")

    def claim(self, exchange: Exchange) -> tornado.httputil.HTTPMessageDelegate | None:
        """A delegate that answers this request, or None to leave it to the full handlers."""
        start_line, fields = exchange.start_line, exchange.fields
        if start_line.method != "POST" or exchange.repeated_fields:
            return None
        path = start_line.path.partition("?")[0]
        call = model_calls.parse_call_path(path)
        if call is None or any(name in fields for name in _UNUSUAL_HEADERS):
            return None
        length = fields.get("content-length", "")
        if not (length.isascii() and length.isdigit() and len(length) < 7
                and int(length) <= self._limit):
            return None
        if self.ctx.access.host_refusal(exchange.host) is not None:
            return None
        if self.ctx.options.require_secret and self.ctx.access.secret_refusal(
                fields.get(_SECRET_FIELD)) is not None:
            return None  # the full handler refuses it, as every other route
        return _SmallRequest(self, exchange, call, path)

    def respond(self, connection: Exchange, status: int, body: bytes) -> None:
        """The whole answer in one write."""
        head = b"HTTP/1.1 %d %s\r\n%sDate: %s\r\nContent-Length: %d" % (
            status, answers.reason(status).encode("latin1"), self._headers, self._http_date(),
            len(body))
        connection.answer(head, body)

    def _http_date(self) -> bytes:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True).encode("ascii"))
        return self._date[1]


class _SmallRequest(tornado.httputil.HTTPMessageDelegate):
    """One claimed request: its body, then its answer."""

    def __init__(self, owner: SmallRequests, connection: Exchange,
                 call: model_calls.Call, path: str) -> None:
        self._owner = owner
        self._connection = connection
        self._call = call
        self._path = path
        self._body = bytearray()
        self._closed = False
        self._started = time.monotonic()

    def data_received(self, chunk: bytes) -> None:
        self._body += chunk

    def on_connection_close(self) -> None:
        self._closed = True  # the client left: the answer is dropped when it comes
        self._body = bytearray()

    def finish(self) -> None:
        body, self._body = self._body, bytearray()
        model_calls.ModelCall(self._owner.ctx, self._call, self._path, self._answer).start(body)

    def _answer(self, answer: model_calls.Answer) -> None:
        status, body, logged = answer
        if not self._closed:
            self._owner.respond(self._connection, status, body)
        log_finished(status, "POST", self._path, time.monotonic() - self._started, logged,
                     self._owner.ctx.options.verbose)
