"""Which versions a served model loads: its version policy, changed the way TF Serving
understands it (an edit of the models.config the server runs from, then a reload), and a wait,
with a deadline, until exactly the expected versions are AVAILABLE.

The edit survives a restart and the file runs unchanged on real TensorFlow Serving; a policy
the server refuses is undone in the file. No TensorFlow import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from tfserve_magic.client import Client, ServingError
from tfserve_magic.files import write_atomically
from tfserve_magic.operations.labels import LabelError, served_config_file
from tfserve_magic.serving.models.config import (
    load_model_config_file,
    parse_version_policy,
    write_model_config_file,
)
from tfserve_magic.serving.models.policy import VersionPolicy
from tfserve_magic.status import VersionState
from tfserve_magic.waits import Deadline, wait_until

__all__ = ["available_versions", "set_version_policy", "wait_for_versions"]


def set_version_policy(client: Client, model: str, policy: VersionPolicy | str) -> str:
    """Serve the versions ``policy`` names (a :class:`VersionPolicy`, or TF Serving's text such
    as ``"all {}"``); returns the policy the server now runs, in models.config syntax. Versions
    load and unload after this returns: :func:`wait_for_versions` waits for them."""
    chosen = parse_version_policy(policy) if isinstance(policy, str) else policy
    path = served_config_file(client)
    models = load_model_config_file(path)
    if not any(m.name == model for m in models):
        raise LabelError(f"the server's models.config has no model named {model}")
    with open(path, encoding="utf-8") as handle:
        previous = handle.read()
    write_model_config_file(path, [dataclasses.replace(m, policy=chosen) if m.name == model
                                   else m for m in models])
    try:
        info = client.reload()
    except ServingError as error:
        write_atomically(path, previous)  # the server keeps its old policy
        raise LabelError(error.message) from None
    served = info.model(model)
    return served.policy if served else chosen.describe()


def available_versions(client: Client, model: str) -> list[int]:
    """The versions of ``model`` that are AVAILABLE now, in order."""
    return sorted(s.version for s in client.status(model) if s.state is VersionState.AVAILABLE)


def wait_for_versions(client: Client, model: str, expected: Iterable[int],
                      timeout: float = 60.0) -> list[int]:
    """Wait until exactly ``expected`` versions of ``model`` are AVAILABLE; returns the
    available versions then, or at the deadline (compare them with what you expected)."""
    wanted = sorted(set(expected))
    reached = wait_until(lambda: available_versions(client, model) == wanted,
                         Deadline.after(timeout, f"versions {wanted} of {model}"), interval=0.1)
    return wanted if reached else available_versions(client, model)
