"""What the request handlers of both surfaces (REST and gRPC) share: the server's options,
its model manager, the worker pool, metrics, the reload hook and the access policy, and the
description that ``GET /tfserve_magic/v1/server`` serves. No Tornado, no gRPC, no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from tfserve_magic.serving.api.origins import AccessPolicy
from tfserve_magic.serving.api.request_log import RequestLog
from tfserve_magic.serving.metrics import ServerMetrics
from tfserve_magic.serving.models.manager import ServableManager
from tfserve_magic.serving.options import ServerOptions
from tfserve_magic.status import ServerDescription

__all__ = ["ServerContext"]


@dataclass
class ServerContext:
    """What the handlers share."""

    options: ServerOptions
    manager: ServableManager
    executor: Executor
    metrics: ServerMetrics
    reload: Callable[[], Awaitable[None]]
    started_at: float
    pid: int
    version: str
    access: AccessPolicy
    prometheus_path: str | None = None  # where the metrics are served; None when monitoring is off
    request_log: RequestLog | None = None  # logging_config's writer (None in tests without one)

    def describe(self) -> ServerDescription:
        return ServerDescription(
            models=self.manager.describe(), pid=self.pid, version=self.version,
            started_at=self.started_at,
            model_config_file=self.options.model_config_file or None,
            prometheus_path=self.prometheus_path)
