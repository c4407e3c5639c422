"""``%tfserve push``: export a model from the notebook as the next version of a served model and
wait until the server reports it AVAILABLE, or say why it failed to load.

The export is atomic (``export.export_version``); the server is asked to rescan at once rather
than at its next poll. A model identical to the newest version (the one served under the
default policy) makes no new version: the outcome says so. TensorFlow is imported only by the
export itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfserve_magic.client import ServingError
from tfserve_magic.lifecycle import launcher
from tfserve_magic.lifecycle.refusals import UnknownServer
from tfserve_magic.operations.export import ExportResult, export_version
from tfserve_magic.serving.models.config import parse_version_policy
from tfserve_magic.serving.models.policy import aspired_versions
from tfserve_magic.serving.models.repository import scan_versions
from tfserve_magic.status import VersionState
from tfserve_magic.waits import Deadline, wait_until

__all__ = ["PushOutcome", "push"]



@dataclass(frozen=True)
class PushOutcome:
    ok: bool
    model: str
    version: int
    path: str
    message: str


def push(model_object: Any, model: str, *, version: int | None = None, timeout: float = 120.0,
         server: str | None = None) -> PushOutcome:
    handle = launcher.find_serving(model, server)
    info = handle.client.server_info()
    entry = info.model(model) if info else None
    if entry is None:
        raise UnknownServer(f"server {handle.name} does not serve a model named {model}")
    exported = export_version(model_object, entry.base_path, version)
    if not exported.created and _available(handle, model, exported.version):
        return PushOutcome(True, model, exported.version, exported.path,
                           f"{model} version {exported.version} already serves this model "
                           f"(identical): nothing pushed, no new version ({exported.path}).")
    policy = entry.policy
    aspired = aspired_versions(parse_version_policy(policy), scan_versions(entry.base_path))
    if exported.version not in aspired:
        return PushOutcome(False, model, exported.version, exported.path,
                           f"Wrote {model} version {exported.version} to {exported.path}, but the "
                           f"model's version policy ({policy}) does not serve it.")
    handle.client.reload()
    outcome = wait_until(lambda: _settled(handle, model, exported), interval=0.1,
                         deadline=Deadline.after(timeout, f"{model} version {exported.version} to load"))
    if outcome is not None:
        return outcome
    return PushOutcome(False, model, exported.version, exported.path,
                       f"{model} version {exported.version} was written to {exported.path} but "
                       f"was not AVAILABLE within {timeout:.0f} s; see %tfserve logs "
                       f"{handle.name}.")


def _available(handle: launcher.ServerHandle, model: str, version: int) -> bool:
    try:
        return handle.client.status(model, version)[0].state is VersionState.AVAILABLE
    except ServingError as error:
        if error.status != 404:
            raise
        return False


def _settled(handle: launcher.ServerHandle, model: str, exported: ExportResult) -> PushOutcome | None:
    """The outcome once the pushed version is AVAILABLE or END; None while it is on its way."""
    try:
        status = handle.client.status(model, exported.version)[0]
    except ServingError as error:
        if error.status != 404:
            raise
        return None  # not seen by the server yet
    if status.state is VersionState.AVAILABLE:
        return PushOutcome(True, model, exported.version, exported.path,
                           f"{model} version {exported.version} is AVAILABLE ({exported.path}).")
    if status.state is VersionState.END:
        why = status.error_message or "it was unloaded (the version policy does not keep it)"
        return PushOutcome(False, model, exported.version, exported.path,
                           f"{model} version {exported.version} did not load: {why}")
    return None
