"""The quickstart as a Colab user runs it: 01_quickstart.ipynb executed by nbclient in a real
IPython kernel of the environment under test (``%load_ext``, ``%tfserve start``, ``%%predict``,
``status``, ``dashboard``, ``url``, ``stop``), and the dashboard's widgets as that kernel sent them.

Run by ``make test-envs`` in the environment built from Colab's package list (IPython 7, ipykernel
6, ipywidgets 7, whose widgets speak controls 1.5.0) and in the newest one (ipywidgets 8, controls
2.0.0); ``make test`` runs the notebooks in a real JupyterLab instead (tests/browser).
"""

from __future__ import annotations

from pathlib import Path

import ipywidgets
import nbformat
import pytest
from nbclient import NotebookClient

from tfserve_magic.lifecycle import launcher, registry

QUICKSTART = Path(__file__).resolve().parents[2] / "notebooks" / "01_quickstart.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# @jupyter-widgets/controls as each ipywidgets major speaks it.
CONTROLS_VERSION = {"7": "1.5.0", "8": "2.0.0"}


def _text(outputs: list[dict]) -> str:
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)


@pytest.mark.timeout(900)  # trains a model and starts a server, on a loaded 2-core box
def test_quickstart_runs_in_a_kernel_and_the_dashboard_speaks_this_ipywidgets(
        tmp_path: Path, runtime_dir: Path) -> None:
    nb = nbformat.read(QUICKSTART, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600, startup_timeout=180,
                            store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    finally:
        for record in registry.read_records():
            launcher.stop(record.name)
    cells = {c.source: c.outputs for c in nb.cells if c.cell_type == "code"}
    text = _text([o for outputs in cells.values() for o in outputs])
    for line in ("Started server digits", "accuracy through the server", "Stopped digits."):
        assert line in text, text[-3000:]

    views = [o["data"][WIDGET_VIEW] for o in cells["%tfserve dashboard digits"]
             if WIDGET_VIEW in o.get("data", {})]
    assert len(views) == 1, cells["%tfserve dashboard digits"]
    state = nb.metadata.widgets[WIDGET_STATE]["state"]
    assert views[0]["model_id"] in state
    controls = {m["model_module_version"] for m in state.values()
                if m["model_module"] == "@jupyter-widgets/controls"}
    assert controls == {CONTROLS_VERSION[ipywidgets.__version__.split(".")[0]]}
    shown = " ".join(str(m["state"].get("value", "")) for m in state.values())
    assert "digits" in shown and "AVAILABLE" in shown, shown[:2000]
