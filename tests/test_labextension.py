"""The JupyterLab extension: installed and enabled by `pip install .`, and its TypeScript unit
tests pass (node's own test runner)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABEXTENSION = ROOT / "labextension"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "jupyter", *args], capture_output=True,
                         text=True, timeout=120, check=False)
    return _ANSI.sub("", out.stdout + out.stderr)


def _first_line_naming(listing: str, name: str) -> str:
    """The first line about ``name``: the config directory that takes precedence comes first."""
    return next((line.strip() for line in listing.splitlines()
                 if line.split()[:1] == [name]), f"(no line for {name})")


def test_lab_and_server_extensions_are_enabled() -> None:
    labextensions = _jupyter("labextension", "list")
    assert _first_line_naming(labextensions, "tfserve-magic").startswith(
        "tfserve-magic v0.1.0 enabled OK"), labextensions
    servers = _jupyter("server", "extension", "list")
    assert _first_line_naming(servers, "tfserve_magic") == "tfserve_magic enabled", servers
    assert "tfserve_magic 0.1.0 OK" in servers


def test_typescript_unit_tests() -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to build and test the lab extension (see README)")
    if not (LABEXTENSION / "node_modules").exists():
        subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=LABEXTENSION,
                       check=True, capture_output=True, timeout=600)
    result = subprocess.run([npm, "test"], cwd=LABEXTENSION, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "# pass 5" in result.stdout and "# fail 0" in result.stdout


def test_the_lab_extension_carries_the_package_version() -> None:
    # npm needs a version in labextension/package.json; it is the one copy of __version__ that
    # cannot be read from Python, so this keeps it equal (pyproject.toml reads __init__.py).
    import json

    import tfserve_magic

    package = json.loads((LABEXTENSION / "package.json").read_text(encoding="utf-8"))
    assert package["version"] == tfserve_magic.__version__
