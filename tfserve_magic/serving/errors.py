"""Error hierarchy of the serving core.

Every failure a client can see is a :class:`ServingError` carrying a TF Serving status code; the
REST layer turns it into ``{"error": message}`` with the matching HTTP status in one place
(``rest.py``). The codes and the code -> HTTP table follow ``model_servers/http_server.cc``.
"""

from __future__ import annotations

import enum

__all__ = [
    "Code",
    "ConfigError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PayloadTooLarge",
    "ServingError",
    "Unavailable",
    "Unimplemented",
]


class Code(enum.IntEnum):
    """absl / TensorFlow status codes (``tensorflow.error.Code``)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @property
    def http_status(self) -> int:
        return _HTTP.get(self, 500)


_HTTP = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.INVALID_ARGUMENT: 400,
    Code.FAILED_PRECONDITION: 400,
    Code.OUT_OF_RANGE: 400,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.ABORTED: 409,
    Code.PERMISSION_DENIED: 403,
    Code.UNAUTHENTICATED: 401,
    Code.DEADLINE_EXCEEDED: 504,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.UNIMPLEMENTED: 501,
    Code.UNAVAILABLE: 503,
}


class ServingError(Exception):
    """A failure with a TF Serving status code and the bare message clients see."""

    code: Code = Code.UNKNOWN

    def __init__(self, message: str, code: Code | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def http_status(self) -> int:
        return self.code.http_status


class InvalidArgument(ServingError):
    code = Code.INVALID_ARGUMENT


class NotFound(ServingError):
    code = Code.NOT_FOUND


class FailedPrecondition(ServingError):
    code = Code.FAILED_PRECONDITION


class Unimplemented(ServingError):
    code = Code.UNIMPLEMENTED


class DeadlineExceeded(ServingError):
    code = Code.DEADLINE_EXCEEDED


class Unavailable(ServingError):
    code = Code.UNAVAILABLE


class Internal(ServingError):
    code = Code.INTERNAL


class PayloadTooLarge(ServingError):
    """A request body over ``--max_request_bytes`` (ours: TF Serving has no such limit)."""

    code = Code.RESOURCE_EXHAUSTED

    @property
    def http_status(self) -> int:
        return 413


class ConfigError(Exception):
    """A bad flag or config file: the server prints the message and exits non-zero."""
