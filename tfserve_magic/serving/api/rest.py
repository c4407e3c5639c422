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
import http
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
import tornado.web

from tfserve_magic.serving.api import codec, inference, responses
from tfserve_magic.serving.api.access_log import log_request
from tfserve_magic.serving.api.context import ServerContext
from tfserve_magic.serving.api.pages import PageHandler
from tfserve_magic.serving.batching.servable import BatchingServable
from tfserve_magic.serving.errors import (
    Code,
    DeadlineExceeded,
    InvalidArgument,
    PayloadTooLarge,
    StatusError,
)
from tfserve_magic.serving.metrics import CONTENT_TYPE
from tfserve_magic.serving.models.manager import Servable
from tfserve_magic.serving.process.memory import release_memory
from tfserve_magic.serving.safelog import Throttle
from tfserve_magic.status import SECRET_HEADER

__all__ = ["make_app"]

log = logging.getLogger(__name__)

_PREDICT = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE)
_GET = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE)
_INLINE_JSON_BYTES = 64 * 1024  # smaller bodies are parsed on the loop; larger ones in the pool
_INT64_MAX = 2**63 - 1
_TRIM_AFTER_BYTES = 4 << 20  # after a body this large, hand freed heap back to the OS
_ERRORS_LOGGED = Throttle(interval=60.0, max_causes=256)


class _Handler(tornado.web.RequestHandler):
    @property
    def ctx(self) -> ServerContext:
        # Not an initialize() argument: Tornado sets default headers before initialize runs.
        return self.application.settings["tfserve_ctx"]  # type: ignore[no-any-return]

    def prepare(self) -> None:
        refusal = self.ctx.access.host_refusal(self.request.host)
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
        self.set_header("Content-Type", "application/json")
        if self.ctx.options.rest_api_enable_cors_support:
            self.set_header("Access-Control-Allow-Origin", "*")
            self.set_header("Access-Control-Allow-Methods", "POST, GET")
            self.set_header("Access-Control-Allow-Headers", "Content-Type")

    def send_json(self, body: bytes, status: int = 200) -> None:
        self.set_status(status, http.HTTPStatus(status).phrase if status in
                        http.HTTPStatus._value2member_map_ else "Unknown")
        self.finish(body)

    def send_error_status(self, error: StatusError) -> None:
        # The client gets TF Serving's body; the log says why, for whoever reads it later.
        self.log_refusal(error)
        self.send_json(responses.error_body(error.message), error.http_status)

    def log_refusal(self, error: StatusError) -> None:
        self.refusal_logged = True  # the access log need not repeat it
        log.warning("%s %s -> %d %s: %s", self.request.method, self.request.path,
                    error.http_status, error.code.name, error.message[:2000])

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError):
            return super().log_exception(typ, value, tb)
        # A 500 is a bug of ours: its traceback once per distinct cause, then one line per
        # cause and minute, so a client repeating the request cannot grow the log without bound.
        cause = (typ, *_raising_frame(tb))
        first = not _ERRORS_LOGGED.seen(cause)
        now, held = _ERRORS_LOGGED.allow(cause)
        if first:
            log.error("%s %s -> 500: %s", self.request.method, self.request.path,
                      value, exc_info=(typ, value, tb))
        elif now:
            log.error("%s %s -> 500: %s (traceback logged before; %d more since)",
                      self.request.method, self.request.path, value, held)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Unexpected exceptions: still TF Serving's error shape, and the log says why.
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = str(exc) if exc else http.HTTPStatus(status_code).phrase
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
        self.log_refusal(error)
        body = responses.error_body(error.message)
        self.set_status(error.http_status)
        self.set_header("Content-Length", str(len(body)))
        self.set_header("Connection", "close")
        self.write(body)
        self.flush()

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
            version = _version(version_text)
            if metadata:
                body = self._metadata(model, version, _label(label))
            else:
                statuses = self.ctx.manager.status(model, version)
                body = orjson.dumps({"model_version_status": [
                    {"version": str(s.version), "state": s.state.name,
                     "status": {"error_code": s.error_code.name,
                                "error_message": s.error_message}} for s in statuses]})
        except StatusError as error:
            self._observe(model, version, api, error.code, started)
            return self.send_error_status(error)
        self._observe(model, version, api, Code.OK, started)
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
        match = _PREDICT.fullmatch(self.request.path)
        if not match or match.group(4) not in ("predict", "classify", "regress"):
            return self._malformed()
        name, version_text, label, verb = match.groups()
        model = urllib.parse.unquote(name)
        api = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}[verb]
        started = time.monotonic()
        served: int | None = None
        try:
            version = _version(version_text)
            body, self._body = self._body, bytearray()  # parsed once, then freed
            size = len(body)
            doc = (codec.parse_json_object(body) if size < _INLINE_JSON_BYTES else
                   await self._in_pool(codec.parse_json_object, body))
            del body
            signature = codec.signature_name_of(doc) or "serving_default"
            if verb != "predict":
                examples = codec.parse_examples_request(doc, verb)
            served, servable = self.ctx.manager.servable(model, version, _label(label))
            if verb == "predict" and isinstance(servable, BatchingServable) and \
                    size < _INLINE_JSON_BYTES:
                # Small and batched: no worker thread at all, the batch thread runs the model.
                fmt, inputs = codec.parse_predict_request(doc, _signature_inputs(servable, signature))
                result = responses.encode_predict_response(fmt, await self._deadline(
                    asyncio.wrap_future(servable.submit(signature, inputs))))
            elif verb == "predict":
                owned = [doc]  # the worker drops the JSON document once it has the arrays
                del doc
                result = await self._in_pool(_predict, servable, signature, owned)
                if size > _TRIM_AFTER_BYTES:
                    await self._in_pool(release_memory)
            else:
                result = await self._in_pool(
                    _classify_or_regress, servable, signature, verb, examples,
                    self.ctx.options.enable_signature_method_name_check)
        except StatusError as error:
            self._observe(model, served, api, error.code, started)
            return self.send_error_status(error)
        self._observe(model, served, api, Code.OK, started)
        self.send_json(result)

    async def _in_pool(self, function: Callable[..., Any], *args: Any) -> Any:
        return await self._deadline(
            asyncio.get_running_loop().run_in_executor(self.ctx.executor, function, *args))

    async def _deadline(self, future: Awaitable[Any]) -> Any:
        timeout = self.ctx.options.rest_timeout_seconds
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise DeadlineExceeded("Deadline Exceeded") from None

    def _observe(self, model: str, version: int | None, api: str, code: Code,
                 started: float) -> None:
        self.ctx.metrics.observe_request(model, version, api, code.name,
                                         time.monotonic() - started)


