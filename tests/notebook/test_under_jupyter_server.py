"""The magics in a kernel that a real Jupyter server started (with a JupyterHub-style base URL):
``%tfserve url`` gives an address through the server's authenticated proxy that works,
deleting the kernel through Jupyter's REST API stops the model server it started, and the
quickstart notebook runs top to bottom there."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.services.kernels.connection.base import deserialize_binary_message
from server_process import wait_for
from tornado.websocket import websocket_connect

from tfserve_magic.lifecycle import registry
from tfserve_magic.pids import pid_alive

TOKEN = "tfserve-test-token"


@pytest.fixture
def jupyter(tmp_path: Path, runtime_dir: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A ``jupyter server`` subprocess on a port it picked itself; its runtime file. It and its
    kernels share the test's own registry (``runtime_dir``)."""
    runtime = tmp_path / "jupyter-runtime"
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    log = open(tmp_path / "jupyter.log", "wb")  # noqa: SIM115  # closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser",
         "--ip=127.0.0.1", "--port=0", "--ServerApp.base_url=/user/alice/",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--ServerApp.jpserver_extensions=tfserve_magic=True"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root)
    try:
        def announced() -> dict[str, Any] | None:
            assert proc.poll() is None, (tmp_path / "jupyter.log").read_text()
            path = runtime / f"jpserver-{proc.pid}.json"
            return json.loads(path.read_text()) if path.exists() else None

        yield wait_for(announced, 60, what="the Jupyter server's runtime file")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        log.close()


def _rest(method: str, url: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        url, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


async def _execute(ws: Any, code: str, timeout: float = 180.0) -> list[dict[str, Any]]:
    """Run ``code`` over the kernel's websocket; the iopub messages it caused, until idle."""
    msg_id = uuid.uuid4().hex
    await ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                   "session": uuid.uuid4().hex, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
    replies: list[dict[str, Any]] = []

    async def collect() -> None:
        while True:
            raw = await ws.read_message()
            assert raw is not None, "the kernel's websocket closed"
            # Messages with buffers (a widget's PNG chart) come as binary frames.
            message = deserialize_binary_message(raw) if isinstance(raw, bytes) else \
                json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["channel"] == "iopub":
                if message["msg_type"] == "status" and \
                        message["content"]["execution_state"] == "idle":
                    return
                replies.append(message)

    await asyncio.wait_for(collect(), timeout)
    return replies


def _text(messages: list[dict[str, Any]], stream: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in messages
                   if m["msg_type"] == "stream" and m["content"]["name"] == stream)


def _html(messages: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["data"].get("text/html", "") for m in messages
                   if m["msg_type"] == "display_data")


def test_url_through_the_jupyter_proxy_and_kernel_deletion(jupyter: dict[str, Any],
                                                           half_plus_two: Path) -> None:
    base = jupyter["url"]
    assert base.endswith("/user/alice/")
    kernel = _rest("POST", f"{base}api/kernels", {"name": "python3"})
    ws_url = base.replace("http://", "ws://") + f"api/kernels/{kernel['id']}/channels"

    async def session() -> dict[str, list[dict[str, Any]]]:
        ws = await websocket_connect(ws_url + f"?token={TOKEN}")
        try:
            loaded = await _execute(ws, "%load_ext tfserve_magic")
            assert not [m for m in loaded if m["msg_type"] == "error"], loaded
            return {"start": await _execute(ws, f"%tfserve start {half_plus_two} --name hp"),
                    "url": await _execute(ws, "%tfserve url hp")}
        finally:
            ws.close()

    cells = asyncio.run(session())
    assert "Started server hp" in _text(cells["start"]), _text(cells["start"], "stderr")
    proxied = f"{base}tfserve/hp/"
    # The link is the path on the Jupyter server (base URL included): the page resolves it
    # against the host the browser uses, which the kernel cannot know.
    path = urllib.parse.urlsplit(proxied).path
    for cell in ("start", "url"):
        assert f'through Jupyter: <a href="{path}"' in _html(cells[cell]), _html(cells[cell])
        assert "on the host and port this notebook's page uses" in _html(cells[cell])
    record = registry.find_record("hp")
    assert f'direct: <a href="{record.url}/"' in _html(cells["url"])

    status = _rest("GET", f"{proxied}v1/models/hp")  # --name names the model too
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    prediction = _rest("POST", f"{proxied}v1/models/hp:predict", {"instances": [1.0, 2.0]})
    assert prediction == {"predictions": [2.5, 3.0]}

    _rest("DELETE", f"{base}api/kernels/{kernel['id']}")  # as closing the notebook's kernel
    wait_for(lambda: not pid_alive(record.pid), 30, what="the model server to stop")
    wait_for(lambda: registry.find_record("hp") is None, 10, what="its record to go")
    assert os.path.exists(record.log_file)  # the log stays for a post-mortem


NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_quickstart_runs_all_under_a_jupyter_server(jupyter: dict[str, Any]) -> None:
    """Run All of notebooks/01_quickstart.ipynb in a kernel of a real Jupyter server, as
    JupyterLab runs it: every cell without an error, the curl included (at the server's own
    address: the kernel runs on the server's machine, as the notebook says), and no server left
    running afterwards."""
    base = jupyter["url"]
    kernel = _rest("POST", f"{base}api/kernels", {"name": "python3"})
    ws_url = base.replace("http://", "ws://") + f"api/kernels/{kernel['id']}/channels"
    notebook = nbformat.read(NOTEBOOKS / "01_quickstart.ipynb", as_version=4)
    sources = [c.source for c in notebook.cells if c.cell_type == "code"]

    async def run_all() -> list[list[dict[str, Any]]]:
        ws = await websocket_connect(ws_url + f"?token={TOKEN}")
        try:
            return [await _execute(ws, source) for source in sources]
        finally:
            ws.close()

    try:
        cells = asyncio.run(run_all())
    finally:
        _rest("DELETE", f"{base}api/kernels/{kernel['id']}")
    for source, messages in zip(sources, cells, strict=True):
        errors = [m["content"] for m in messages if m["msg_type"] == "error"]
        assert not errors, f"{source}\n-> {errors[0]['ename']}: {errors[0]['evalue']}"
    (outside,) = [m for s, m in zip(sources, cells, strict=True) if "curl" in s]
    printed = _text(outside)
    assert re.search(r"curl -s -d '\{\"instances\": \[\.\.\.two images\.\.\.\]\}' "
                     r"http://127\.0\.0\.1:\d+/v1/models/digits:predict\n", printed), printed
    assert "//v1" not in printed and TOKEN not in printed
    assert registry.read_records() == []
