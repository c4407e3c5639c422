"""The REST surface: Tornado handlers, the route table, and the one place errors become JSON.

Routes (``model_servers/http_rest_api_handler.cc``): everything under ``(?i)/v1/`` goes to one
handler that matches TF Serving's two URL patterns and answers anything else with
``400 Malformed request``; the Prometheus path when monitoring is on; and our own
``/tfserve_magic/v1/{server,reload}`` outside ``/v1``, which TF Serving clients never see; and
the server's own page at ``/`` (``pages.py``). Model
execution and large JSON work run on a thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable
from typing import Any

import orjson
import tornado.web

from tfserve_magic.serving.api import answers, model_calls, responses
from tfserve_magic.serving.api.access_log import log_request, log_unexpected
from tfserve_magic.serving.api.context import ServerContext
from tfserve_magic.serving.api.pages import PageHandler
from tfserve_magic.serving.memory import release_memory
from tfserve_magic.serving.metrics import CONTENT_TYPE
from tfserve_magic.serving.status_errors import (
    Code,
    InvalidArgument,
    PayloadTooLarge,
    StatusError,
)
from tfserve_magic.status import SECRET_HEADER

__all__ = ["make_app"]

log = logging.getLogger(__name__)

_TRIM_AFTER_BYTES = 4 << 20  # after a body this large, hand freed heap back to the OS
_GET = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE)


class _Handler(tornado.web.RequestHandler):
    @property
    def ctx(self) -> ServerContext:
        # Not an initialize() argument: Tornado sets default headers before initialize runs.
        return self.application.settings["tfserve_ctx"]  # type: ignore[no-any-return]

    def prepare(self) -> None:
        access = self.ctx.access
        refusal = access.host_refusal(self.request.host)
        if refusal is None and self.ctx.options.require_secret:  # a shared host: every route
            refusal = access.secret_refusal(self.request.headers.get(SECRET_HEADER))
        if refusal is not None:
            self.refuse(refusal)

    def refuse(self, message: str) -> None:
        """403 in TF Serving's error shape (PERMISSION_DENIED), and why in the log."""
        log.warning("%s %s -> 403: %s", self.request.method, self.request.path, message)
        self.set_status(403)
        self.set_header("Content-Type", "application/json")
        self.finish(responses.error_body(message))


class _JsonHandler(_Handler):
    """Writes JSON bodies and renders every error as TF Serving does."""

    def set_default_headers(self) -> None:
        for name, value in answers.json_headers(self.ctx.options.rest_api_enable_cors_support):
            self.set_header(name, value)

    def send_json(self, body: bytes, status: int = 200) -> Awaitable[None]:
        """Answer; the returned future resolves once the body has left for the client."""
        self.set_status(status, answers.reason(status))
        return self.finish(body)

    def send_error_status(self, error: StatusError) -> None:
        # The client gets TF Serving's body; the log says why, for whoever reads it later.
        self.send_json(*self.render_refusal(error))

    def render_refusal(self, error: StatusError) -> tuple[bytes, int]:
        self.refusal_logged = True  # the access log need not repeat it
        status, body = answers.render_error(self.request.method or "", self.request.path, error)
        return body, status

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError):
            return super().log_exception(typ, value, tb)
        log_unexpected(self.request.method or "", self.request.path, (typ, value, tb))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Unexpected exceptions: still TF Serving's error shape, and the log says why.
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = str(exc) if exc else answers.reason(status_code)
        self.finish(responses.error_body(message))


