"""The event loop the server runs on: uvloop when it is installed (a dependency on Linux and
macOS), else asyncio's own. Tornado and every surface run on whichever is picked; the choice is
logged once. uvloop's libuv transports and selector cut the loop's share of a small request's
CPU (measured with py-spy; the README has the numbers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

__all__ = ["loop_name", "run"]

T = TypeVar("T")


def _factory(wanted: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    if wanted == "uvloop":
        if not hasattr(asyncio, "Runner"):
            return "asyncio (uvloop needs Python 3.11 here)", None
        try:
            import uvloop
        except ImportError:
            return "asyncio (uvloop is not installed)", None
        return f"uvloop {getattr(uvloop, '__version__', '')}".strip(), uvloop.new_event_loop
    return "asyncio", None


def loop_name(wanted: str) -> str:
    """What :func:`run` will use for ``--event_loop=wanted``."""
    return _factory(wanted)[0]


def run(main: Coroutine[Any, Any, T], wanted: str = "uvloop") -> T:
    """``asyncio.run`` on the chosen loop."""
    _, factory = _factory(wanted)
    if factory is None:
        return asyncio.run(main)
    runner_class = getattr(asyncio, "Runner")  # noqa: B009 (3.11+, checked in _factory)
    with runner_class(loop_factory=factory) as runner:
        return cast(T, runner.run(main))
