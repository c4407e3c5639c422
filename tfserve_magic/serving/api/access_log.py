"""Which requests reach the server log: the failed and the slow ones (TF Serving logs none);
every request with ``--verbose``.

A refusal that the handler already logged with its reason is not logged twice; other failures
(an unknown path, a 405) get one line per cause and minute, so neither polling (the dashboard,
the lab panel) nor a client repeating a bad request can flood the log.
"""

from __future__ import annotations

import logging

import tornado.web

from tfserve_magic.serving.safelog import Throttle, clean

__all__ = ["SLOW_SECONDS", "log_request"]

log = logging.getLogger("tornado.access")

SLOW_SECONDS = 1.0
_FAILURES = Throttle(interval=60.0, max_causes=256)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's ``log_function``: called once per finished request."""
    status = handler.get_status()
    millis = handler.request.request_time() * 1000
    request = f"{handler.request.method} {clean(handler.request.path)}"
    ctx = handler.settings.get("tfserve_ctx")
    if ctx is not None and ctx.options.verbose:
        log.info("%d %s %.1f ms", status, request, millis)
    elif millis >= SLOW_SECONDS * 1000:
        log.warning("Slow request: %d %s took %.0f ms", status, request, millis)
    elif status >= 400 and not getattr(handler, "refusal_logged", False):
        allowed, held = _FAILURES.allow((status, handler.request.method, handler.request.path))
        if allowed:
            log.warning("%d %s%s", status, request,
                        f" ({held} more since last logged)" if held else "")