@tornado.web.stream_request_body
class V1Handler(_JsonHandler):
    """Everything under /v1/: status, metadata, predict, classify, regress."""

    SUPPORTED_METHODS = ("GET", "POST", "OPTIONS", "PUT", "DELETE", "PATCH", "HEAD")

    def prepare(self) -> None:
        self._body = bytearray()  # grown in place: no second copy of the body to join
        self._too_large = False
        super().prepare()
        if self._finished:
            self._too_large = True  # refused: drop whatever body follows
            return
        declared = self.request.headers.get("Content-Length")
        limit = self.ctx.options.max_request_bytes
        if declared and declared.isascii() and declared.isdigit() and (
                len(declared) > len(str(limit)) or int(declared) > limit):
            self._too_large = True
            self.send_error_status(self._size_error(declared))

    def _size_error(self, size: str) -> StatusError:
        return PayloadTooLarge(f"Request body of {size} bytes is larger than the limit of "
                               f"{self.ctx.options.max_request_bytes} bytes (--max_request_bytes)")

    def data_received(self, chunk: bytes) -> None:
        if self._too_large:
            return
        if len(self._body) + len(chunk) > self.ctx.options.max_request_bytes:
            # A chunked or gzip body has no trustworthy length up front: answer 413 as soon as it
            # crosses the limit (the rest is read and dropped until Tornado's own cut-off).
            self._too_large = True
            self._body = bytearray()
            self._send_early(self._size_error(f"more than {self.ctx.options.max_request_bytes}"))
        else:
            self._body += chunk

    def _send_early(self, error: StatusError) -> None:
        body, status = self.render_refusal(error)
        self.set_status(status, answers.reason(status))
        self.set_header("Content-Length", str(len(body)))
        self.set_header("Connection", "close")
        self.write(body)
        self.flush()

    def on_connection_close(self) -> None:
        self._body = bytearray()  # the client left: its body goes now, not at a collection
        super().on_connection_close()

    @property
    def body(self) -> bytearray:
        return self._body

    def _malformed(self) -> None:
        self.send_error_status(InvalidArgument(
            f"Malformed request: {self.request.method} {self.request.path}"))

    def _answered(self) -> bool:
        """Whether the 413 already went out (from prepare, or while the body was arriving)."""
        if self._too_large and not self._finished:
            self.finish()
        return self._finished

    async def put(self) -> None:
        if not self._answered():
            self._malformed()

    delete = patch = head = put

    async def options(self) -> None:
        if self._answered():
            return
        origin = self.request.headers.get("Origin", "")
        if origin.startswith(("http://", "https://")):
            self.send_json(b"")
        else:
            self.send_error_status(InvalidArgument("Origin header is missing in CORS preflight"))

    async def get(self) -> None:
        if self._answered():
            return
        match = _GET.fullmatch(self.request.path)
        if not match:
            return self._malformed()
        name, version_text, label, metadata = match.groups()
        if name is None:
            return self.send_error_status(InvalidArgument("Missing model name in request."))
        started = time.monotonic()
        api = "GetModelMetadata" if metadata else "GetModelStatus"
        model = urllib.parse.unquote(name)
        version: int | None = None
        try:
            version = model_calls.parse_version(version_text)
            if metadata:
                body = self._metadata(model, version, _label(label))
            else:
                statuses = self.ctx.manager.status(model, version)
                body = orjson.dumps({"model_version_status": [
                    {"version": str(s.version), "state": s.state.name,
                     "status": {"error_code": s.error_code.name,
                                "error_message": s.error_message}} for s in statuses]})
        except StatusError as error:
            self.ctx.metrics.finished(model, version, api, error.code, started)
            return self.send_error_status(error)
        self.ctx.metrics.finished(model, version, api, Code.OK, started)
        self.send_json(body)

    def _metadata(self, model: str, version: int | None, label: str | None) -> bytes:
        served, servable = self.ctx.manager.servable(model, version, label)
        return orjson.dumps({
            "model_spec": {"name": model, "signature_name": "", "version": str(served)},
            "metadata": {"signature_def": servable.signature_metadata()},
        })

    async def post(self) -> None:
        if self._answered():
            return
        call = model_calls.parse_call_path(self.request.path)
        if call is None:
            return self._malformed()
        large = len(self._body) > _TRIM_AFTER_BYTES
        status, body, self.refusal_logged = await model_calls.call_model(
            self.ctx, call, self.request.path, self._take_body())
        sent = self.send_json(body, status)
        if large:  # once the answer has left too, hand the freed heap back to the OS
            del body
            await sent
            await asyncio.get_running_loop().run_in_executor(self.ctx.executor, release_memory)

    def _take_body(self) -> bytearray:
        body, self._body = self._body, bytearray()  # parsed once, then freed
        return body


def _label(text: str | None) -> str | None:
    return None if text is None else urllib.parse.unquote(text)


class _ManagementHandler(_JsonHandler):
    """Our own endpoints: same origin only; the secret opens what is not public (``origins``)."""

    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            refusal = self.ctx.access.origin_refusal(self.request.host,
                                                     self.request.headers.get("Origin"))
            if refusal is not None:
                self.refuse(refusal)

    def secret_refusal(self) -> str | None:
        return self.ctx.access.secret_refusal(self.request.headers.get(SECRET_HEADER))

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")  # never CORS headers


class ServerInfoHandler(_ManagementHandler):
    """GET /tfserve_magic/v1/server: this server and its models (contract 2); without the
    secret, the models and their states only (no pid, no folders)."""

    def get(self) -> None:
        told = self.secret_refusal() is None
        self.send_json(orjson.dumps(self.ctx.describe().to_json(private=told)))


class ReloadHandler(_ManagementHandler):
    """POST /tfserve_magic/v1/reload: re-read the config and re-scan base paths now."""

    async def post(self) -> None:
        refusal = self.secret_refusal()
        if refusal is not None:
            return self.refuse(refusal)
        try:
            await self.ctx.reload()
        except StatusError as error:
            return self.send_error_status(error)
        self.send_json(orjson.dumps(self.ctx.describe().to_json()))


class _PageHandler(_Handler, PageHandler):
    """The page at ``/`` behind the same Host check (it lists the models: no rebinding)."""


class MetricsHandler(_Handler):

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(self.ctx.metrics.exposition())


def make_app(ctx: ServerContext) -> tornado.web.Application:
    """The Tornado application: the whole route table is here."""
    routes: list[Any] = [
        (r"/", _PageHandler),
        (r"(?i)/v1/.*", V1Handler),
        (r"/tfserve_magic/v1/server", ServerInfoHandler),
        (r"/tfserve_magic/v1/reload", ReloadHandler),
    ]
    if ctx.prometheus_path:
        routes.append((re.escape(ctx.prometheus_path), MetricsHandler))
    return tornado.web.Application(routes, compress_response=False, tfserve_ctx=ctx,
                                   log_function=log_request)

