"""Fixtures for the notebook-control tests: an isolated registry and a real IPython shell."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def runtime_dir(isolated_runtime: Path) -> Path:
    """Records and logs of this test only (see ``isolated_runtime`` in tests/conftest.py)."""
    return isolated_runtime


@pytest.fixture
def ip(runtime_dir: Path):
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "tfserve_magic")
    from tfserve_magic import routing

    routing.clear()
    yield shell


@pytest.fixture
def versioned_base(tmp_path: Path, plus_version_builds: Path) -> Path:
    """A base path holding only version 1 of y = x + version."""
    base = tmp_path / "plus"
    base.mkdir()
    shutil.copytree(plus_version_builds / "1", base / "1")
    return base
