"""What every transport of :class:`~tfserve_magic.client.client.Client` implements, and what
they share: the :class:`Transport` protocol, the result type of a prediction, the error a
refused request raises, and the two checks both make the same way.

REST (:mod:`.rest_transport`) and gRPC (:mod:`.grpc_transport`) implement the protocol; the
client picks one for model calls. Imports numpy and the status vocabulary only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from tfserve_magic.errors import TFServeError
from tfserve_magic.status import VersionStatus

__all__ = ["Prediction", "RequestError", "ServingError", "Transport", "check_route",
           "signature_defs"]

Prediction = np.ndarray | dict[str, np.ndarray]


class ServingError(TFServeError):
    """A request the server refused or could not answer.

    ``status`` is the HTTP status (0 when the server could not be reached; over gRPC, the one
    TF Serving's REST API gives the same error), ``message`` TF Serving's error text and
    ``code`` the gRPC status name when the request went over gRPC ("" over REST).
    """

    def __init__(self, status: int, message: str, code: str = "") -> None:
        suffix = f" ({code})" if code else (f" (HTTP {status})" if status else "")
        super().__init__(message + suffix)
        self.status = status
        self.message = message
        self.code = code

    @property
    def reason(self) -> str:
        """How the failure is named on its transport: ``HTTP 404`` or ``NOT_FOUND``."""
        return self.code or f"HTTP {self.status}"


class RequestError(TFServeError):
    """A call the client cannot make as asked (arguments that contradict each other, or data
    that does not fit the signature); nothing was sent."""


class Transport(Protocol):
    """TF Serving's model APIs over one wire: same arguments, same return types."""

    def status(self, model: str, version: int | None = None) -> list[VersionStatus]: ...

    def metadata(self, model: str, *, version: int | None = None,
                 label: str | None = None) -> dict[str, Any]:
        """As the REST metadata API renders it (``signature_def`` nested twice)."""
        ...

    def predict(self, model: str, data: Any, *, version: int | None = None,
                label: str | None = None, signature: str | None = None,
                columnar: bool = False) -> Prediction: ...

    def classify(self, model: str, examples: Sequence[Mapping[str, Any]], *,
                 context: Mapping[str, Any] | None = None, version: int | None = None,
                 label: str | None = None, signature: str | None = None) -> list[Any]: ...

    def regress(self, model: str, examples: Sequence[Mapping[str, Any]], *,
                context: Mapping[str, Any] | None = None, version: int | None = None,
                label: str | None = None, signature: str | None = None) -> list[Any]: ...


def signature_defs(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The SignatureDefs of a metadata answer, without TF Serving's double nesting."""
    found: dict[str, Any] = metadata["metadata"]["signature_def"]["signature_def"]
    return found


def check_route(version: int | None, label: str | None) -> None:
    """A model call names a version, a label, or neither (the latest)."""
    if version is not None and label is not None:
        raise RequestError("give a version or a label, not both")
