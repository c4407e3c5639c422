"""The small-request path: model calls with a declared body under 64 KiB (what notebooks,
scripts, web pages and load tests send), answered straight from the HTTP/1.1 connection
(``process.http1``) without Tornado's Application and RequestHandler machinery, which cost
about half of such a request's server CPU (py-spy under ``benchmarks/peers.py``).

:meth:`SmallRequests.claim` looks at a request's start line and headers and takes it only when
nothing about it is unusual: ``POST`` to a model call URL, a ``Content-Length`` within the limits,
no ``Transfer-Encoding`` or ``Content-Encoding``, a Host the access policy accepts. Anything else
goes to the full handlers in ``rest``. The work itself is :func:`model_calls.start_call`, as
there, so the answer, its status, the metrics and the log lines are the same.
"""

from __future__ import annotations

import asyncio
import http
import sys
import time
from email.utils import formatdate
from typing import Any

import tornado.httputil

from tfserve_magic.serving.api import codec, model_calls, responses
from tfserve_magic.serving.api.access_log import log_finished, log_refusal, log_unexpected
from tfserve_magic.serving.api.context import ServerContext
from tfserve_magic.serving.errors import Code, DeadlineExceeded, StatusError
from tfserve_magic.serving.process.http1 import Exchange

__all__ = ["SmallRequests"]

# A body sent in chunks or compressed is the full handler's: it bounds the bytes received
# (and the connection inflates gzip for it).
_UNUSUAL_HEADERS = ("transfer-encoding", "content-encoding")
_REASONS = {status.value: status.phrase.encode("ascii") for status in http.HTTPStatus}


class SmallRequests:
    """Claims the small model calls of one server (see the module doc)."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._limit = min(model_calls.INLINE_JSON_BYTES - 1, ctx.options.max_request_bytes)
        headers = "Content-Type: application/json\r\n"
        if ctx.options.rest_api_enable_cors_support:
            headers += ("Access-Control-Allow-Origin: *\r\n"
                        "Access-Control-Allow-Methods: POST, GET\r\n"
                        "Access-Control-Allow-Headers: Content-Type\r\n")
        self._headers = headers.encode("latin1")
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
        if self.ctx.access.host_refusal(fields.get("host") or "127.0.0.1") is not None:
            return None
        return _SmallRequest(self, exchange, call, path)

    def respond(self, connection: Exchange, status: int, body: bytes) -> None:
        """The whole answer in one write."""
        head = b"HTTP/1.1 %d %s\r\n%sDate: %s\r\nContent-Length: %d" % (
            status, _REASONS.get(status, b"Unknown"), self._headers, self._http_date(),
            len(body))
        connection.answer(head, body)

    def _http_date(self) -> bytes:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True).encode("ascii"))
        return self._date[1]


class _SmallRequest(tornado.httputil.HTTPMessageDelegate):
    """One claimed request: its body, then its answer. No coroutine: the call's future (from
    the batch thread or a worker) calls back onto the loop, and a timer keeps the deadline."""

    def __init__(self, owner: SmallRequests, connection: Exchange,
                 call: model_calls.Call, path: str) -> None:
        self._owner = owner
        self._connection = connection
        self._call = call
        self._path = path
        self._body = bytearray()
        self._closed = False
        self._settled = False
        self._started = time.monotonic()
        self._pending: model_calls.Pending | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def data_received(self, chunk: bytes) -> None:
        self._body += chunk

    def on_connection_close(self) -> None:
        self._closed = True  # the client left: the answer is dropped when it comes

    def finish(self) -> None:
        ctx = self._owner.ctx
        try:
            version = model_calls.parse_version(self._call.version_text)
            body, self._body = self._body, bytearray()
            owned = [codec.parse_json_object(body)]
            size = len(body)
            del body
            self._pending = model_calls.start_call(ctx, self._call, version, owned, size)
        except Exception as exc:  # settled as the full handler would: 4xx, or 500 for a bug
            return self._settle(exc)
        timeout = ctx.options.rest_timeout_seconds
        if timeout is not None:
            self._timer = self._loop.call_later(timeout, self._expire)
        self._pending.future.add_done_callback(self._from_worker)

    def _from_worker(self, _future: Any) -> None:
        self._loop.call_soon_threadsafe(self._settle)

    def _expire(self) -> None:
        if self._pending is not None:
            self._pending.future.cancel()  # still queued: it never runs
        self._settle(DeadlineExceeded("Deadline Exceeded"))

    def _settle(self, failure: Exception | None = None) -> None:
        """Answer once: from the finished call, or from the failure before it could finish."""
        if self._settled:
            return
        self._settled = True
        if self._timer is not None:
            self._timer.cancel()
        ctx = self._owner.ctx
        pending = self._pending
        served = pending.served if pending is not None else None
        refusal_logged = False
        try:
            if failure is not None:
                raise failure
            assert pending is not None
            result = pending.encode(pending.future.result())
            status = 200
            model_calls.observe(ctx, self._call, served, Code.OK, self._started)
        except StatusError as error:
            model_calls.observe(ctx, self._call, served, error.code, self._started)
            log_refusal("POST", self._path, error)
            refusal_logged = True
            status, result = error.http_status, responses.error_body(error.message)
        except Exception as exc:  # a bug of ours: TF Serving's shape, and the log says why
            log_unexpected("POST", self._path, sys.exc_info())  # type: ignore[arg-type]
            status, result = 500, responses.error_body(str(exc))
        if not self._closed:
            self._owner.respond(self._connection, status, result)
        log_finished(status, "POST", self._path, time.monotonic() - self._started,
                     refusal_logged, ctx.options.verbose)
