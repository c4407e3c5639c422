"""The "Served models" side panel in a real JupyterLab under headless Chromium: it lists a
served model, shows a new version appearing, copies a curl command, and stops the server."""

from __future__ import annotations

import shutil

import pytest
from lab_server import chromium_page, jupyter_lab
from server_process import http, wait_for

from tfserve_magic.lifecycle import launcher, registry
from tfserve_magic.pids import pid_alive

pytestmark = pytest.mark.browser


def test_panel_lists_follows_and_stops_a_server(tmp_path, monkeypatch, plus_version_builds) -> None:
    runtime = tmp_path / "tfserve-runtime"
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(runtime))
    base = tmp_path / "plus"
    shutil.copytree(plus_version_builds / "1", base / "1")
    handle = launcher.start(str(base), name="panelled", detach=True)
    try:
        with jupyter_lab(tmp_path, {"TFSERVE_MAGIC_RUNTIME_DIR": str(runtime)}) as lab, \
                chromium_page(tmp_path) as page:
            page.goto(f"{lab.url}lab?token={lab.token}")
            page.locator('.jp-SideBar li[data-id="tfserve-magic-panel"]').click()
            server = page.locator('#tfserve-magic-panel .tfserve-server[data-server="panelled"]')
            server.wait_for(timeout=60_000)
            assert "alive" in server.inner_text()
            assert f"{lab.url}tfserve/panelled/".split("//", 1)[1] in server.inner_text()
            rows = server.locator("tr.tfserve-version")
            wait_for(lambda: rows.count() == 1, 30, what="version 1 in the panel")
            assert "AVAILABLE" in rows.first.inner_text()

            staging = base / ".tmp-2"
            shutil.copytree(plus_version_builds / "2", staging)
            staging.rename(base / "2")
            server.locator('tr.tfserve-version[data-version="2"]').wait_for(timeout=60_000)
            page.wait_for_function(
                "() => document.querySelector('#tfserve-magic-panel "
                "tr.tfserve-version[data-version=\"2\"]')?.innerText.includes('AVAILABLE')",
                timeout=60_000)

            server.locator("button.tfserve-copy-curl").click()
            curl = page.locator("#tfserve-magic-panel .tfserve-curl")
            curl.wait_for(timeout=10_000)
            command = curl.inner_text()
            assert command.startswith("curl ") and "tfserve/panelled/v1/models/panelled:predict" in command
            # The command works as printed: same token, same body, through the proxy.
            target = command.rsplit(" ", 1)[1]
            body = command.split("-d '", 1)[1].split("'", 1)[0]
            answer = http("POST", target, body, headers={"Authorization": f"token {lab.token}"})
            assert (answer.status, answer.json()) == (200, {"predictions": [2.0]})

            server.locator("button.tfserve-log-button").click()
            page.locator("#tfserve-magic-panel .tfserve-log",
                         has_text="Successfully loaded servable").wait_for(timeout=10_000)
            page.screenshot(path=str(tmp_path / "panel.png"))

            server.locator("button.tfserve-stop").click()
            server.wait_for(state="detached", timeout=60_000)
            page.locator("#tfserve-magic-panel .tfserve-empty").wait_for(timeout=30_000)
            assert not pid_alive(handle.record.pid)
    finally:
        if registry.find_record("panelled"):
            launcher.stop("panelled")
