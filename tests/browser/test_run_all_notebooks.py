"""Every teaching notebook, driven as a person drives it: opened in a real JupyterLab under
headless Chromium, "Run All Cells" chosen from the Run menu, then read back.

All notebooks run one after another in the same Jupyter server and the same folder, so one
notebook's leftovers (a server still up, a model folder) cannot hide from the next. After each
one: no cell holds an error output, and no model server is left recorded or running.

This is the one execution of the teaching notebooks in the suite: each checks its own results
with asserts (predictions match the in-notebook model, accuracy above 0.9, labels route where
they should), and the outputs the person sees are read back and checked here (what the magics
printed, the dashboard's widget, the files a notebook must leave alone).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from lab_server import KERNEL_READY, chromium_page, jupyter_lab
from server_process import wait_for

from tfserve_magic.lifecycle import launcher, registry
from tfserve_magic.pids import pid_alive

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))

# What the notebook in front of the user shows: per code cell, whether it is still queued or
# running ("[*]"), its execution count, and its error outputs (ename: evalue).
NOTEBOOK_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel?.sessionContext?.session?.kernel;
  const cells = (panel?.content?.widgets ?? []).filter(c => c.model.type === 'code');
  return {
    kernel: kernel ? kernel.status : 'none',
    cells: cells.map(c => ({
      prompt: c.node.querySelector('.jp-InputPrompt')?.textContent ?? '',
      count: c.model.executionCount,
      errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                .map(o => `${o.ename}: ${o.evalue}`)
    }))
  };
}"""

NOTEBOOK_DONE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel?.sessionContext?.session?.kernel;
  if (!kernel || kernel.status !== 'idle') return false;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  if (cells.some(c => (c.node.querySelector('.jp-InputPrompt')?.textContent ?? '').includes('*')))
    return false;
  // Run All stops at the first error: done when every cell ran, or one failed.
  return cells.every(c => c.model.executionCount !== null)
      || cells.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
}"""


# Every output of every code cell, as JupyterLab holds it (nbformat's JSON).
NOTEBOOK_OUTPUTS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code').flatMap(c => c.model.outputs.toJSON())"""

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _outputs_text(outputs: list[dict]) -> str:
    """What the person reads: streams (stdout and stderr) and plain-text results."""
    parts = []
    for output in outputs:
        for text in (output.get("text", ""), output.get("data", {}).get("text/plain", "")):
            parts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(parts)


# What each notebook must show once it has run, beyond its own asserts.
EXPECTED_OUTPUTS = {
    "01_quickstart.ipynb": ["Started server digits", "accuracy through the server",
                            "Stopped digits."],
    "02_versions_and_rollback.ipynb": ["digits version 2 is AVAILABLE",
                                       "refused: Request to assign label to version 7",
                                       "specific 1, 3: [1, 3]", "latest 1: [3]",
                                       "Stopped lessons."],
    "03_deploy.ipynb": ["Wrote {root}/deploy/shop for server shop",
                        "deployment.yaml: a valid Deployment",
                        "exists and was not written by tfserve deploy", "Connected production:",
                        "production is a remote server", "Stopped shop."],
    "04_batching.ipynb": ["max_batch_size { value: 32 }",
                          "requests sent: 800, rows batched: 800, model calls:",
                          "batched / plain throughput:", "Stopped plain.", "Stopped batched."],
}


def _check_outputs(notebook: str, outputs: list[dict], root: Path) -> None:
    text = _outputs_text(outputs)
    missing = [line for line in (e.replace("{root}", str(root)) for e in EXPECTED_OUTPUTS[notebook])
               if line not in text]
    assert not missing, f"{notebook}: outputs lack {missing}:\n{text[-3000:]}"
    if notebook == "01_quickstart.ipynb":
        assert any(WIDGET_VIEW in o.get("data", {}) for o in outputs), \
            f"{notebook}: the dashboard did not render"
    if notebook == "03_deploy.ipynb":  # the deploy into a folder it did not write was refused
        assert (root / "my_notes" / "todo.txt").read_text() == "keep me"


def _run_all_from_menu(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


def _left_running() -> list[str]:
    """What `%tfserve list` would show: every recorded server, with whether its pid lives."""
    return [f"{r.name} (pid {r.pid}, {'alive' if pid_alive(r.pid) else 'dead'})"
            for r in registry.read_records()]


@pytest.mark.timeout(1800)  # every notebook trains models and starts servers, on 2 cores
def test_every_notebook_runs_all_cells_in_jupyterlab(tmp_path, monkeypatch) -> None:
    assert sorted(EXPECTED_OUTPUTS) == [n.name for n in NOTEBOOKS]
    runtime = tmp_path / "tfserve-runtime"
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(runtime))
    try:
        _run_every_notebook(tmp_path, runtime)
    finally:
        for record in registry.read_records():
            launcher.stop(record.name)


def _run_every_notebook(tmp_path: Path, runtime: Path) -> None:
    with jupyter_lab(tmp_path, {"TFSERVE_MAGIC_RUNTIME_DIR": str(runtime)}) as lab, \
            chromium_page(tmp_path) as page:
        for notebook in NOTEBOOKS:
            shutil.copy(notebook, lab.root / notebook.name)
        for notebook in NOTEBOOKS:
            # ?reset: a fresh workspace, so the previous notebook's tab is not restored.
            page.goto(f"{lab.url}lab/tree/{notebook.name}?reset&token={lab.token}")
            page.wait_for_function(KERNEL_READY, timeout=120_000)
            _run_all_from_menu(page)
            # A notebook trains small models and starts servers: minutes, not seconds, on 2 cores.
            page.wait_for_function(NOTEBOOK_DONE, timeout=600_000, polling=500)
            state = page.evaluate(NOTEBOOK_STATE)
            page.screenshot(path=str(tmp_path / f"{notebook.stem}.png"))
            failed = [(i, c["errors"]) for i, c in enumerate(state["cells"]) if c["errors"]]
            assert not failed, f"{notebook.name}: code cells with errors: {failed}"
            not_run = [i for i, c in enumerate(state["cells"]) if c["count"] is None]
            assert not not_run, f"{notebook.name}: code cells that never ran: {not_run}"
            _check_outputs(notebook.name, page.evaluate(NOTEBOOK_OUTPUTS), lab.root)
            # Nothing left serving: no record, the same list `%tfserve list` reads.
            assert _left_running() == [], f"{notebook.name} left servers: {_left_running()}"
            sessions = lab.api("api/sessions").json()
            for session in sessions:
                lab.api(f"api/sessions/{session['id']}", method="DELETE")
            wait_for(lambda: not lab.api("api/kernels").json(), 60, what="kernels to shut down")
