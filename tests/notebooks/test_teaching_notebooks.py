"""The teaching notebooks run top to bottom with nbclient, as a learner would run them.

Each notebook checks its own results with asserts (predictions match the in-notebook model,
accuracy above 0.9, labels route where they should); a failing assert fails the test with the
cell's error. Run in a copy of notebooks/ so the models they export stay out of the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def execute(name: str, workdir: Path) -> nbformat.NotebookNode:
    shutil.copy(NOTEBOOKS / name, workdir / name)
    notebook = nbformat.read(workdir / name, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", startup_timeout=120,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return notebook


def outputs_text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.notebook
def test_quickstart(isolated_runtime, tmp_path) -> None:
    notebook = execute("01_quickstart.ipynb", tmp_path)
    text = outputs_text(notebook)
    assert "Started server digits" in text
    assert "accuracy through the server" in text
    assert "Stopped digits." in text
    widget_outputs = [o for c in notebook.cells for o in c.get("outputs", [])
                      if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widget_outputs, "the dashboard did not render"
    assert not (tmp_path / "runtime" / "servers" / "digits.json").exists()


@pytest.mark.notebook
def test_versions_and_rollback(isolated_runtime, tmp_path) -> None:
    notebook = execute("02_versions_and_rollback.ipynb", tmp_path)
    text = outputs_text(notebook)
    assert "digits version 2 is AVAILABLE" in text
    assert "refused: Request to assign label to version 7" in text
    assert "specific 1, 3: [1, 3]" in text and "latest 1: [3]" in text
    assert "Stopped lessons." in text


def test_notebooks_are_committed_without_outputs() -> None:
    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), path


@pytest.mark.notebook
def test_batching(isolated_runtime, tmp_path) -> None:
    notebook = execute("04_batching.ipynb", tmp_path)
    text = outputs_text(notebook)
    assert "max_batch_size { value: 32 }" in text
    assert "requests sent: 800, rows batched: 800, model calls:" in text
    assert "batched / plain throughput:" in text
    assert "Stopped plain." in text and "Stopped batched." in text


@pytest.mark.notebook
def test_deploy(isolated_runtime, tmp_path) -> None:
    notebook = execute("03_deploy.ipynb", tmp_path)
    text = outputs_text(notebook)
    assert f"Wrote {tmp_path / 'deploy' / 'shop'} for server shop" in text
    assert "deployment.yaml: a valid Deployment" in text
    assert "exists and was not written by tfserve deploy" in text
    assert "Connected production:" in text
    assert "production is a remote server" in text
    assert "Stopped shop." in text
    assert (tmp_path / "my_notes" / "todo.txt").read_text() == "keep me"
    assert not (tmp_path / "runtime" / "servers" / "shop.json").exists()
