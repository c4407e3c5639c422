"""The loader seam (``manager.Loader``) driven by a script: tests of the manager and the watcher
use it to step through loads, failures and retries without TensorFlow."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from tfserve_magic.serving.models.manager import ServableManager
from tfserve_magic.serving.tensor_types import TensorSpec

__all__ = ["ScriptedLoader", "ScriptedServable", "make", "states", "until", "versions"]


class ScriptedServable:
    inputs: ClassVar[dict[str, dict[str, TensorSpec]]] = {"serving_default": {}}
    outputs: ClassVar[dict[str, dict[str, TensorSpec]]] = {"serving_default": {}}
    method_names: ClassVar[dict[str, str]] = {"serving_default": "tensorflow/serving/predict"}

    def __init__(self, path: str) -> None:
        self.path = path

    def signature_metadata(self) -> dict[str, Any]:
        return {"signature_def": {}}


class ScriptedLoader:
    """Loads succeed unless the folder holds a file named BROKEN; ``gate`` can hold a load."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.gate: threading.Event | None = None

    def load(self, path: str) -> ScriptedServable:
        if self.gate is not None:
            assert self.gate.wait(10), "test never released the gated load"
        self.loaded.append(Path(path).name)
        if (Path(path) / "BROKEN").exists():
            raise RuntimeError(f"cannot load {path}")
        return ScriptedServable(path)


async def until(predicate: Any, timeout: float = 10.0) -> None:
    """Wait for a condition, with a deadline (yielding to the loop between checks)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.005)


def states(manager: ServableManager, name: str = "m") -> dict[int, str]:
    return {s.version: s.state.name for s in manager.status(name)}


def make(pool: ThreadPoolExecutor, loader: ScriptedLoader, **kwargs: Any) -> ServableManager:
    return ServableManager(loader, pool, load_retry_interval=0.01, **kwargs)


def versions(base: Path, *numbers: int, broken: tuple[int, ...] = ()) -> None:
    for number in numbers:
        (base / str(number)).mkdir(parents=True, exist_ok=True)
        if number in broken:
            (base / str(number) / "BROKEN").touch()
