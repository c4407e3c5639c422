"""Exporting from a real notebook kernel prints nothing of TensorFlow's INFO chatter (it used to
print "INFO:tensorflow:Assets written to ..." twice, once in red) and leaves Python's logging
configured as it was."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook


def stdout(cell: nbformat.NotebookNode) -> str:
    """A cell's printed text: a kernel may send one print as several stream messages (seen on a
    loaded machine: 'root handlers:' and ' []' apart), so they are joined; nothing on stderr."""
    assert all(o.get("name") == "stdout" for o in cell.outputs), cell.outputs
    return "".join(o["text"] for o in cell.outputs)


def test_export_prints_no_tensorflow_info_in_a_kernel(tmp_path: Path) -> None:
    notebook = new_notebook(cells=[new_code_cell(source) for source in (
        ("import logging\nimport tensorflow as tf\n"
        "from tfserve_magic.operations.export import export_version"),
        ("class Plus(tf.Module):\n"
        "    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name='x')])\n"
        "    def serve(self, x):\n"
        "        return {'y': x + 1.0}\n\n"
        "m = Plus()\n"
        "print(export_version(m, 'models/plus', signatures={'serving_default': m.serve}))\n"
        "print(export_version(m, 'models/plus', signatures={'serving_default': m.serve}))"),
        "print('root handlers:', logging.getLogger().handlers)",
    )])
    NotebookClient(notebook, timeout=300, kernel_name="python3", startup_timeout=120,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    export, handlers = notebook.cells[1], notebook.cells[2]
    # Run twice (a notebook run again): the second export finds the same model and says so.
    expected = (f"Exported version 1 to {tmp_path}/models/plus/1\n"
                f"Version 1 at {tmp_path}/models/plus/1 already holds this model (identical): "
                "nothing written\n")
    assert stdout(export) == expected
    assert stdout(handlers) == "root handlers: []\n"
    nbformat.validate(notebook)
