"""Version labels: TF Serving's rules for a label's name and for the version it may point at.

Written once here and used by the manager (what the server enforces on every config change), the
server's start-up check and :mod:`tfserve_magic.operations.labels` (which refuses a move before it
touches a config file). Pure: no I/O, no TensorFlow.
"""

from __future__ import annotations

import re

__all__ = ["label_may_point_at", "unavailable_label_message", "valid_label_name"]

_NAME = re.compile(r"[A-Za-z0-9_]+\Z")


def valid_label_name(label: str) -> bool:
    """TF Serving's label syntax, ``[a-zA-Z0-9_]+`` (what its REST routes accept)."""
    return bool(_NAME.match(label))


def label_may_point_at(*, available: bool, allow_unavailable: bool, current: int | None,
                       version: int, initial: bool = False) -> bool:
    """Whether a label may point at ``version`` (``current``: where it points now, if anywhere).

    An AVAILABLE version always; otherwise only with
    ``--allow_version_labels_for_unavailable_models``, and then only for a new label, one left
    where it is, or any label in the start-up config (TF Serving's ``UpdateModelVersionLabelMap``).
    """
    if available:
        return True
    return allow_unavailable and (initial or current is None or current == version)


def unavailable_label_message(model: str, version: int) -> str:
    """TF Serving's refusal, word for word."""
    return (f"Request to assign label to version {version} of model {model}, which is not "
            "currently available for inference")
