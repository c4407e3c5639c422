"""TensorFlow's native start-up lines (absl's pre-init warning, oneDNN, "failed call to
cuInit") are kept out of a notebook's cells once ``%load_ext tfserve_magic`` ran: the first
TensorFlow cell of every teaching notebook showed them as red boxes. Other native output still
shows, unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook


def test_the_first_tensorflow_cell_shows_no_native_noise(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # ipykernel shows a kernel's fd 2 in the cell, as for a person, unless it runs under pytest.
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    notebook = new_notebook(cells=[new_code_cell(source) for source in (
        "%load_ext tfserve_magic",
        ("import tensorflow as tf\n"  # the import, and the first look for devices
         "model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])\n"
         "print('built')"),
        "import os\nos.write(2, b'a native message of the user\\n')",
        "print('next')",
    )])
    NotebookClient(notebook, timeout=300, kernel_name="python3", startup_timeout=120,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [[(o.get("name"), o.get("text", "")) for o in cell.outputs]
               for cell in notebook.cells]
    assert outputs[0] == [], outputs[0]
    assert outputs[1] == [("stdout", "built\n")], outputs[1]
    later = [text for name, text in outputs[2] + outputs[3] if name == "stderr"]
    assert "".join(later) == "a native message of the user\n", outputs[2:]
