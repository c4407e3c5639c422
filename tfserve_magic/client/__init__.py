"""Clients of a TF Serving compatible server (REST or gRPC; works against real TensorFlow
Serving too): :class:`Client` over one :class:`Transport`, and the :class:`ServingError` a
refused request raises."""

from tfserve_magic.client.client import Client
from tfserve_magic.client.tls import ClientTls
from tfserve_magic.client.transport import Prediction, RequestError, ServingError, Transport
from tfserve_magic.status import VersionStatus

__all__ = ["Client", "ClientTls", "Prediction", "RequestError", "ServingError", "Transport",
           "VersionStatus"]
