"""What every REST answer carries, on both request paths (the full handlers in ``rest`` and
the small-request path in ``small_requests``): the headers of a JSON answer, the reason phrase
of a status, and how an error becomes TF Serving's status and ``{"error": ...}`` body with its
log line. One implementation: the handlers set the headers listed here, the small path formats
the same list into its one write. No TensorFlow.
"""

from __future__ import annotations

from types import TracebackType

import tornado

from tfserve_magic.serving.api import responses
from tfserve_magic.serving.api.access_log import log_refusal, log_unexpected
from tfserve_magic.serving.status_errors import StatusError
from tfserve_magic.status import reason_phrase

__all__ = ["SERVER", "json_headers", "reason", "render_error", "render_unexpected"]

# What Tornado's RequestHandler names itself: every answer says the same, whichever path.
SERVER = f"TornadoServer/{tornado.version}"
_CORS = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "POST, GET"),
         ("Access-Control-Allow-Headers", "Content-Type"))


def json_headers(cors: bool) -> tuple[tuple[str, str], ...]:
    """The headers of a JSON answer from ``/v1`` (``cors``: ``--rest_api_enable_cors_support``);
    ``Date``, ``Content-Length`` and ``Connection`` are the connection's."""
    return (("Server", SERVER), ("Content-Type", "application/json"),
            *(_CORS if cors else ()))


def reason(status: int) -> str:
    """The reason phrase of ``status`` (``Unknown`` for a code HTTP does not name)."""
    return reason_phrase(status)


def render_error(method: str, path: str, error: StatusError) -> tuple[int, bytes]:
    """TF Serving's answer to a refused request; the log says why, for whoever reads it."""
    log_refusal(method, path, error)
    return error.http_status, responses.error_body(error.message)


def render_unexpected(method: str, path: str,
                      exc_info: tuple[type[BaseException], BaseException, TracebackType | None]
                      ) -> tuple[int, bytes]:
    """A bug of ours: 500 in TF Serving's shape, the traceback in the log (throttled)."""
    log_unexpected(method, path, exc_info)
    return 500, responses.error_body(str(exc_info[1]))
