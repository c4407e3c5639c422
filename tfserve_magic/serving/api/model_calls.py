"""One model call over REST, from the request body's bytes to the answer's: the JSON parsed, the
servable found by name, version or label, the signature run, TF Serving's response encoded.

``POST /v1/models/<name>[/versions/<n>|/labels/<label>]:(predict|classify|regress)``
(``model_servers/http_rest_api_handler.cc``). Both ways a request arrives, the full handler
(``rest.V1Handler``, through :func:`call_model`) and the small-request path
(``small_requests``), run it as one :class:`ModelCall`: the same parsing, deadline
(``--rest_api_timeout_in_ms``), request metrics, and error rendering (``answers``), so a call
answers alike whichever path took it. The event loop only does small work: bodies under
``INLINE_JSON_BYTES`` are parsed on it, larger ones in the worker pool; models run in the pool,
or on the batch thread for a small batched predict (no worker at all).
"""

from __future__ import annotations

import asyncio
import functools
import re
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from tfserve_magic.serving.api import answers, codec, prediction_logs, responses
from tfserve_magic.serving.api.context import ServerContext
from tfserve_magic.serving.api.prediction_logs import Recorder, recorder
from tfserve_magic.serving.batching.servable import BatchingServable
from tfserve_magic.serving.models import inference
from tfserve_magic.serving.models.manager import Servable
from tfserve_magic.serving.status_errors import Code, DeadlineExceeded, InvalidArgument, StatusError
from tfserve_magic.serving.tensor_types import Example, TensorSpec

__all__ = ["INLINE_JSON_BYTES", "Answer", "Call", "ModelCall", "Pending", "call_model",
           "parse_call_path", "parse_version", "start_call"]

INLINE_JSON_BYTES = 64 * 1024  # smaller bodies are parsed on the loop; larger ones in the pool
_INT64_MAX = 2**63 - 1
_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE)
_APIS = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}


@dataclass(frozen=True, slots=True)
class Call:
    """What a model call's URL names (still percent-decoded; the version not yet checked)."""

    model: str
    version_text: str | None
    label: str | None
    verb: str  # predict | classify | regress

    @property
    def api(self) -> str:
        """The API name the request metrics use (TF Serving's)."""
        return _APIS[self.verb]


def parse_call_path(path: str) -> Call | None:
    """The call a URL path names, or None when it names none. As in TF Serving, the path is
    matched without regard to case but the verb must be lower case."""
    match = _PATH.fullmatch(path)
    if match is None or match.group(4) not in _APIS:
        return None
    name, version_text, label, verb = match.groups()
    return Call(urllib.parse.unquote(name), version_text,
                None if label is None else urllib.parse.unquote(label), verb)


def parse_version(text: str | None) -> int | None:
    """A version from a URL; TF Serving's message for what does not fit an int64."""
    if text is None:
        return None
    digits = text.lstrip("0")
    # Length first: int() of thousands of digits is slow, and refused past 4300 digits.
    if len(digits) > len(str(_INT64_MAX)) or int(digits or "0") > _INT64_MAX:
        raise InvalidArgument(f"Failed to convert version: {text} to numeric.")
    return int(digits or "0")


@dataclass(slots=True)
class Pending:
    """A call under way: the version serving it, the future of its outputs (from the batch
    thread or a worker) and what turns them into the answer's bytes."""

    served: int
    future: Future[Any]
    encode: Callable[[Any], bytes]


def start_call(ctx: ServerContext, call: Call, version: int | None, owned: list[Any],
               size: int) -> Pending:
    """Route a parsed request to its servable and set it running; raises StatusError. ``owned``
    holds the JSON document and is emptied, so the document goes once its arrays exist."""
    doc = owned[0]
    signature = codec.signature_name_of(doc) or "serving_default"
    if call.verb != "predict":
        examples = codec.parse_examples_request(doc)
        owned.clear()
        del doc
        served, servable = ctx.manager.servable(call.model, version, call.label)
        check = ctx.options.enable_signature_method_name_check
        return Pending(served, ctx.executor.submit(
            _classify if call.verb == "classify" else _regress, servable, signature, examples,
            check, recorder(ctx, call.model, served, signature)), _as_is)
    del doc
    served, servable = ctx.manager.servable(call.model, version, call.label)
    record = recorder(ctx, call.model, served, signature)  # None unless logging samples it
    if isinstance(servable, BatchingServable) and size < INLINE_JSON_BYTES:
        # Small and batched: no worker thread at all, the batch thread runs the model.
        fmt, inputs = codec.parse_predict_request(owned.pop(), signature_inputs(servable, signature))
        future = servable.submit(signature, inputs)
        if record is not None:
            future.add_done_callback(functools.partial(_record_batched, record, inputs))
        return Pending(served, future, functools.partial(responses.encode_predict_response, fmt))
    return Pending(served, ctx.executor.submit(_predict, servable, signature, [owned.pop()],
                                               record), _as_is)


Answer = tuple[int, bytes, bool]  # status, body, whether a refusal was logged with its reason


