"""Per-kernel defaults: which version or label ``%%predict`` (and the dashboard's switch) send a
model's requests to when none is given. Pure state, no I/O."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tfserve_magic.client import RequestError

__all__ = ["Route", "clear", "get_default", "set_default"]


@dataclass(frozen=True)
class Route:
    """``version`` or ``label`` (never both); neither means TF Serving's latest version."""

    version: int | None = None
    label: str | None = None

    def describe(self) -> str:
        if self.version is not None:
            return f"version {self.version}"
        if self.label is not None:
            return f"label {self.label!r}"
        return "latest"


_routes: dict[tuple[str, str], Route] = {}
_lock = threading.Lock()


def set_default(server: str, model: str, *, version: int | None = None,
                label: str | None = None) -> Route:
    if version is not None and label is not None:
        raise RequestError("choose a version or a label, not both")
    route = Route(version, label)
    with _lock:
        if route == Route():
            _routes.pop((server, model), None)
        else:
            _routes[(server, model)] = route
    return route


def get_default(server: str, model: str) -> Route:
    with _lock:
        return _routes.get((server, model), Route())


def clear() -> None:
    with _lock:
        _routes.clear()
