"""Binder's configuration stays consistent with the package it installs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_post_build_installs_the_package_with_the_pins() -> None:
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)
    text = post_build.read_text()
    assert "pip install --no-cache-dir -c constraints.txt ." in text
    assert "urlpath=lab/tree/notebooks/01_quickstart.ipynb" in text
    assert (ROOT / "notebooks" / "01_quickstart.ipynb").exists()


def test_environment_python_satisfies_requires_python() -> None:
    environment = (ROOT / "binder" / "environment.yml").read_text()
    python = re.search(r"python=(\d+)\.(\d+)", environment)
    assert python is not None
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(p) for p in re.search(r">=(\d+)\.(\d+)", requires).groups())
    assert (int(python.group(1)), int(python.group(2))) >= minimum
    assert int(re.search(r"nodejs=(\d+)", environment).group(1)) >= 20
