"""Named waits: poll a condition until a deadline, and say what is being waited for.

The package never sleeps to synchronise: a wait is a condition checked at an interval until a
:class:`Deadline`, which carries what it waits for (for messages and logs). This is the one place
that paces such polls. Pure standard library; no package imports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Deadline", "wait_until"]

T = TypeVar("T")
log = logging.getLogger(__name__)

_PACER = threading.Event()  # never set: wait(timeout) is the pause between two checks


@dataclass(frozen=True)
class Deadline:
    """When a wait gives up (``time.monotonic()`` seconds) and what it waits for."""

    at: float
    what: str

    @classmethod
    def after(cls, seconds: float, what: str) -> Deadline:
        return cls(time.monotonic() + seconds, what)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() > self.at


def wait_until(check: Callable[[], T], deadline: Deadline, *, interval: float) -> T | None:
    """The first truthy result of ``check`` (called at once, then every ``interval`` seconds),
    or None once ``deadline`` has passed."""
    while True:
        value = check()
        if value:
            return value
        if deadline.passed():
            log.debug("gave up waiting for %s", deadline.what)
            return None
        _PACER.wait(min(interval, deadline.remaining()))