class ModelCall:
    """One call from its body to its answer, which goes to ``done`` once, on the loop. No
    coroutine: the parse and the call run in the pool (or on the batch thread) and call back
    onto the loop, and one timer keeps the deadline, cancelling work still queued."""

    def __init__(self, ctx: ServerContext, call: Call, path: str,
                 done: Callable[[Answer], None]) -> None:
        self._ctx = ctx
        self._call = call
        self._path = path
        self._done = done
        self._loop = asyncio.get_running_loop()
        self._started = time.monotonic()
        self._work: Future[Any] | None = None  # the parse, then the call, while under way
        self._pending: Pending | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._settled = False

    def start(self, body: bytearray) -> None:
        """Parse and run; pass the body without keeping a reference (it is dropped once
        parsed)."""
        timeout = self._ctx.options.rest_timeout_seconds
        if timeout is not None:
            self._timer = self._loop.call_later(timeout, self._expire)
        try:
            version = parse_version(self._call.version_text)
            size = len(body)
            if size < INLINE_JSON_BYTES:
                owned = [codec.parse_json_object(body)]
                del body
                return self._run(owned, size, version)
            self._work = self._ctx.executor.submit(codec.parse_json_object, body)
            del body
            self._work.add_done_callback(
                lambda parsed: self._from_worker(self._parsed, parsed, size, version))
        except Exception as exc:  # settled as TF Serving would: 4xx, or a 500
            self._settle(exc)

    def _from_worker(self, step: Callable[..., None], *args: Any) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(step, *args)

    def _parsed(self, parsed: Future[Any], size: int, version: int | None) -> None:
        if self._settled:
            return
        try:
            owned = [parsed.result()]
            del parsed
            self._run(owned, size, version)
        except Exception as exc:
            self._settle(exc)

    def _run(self, owned: list[Any], size: int, version: int | None) -> None:
        self._pending = start_call(self._ctx, self._call, version, owned, size)
        self._work = self._pending.future
        self._work.add_done_callback(lambda _: self._from_worker(self._settle))

    def _expire(self) -> None:
        if self._work is not None:
            self._work.cancel()  # still queued: it never runs
        self._settle(DeadlineExceeded("Deadline Exceeded"))

    def _settle(self, failure: BaseException | None = None) -> None:
        """Answer once: from the finished call, or from the failure before it could finish."""
        if self._settled:
            return
        self._settled = True
        if self._timer is not None:
            self._timer.cancel()
        pending, self._work = self._pending, None
        served = pending.served if pending is not None else None
        logged = False
        try:
            if failure is not None:
                raise failure
            assert pending is not None
            body = pending.encode(pending.future.result())
            status = 200
            self._ctx.metrics.finished(self._call.model, served, self._call.api, Code.OK,
                                       self._started)
        except StatusError as error:
            self._ctx.metrics.finished(self._call.model, served, self._call.api, error.code,
                                       self._started)
            status, body = answers.render_error("POST", self._path, error)
            logged = True
        except Exception:  # a bug of ours: TF Serving's shape, the log says why
            exc_type, exc, tb = sys.exc_info()
            assert exc_type is not None and exc is not None
            status, body = answers.render_unexpected("POST", self._path, (exc_type, exc, tb))
        self._done((status, body, logged))


async def call_model(ctx: ServerContext, call: Call, path: str, body: bytearray) -> Answer:
    """:class:`ModelCall` for a coroutine (the full handler): the answer, errors rendered."""
    answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
    ModelCall(ctx, call, path, answer.set_result).start(body)
    del body
    return await answer


def signature_inputs(servable: Servable, signature: str) -> Mapping[str, TensorSpec]:
    specs = servable.inputs.get(signature)
    if specs is None:
        raise InvalidArgument(f"Serving signature name: \"{signature}\" not found in signature def")
    return specs


def _as_is(result: bytes) -> bytes:
    return result


def _record_batched(record: Recorder, inputs: Any, future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        record(prediction_logs.rest_predict_record, inputs, future.result())


def _predict(servable: Servable, signature: str, owned: list[dict[str, Any]],
             record: Recorder | None = None) -> bytes:
    # Each stage's input is dropped before the next allocates, so a request's peak memory is a
    # small multiple of its body (issue 13): JSON document -> arrays -> outputs -> response
    # (a call picked for the request log keeps its arrays until its record is written).
    fmt, inputs = codec.parse_predict_request(owned.pop(), signature_inputs(servable, signature))
    outputs = servable.run(signature, inputs)
    if record is not None:
        record(prediction_logs.rest_predict_record, inputs, outputs)
    del inputs
    return responses.encode_predict_response(fmt, outputs)


Examples = tuple[Example | None, list[Example]]


def _serialized(servable: Servable, signature: str, examples: Examples) -> Any:
    if signature not in servable.inputs:  # before any tf.Example is built
        raise InvalidArgument(f"No signature was found with the name: {signature}")
    return servable.serialize_examples(*examples)


def _classify(servable: Servable, signature: str, examples: Examples, check: bool,
              record: Recorder | None = None) -> bytes:
    serialized = _serialized(servable, signature, examples)
    classes, scores = inference.classify(servable, signature, serialized, check)
    if record is not None:
        record(prediction_logs.rest_classify_record, serialized, classes, scores)
    return responses.encode_classify_response(classes, scores)


def _regress(servable: Servable, signature: str, examples: Examples, check: bool,
             record: Recorder | None = None) -> bytes:
    serialized = _serialized(servable, signature, examples)
    values = inference.regress(servable, signature, serialized, check)
    if record is not None:
        record(prediction_logs.rest_regress_record, serialized, values)
    return responses.encode_regress_response(values)
