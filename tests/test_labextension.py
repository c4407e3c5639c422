"""The JupyterLab extension: installed and enabled by `pip install .`, and its TypeScript unit
tests pass (node's own test runner)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABEXTENSION = ROOT / "labextension"


def _jupyter(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "jupyter", *args], capture_output=True,
                         text=True, timeout=120, check=False)
    return out.stdout + out.stderr


def test_lab_and_server_extensions_are_enabled() -> None:
    assert "tfserve-magic v0.1.0 \x1b[32menabled\x1b[0m \x1b[32mOK\x1b[0m" in _jupyter(
        "labextension", "list") or "tfserve-magic v0.1.0 enabled OK" in _jupyter(
        "labextension", "list")
    servers = _jupyter("server", "extension", "list")
    assert "tfserve_magic" in servers and "enabled" in servers


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
    assert "# pass 2" in result.stdout and "# fail 0" in result.stdout
