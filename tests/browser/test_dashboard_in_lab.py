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

# The chart as shown: its displayed size and the pixels behind it (sharp: at least the screen's).
CHART_SIZE = """() => {
  const img = document.querySelector('.tfserve-dashboard img.tfserve-chart');
  return {shown: [img.clientWidth, img.clientHeight], drawn: [img.naturalWidth, img.naturalHeight],
          ratio: window.devicePixelRatio};
}"""

OUTPUT_LINKS = """() => [...document.querySelectorAll('.jp-OutputArea-output a[href]')]
  .map(a => ({text: a.textContent, href: a.href}))"""


def open_every_link(page, links: list[dict]) -> list[str]:
    """Open each link as a click would (a new tab of the same browser, its cookies); the
    problems: anything but the model server's own page."""
    problems = []
    for link in links:
        tab = page.context.new_page()
        try:
            response = tab.goto(link["href"])
            title = tab.title()
            if response is None or response.status != 200 or "Model server" not in \
                    tab.content() or "login" in tab.url:
                problems.append(f"{link['text']} -> {tab.url} ({response and response.status}, "
                                f"{title!r})")
        finally:
            tab.close()
    return problems


def run_links_notebook(page, url: str, token: str) -> list[dict]:
    """Open links.ipynb at ``url`` (one host), run it, and return the links it printed."""
    page.goto(f"{url}lab/tree/links.ipynb?token={token}")
    page.wait_for_function(KERNEL_READY, timeout=120_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea-output a[href]')].length >= 2",
        timeout=120_000)
    return page.evaluate(OUTPUT_LINKS)


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
            # Started under a Jupyter server with the extension, the magic links the proxy by
            # its path (the base URL's), which the page resolves against its own host; the
            # start names the gRPC address once.
            page.locator(".jp-OutputArea-output a", has_text="/jp/tfserve/ui/").first \
                .wait_for(timeout=30_000)
            start_text = page.locator(".jp-Cell").first.locator(".jp-OutputArea").inner_text()
            assert start_text.count("gRPC") == 1, start_text
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
            # Shown at its own size (not stretched), from at least as many pixels as the screen
            # has there.
            size = page.evaluate(CHART_SIZE)
            assert size["shown"] == [760, 190], size
            assert size["drawn"][0] >= 760 * size["ratio"] and size["drawn"][0] == 2 * 760, size
            signatures = page.locator(".tfserve-dashboard .tfserve-signatures").first
            assert "float32" in signatures.inner_text() and "DT_" not in signatures.inner_text()
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            page.locator(".tfserve-dashboard").first.screenshot(
                path=str(tmp_path / "dashboard-widget.png"))

            # Every printed link opens, from 127.0.0.1 and from localhost, through the base URL.
            write_notebook(lab.root / "links.ipynb", ["%load_ext tfserve_magic\n%tfserve url ui"])
            for host in ("localhost", "127.0.0.1"):
                at_host = lab.url.replace("://127.0.0.1:", f"://{host}:").replace(
                    "://localhost:", f"://{host}:")
                links_page = page.context.new_page()
                try:
                    links = run_links_notebook(links_page, at_host, lab.token)
                    assert {link["text"] for link in links} >= {"/jp/tfserve/ui/"}, links
                    assert open_every_link(links_page, links) == [], (host, links)
                    text = links_page.locator(".jp-OutputArea-output",
                                              has_text="through Jupyter").first.inner_text()
                    assert "on the host and port this notebook's page uses" in text, text
                finally:
                    links_page.evaluate("window.jupyterapp.commands.execute("
                                        "'kernelmenu:shutdown')")
                    links_page.close()

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
            # The reason reaches the page in its own widget message, after the table's: a stop
            # the dashboard was told about, not a crash.
            page.locator(".tfserve-dashboard", has_text="ui was stopped").first \
                .wait_for(timeout=30_000)
            assert "stopped answering" not in page.locator(".tfserve-dashboard").inner_text()
            page.locator(".tfserve-dashboard").screenshot(path=str(tmp_path / "stopped.png"))
        # Nothing in the server's log warns of what the notebook, the dashboard, the panel and
        # the browser did (start-up probes, polling, idle connections).
        log = (runtime / "servers" / "ui.log").read_text()
        warnings = [line for line in log.splitlines() if " W " in line or " E " in line]
        assert warnings == [], log
