"""The dashboard in a real JupyterLab, driven by headless Chromium: the version rows show up
under headers aligned with their values, the traffic chart is drawn, dtypes read as TensorFlow
names them, choosing another version in the widget changes what %%predict answers, and after
`%tfserve stop` no version reads as AVAILABLE."""

from __future__ import annotations

import shutil

import pytest
from lab_server import KERNEL_READY, chromium_page, jupyter_lab, write_notebook

pytestmark = pytest.mark.browser

# Headers whose text does not start (left-aligned) or end (right-aligned) where their column's
# values do, in every table of the dashboard.
MISALIGNED = """() => {
  const textBox = (cell) => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    return range.getBoundingClientRect();
  };
  const faults = [];
  for (const table of document.querySelectorAll('.tfserve-dashboard table')) {
    const [head, ...rows] = table.rows;
    for (const row of rows) {
      [...row.cells].forEach((cell, i) => {
        const th = head.cells[i];
        if (!th || !th.textContent.trim() || !cell.textContent.trim() || cell.colSpan > 1) return;
        const align = getComputedStyle(th).textAlign;
        const [a, b] = [textBox(th), textBox(cell)];
        const off = align === 'right' ? a.right - b.right : a.left - b.left;
        if (Math.abs(off) > 1 || getComputedStyle(cell).textAlign !== align)
          faults.push(`${th.textContent} / ${cell.textContent}: ${off.toFixed(1)}px`);
      });
    }
  }
  return faults;
}"""

CHART_DRAWN = """() => [...document.querySelectorAll('.tfserve-dashboard img.tfserve-chart')]
  .some(img => img.complete && img.naturalWidth >= 600 && img.offsetParent !== null)"""


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
            # Headers line up with their values; the chart is a drawn image; dtypes as in
            # %tfserve signatures.
            assert page.evaluate(MISALIGNED) == []
            page.wait_for_function(CHART_DRAWN, timeout=60_000)
            signatures = page.locator(".tfserve-dashboard .tfserve-signatures").first
            assert "float32" in signatures.inner_text() and "DT_" not in signatures.inner_text()
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            # %tfserve stop: the dashboard says so, and no version is left reading AVAILABLE.
            page.evaluate("""async () => {
                const panel = window.jupyterapp.shell.currentWidget;
                const cells = panel.content.model.sharedModel;
                cells.insertCell(cells.cells.length, {cell_type: 'code', source: '%tfserve stop ui'});
                panel.content.activeCellIndex = cells.cells.length - 1;
                await window.jupyterapp.commands.execute('notebook:run-cell');
            }""")
            page.locator(".jp-OutputArea-output", has_text="Stopped ui").wait_for(timeout=60_000)
            page.locator(".tfserve-dashboard .tfserve-versions", has_text="STOPPED").first \
                .wait_for(timeout=30_000)
            assert "AVAILABLE" not in page.locator(".tfserve-dashboard .tfserve-versions") \
                .first.inner_text()
            # The reason reaches the page in its own widget message, after the table's.
            page.locator(".tfserve-dashboard", has_text="stopped answering").first \
                .wait_for(timeout=30_000)
            page.locator(".tfserve-dashboard").screenshot(path=str(tmp_path / "stopped.png"))
