"""The teaching notebooks as committed: valid nbformat, and no outputs (a learner's first run
is the only one they see).

They are executed, and their outputs checked, by tests/browser/test_run_all_notebooks.py: a
person's "Run All" in a real JupyterLab, the one execution of them in the suite.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_notebooks_are_committed_without_outputs() -> None:
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert paths, NOTEBOOKS
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), path
