"""The "Served models" panel shows what the Jupyter server extension's API refused, in words a
person can act on: Stop on a connected remote server (not ours to stop) answers 409, and the
panel says so (until the next action) and keeps listing the server, which is still serving."""

from __future__ import annotations

import shutil

import pytest
from lab_server import chromium_page, jupyter_lab
from server_process import start_server

from tfserve_magic.lifecycle import registry, remote

pytestmark = pytest.mark.browser

PANEL = "#tfserve-magic-panel"


def test_panel_shows_a_refused_stop(tmp_path, monkeypatch, plus_version_builds) -> None:
    runtime = tmp_path / "tfserve-runtime"
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(runtime))
    base = tmp_path / "plus"
    shutil.copytree(plus_version_builds / "1", base / "1")
    # Started elsewhere, as a remote server would be; connected here as "faraway".
    elsewhere = start_server("--model_name=plus", f"--model_base_path={base}", log_dir=tmp_path)
    try:
        elsewhere.wait_state("plus")
        remote.connect(elsewhere.url, "faraway")
        with jupyter_lab(tmp_path, {"TFSERVE_MAGIC_RUNTIME_DIR": str(runtime)}) as lab, \
                chromium_page(tmp_path) as page:
            page.goto(f"{lab.url}lab?reset&token={lab.token}")
            tab = page.locator('.jp-SideBar li[data-id="tfserve-magic-panel"]')
            tab.wait_for(timeout=60_000)
            tab.click()
            server = page.locator(f'{PANEL} .tfserve-server[data-server="faraway"]')
            server.wait_for(timeout=60_000)
            assert page.locator(f"{PANEL} .tfserve-error").inner_text() == ""
            assert server.locator(".tfserve-facts").inner_text().startswith("remote")
            server.locator("button.tfserve-stop").click()
            error = page.locator(f"{PANEL} .tfserve-error", has_text="faraway")
            error.wait_for(timeout=30_000)
            page.locator(PANEL).screenshot(path=str(tmp_path / "panel-error.png"))
            assert "it is not ours to stop" in error.inner_text(), error.inner_text()
            # Refused, not done: still listed, still serving; the message outlives the panel's
            # next refreshes (it polls every 2 s) until the person acts again. A refresh that
            # lists the servers draws the list anew: twice a new server box replaces the one
            # before it (the first may be the Stop's own refresh, the second is the timer's).
            for _ in range(2):
                before = server.element_handle()
                page.wait_for_function("box => !box.isConnected", arg=before, timeout=60_000)
                server.wait_for(timeout=60_000)
                assert "it is not ours to stop" in error.inner_text()
            assert server.count() == 1
            answer = elsewhere.post("/v1/models/plus:predict", {"instances": [0.0]})
            assert (answer.status, answer.json()) == (200, {"predictions": [1.0]})
    finally:
        if registry.find_record("faraway"):
            remote.disconnect("faraway")
        elsewhere.stop()
