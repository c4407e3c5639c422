"""One notebook server (started by the launcher, as ``%tfserve start`` does) shared by the deploy
tests: two models, one with three versions of which one fails to load, labels, and
the Prometheus monitoring config the launcher always passes, and dynamic batching."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from models import corrupt_copy
from server_process import wait_for

BATCHING = "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 2000 }\n"


@dataclass(frozen=True)
class NotebookServer:
    name: str
    runtime: Path
    url: str
    config: Path
    batching: str  # the batching parameters it runs with


@pytest.fixture(scope="package")  # only read by the tests: start it once
def notebook_server(tmp_path_factory: pytest.TempPathFactory, plus_version_builds: Path,
                    half_plus_two: Path) -> Iterator[NotebookServer]:
    root = tmp_path_factory.mktemp("notebook")
    plus = root / "plus"
    for version in (1, 2):
        shutil.copytree(plus_version_builds / str(version), plus / str(version))
    corrupt_copy(str(plus_version_builds / "3"), str(plus / "3"))  # END with an error
    config = root / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "plus" base_path: "{plus}" model_platform: "tensorflow"\n'
        "    model_version_policy { all {} }\n"
        '    version_labels { key: "stable" value: 1 }\n'
        '    version_labels { key: "canary" value: 2 }\n'
        '    version_labels { key: "next" value: 3 } }\n'
        f'  config {{ name: "half_plus_two" base_path: "{half_plus_two}" '
        'model_platform: "tensorflow" }\n'
        "}\n")
    batching = root / "batching.config"
    batching.write_text(BATCHING)
    runtime = root / "runtime"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(runtime))
        from tfserve_magic.lifecycle import launcher

        handle = launcher.start(config=str(config), name="shop", extra_flags=[
            "--enable_batching", f"--batching_parameters_file={batching}",
            "--event_loop=asyncio", "--http_header_timeout_seconds=20"])  # flags of ours
        def settled() -> bool:  # the launcher returns once one version of each is AVAILABLE
            states = {s.version: s.state.name for s in handle.client.status("plus")}
            return states == {1: "AVAILABLE", 2: "AVAILABLE", 3: "END"}

        try:
            wait_for(settled, 120, what="plus versions 1, 2 AVAILABLE and 3 failed")
            yield NotebookServer(handle.name, runtime, handle.url, config, BATCHING)
        finally:
            launcher.stop(all=True)


@pytest.fixture
def in_notebook_runtime(notebook_server: NotebookServer,
                        monkeypatch: pytest.MonkeyPatch) -> NotebookServer:
    """The registry of the module's notebook server, for this test."""
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(notebook_server.runtime))
    return notebook_server
