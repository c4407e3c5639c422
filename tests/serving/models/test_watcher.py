"""The watcher as a unit: config changes are applied once, a broken config is refused while the
server keeps what it serves, a label that cannot apply yet is retried on the next poll, and an
explicit reload reports what a poll only logs. Driven with the scripted loader (no TensorFlow)."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest
from scripted_loader import ScriptedLoader, make, states, until, versions

from tfserve_magic.serving.models.config import ModelConfig
from tfserve_magic.serving.models.policy import VersionPolicy
from tfserve_magic.serving.models.watcher import Watcher
from tfserve_magic.serving.status_errors import FailedPrecondition, InvalidArgument


def _entry(name: str, base: Path, extra: str = "") -> str:
    return (f'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" '
            f"model_version_policy {{ all {{}} }} {extra} }}")


def _write(config: Path, *entries: str) -> None:
    config.write_text("model_config_list { " + " ".join(entries) + " }")


def test_a_changed_config_is_applied_once(tmp_path: Path, pool) -> None:
    versions(tmp_path / "a", 1)
    versions(tmp_path / "b", 1)
    config = tmp_path / "models.config"
    _write(config, _entry("a", tmp_path / "a"))

    async def scenario() -> None:
        manager = make(pool, ScriptedLoader())
        manager.apply_config([ModelConfig("a", str(tmp_path / "a"), VersionPolicy.all())],
                             initial=True)
        watcher = Watcher(manager, str(config), config.read_text())
        assert await watcher.poll_config_once() is False  # unchanged
        _write(config, _entry("a", tmp_path / "a"), _entry("b", tmp_path / "b"))
        assert await watcher.poll_config_once() is True
        assert await watcher.poll_config_once() is False  # applied once
        await manager.wait_idle()
        assert manager.model_names == ["a", "b"] and states(manager, "b") == {1: "AVAILABLE"}

    asyncio.run(scenario())


def test_a_broken_config_is_logged_and_refused_on_reload(tmp_path: Path, pool,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    versions(tmp_path / "a", 1)
    config = tmp_path / "models.config"
    _write(config, _entry("a", tmp_path / "a"))

    async def scenario() -> None:
        manager = make(pool, ScriptedLoader())
        manager.apply_config([ModelConfig("a", str(tmp_path / "a"))], initial=True)
        await manager.wait_idle()
        watcher = Watcher(manager, str(config), config.read_text())
        config.write_text("model_config_list { config { name: ")
        with caplog.at_level(logging.ERROR):
            assert await watcher.poll_config_once() is False
        assert "Not applying the new model config: Error parsing text-format" in caplog.text
        with pytest.raises(InvalidArgument, match="Error parsing text-format"):
            await watcher.poll_config_once(force=True)
        config.unlink()
        with pytest.raises(InvalidArgument, match=r"Could not read model config file .*: No such "
                                                  r"file or directory"):
            await watcher.poll_config_once(force=True)
        assert states(manager, "a") == {1: "AVAILABLE"}  # still serving what it served

    asyncio.run(scenario())


def test_a_label_waiting_for_its_version_is_retried_on_the_next_poll(tmp_path: Path,
                                                                     pool) -> None:
    versions(tmp_path / "a", 1)
    config = tmp_path / "models.config"
    _write(config, _entry("a", tmp_path / "a"))

    async def scenario() -> None:
        loader = ScriptedLoader()
        manager = make(pool, loader)
        manager.apply_config([ModelConfig("a", str(tmp_path / "a"), VersionPolicy.all())],
                             initial=True)
        await manager.wait_idle()
        watcher = Watcher(manager, str(config), config.read_text())
        loader.gate = threading.Event()  # version 2 stays LOADING until released
        versions(tmp_path / "a", 2)
        watcher.poll_filesystem_once()
        await until(lambda: states(manager, "a").get(2) == "LOADING")
        _write(config, _entry("a", tmp_path / "a", 'version_labels { key: "next" value: 2 }'))
        assert await watcher.poll_config_once() is True  # applied, but the label must wait
        assert manager.labels("a") == {}
        with pytest.raises(FailedPrecondition, match="version 2 of model a, which is not"):
            await watcher.poll_config_once(force=True)
        loader.gate.set()
        await manager.wait_idle()
        assert await watcher.poll_config_once() is True  # same text, retried: now it applies
        assert manager.labels("a") == {"next": 2}
        assert await watcher.poll_config_once() is False  # nothing pending any more

    asyncio.run(scenario())


def test_without_a_config_file_a_reload_rescans_the_folders(tmp_path: Path, pool) -> None:
    versions(tmp_path / "a", 1)

    async def scenario() -> None:
        manager = make(pool, ScriptedLoader())
        manager.apply_config([ModelConfig("a", str(tmp_path / "a"))], initial=True)
        await manager.wait_idle()
        watcher = Watcher(manager)
        versions(tmp_path / "a", 2)
        assert await watcher.poll_config_once() is False  # a poll does not rescan
        await manager.wait_idle()
        assert states(manager, "a") == {1: "AVAILABLE"}
        assert await watcher.poll_config_once(force=True) is False
        await manager.wait_idle()
        assert states(manager, "a") == {2: "AVAILABLE", 1: "END"}

    asyncio.run(scenario())
