"""A connected remote server in the "Served models" panel: the panel says what it is (remote,
whose connection), offers Disconnect instead of a Stop that could only be refused, its Log says
where the log is instead of showing nothing, and Disconnect forgets it here while it keeps
serving there."""

from __future__ import annotations

import os
import shutil

import pytest
from lab_server import chromium_page, jupyter_lab
from server_process import start_server

from tfserve_magic.lifecycle import registry, remote

pytestmark = pytest.mark.browser

PANEL = "#tfserve-magic-panel"


def test_panel_disconnects_a_remote_and_says_what_it_is(tmp_path, monkeypatch,
                                                         plus_version_builds) -> None:
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
            facts = server.locator(".tfserve-facts").inner_text()
            assert facts.startswith("remote") and facts.endswith(f"from process {os.getpid()}")
            assert server.locator("button.tfserve-stop").count() == 0
            server.locator("button.tfserve-log-button").click()
            note = page.locator(f"{PANEL} .tfserve-detail-note", has_text="remote server")
            note.wait_for(timeout=30_000)
            assert note.inner_text() == (
                f"faraway is a remote server at {elsewhere.url}, connected from process "
                f"{os.getpid()} with %tfserve connect. Its log is on the machine where it runs; "
                "Disconnect forgets it here and leaves it serving there."), note.inner_text()
            page.locator(PANEL).screenshot(path=str(tmp_path / "panel-remote.png"))
            server.locator("button.tfserve-disconnect").click()
            server.wait_for(state="detached", timeout=30_000)
            assert page.locator(f"{PANEL} .tfserve-error").inner_text() == ""
            assert registry.find_record("faraway") is None
            answer = elsewhere.post("/v1/models/plus:predict", {"instances": [0.0]})
            assert (answer.status, answer.json()) == (200, {"predictions": [1.0]})
    finally:
        if registry.find_record("faraway"):
            remote.disconnect("faraway")
        elsewhere.stop()
