"""The dashboard in a real JupyterLab, driven by headless Chromium: the version rows show up,
choosing another version in the widget changes what %%predict answers."""

from __future__ import annotations

import shutil

import pytest
from lab_server import KERNEL_READY, chromium_page, jupyter_lab, write_notebook

pytestmark = pytest.mark.browser


def test_dashboard_switches_the_version_predictions_use(tmp_path, plus_version_builds) -> None:
    runtime = tmp_path / "tfserve-runtime"
    with jupyter_lab(tmp_path, {"TFSERVE_MAGIC_RUNTIME_DIR": str(runtime)}) as lab:
        base = lab.root / "plus"
        shutil.copytree(plus_version_builds / "1", base / "1")
        shutil.copytree(plus_version_builds / "2", base / "2")
        config = lab.root / "models.config"
        config.write_text(f'model_config_list {{ config {{ name: "plus" base_path: "{base}" '
                          'model_platform: "tensorflow" model_version_policy { all {} } } }')
        write_notebook(lab.root / "dash.ipynb", [
            "%load_ext tfserve_magic\n%tfserve start --config models.config --name ui",
            "%tfserve dashboard ui",
            "%%predict plus -o r\n[0.0]",
            "print('answer', float(r[0]))",
        ])
        with chromium_page(tmp_path) as page:
            page.goto(f"{lab.url}lab/tree/dash.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_READY, timeout=120_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            rows = page.locator(".tfserve-dashboard tr.tfserve-version")
            rows.first.wait_for(timeout=120_000)
            page.wait_for_function(
                "() => document.querySelectorAll('.tfserve-dashboard tr.tfserve-version').length === 2",
                timeout=60_000)
            assert "AVAILABLE" in page.locator(".tfserve-dashboard .tfserve-versions").inner_text()
            answer = page.locator(".jp-OutputArea-output", has_text="answer")
            answer.wait_for(timeout=120_000)
            assert "answer 2.0" in answer.inner_text()
            # Started under a Jupyter server with the extension, the magic names the proxy URL,
            # and that URL answers like the model server itself.
            proxied = f"{lab.url}tfserve/ui/"
            page.locator(".jp-OutputArea-output", has_text=proxied).first.wait_for(timeout=30_000)
            status = lab.api("tfserve/ui/v1/models/plus")
            assert status.status == 200 and status.json()["model_version_status"][0]["state"] == \
                "AVAILABLE"

            chooser = page.locator(".tfserve-dashboard .widget-dropdown",
                                   has_text="Predict with").locator("select")
            chooser.select_option(label="version 1")
            page.wait_for_function(KERNEL_READY, timeout=60_000)
            page.evaluate("""async () => {
                const panel = window.jupyterapp.shell.currentWidget;
                panel.content.activeCellIndex = 2;
                await window.jupyterapp.commands.execute('notebook:run-all-below');
            }""")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
                ".some(e => e.innerText.includes('answer 1.0'))", timeout=120_000)
            page.screenshot(path=str(tmp_path / "dashboard.png"))
