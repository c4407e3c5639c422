"""``make demo`` from start to end: the command the Makefile runs builds the demo models, serves
them, predicts with both and stops it, within a deadline; it prints no TensorFlow start-up noise
and no curl lines for a server it has already stopped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tfserve_magic.serving.process.native_log import is_startup_noise

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_runs_the_demo_module() -> None:
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "demo", "STAMP=", "BIN=/venv/bin"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert "/venv/bin/python -m tfserve_magic.demo \n" in dry.stdout


def test_the_demo_serves_predicts_and_stops(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    out = subprocess.run([sys.executable, "-m", "tfserve_magic.demo", "--dir",
                          str(tmp_path / "demo_models")],
                         capture_output=True, text=True, timeout=600, check=False,
                         env={**{k: v for k, v in os.environ.items()
                                 if k != "TF_CPP_MIN_LOG_LEVEL"},  # as in a fresh shell
                              "TFSERVE_MAGIC_RUNTIME_DIR": str(runtime)})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "half_plus_two[1.0, 2.0, 5.0] -> [2.5, 3.0, 4.5]" in text
    found = re.search(r"digits: predicted (\[[\d, ]+\]), true (\[[\d, ]+\])", text)
    assert found, text
    predicted, true = json.loads(found.group(1)), json.loads(found.group(2))
    assert len(predicted) == 5 and sum(p == t for p, t in zip(predicted, true, strict=True)) >= 4
    assert "curl" not in text.replace("(with curl lines", "")  # its server is gone by then
    assert "The demo stops its server now; `make demo KEEP=1` keeps it serving" in text
    output = out.stdout + out.stderr
    assert not [line for line in output.splitlines() if is_startup_noise(line)], output[-3000:]
    assert text.rstrip().endswith("Server stopped.")
    assert list((runtime / "servers").glob("*.json")) == []  # nothing left recorded
    assert (tmp_path / "demo_models" / "models.config").exists()
