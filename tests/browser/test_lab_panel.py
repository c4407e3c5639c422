"""The "Served models" side panel in a real JupyterLab under headless Chromium, at its default
width: it lists served models, shows a new version appearing, lays everything out without
clipping or breaking a word, copies a curl command that works (with the token in the clipboard,
not on the screen), its log view follows the chosen server and clears when the server goes, it
says whose each server is, and it stops a server after asking."""

from __future__ import annotations

import os
import shutil

import pytest
from lab_server import chromium_page, jupyter_lab
from server_process import http, wait_for

from tfserve_magic.lifecycle import launcher, registry
from tfserve_magic.pids import pid_alive

pytestmark = pytest.mark.browser

PANEL = "#tfserve-magic-panel"

# Every layout fault a person would see, as text: an element wider than the panel or cut at its
# own edge, and a word (a name, a state, a button label, a URL piece between slashes) split
# over two lines. Log lines and load errors may wrap anywhere: they are read, not scanned.
LAYOUT_FAULTS = """(panel) => {
  const faults = [];
  const right = panel.getBoundingClientRect().right;
  for (const e of panel.querySelectorAll('*')) {
    if (e.closest('[hidden]') || e.tagName === 'WBR') continue;
    const box = e.getBoundingClientRect();
    if (box.width === 0) continue;
    const what = `${e.tagName.toLowerCase()}.${e.className} "${e.textContent.slice(0, 40)}"`;
    if (box.right > right + 0.5) faults.push(`${what} sticks out of the panel`);
    if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
      faults.push(`${what} is clipped (${e.scrollWidth} > ${e.clientWidth})`);
  }
  const words = 'button, .tfserve-server-name, .tfserve-alive, .tfserve-dead, .tfserve-facts, '
    + '.tfserve-url, .tfserve-model-name, .tfserve-versions td:not(.tfserve-load-error), '
    + '.tfserve-detail-title, .tfserve-empty';
  for (const e of panel.querySelectorAll(words)) {
    if (e.closest('[hidden]')) continue;
    const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.textContent.matchAll(/[^\\s\\/]+\\/*/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0)
                               .map(r => Math.round(r.top)));
        if (tops.size > 1) faults.push(`"${match[0]}" in ${e.className || e.tagName} breaks over lines`);
      }
    }
  }
  return faults;
}"""


def _start(base, name):
    return launcher.start(str(base), name=name, detach=True)


