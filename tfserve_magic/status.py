"""TF Serving's status vocabulary, shared by the server that reports it and the clients that read it.

Status codes (``tensorflow.error.Code``) with their HTTP statuses, version states
(``ModelVersionStatus.State`` of ``apis/get_model_status.proto``), one row of the status API and
where metrics are served unless configured otherwise, and how a launcher hands a server the
secret of its management API (``serving/api/origins.py``).
Pure: imports nothing from the package, so the serving core and the client may both use it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["DEFAULT_PROMETHEUS_PATH", "SECRET_ENV", "SECRET_HEADER", "Code", "VersionState",
           "VersionStatus"]

# ``monitoring_config.proto``'s default path for the Prometheus exposition.
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
# The environment variable a launcher puts a server's management secret in (never argv, which
# ps shows to every user), and the header clients send it back in.
SECRET_ENV = "TFSERVE_MAGIC_SECRET"
SECRET_HEADER = "X-Tfserve-Magic-Secret"


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
        """The HTTP status TF Serving's REST server answers with (``http_server.cc``)."""
        return _HTTP.get(self, 500)

    @classmethod
    def from_name(cls, name: str) -> Code:
        """``"NOT_FOUND"`` -> ``Code.NOT_FOUND``; a name this table lacks is ``UNKNOWN``."""
        return cls.__members__.get(name, cls.UNKNOWN)


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


class VersionState(enum.IntEnum):
    """``ModelVersionStatus.State``: where one model version is in its lifecycle."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50

    @classmethod
    def from_name(cls, name: str) -> VersionState:
        """``"AVAILABLE"`` -> ``VersionState.AVAILABLE``; a name this table lacks is ``UNKNOWN``."""
        return cls.__members__.get(name, cls.UNKNOWN)


@dataclass(frozen=True)
class VersionStatus:
    """One row of the status API (``GET /v1/models/NAME``): a version, its state, its last error."""

    version: int
    state: VersionState
    error_code: Code = Code.OK
    error_message: str = ""