def _raising_frame(tb: Any) -> tuple[str, int]:
    frame = None
    while tb is not None:
        frame, tb = tb, tb.tb_next
    return (frame.tb_frame.f_code.co_filename, frame.tb_lineno) if frame else ("", 0)


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    digits = text.lstrip("0")
    # Length first: int() of thousands of digits is slow, and refused past 4300 digits.
    if len(digits) > len(str(_INT64_MAX)) or int(digits or "0") > _INT64_MAX:
        raise InvalidArgument(f"Failed to convert version: {text} to numeric.")
    return int(digits or "0")


def _label(text: str | None) -> str | None:
    return None if text is None else urllib.parse.unquote(text)


def _signature_inputs(servable: Servable, signature: str) -> Mapping[str, codec.TensorSpec]:
    specs = servable.inputs.get(signature)
    if specs is None:
        raise InvalidArgument(f"Serving signature name: \"{signature}\" not found in signature def")
    return specs


def _predict(servable: Servable, signature: str, owned: list[dict[str, Any]]) -> bytes:
    # Each stage's input is dropped before the next allocates, so a request's peak memory is a
    # small multiple of its body (issue 13): JSON document -> arrays -> outputs -> response.
    fmt, inputs = codec.parse_predict_request(owned.pop(), _signature_inputs(servable, signature))
    outputs = servable.run(signature, inputs)
    del inputs
    return responses.encode_predict_response(fmt, outputs)


Examples = tuple[codec.Example | None, list[codec.Example]]  # (context, rows) of a request


def _serialized(servable: Servable, signature: str, examples: Examples) -> Any:
    if signature not in servable.inputs:  # before any tf.Example is built
        raise InvalidArgument(f"No signature was found with the name: {signature}")
    return servable.serialize_examples(*examples)


def _classify(servable: Servable, signature: str, examples: Examples, check_method: bool) -> bytes:
    """The Classify API: tf.Examples in, (label, score) pairs out."""
    serialized = _serialized(servable, signature, examples)
    return responses.encode_classify_response(
        *inference.classify(servable, signature, serialized, check_method))


def _regress(servable: Servable, signature: str, examples: Examples, check_method: bool) -> bytes:
    """The Regress API: tf.Examples in, one value per example out."""
    serialized = _serialized(servable, signature, examples)
    return responses.encode_regress_response(
        inference.regress(servable, signature, serialized, check_method))


_EXAMPLE_APIS = {"classify": _classify, "regress": _regress}


def _classify_or_regress(servable: Servable, signature: str, verb: str, examples: Examples,
                         check_method: bool) -> bytes:
    return _EXAMPLE_APIS[verb](servable, signature, examples, check_method)


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

