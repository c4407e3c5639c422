"""The version lifecycle through the declared loader seam (``manager.Loader``).

A scripted loader stands in for TensorFlow so the availability-preserving policy, retries and
label rules can be driven step by step; the same behaviours are exercised end to end with real
SavedModels against the real server in the subprocess tests.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from scripted_loader import ScriptedLoader, make, states, until, versions

from tfserve_magic.serving.models.config import ModelConfig
from tfserve_magic.serving.models.policy import VersionPolicy
from tfserve_magic.serving.status_errors import FailedPrecondition, InvalidArgument, NotFound
from tfserve_magic.status import VersionState


def test_new_version_replaces_old_only_once_available(tmp_path, pool) -> None:
    async def scenario() -> None:
        loader = ScriptedLoader()
        manager = make(pool, loader)
        versions(tmp_path, 1)
        manager.apply_config([ModelConfig("m", str(tmp_path))], initial=True)
        await manager.wait_idle()
        assert states(manager) == {1: "AVAILABLE"}

        versions(tmp_path, 2)
        loader.gate = threading.Event()
        manager.rescan("m")
        await until(lambda: states(manager).get(2) == "LOADING")
        # While 2 loads, 1 still takes Latest traffic.
        assert manager.servable("m")[0] == 1
        loader.gate.set()
        await manager.wait_idle()
        assert states(manager) == {2: "AVAILABLE", 1: "END"}
        assert manager.servable("m")[0] == 2
        with pytest.raises(NotFound, match=r"Servable not found for request: Specific\(m, 1\)"):
            manager.servable("m", 1)

    asyncio.run(scenario())


def test_failed_version_never_serves_and_old_keeps_serving(tmp_path, pool) -> None:
    async def scenario() -> None:
        loader = ScriptedLoader()
        manager = make(pool, loader, max_load_retries=2)
        versions(tmp_path, 1)
        manager.apply_config([ModelConfig("m", str(tmp_path))], initial=True)
        await manager.wait_idle()
        versions(tmp_path, 2, broken=(2,))
        manager.rescan("m")
        await manager.wait_idle()
        assert loader.loaded.count("2") == 3  # one attempt + two retries
        assert states(manager) == {2: "END", 1: "AVAILABLE"}
        failed = manager.status("m", 2)[0]
        assert failed.error_code.name == "UNKNOWN" and "cannot load" in failed.error_message
        assert manager.servable("m")[0] == 1
        # Removing the broken folder forgets it; putting it back fixed loads it again.
        (tmp_path / "2" / "BROKEN").unlink()
        (tmp_path / "2").rename(tmp_path / ".2-aside")
        manager.rescan("m")
        await manager.wait_idle()
        (tmp_path / ".2-aside").rename(tmp_path / "2")
        manager.rescan("m")
        await manager.wait_idle()
        assert states(manager) == {2: "AVAILABLE", 1: "END"}

    asyncio.run(scenario())


def test_policies_all_and_specific(tmp_path, pool) -> None:
    async def scenario() -> None:
        manager = make(pool, ScriptedLoader())
        versions(tmp_path, 1, 2, 3)
        manager.apply_config([ModelConfig("m", str(tmp_path), VersionPolicy.all())], initial=True)
        await manager.wait_idle()
        assert states(manager) == {3: "AVAILABLE", 2: "AVAILABLE", 1: "AVAILABLE"}
        manager.apply_config([ModelConfig("m", str(tmp_path), VersionPolicy.specific([1, 3]))])
        await manager.wait_idle()
        assert states(manager) == {3: "AVAILABLE", 2: "END", 1: "AVAILABLE"}
        manager.apply_config([ModelConfig("m", str(tmp_path), VersionPolicy.latest(2))])
        await manager.wait_idle()
        assert {v for v, s in states(manager).items() if s == "AVAILABLE"} == {2, 3}

    asyncio.run(scenario())


def test_labels_need_available_versions_unless_allowed(tmp_path, pool) -> None:
    async def scenario() -> None:
        manager = make(pool, ScriptedLoader())
        versions(tmp_path, 1, 2)
        config = ModelConfig("m", str(tmp_path), VersionPolicy.specific([1, 2]))
        manager.apply_config([config], initial=True)
        await manager.wait_idle()
        manager.update_labels({"m": {"stable": 1}})
        assert manager.servable("m", label="stable")[0] == 1
        with pytest.raises(FailedPrecondition, match="version 7 of model m, which is not "
                                                     "currently available for inference"):
            manager.update_labels({"m": {"stable": 7}})
        assert manager.labels("m") == {"stable": 1}  # all or nothing
        with pytest.raises(InvalidArgument, match="Unrecognized servable version label: canary"):
            manager.servable("m", label="canary")

    asyncio.run(scenario())


def test_allow_flag_permits_new_labels_but_not_moves_to_unavailable(tmp_path, pool) -> None:
    async def scenario() -> None:
        manager = make(pool, ScriptedLoader(), allow_labels_for_unavailable=True)
        versions(tmp_path, 1)
        manager.apply_config([ModelConfig("m", str(tmp_path), labels={"next": 2})], initial=True)
        await manager.wait_idle()
        assert manager.labels("m") == {"next": 2}
        with pytest.raises(NotFound, match=r"Specific\(m, 2\)"):
            manager.servable("m", label="next")
        manager.update_labels({"m": {"next": 2, "stable": 1}})
        with pytest.raises(FailedPrecondition):
            manager.update_labels({"m": {"next": 3, "stable": 1}})

    asyncio.run(scenario())


def test_removed_model_unloads_but_keeps_its_history(tmp_path, pool) -> None:
    async def scenario() -> None:
        manager = make(pool, ScriptedLoader())
        versions(tmp_path / "a", 1)
        versions(tmp_path / "b", 1)
        manager.apply_config([ModelConfig("a", str(tmp_path / "a")),
                              ModelConfig("b", str(tmp_path / "b"))], initial=True)
        await manager.wait_idle()
        manager.apply_config([ModelConfig("a", str(tmp_path / "a"))])
        await manager.wait_idle()
        assert manager.model_names == ["a"]
        assert states(manager, "b") == {1: "END"}
        with pytest.raises(NotFound, match=r"Latest\(b\)"):
            manager.servable("b")

    asyncio.run(scenario())


def test_missing_base_path_keeps_serving_what_it_served(tmp_path, pool) -> None:
    async def scenario() -> None:
        manager = make(pool, ScriptedLoader())
        versions(tmp_path / "m", 1)
        manager.apply_config([ModelConfig("m", str(tmp_path / "m"))], initial=True)
        await manager.wait_idle()
        (tmp_path / "m").rename(tmp_path / "gone")
        manager.rescan("m")
        await manager.wait_idle()
        assert states(manager) == {1: "AVAILABLE"}

    asyncio.run(scenario())


def test_version_state_numbers_match_tf_serving() -> None:
    assert [(s.name, s.value) for s in VersionState] == [
        ("UNKNOWN", 0), ("START", 10), ("LOADING", 20), ("AVAILABLE", 30),
        ("UNLOADING", 40), ("END", 50)]
