"""What the server log says about requests: the failed and the slow ones (TF Serving logs none),
every request with ``--verbose``; a refusal with its reason; a 500 with its traceback.

A refusal that the handler already logged with its reason is not logged twice; other failures
(an unknown path, a 405) get one line per cause and minute, so neither polling (the dashboard,
the lab panel) nor a client repeating a bad request can flood the log. Refusals with a reason,
REST and gRPC alike, get one line per kind and 10 s: the kind is the API, the code and the
reason's first words without what the client sent (quoted or bracketed text, numbers), so a
client varying a model name or a shape cannot make every line new. A 500 is a bug of ours:
its traceback is logged once per distinct cause, then one line per cause and minute.
"""

from __future__ import annotations

import logging
import re
from types import TracebackType
from typing import Any

import tornado.web

from tfserve_magic.serving.safelog import Throttle, clean
from tfserve_magic.serving.status_errors import StatusError

__all__ = ["SLOW_SECONDS", "log_finished", "log_grpc_refusal", "log_refusal", "log_request",
           "log_unexpected", "refusal_kind"]

log = logging.getLogger("tornado.access")
events = logging.getLogger("tfserve_magic.serving.api")

SLOW_SECONDS = 1.0
_FAILURES = Throttle(interval=60.0, max_causes=256)
_ERRORS = Throttle(interval=60.0, max_causes=256)
_REFUSALS = Throttle(interval=10.0, max_causes=256)
# What a client put into a reason: quoted or bracketed text ("Latest(name)", "[1, 3]") and numbers.
_CLIENT_WORDS = re.compile(r"\"[^\"]*\"?|'[^']*'?|\([^)]*\)?|\[[^\]]*\]?|\{[^}]*\}?|[0-9]+")
_QUOTED = 300  # at most this much of what a client sent is quoted in one line


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's ``log_function``: called once per finished request."""
    ctx = handler.settings.get("tfserve_ctx")
    log_finished(handler.get_status(), handler.request.method or "", handler.request.path,
                 handler.request.request_time(), getattr(handler, "refusal_logged", False),
                 verbose=ctx is not None and ctx.options.verbose)


def log_finished(status: int, method: str, path: str, seconds: float, refusal_logged: bool,
                 verbose: bool) -> None:
    """One finished request: logged when verbose, slow, or failed for a reason not yet logged."""
    millis = seconds * 1000
    if verbose:
        log.info("%d %s %s %.1f ms", status, method, clean(path), millis)
    elif millis >= SLOW_SECONDS * 1000:
        log.warning("Slow request: %d %s %s took %.0f ms", status, method, clean(path), millis)
    elif status >= 400 and not refusal_logged:
        allowed, held = _FAILURES.allow((status, method, path))
        if allowed:
            log.warning("%d %s %s%s", status, method, clean(path),
                        f" ({held} more since last logged)" if held else "")


def refusal_kind(message: str) -> str:
    """The kind of a refusal's reason: its first words, what the client sent taken out."""
    return _CLIENT_WORDS.sub("_", message[:200])[:40]


def log_refusal(method: str, path: str, error: StatusError) -> None:
    """A request answered with TF Serving's error: why, for whoever reads the log later (one
    line per kind of refusal and 10 s, each bounded)."""
    allowed, held = _REFUSALS.allow(("REST", error.code, refusal_kind(error.message)))
    if allowed:
        events.warning("%s %s -> %d %s: %s%s", method, clean(path[:_QUOTED]), error.http_status,
                       error.code.name, clean(error.message[:_QUOTED]), _held(held))


def log_grpc_refusal(api: str, model: str, error: StatusError) -> None:
    """A gRPC call answered with an error status: why, bounded and throttled as REST's are."""
    allowed, held = _REFUSALS.allow((api, error.code, refusal_kind(error.message)))
    if allowed:
        events.warning("gRPC %s %s -> %s: %s%s", api, clean(model[:_QUOTED]), error.code.name,
                       clean(error.message[:_QUOTED]), _held(held))


def _held(count: int) -> str:
    return f" ({count} more like this since the last line)" if count else ""


def log_unexpected(method: str, path: str,
                   exc_info: tuple[type[BaseException], BaseException, TracebackType | None]
                   ) -> None:
    """A 500 (a bug of ours), throttled per raising place so a repeated request cannot grow
    the log without bound."""
    typ, value, tb = exc_info
    cause = (typ, *_raising_frame(tb))
    first = not _ERRORS.seen(cause)
    now, held = _ERRORS.allow(cause)
    text = str(value)[:2000]
    if first:
        events.error("%s %s -> 500: %s", method, path[:_QUOTED], text, exc_info=exc_info)
    elif now:
        events.error("%s %s -> 500: %s (traceback logged before; %d more since)",
                     method, path[:_QUOTED], text, held)


def _raising_frame(tb: Any) -> tuple[str, int]:
    frame = None
    while tb is not None:
        frame, tb = tb, tb.tb_next
    return (frame.tb_frame.f_code.co_filename, frame.tb_lineno) if frame else ("", 0)
