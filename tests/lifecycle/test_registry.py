"""The on-disk registry: atomic records, names that must be file names, the default runtime
directory, and probe() trusting a record only when its port answers with its pid."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tfserve_magic.lifecycle import registry
from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.serving.status_errors import ConfigError


def _record(name: str, pid: int = 4321, port: int = 8501, **fields) -> ServerRecord:
    return ServerRecord(name=name, pid=pid, host="127.0.0.1", rest_api_port=port,
                        url=f"http://127.0.0.1:{port}", **fields)


def test_records_round_trip_and_leave_no_temporary_files(isolated_runtime: Path) -> None:
    first = _record("a", models=("m1", "m2"), argv=("x", "--y"), extra={"spec": "[1]"})
    path = registry.write_record(first)
    assert path == isolated_runtime / "servers" / "a.json"
    registry.write_record(_record("b", port=8502))
    assert [r.name for r in registry.read_records()] == ["a", "b"]
    assert registry.find_record("a") == first  # tuples and dicts survive JSON
    assert registry.find_record(8502).name == "b" and registry.find_record("8502").name == "b"
    assert registry.find_record("c") is None
    assert sorted(os.listdir(path.parent)) == ["a.json", "b.json"]
    registry.remove_record("a")
    registry.remove_record("a")  # twice is fine
    assert [r.name for r in registry.read_records()] == ["b"]


def test_unreadable_records_are_skipped(isolated_runtime: Path) -> None:
    registry.write_record(_record("good"))
    (registry.registry_dir() / "bad.json").write_text("{not json")
    (registry.registry_dir() / "odd.json").write_text('{"name": "odd"}')  # fields missing
    assert [r.name for r in registry.read_records()] == ["good"]


def test_unknown_fields_of_a_newer_version_are_ignored(isolated_runtime: Path) -> None:
    data = _record("new").to_json() | {"added_later": 1}
    (registry.registry_dir() / "new.json").write_text(__import__("json").dumps(data))
    assert registry.find_record("new") == _record("new")


@pytest.mark.parametrize("name", ["", "a/b", ".hidden", "a\\b", "a\0b", "..", "../x"])
def test_names_that_cannot_name_a_file_are_refused(isolated_runtime: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=r"invalid server name .*it names a file"):
        registry.check_name(name)
    with pytest.raises(ConfigError, match="invalid server name"):
        registry.write_record(_record(name))
    assert list(registry.registry_dir().iterdir()) == []


def test_default_runtime_directory_is_jupyters(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    from jupyter_core.paths import jupyter_runtime_dir

    monkeypatch.delenv("TFSERVE_MAGIC_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    assert jupyter_runtime_dir() == str(tmp_path / "jupyter-runtime")
    assert registry.registry_dir() == tmp_path / "jupyter-runtime" / "tfserve_magic" / "servers"
    assert registry.registry_dir().is_dir()


def test_probe_trusts_a_record_only_when_its_port_answers_with_its_pid(
        shared_server, closed_port: int) -> None:
    alive = _record("s", pid=shared_server.pid, port=shared_server.port,
                    secret=shared_server.secret)
    description = registry.probe(alive)
    assert description is not None and description.pid == shared_server.pid
    # Without the secret the server does not say its pid, so the record cannot be trusted.
    assert registry.probe(_record("s", pid=shared_server.pid, port=shared_server.port)) is None
    # The same port, but the record names another live process (this one): not that server.
    assert registry.probe(_record("s", pid=os.getpid(), port=shared_server.port)) is None
    # A live pid whose port refuses connections.
    assert registry.probe(_record("s", pid=shared_server.pid, port=closed_port)) is None
    # A pid that is not running at all.
    assert registry.probe(_record("s", pid=2**22 + 1, port=shared_server.port)) is None


def test_records_of_servers_whose_kernel_is_gone_too_are_deleted(isolated_runtime: Path) -> None:
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)  # reaped: its pid names no process
    alive = os.getpid()
    registry.write_record(_record("orphan", pid=gone.pid, owner_pid=gone.pid))
    registry.write_record(_record("crashed", pid=gone.pid, owner_pid=alive))  # kernel still here
    registry.write_record(_record("running", pid=alive, owner_pid=gone.pid))  # detached, alive
    # A connection ends with the kernel that made it (it was kept, "dead remote", before).
    registry.write_record(_record("remote", pid=0, owner_pid=gone.pid, remote=True))
    registry.write_record(_record("connected", pid=0, owner_pid=alive, remote=True))
    assert [r.name for r in registry.read_records()] == ["connected", "crashed", "running"]
    assert not (isolated_runtime / "servers" / "orphan.json").exists()
    assert not (isolated_runtime / "servers" / "remote.json").exists()
