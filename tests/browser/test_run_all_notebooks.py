"""Every teaching notebook, driven as a person drives it: opened in a real JupyterLab (at a hub's
base URL, /user/alice/) under headless Chromium, "Run All Cells" chosen from the Run menu, read
back; then, as a teacher or a student who starts over does, "Restart Kernel and Run All Cells"
from the Kernel menu, read back again. Then two notebooks at once: 01 and 02 open side by side,
both running, each stopping only its own server.

All of it runs in one Jupyter server and one folder, so a notebook's leftovers (a server still
up, a model folder, a deployment) meet its own second run and the next notebook. After each run:
no cell holds an error output or a traceback, stderr holds only what the lesson prints there on
purpose (TensorFlow's native start-up lines are not among them), and no model server is left
recorded or running.

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

# The notebook panel open on `path` (JupyterLab can hold several side by side).
PANEL = """const panel = Array.from(window.jupyterapp.shell.widgets('main'))
  .find(w => w.context?.path === path);"""

# What the notebook in front of the user shows: per code cell, whether it is still queued or
# running ("[*]"), its execution count, and its error outputs (ename: evalue).
NOTEBOOK_STATE = f"""(path) => {{
  {PANEL}
  const kernel = panel?.sessionContext?.session?.kernel;
  const cells = (panel?.content?.widgets ?? []).filter(c => c.model.type === 'code');
  return {{
    kernel: kernel ? kernel.status : 'none',
    cells: cells.map(c => ({{
      prompt: c.node.querySelector('.jp-InputPrompt')?.textContent ?? '',
      count: c.model.executionCount,
      errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                .map(o => `${{o.ename}}: ${{o.evalue}}`)
    }}))
  }};
}}"""

NOTEBOOK_DONE = f"""(path) => {{
  {PANEL}
  const kernel = panel?.sessionContext?.session?.kernel;
  if (!kernel || kernel.status !== 'idle') return false;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  if (cells.some(c => (c.node.querySelector('.jp-InputPrompt')?.textContent ?? '').includes('*')))
    return false;
  // Run All stops at the first error: done when every cell ran, or one failed.
  return cells.every(c => c.model.executionCount !== null)
      || cells.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
}}"""

# Before a restart: forget the first run's execution counts (a mark for this test only), so
# "every cell ran" can only mean the second run, and note when the kernel restarts.
MARK_FIRST_RUN = f"""(path) => {{
  {PANEL}
  window.tfserveRestarted = false;
  panel.sessionContext.session.kernel.statusChanged.connect((_, status) => {{
    if (status === 'restarting' || status === 'autorestarting') window.tfserveRestarted = true;
  }});
  panel.content.widgets.filter(c => c.model.type === 'code')
    .forEach(c => {{ c.model.executionCount = null; }});
}}"""

# Every output of every code cell, as JupyterLab holds it (nbformat's JSON).
NOTEBOOK_OUTPUTS = f"""(path) => {{
  {PANEL}
  return panel.content.widgets.filter(c => c.model.type === 'code')
    .map(c => c.model.outputs.toJSON());
}}"""

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _outputs_text(outputs: list[dict]) -> str:
    """What the person reads: streams (stdout and stderr) and plain-text results."""
    parts = []
    for output in outputs:
        for text in (output.get("text", ""), output.get("data", {}).get("text/plain", "")):
            parts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(parts)


# What each notebook must show once it has run, beyond its own asserts; "{root}" is the folder.
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
# What a second run (kernel restarted) shows besides: it reuses or replaces, visibly.
EXPECTED_AGAIN = {
    "01_quickstart.ipynb": [("Version 1 at {root}/models/digits/1 already holds this model "
                            "(identical): nothing written")],
    "02_versions_and_rollback.ipynb": [("Removed {root}/models/digits_v, exported by a previous "
                                       "run")],
    "03_deploy.ipynb": ["Wrote {root}/deploy/shop for server shop"],
    "04_batching.ipynb": [],
}
# The red boxes a lesson shows on purpose (a refusal it teaches); any other stderr is a defect.
EXPECTED_STDERR = {
    "03_deploy.ipynb": ("exists and was not written by tfserve deploy",
                        "production is a remote server"),
}


def _check_outputs(notebook: str, cells: list[list[dict]], root: Path, again: bool) -> None:
    outputs = [o for cell in cells for o in cell]
    text = _outputs_text(outputs)
    expected = EXPECTED_OUTPUTS[notebook] + (EXPECTED_AGAIN[notebook] if again else [])
    missing = [line for line in (e.replace("{root}", str(root)) for e in expected)
               if line not in text]
    assert not missing, f"{notebook}: outputs lack {missing}:\n{text[-3000:]}"
    assert "Traceback" not in text, f"{notebook}: a traceback:\n{text[-3000:]}"
    allowed = EXPECTED_STDERR.get(notebook, ())
    stray = [(i, "".join(o["text"])) for i, cell in enumerate(cells) for o in cell
             if o.get("name") == "stderr" and not any(a in "".join(o["text"]) for a in allowed)]
    assert not stray, f"{notebook}: unexpected stderr (red boxes) in code cells: {stray}"
    if notebook == "01_quickstart.ipynb":
        assert any(WIDGET_VIEW in o.get("data", {}) for o in outputs), \
            f"{notebook}: the dashboard did not render"
    if notebook == "03_deploy.ipynb":  # the deploy into a folder it did not write was refused
        assert (root / "my_notes" / "todo.txt").read_text() == "keep me"


def _menu(page, menu: str, command: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def _run_all_from_menu(page) -> None:
    _menu(page, "Run", "runmenu:run-all")


def _restart_and_run_all_from_menu(page, path: str) -> None:
    page.evaluate(MARK_FIRST_RUN, path)
    _menu(page, "Kernel", "runmenu:restart-and-run-all")
    page.locator(".jp-Dialog-button.jp-mod-accept").click()  # "Restart Kernel?" - Restart
    page.wait_for_function("() => window.tfserveRestarted", timeout=120_000)


def _left_running() -> list[str]:
    """What `%tfserve list` would show: every recorded server, with whether its pid lives."""
    return [f"{r.name} (pid {r.pid}, {'alive' if pid_alive(r.pid) else 'dead'})"
            for r in registry.read_records()]


def _read_back(page, lab, name: str, shot: Path, again: bool = False) -> None:
    """Wait for a Run All of notebook ``name`` to end, take its screenshot, check it."""
    # A notebook trains small models and starts servers: minutes, not seconds, on 2 cores.
    page.wait_for_function(NOTEBOOK_DONE, arg=name, timeout=600_000, polling=500)
    state = page.evaluate(NOTEBOOK_STATE, name)
    page.screenshot(path=str(shot))
    failed = [(i, c["errors"]) for i, c in enumerate(state["cells"]) if c["errors"]]
    assert not failed, f"{name}: code cells with errors: {failed}"
    not_run = [i for i, c in enumerate(state["cells"]) if c["count"] is None]
    assert not not_run, f"{name}: code cells that never ran: {not_run}"
    _check_outputs(name, page.evaluate(NOTEBOOK_OUTPUTS, name), lab.root, again)


def _shut_down_kernels(lab) -> None:
    for session in lab.api("api/sessions").json():
        lab.api(f"api/sessions/{session['id']}", method="DELETE")
    wait_for(lambda: not lab.api("api/kernels").json(), 60, what="kernels to shut down")


@pytest.mark.timeout(2400)  # every notebook twice, and two at once, on 2 cores
def test_every_notebook_runs_twice_and_two_side_by_side(tmp_path, monkeypatch) -> None:
    assert sorted(EXPECTED_OUTPUTS) == [n.name for n in NOTEBOOKS]
    runtime = tmp_path / "tfserve-runtime"
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(runtime))
    try:
        with jupyter_lab(tmp_path, {"TFSERVE_MAGIC_RUNTIME_DIR": str(runtime)},
                         base_url="/user/alice/") as lab, chromium_page(tmp_path) as page:
            for notebook in NOTEBOOKS:
                shutil.copy(notebook, lab.root / notebook.name)
            _run_every_notebook_twice(page, lab, tmp_path)
            _run_two_side_by_side(page, lab, tmp_path)
    finally:
        for record in registry.read_records():
            launcher.stop(record.name)


def _run_every_notebook_twice(page, lab, shots: Path) -> None:
    for notebook in NOTEBOOKS:
        name = notebook.name
        # ?reset: a fresh workspace, so the previous notebook's tab is not restored.
        page.goto(f"{lab.url}lab/tree/{name}?reset&token={lab.token}")
        page.wait_for_function(KERNEL_READY, timeout=120_000)
        _run_all_from_menu(page)
        _read_back(page, lab, name, shots / f"{notebook.stem}.png")
        assert _left_running() == [], f"{name} left servers: {_left_running()}"
        # Again, as a teacher does: Kernel > Restart Kernel and Run All Cells.
        _restart_and_run_all_from_menu(page, name)
        _read_back(page, lab, name, shots / f"{notebook.stem}-again.png", again=True)
        assert _left_running() == [], f"{name} (again) left servers: {_left_running()}"
        _shut_down_kernels(lab)


def _run_two_side_by_side(page, lab, shots: Path) -> None:
    """01 and 02 open at once, both running; each stops its own server and only that one."""
    first, second = NOTEBOOKS[0].name, NOTEBOOKS[1].name
    page.goto(f"{lab.url}lab/tree/{first}?reset&token={lab.token}")
    page.wait_for_function(KERNEL_READY, timeout=120_000)
    _run_all_from_menu(page)
    # The second one from the file browser, as a person opens it; it becomes the current tab.
    page.locator(".jp-DirListing-itemText", has_text=second).dblclick()
    page.wait_for_function(f"() => window.jupyterapp.shell.currentWidget?.context?.path === "
                           f"'{second}'", timeout=60_000)
    page.wait_for_function(KERNEL_READY, timeout=120_000)
    _run_all_from_menu(page)
    _read_back(page, lab, second, shots / "side-by-side-02.png")
    page.locator(".lm-TabBar-tabLabel", has_text=first).click()
    _read_back(page, lab, first, shots / "side-by-side-01.png")
    assert _left_running() == [], f"side by side left servers: {_left_running()}"
    _shut_down_kernels(lab)
