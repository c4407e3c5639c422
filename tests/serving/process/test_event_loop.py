"""The server's event loop: uvloop by default, asyncio's own on request, bad values refused."""

from __future__ import annotations

import asyncio

import pytest

from tfserve_magic.serving.process import loop
from tfserve_magic.serving.process.flags import parse_flags
from tfserve_magic.serving.status_errors import ConfigError


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_by_default_and_asyncio_on_request() -> None:
    assert loop.run(_loop_module()).startswith("uvloop")
    assert loop.loop_name("uvloop").startswith("uvloop ")
    assert loop.run(_loop_module(), "asyncio").startswith("asyncio")
    assert loop.loop_name("asyncio") == "asyncio"


def test_event_loop_flag() -> None:
    options, _ = parse_flags(["--model_base_path=/m", "--event_loop=asyncio"])
    assert options.event_loop == "asyncio"
    with pytest.raises(ConfigError, match="--event_loop must be uvloop or asyncio, got 'trio'"):
        parse_flags(["--model_base_path=/m", "--event_loop=trio"])
