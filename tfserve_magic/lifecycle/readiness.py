"""Readiness of a server that has announced itself: every model loaded, failed, or still empty.

The launcher polls our server's description (``GET /tfserve_magic/v1/server``) until every model
has a version AVAILABLE and none is still on its first load, a model has nothing to load yet (an
empty base path is ready to receive a pushed version), or every version of a model failed. A
server that exits, cannot load a model, or misses the deadline is stopped here. No TensorFlow
import.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence

from tfserve_magic.client import Client, ServingError
from tfserve_magic.lifecycle import registry, stopping
from tfserve_magic.lifecycle.command import nothing_to_serve
from tfserve_magic.lifecycle.handle import (
    Failed,
    Launched,
    ServerHandle,
    StartResult,
    TimedOut,
    log_tail,
)
from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.serving.models.config import ModelConfig
from tfserve_magic.serving.models.repository import RepositoryError, scan_versions
from tfserve_magic.status import ServerDescription, VersionState
from tfserve_magic.waits import Deadline, wait_until

__all__ = ["await_models", "ready"]


def ready(client: Client, models: Sequence[ModelConfig]) -> tuple[bool, str | None]:
    """(ready, error): every model has a version AVAILABLE and none still on its first load, has
    nothing to load, or failed. A version that is retrying after an error does not hold a start."""
    info = client.server_info() or ServerDescription()
    for model in models:
        described = info.model(model.name)
        versions = described.versions if described else ()
        first_load = [v for v in versions
                      if v.state in (VersionState.START, VersionState.LOADING) and not v.error]
        if described and described.available and not first_load:
            continue
        try:
            on_disk = scan_versions(model.base_path)
        except RepositoryError:
            on_disk = {}
        if not on_disk:
            continue  # an empty base path is ready to receive a pushed version
        if versions and all(v.state is VersionState.END for v in versions):
            errors = [f"version {v.version}: {v.error}" for v in versions if v.error]
            return False, f"Model {model.name} failed to load: " + "; ".join(errors)
        return False, None
    return True, None


def await_models(record: ServerRecord, proc: subprocess.Popen[bytes],
                 models: Sequence[ModelConfig], started: float,
                 deadline: Deadline) -> StartResult:
    """Launched once every model is ready; Failed when the server exits or a model cannot
    load; TimedOut at the deadline. A server that will not serve is stopped here."""
    name, log_path = record.name, record.log_file
    client = Client(record.url, timeout=10, headers=record.auth_headers,
                    tls=record.client_tls)

    def outcome() -> StartResult | None:
        if proc.poll() is not None:
            registry.remove_record(name)
            stopping.disown(name)
            return Failed(name, f"The model server exited (code {proc.returncode}).",
                          log_tail(log_path))
        try:
            is_ready, error = ready(client, models)
        except ServingError:
            return None  # checked again next round; a dead process is seen above
        if error:
            stopping.stop(name)
            return Failed(name, error, log_tail(log_path))
        if is_ready:
            return Launched(ServerHandle(record), time.monotonic() - started,
                            nothing_to_serve(models))
        return None

    result = wait_until(outcome, deadline, interval=0.02)
    if result is not None:
        return result
    stopping.stop(name)
    return TimedOut(name, deadline.at - started, log_tail(log_path))