def test_panel_lists_lays_out_follows_and_stops(tmp_path, monkeypatch, plus_version_builds) -> None:
    runtime = tmp_path / "tfserve-runtime"
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(runtime))
    base, other = tmp_path / "plus", tmp_path / "other"
    shutil.copytree(plus_version_builds / "1", base / "1")
    shutil.copytree(plus_version_builds / "1", other / "1")
    handle = _start(base, "panelled")
    second = launcher.start(str(other), name="second")  # this process's: the panel says whose
    try:
        with jupyter_lab(tmp_path, {"TFSERVE_MAGIC_RUNTIME_DIR": str(runtime)}) as lab, \
                chromium_page(tmp_path) as page:
            page.context.grant_permissions(["clipboard-read", "clipboard-write"])
            page.goto(f"{lab.url}lab?reset&token={lab.token}")
            tab = page.locator('.jp-SideBar li[data-id="tfserve-magic-panel"]')
            # Our own icon, not JupyterLab's generic list icon.
            tab.wait_for(timeout=60_000)
            assert tab.locator('svg[data-icon="tfserve-magic:served-models"]').count() == 1, \
                tab.inner_html()
            tab.click()
            server = page.locator(f'{PANEL} .tfserve-server[data-server="panelled"]')
            server.wait_for(timeout=60_000)
            page.locator(f'{PANEL} .tfserve-server[data-server="second"]').wait_for(timeout=60_000)
            assert "alive" in server.inner_text()
            facts = page.locator(f'{PANEL} .tfserve-server[data-server="second"] .tfserve-facts')
            assert facts.inner_text().endswith(f" · from process {os.getpid()}"), facts.inner_text()
            assert server.locator(".tfserve-facts").inner_text().endswith(" · detached")
            url = f"{lab.url}tfserve/panelled/"
            assert server.locator("a.tfserve-url").get_attribute("href") == url
            assert server.locator("a.tfserve-url").inner_text().replace("\n", "") == url
            rows = server.locator("tr.tfserve-version")
            wait_for(lambda: rows.count() == 1, 30, what="version 1 in the panel")
            assert "AVAILABLE" in rows.first.inner_text()

            # Follow the log of "panelled": a version loaded later shows up in it by itself.
            server.locator("button.tfserve-log-button").click()
            log = page.locator(f'{PANEL} .tfserve-detail[data-server="panelled"]')
            log.locator(".tfserve-detail-text", has_text="Successfully loaded servable version "
                        "{name: panelled version: 1}").wait_for(timeout=10_000)
            staging = base / ".tmp-2"
            shutil.copytree(plus_version_builds / "2", staging)
            staging.rename(base / "2")
            page.wait_for_function(
                f"() => document.querySelector('{PANEL} tr.tfserve-version[data-version=\"2\"]')"
                "?.innerText.includes('AVAILABLE')", timeout=60_000)
            log.locator(".tfserve-detail-text", has_text="{name: panelled version: 2}") \
                .wait_for(timeout=30_000)

            # At JupyterLab's default sidebar width, nothing sticks out, is cut, or wraps mid-word.
            width = page.locator(PANEL).bounding_box()["width"]
            assert width < 320, f"the panel is {width}px wide: not the default sidebar width"
            faults = page.locator(PANEL).evaluate(LAYOUT_FAULTS)
            page.screenshot(path=str(tmp_path / "panel.png"))
            page.locator(PANEL).screenshot(path=str(tmp_path / "panel-only.png"))
            assert faults == []

            # Copy curl: the token goes to the clipboard, the screen shows $JUPYTER_TOKEN.
            server.locator("button.tfserve-copy-curl").click()
            shown = page.locator(f'{PANEL} .tfserve-detail[data-kind="curl"] .tfserve-detail-text')
            shown.wait_for(timeout=10_000)
            page.locator(f"{PANEL} .tfserve-detail-note", has_text="Copied").wait_for(timeout=10_000)
            assert lab.token not in page.locator(PANEL).inner_text()
            assert '"Authorization: token $JUPYTER_TOKEN"' in shown.inner_text()
            assert page.locator(PANEL).evaluate(LAYOUT_FAULTS) == []
            command = page.evaluate("navigator.clipboard.readText()")
            assert lab.token in command
            assert command.startswith("curl ") and "tfserve/panelled/v1/models/panelled:predict" in command
            # The copied command works as printed: same token, same body, through the proxy.
            target = command.rsplit(" ", 1)[1]
            body = command.split("-d '", 1)[1].split("'", 1)[0]
            answer = http("POST", target, body, headers={"Authorization": f"token {lab.token}"})
            assert (answer.status, answer.json()) == (200, {"predictions": [2.0]})

            # The log view follows the chosen server, and goes with it.
            page.locator(f'{PANEL} .tfserve-server[data-server="second"] button.tfserve-log-button').click()
            second_log = page.locator(f'{PANEL} .tfserve-detail[data-server="second"]')
            second_log.locator(".tfserve-detail-text", has_text="{name: second version: 1}") \
                .wait_for(timeout=10_000)
            assert "panelled" not in second_log.locator(".tfserve-detail-text").inner_text()
            second.stop()  # stopped elsewhere (a kernel, a terminal): the panel notices
            page.locator(f'{PANEL} .tfserve-server[data-server="second"]').wait_for(
                state="detached", timeout=30_000)
            page.locator(f"{PANEL} .tfserve-detail").wait_for(state="hidden", timeout=10_000)
            assert page.locator(f"{PANEL} .tfserve-detail-text").inner_text() == ""

            server.locator("button.tfserve-log-button").click()
            log.wait_for(timeout=10_000)
            # Stop asks first, saying what stopping does; Cancel leaves it serving.
            server.locator("button.tfserve-stop").click()
            dialog = page.locator(".jp-Dialog")
            dialog.wait_for(timeout=10_000)
            assert "Stop panelled?" in dialog.inner_text()
            assert "panelled stops serving at once" in dialog.inner_text(), dialog.inner_text()
            page.screenshot(path=str(tmp_path / "panel-stop-asks.png"))
            dialog.locator(".jp-Dialog-button", has_text="Cancel").click()
            dialog.wait_for(state="detached", timeout=10_000)
            assert server.count() == 1 and pid_alive(handle.record.pid)
            server.locator("button.tfserve-stop").click()
            page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept", has_text="Stop").click()
            server.wait_for(state="detached", timeout=60_000)
            page.locator(f"{PANEL} .tfserve-empty").wait_for(timeout=30_000)
            page.locator(f"{PANEL} .tfserve-detail").wait_for(state="hidden", timeout=10_000)
            assert "Successfully loaded" not in page.locator(PANEL).inner_text()
            assert not pid_alive(handle.record.pid)
    finally:
        for name in ("panelled", "second"):
            if registry.find_record(name):
                launcher.stop(name)
