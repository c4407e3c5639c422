"""Errors of the serving core, under the package's root :class:`~tfserve_magic.errors.TFServeError`.

Every failure a client can see is a :class:`StatusError` carrying a TF Serving status code. This
module is the one place that says how an error looks on each surface: the REST layer turns it
into ``{"error": message}`` with :attr:`StatusError.http_status` (``tfserve_magic.status.Code``,
``model_servers/http_server.cc``), the gRPC layer into the status of the code's name (absl and
gRPC share names and numbers) with :meth:`StatusError.grpc_details` as its details
(``model_servers/grpc_status_util.cc``: messages over 1024 characters are cut).
"""

from __future__ import annotations

from tfserve_magic.errors import TFServeError
from tfserve_magic.status import Code

__all__ = [
    "Code",
    "ConfigError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "LoadError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "StatusError",
    "Unavailable",
    "Unimplemented",
]


class StatusError(TFServeError):
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

    def grpc_details(self) -> str:
        """The message as a gRPC status carries it (ToGRPCStatus truncates past 1024 chars)."""
        if len(self.message) > _GRPC_MESSAGE_LIMIT:
            return self.message[:_GRPC_MESSAGE_LIMIT] + "...TRUNCATED"
        return self.message


_GRPC_MESSAGE_LIMIT = 1024


class InvalidArgument(StatusError):
    code = Code.INVALID_ARGUMENT


class NotFound(StatusError):
    code = Code.NOT_FOUND


class PermissionDenied(StatusError):
    """A caller without the server's secret (``origins.AccessPolicy``)."""

    code = Code.PERMISSION_DENIED


class FailedPrecondition(StatusError):
    code = Code.FAILED_PRECONDITION


class Unimplemented(StatusError):
    code = Code.UNIMPLEMENTED


class DeadlineExceeded(StatusError):
    code = Code.DEADLINE_EXCEEDED


class Unavailable(StatusError):
    code = Code.UNAVAILABLE


class Internal(StatusError):
    code = Code.INTERNAL


class PayloadTooLarge(StatusError):
    """A request body over ``--max_request_bytes`` (ours: TF Serving has no such limit)."""

    code = Code.RESOURCE_EXHAUSTED

    @property
    def http_status(self) -> int:
        return 413


class ConfigError(TFServeError):
    """A bad flag or config file: the server prints the message and exits non-zero."""


class LoadError(TFServeError):
    """A version folder that cannot be served; the message goes into the status API (raised by
    the loader, defined here so that catching it needs no TensorFlow import)."""
