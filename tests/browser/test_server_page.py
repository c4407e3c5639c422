"""The server's own page, opened in headless Chromium as a person opens the links that
``%tfserve start`` prints: directly, and through JupyterLab's proxy with Jupyter's login cookie.
It lists the model's versions and a predict sent from its form returns the right numbers."""

from __future__ import annotations

import shutil

import pytest
from lab_server import chromium_page, jupyter_lab

from tfserve_magic.lifecycle import launcher, registry

pytestmark = pytest.mark.browser


def _predict_from_the_form(page, body: str) -> str:
    page.locator("body[data-ready=true]").wait_for(timeout=60_000)
    page.fill("#body", body)
    page.click("#send")
    page.wait_for_function("() => /HTTP \\d+/.test(document.querySelector('#took').textContent)",
                           timeout=60_000)
    return str(page.inner_text("#answer"))


def test_the_page_directly_and_through_the_proxy(tmp_path, monkeypatch,
                                                 plus_version_builds) -> None:
    runtime = tmp_path / "tfserve-runtime"
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(runtime))
    base = tmp_path / "plus"
    for version in (1, 2):
        shutil.copytree(plus_version_builds / str(version), base / str(version))
    handle = launcher.start(str(base), name="paged", detach=True,
                            extra_flags=["--max_num_load_retries=0"])
    try:
        with jupyter_lab(tmp_path, {"TFSERVE_MAGIC_RUNTIME_DIR": str(runtime)}) as lab, \
                chromium_page(tmp_path) as page:
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(handle.url + "/")
            rows = page.locator('.model[data-model="paged"] tr[data-version]')
            page.locator("body[data-ready=true]").wait_for(timeout=60_000)
            assert rows.count() == 1 and "AVAILABLE" in rows.first.inner_text()  # latest 1
            assert rows.first.get_attribute("data-version") == "2"
            # dtypes read as in %tfserve signatures and the dashboard (numpy's names)
            assert "x: float32 [None]" in page.inner_text(".signatures")
            answer = _predict_from_the_form(page, '{"instances": [1.0, 5.0]}')
            assert answer == '{\n  "predictions": [3, 7]\n}', answer  # y = x + 2 (version 2)
            # What the person typed stays when they choose a version, and is what is sent to
            # the version chosen in the select.
            page.fill("#body", '{"instances": [10.0]}')
            page.select_option("#target", "versions/2")
            assert page.input_value("#body") == '{"instances": [10.0]}'
            with page.expect_response(lambda r: r.request.method == "POST") as sent:
                page.click("#send")
            assert sent.value.url == f"{handle.url}/v1/models/paged/versions/2:predict"
            assert sent.value.status == 200
            page.wait_for_function(
                "() => document.querySelector('#answer').textContent === "
                "'{\\n  \"predictions\": [12]\\n}'", timeout=60_000)
            page.screenshot(path=str(tmp_path / "direct.png"), full_page=True)

            # Through Jupyter: log in once (as the token link does), then the printed link.
            page.goto(f"{lab.url}lab?token={lab.token}")
            page.locator(".jp-LabShell").wait_for(timeout=120_000)
            page.goto(f"{lab.url}tfserve/paged")  # without the slash: sent to the page
            page.locator("body[data-ready=true]").wait_for(timeout=60_000)
            assert page.url == f"{lab.url}tfserve/paged/"
            assert page.inner_text("#base") == f"{lab.url}tfserve/paged/"
            assert rows.count() == 1
            answer = _predict_from_the_form(page, '{"instances": [[0.5], [1.5]]}')
            assert answer == '{\n  "predictions": [\n    [2.5],\n    [3.5]\n  ]\n}', answer
            page.screenshot(path=str(tmp_path / "proxied.png"), full_page=True)
            assert not errors, errors
    finally:
        if registry.find_record("paged"):
            launcher.stop("paged")
