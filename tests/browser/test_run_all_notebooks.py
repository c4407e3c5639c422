"""Every teaching notebook, driven as a person drives it: opened in a real JupyterLab under
headless Chromium, "Run All Cells" chosen from the Run menu, then read back.

All notebooks run one after another in the same Jupyter server and the same folder, so one
notebook's leftovers (a server still up, a model folder) cannot hide from the next. After each
one: no cell holds an error output, and no model server is left recorded or running.
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


def _run_all_from_menu(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


def _left_running() -> list[str]:
    """What `%tfserve list` would show: every recorded server, with whether its pid lives."""
    return [f"{r.name} (pid {r.pid}, {'alive' if pid_alive(r.pid) else 'dead'})"
            for r in registry.read_records()]


@pytest.mark.timeout(1800)  # every notebook trains models and starts servers, on 2 cores
def test_every_notebook_runs_all_cells_in_jupyterlab(tmp_path, monkeypatch) -> None:
    assert len(NOTEBOOKS) >= 2, NOTEBOOKS
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
            # Nothing left serving: no record, the same list `%tfserve list` reads.
            assert _left_running() == [], f"{notebook.name} left servers: {_left_running()}"
            sessions = lab.api("api/sessions").json()
            for session in sessions:
                lab.api(f"api/sessions/{session['id']}", method="DELETE")
            wait_for(lambda: not lab.api("api/kernels").json(), 60, what="kernels to shut down")
