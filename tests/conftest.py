"""Shared fixtures: tiny real SavedModels built once per session, and real server processes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import server_process
from server_process import VERSIONED_CONFIG, RunningServer, start_server, write_server_config

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: without xdist it is never called
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work units of `make test`'s two workers: a test file runs on one worker, so the servers
    its module fixtures start are started once; the browser tests are one unit, so two
    JupyterLabs with Chromium never compete for the two cores (they are collected first, and
    ``--no-loadscope-reorder`` keeps that order, so the longest unit does not come last)."""
    from xdist.scheduler import LoadFileScheduling

    class FilesAndBrowser(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/browser" if nodeid.startswith("tests/browser/") \
                else super()._split_scope(nodeid)

    return FilesAndBrowser(config, log)


@pytest.fixture(scope="session")
def gpu_count() -> int:
    """How many GPUs TensorFlow sees on this machine: device tests assert what the machine has."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections for the whole test (bound by us, never listening)."""
    with server_process.closed_port() as port:
        yield port


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def half_plus_two(models_root: Path) -> Path:
    """Base path of half_plus_two with version 1 (serving_default, classify_x_to_y, regress_x_to_y)."""
    from tfserve_magic.demo.models import build_half_plus_two

    base = models_root / "half_plus_two"
    build_half_plus_two(str(base), 1)
    return base


@pytest.fixture(scope="session")
def half_plus_two_padded(models_root: Path, half_plus_two: Path) -> Path:
    """The same model in a zero-padded version folder, 00000123 (version 123)."""
    base = models_root / "half_plus_two_padded"
    shutil.copytree(half_plus_two / "1", base / "00000123")
    return base


@pytest.fixture(scope="session")
def multi_io(models_root: Path) -> Path:
    from models import build_multi_io

    base = models_root / "multi_io"
    build_multi_io(str(base))
    return base


@pytest.fixture(scope="session")
def strings_model(models_root: Path) -> Path:
    from models import build_strings

    base = models_root / "strings"
    build_strings(str(base))
    return base


@pytest.fixture(scope="session")
def ints_model(models_root: Path) -> Path:
    from models import build_ints

    base = models_root / "ints"
    build_ints(str(base))
    return base


@pytest.fixture(scope="session")
def plus_version_builds(models_root: Path) -> Path:
    """A pristine store of y = x + v for v in 1, 2, 3 (copy versions out of it; never serve it)."""
    from models import build_plus_version

    base = models_root / "plus_version_store"
    for version in (1, 2, 3):
        build_plus_version(str(base), version)
    return base


@pytest.fixture(scope="session")
def unloadable_model(models_root: Path) -> Path:
    """A base path whose version 1 saves fine but fails in ``tf.saved_model.load``."""
    from models import build_unloadable

    base = models_root / "unloadable"
    build_unloadable(str(base))
    return base


@pytest.fixture(scope="session")
def slow_model(models_root: Path) -> Path:
    from models import build_slow

    base = models_root / "slow"
    build_slow(str(base))
    return base


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory, half_plus_two, half_plus_two_padded, multi_io, strings_model,
                  ints_model, plus_version_builds) -> Iterator[RunningServer]:
    """One read-only server for the many tests that only send requests."""
    root = tmp_path_factory.mktemp("shared_server")
    versioned = root / "versioned"
    shutil.copytree(plus_version_builds, versioned)
    entries = {
        "half_plus_two": (half_plus_two, ""),
        "half_plus_two_padded": (half_plus_two_padded, ""),
        "multi_io": (multi_io, ""),
        "strings": (strings_model, ""),
        "ints": (ints_model, ""),
        "versioned": (versioned, VERSIONED_CONFIG),
    }
    config, monitoring = write_server_config(root, entries)
    server = start_server(f"--model_config_file={config}",
                          "--allow_version_labels_for_unavailable_models",
                          f"--monitoring_config_file={monitoring}",
                          "--file_system_poll_wait_seconds=0", log_dir=root)
    try:
        for name in entries:
            server.wait_state(name)
        server.wait_state("versioned", 1)
        server.wait_state("versioned", 2)
        yield server
    finally:
        server.stop()


@pytest.fixture
def isolated_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A registry of this test only; every server the test started is stopped afterwards."""
    path = tmp_path / "runtime"
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(path))
    yield path
    from tfserve_magic.lifecycle import launcher

    launcher.stop(all=True)


# Fixtures of the kernel-side tests: an isolated registry and a real IPython shell.
@pytest.fixture
def runtime_dir(isolated_runtime: Path) -> Path:
    """Records and logs of this test only (see ``isolated_runtime`` in tests/conftest.py)."""
    return isolated_runtime


@pytest.fixture
def ip(runtime_dir: Path):
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "tfserve_magic")
    # No warm spare (one more TensorFlow import per start on a shared CI box); it has its own
    # tests (tests/lifecycle/test_spare.py), and notebooks run with the default (on).
    shell.run_line_magic("config", "TFServeMagics.warm_spare = False")
    from tfserve_magic.notebook import defaults

    defaults.clear()
    return shell


@pytest.fixture
def versioned_base(tmp_path: Path, plus_version_builds: Path) -> Path:
    """A base path holding only version 1 of y = x + version."""
    base = tmp_path / "plus"
    base.mkdir()
    shutil.copytree(plus_version_builds / "1", base / "1")
    return base
