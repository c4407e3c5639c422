"""A real JupyterLab server for browser tests, and headless Debian Chromium through playwright.

The server picks its own port (``--port=0``) and announces it in its runtime file
``jpserver-<pid>.json``, which we wait for with a deadline. Chromium is Debian's (installed by
``make test``); playwright never downloads a browser here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright import sync_api as playwright_sync  # a test dependency: never skipped
from server_process import http, wait_for

ROOT = Path(__file__).resolve().parents[2]
# The lab extension as built in this checkout (`npm run build:prod` in labextension/, or the
# `pip install .` build hook), when there is one: it wins over the copy installed in the venv,
# as PYTHONPATH makes the checkout's Python win.
BUILT_LABEXTENSION = ROOT / "tfserve_magic" / "labextension"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Lab:
    url: str  # with the base URL, ending in "/"
    token: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, method: str = "GET", body: bytes | None = None):
        return http(method, self.url + path, body, headers={"Authorization": f"token {self.token}"})


@contextmanager
def jupyter_lab(tmp: Path, env_extra: dict[str, str] | None = None,
                base_url: str = "/jp/") -> Iterator[Lab]:
    root, runtime, settings = tmp / "root", tmp / "jupyter-runtime", tmp / "settings"
    for path in (root, runtime, settings / "@jupyterlab" / "apputils-extension"):
        path.mkdir(parents=True, exist_ok=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings") \
        .write_text('{"fetchNews": "false", "checkForUpdates": false}')
    token = secrets.token_hex(16)
    data_path = {}
    if (BUILT_LABEXTENSION / "package.json").exists():
        (tmp / "jupyter-data" / "labextensions").mkdir(parents=True, exist_ok=True)
        (tmp / "jupyter-data" / "labextensions" / "tfserve-magic").symlink_to(BUILT_LABEXTENSION)
        data_path["JUPYTER_PATH"] = os.pathsep.join(
            [str(tmp / "jupyter-data"), *filter(None, [os.environ.get("JUPYTER_PATH")])])
    env = {**os.environ, **data_path, "JUPYTER_RUNTIME_DIR": str(runtime),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"), **(env_extra or {})}
    # Without pytest's marker a kernel shows its fd 2 in the cell (TensorFlow's native lines
    # included), as it does for a person; under pytest ipykernel leaves fd 2 alone.
    env.pop("PYTEST_CURRENT_TEST", None)
    log = tmp / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--port=0",
             "--ip=127.0.0.1", f"--ServerApp.base_url={base_url}", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        info_file = runtime / f"jpserver-{proc.pid}.json"

        def announced() -> dict | None:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited:\n{log.read_text()[-3000:]}")
            try:
                return json.loads(info_file.read_text())
            except (FileNotFoundError, ValueError):
                return None  # not written yet, or being written (read empty once, under load)

        info = wait_for(announced, 120, what="JupyterLab's runtime file")
        lab = Lab(info["url"], token, root, proc, log)

        def answers() -> bool:
            try:  # the runtime file can appear a moment before the port listens
                return lab.api("api/status").status == 200
            except OSError:
                return False

        wait_for(answers, 120, what="JupyterLab to answer")
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def chromium_page(tmp: Path) -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    with playwright_sync.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp / "profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context.pages[0]
        finally:
            context.close()


KERNEL_READY = """() => {
  const k = window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
}"""


def write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
