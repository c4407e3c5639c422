"""The live model dashboard, built with core ipywidgets only (JupyterLab, Notebook 7, Colab,
VS Code).

For each model of a server: its versions with state, labels, load errors and traffic; the
signatures of a chosen version; which version or label ``%%predict`` uses by default; and moving
a label (a models.config edit the server reloads, see ``labels``). The view refreshes itself on a
background thread until it is closed or the server stops; every error lands in the widget's
Output area. The data logic lives in ``dashboard_state``. No TensorFlow import.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from typing import Any

import ipywidgets as w

from tfserve_magic.client.rest import ServingError
from tfserve_magic.lifecycle import launcher
from tfserve_magic.notebook import defaults as routing
from tfserve_magic.notebook.dashboard_state import (
    BatchStats,
    ModelView,
    Traffic,
    batch_stats,
    model_views,
    parse_traffic,
    rates,
    route_choices,
)
from tfserve_magic.operations.labels import LabelError, move_label

__all__ = ["Dashboard", "dashboard"]

_STATE_COLOURS = {"AVAILABLE": "#1a7f37", "LOADING": "#9a6700", "START": "#9a6700",
                  "UNLOADING": "#9a6700", "END": "#6e7781"}
_HISTORY = 40


def _versions_table(view: ModelView) -> str:
    rows = []
    for row in view.rows:
        colour = _STATE_COLOURS.get(row.state, "#000")
        state = f'<b style="color:{colour}">{row.state}</b>'
        if row.state == "END" and row.error:
            state = '<b style="color:#cf222e">FAILED</b>'
        traffic = "" if row.requests_per_second is None else (
            f"{row.requests_per_second:.1f} req/s"
            + (f", {row.mean_latency_ms:.1f} ms" if row.mean_latency_ms is not None else "")
            + (f", batches of {row.mean_batch_size:.1f}" if row.mean_batch_size is not None else "")
            + (f", queued {row.mean_queue_delay_ms:.2f} ms" if row.mean_queue_delay_ms is not None
               else ""))
        rows.append(f"<tr class='tfserve-version' data-version='{row.version}'>"
                    f"<td>{row.version}</td><td>{state}</td>"
                    f"<td>{html.escape(', '.join(row.labels))}</td><td>{traffic}</td>"
                    f"<td style='color:#cf222e'>{html.escape(row.error)}</td></tr>")
    body = "".join(rows) or "<tr><td colspan=5><i>no versions yet</i></td></tr>"
    return ("<table class='tfserve-versions'><tr><th>version</th><th>state</th><th>labels</th>"
            f"<th>traffic</th><th>load error</th></tr>{body}</table>")


def _signatures_table(signatures: dict[str, Any]) -> str:
    rows = []
    for name in sorted(s for s in signatures if not s.startswith("__")):
        for kind in ("inputs", "outputs"):
            for key, info in sorted(signatures[name].get(kind, {}).items()):
                shape = info.get("tensor_shape", {})
                dims = "?" if shape.get("unknown_rank") else "[" + ", ".join(
                    "None" if int(d.get("size", -1)) < 0 else str(d["size"])
                    for d in shape.get("dim", [])) + "]"
                rows.append(f"<tr><td>{html.escape(name)}</td><td>{kind[:-1]}</td>"
                            f"<td>{html.escape(key)}</td><td>{info.get('dtype', '')}</td>"
                            f"<td>{dims}</td></tr>")
    return ("<table class='tfserve-signatures'><tr><th>signature</th><th></th><th>name</th>"
            "<th>dtype</th><th>shape</th></tr>" + "".join(rows) + "</table>")


def _sparkline(history: dict[int, deque[float]], unit: str) -> str:
    if not history:
        return ""
    width, height = 240, 40
    peak = max((max(h) for h in history.values() if h), default=0.0) or 1.0
    colours = ["#0969da", "#1a7f37", "#bf3989", "#9a6700", "#6e7781"]
    lines = []
    for index, (version, values) in enumerate(sorted(history.items())):
        if len(values) < 2:
            continue
        step = width / (_HISTORY - 1)
        points = " ".join(f"{i * step:.1f},{height - v / peak * (height - 2):.1f}"
                          for i, v in enumerate(values))
        colour = colours[index % len(colours)]
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                     f'points="{points}"><title>v{version}</title></polyline>')
    legend = " ".join(f"v{v}" for v in sorted(history))
    return (f'<svg width="{width}" height="{height}" style="border:1px solid #d0d7de">'
            + "".join(lines) + f"</svg> <small>{unit} (peak {peak:.1f}) {legend}</small>")


class _ModelPanel(w.VBox):
    """One model's part of the dashboard; rebuilt values, stable widgets."""

    def __init__(self, owner: Dashboard, name: str) -> None:
        self.owner = owner
        self.name = name
        self.rate_history: dict[int, deque[float]] = {}
        self.latency_history: dict[int, deque[float]] = {}
        self.versions = w.HTML()
        self.route = w.Dropdown(description="Predict with", style={"description_width": "90px"})
        self.route.observe(self._route_changed, names="value")
        self.label_name = w.Combobox(placeholder="label", description="Label",
                                     style={"description_width": "90px"},
                                     layout=w.Layout(width="220px"))
        self.label_version = w.Dropdown(description="to version", layout=w.Layout(width="180px"))
        self.move = w.Button(description="Move label", icon="tag")
        self.move.on_click(self._move_clicked)
        self.signature_version = w.Dropdown(description="Signatures of",
                                            style={"description_width": "90px"})
        self.signature_version.observe(self._signatures_changed, names="value")
        self.signatures = w.HTML()
        self.chart = w.HTML()
        self._shown_signatures: int | None = None
        super().__init__([
            w.HTML(f"<h4 style='margin:4px 0'>{html.escape(name)}</h4>"), self.versions,
            self.chart, self.route, w.HBox([self.label_name, self.label_version, self.move]),
            self.signature_version, self.signatures])

    def update(self, view: ModelView) -> None:
        self.versions.value = _versions_table(view)
        for row in view.rows:
            if row.requests_per_second is not None:
                self.rate_history.setdefault(row.version, deque(maxlen=_HISTORY)).append(
                    row.requests_per_second)
                self.latency_history.setdefault(row.version, deque(maxlen=_HISTORY)).append(
                    row.mean_latency_ms or 0.0)
        self.chart.value = (_sparkline(self.rate_history, "req/s") + "<br>"
                            + _sparkline(self.latency_history, "mean latency, ms"))
        choices = route_choices(view)
        if [c[1] for c in choices] != [c[1] for c in self.route.options]:
            current = self.route.value
            self.route.unobserve(self._route_changed, names="value")
            self.route.options = choices
            if current is None:  # first fill: show the route %%predict already uses
                route = routing.get_default(self.owner.handle.name, self.name)
                current = ("version", route.version) if route.version is not None else (
                    ("label", route.label) if route.label else ("latest", None))
            self.route.value = current if current in [c[1] for c in choices] else ("latest", None)
            self.route.observe(self._route_changed, names="value")
        self.label_name.options = tuple(sorted(view.labels))
        versions = tuple(r.version for r in view.rows)
        if tuple(self.label_version.options) != versions:
            previous = self.label_version.value
            self.label_version.options = versions
            if versions and previous not in versions:
                self.label_version.value = versions[0]
        if tuple(self.signature_version.options) != view.available:
            previous = self.signature_version.value
            self.signature_version.options = view.available
            if view.available and previous not in view.available:
                self.signature_version.value = view.available[0]
        if self.signature_version.value != self._shown_signatures:
            self._signatures_changed({"new": self.signature_version.value})

    def _route_changed(self, change: dict[str, Any]) -> None:
        kind, value = change["new"] or ("latest", None)
        routing.set_default(self.owner.handle.name, self.name,
                            version=value if kind == "version" else None,
                            label=value if kind == "label" else None)

    def _move_clicked(self, _button: Any) -> None:
        label, version = self.label_name.value.strip(), self.label_version.value
        if not label or version is None:
            self.owner.report("Choose a label name and a version first.")
            return
        try:
            labels = move_label(self.owner.handle.client, self.name, label, int(version))
        except (LabelError, ServingError) as error:
            self.owner.report(f"{self.name}: {error}")
            return
        self.owner.report(f"{self.name}: label {label!r} now points to version "
                          f"{labels[label]}.", error=False)
        self.owner.refresh()

    def _signatures_changed(self, change: dict[str, Any]) -> None:
        version = change["new"]
        self._shown_signatures = version
        if version is None:
            self.signatures.value = ""
            return
        try:
            self.signatures.value = _signatures_table(
                self.owner.handle.client.signatures(self.name, version=version))
        except ServingError as error:
            self.signatures.value = f"<i>{html.escape(error.message)}</i>"


class Dashboard(w.VBox):
    """A live view of one server's models. ``close()`` stops its refreshing."""

    def __init__(self, handle: launcher.ServerHandle, interval: float = 2.0,
                 autostart: bool = True) -> None:
        self.handle = handle
        self.interval = interval
        self.header = w.HTML()
        self.output = w.Output(layout=w.Layout(max_height="120px", overflow="auto"))
        self.models = w.VBox()
        self._panels: dict[str, _ModelPanel] = {}
        self._traffic: Traffic | None = None
        self._traffic_at = 0.0
        self._batching: dict[tuple[str, int], BatchStats] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.stopped_reason = ""
        super().__init__([self.header, self.models, self.output])
        self.add_class("tfserve-dashboard")
        self.refresh()
        self._thread: threading.Thread | None = None
        if autostart and not self.stopped_reason:
            self._thread = threading.Thread(target=self._run, name="tfserve-dashboard",
                                            daemon=True)
            self._thread.start()

    @property
    def refreshing(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def report(self, message: str, error: bool = True) -> None:
        """Show a message in the Output area (works from callbacks and threads alike)."""
        stamp = time.strftime("%H:%M:%S")
        (self.output.append_stderr if error else self.output.append_stdout)(
            f"[{stamp}] {message}\n")

    def refresh(self) -> None:
        with self._lock:
            try:
                info = self.handle.client.server_info()
            except ServingError as error:
                self._halt(f"The server stopped answering ({error.message}); refreshing stopped.")
                return
            if info is None:
                self._halt("This is not a tfserve_magic server; nothing to show.")
                return
            traffic = self._scrape()
            views = model_views(info, traffic, self._batching)
            self.header.value = (f"<b>{html.escape(self.handle.name)}</b> at "
                                 f"<code>{html.escape(self.handle.url)}</code> "
                                 f"(pid {info.get('pid')})")
            for view in views:
                panel = self._panels.get(view.name)
                if panel is None:
                    panel = self._panels[view.name] = _ModelPanel(self, view.name)
                try:
                    panel.update(view)
                except Exception as error:  # a widget problem must not kill the refresh loop
                    self.report(f"{view.name}: {error}")
            shown = [self._panels[v.name] for v in views]
            if list(self.models.children) != shown:
                self.models.children = shown

    def _scrape(self) -> dict[tuple[str, int], tuple[float, float | None]]:
        try:
            from urllib.request import urlopen

            with urlopen(f"{self.handle.url}/monitoring/prometheus/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}  # metrics are off for this server: no traffic column
        now = time.monotonic()
        current = parse_traffic(text)
        result = rates(self._traffic, current, now - self._traffic_at)
        self._batching = batch_stats(self._traffic, current, now - self._traffic_at)
        self._traffic, self._traffic_at = current, now
        return result

    def _halt(self, reason: str) -> None:
        self.stopped_reason = reason
        self._stop.set()
        self.report(reason)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as error:  # keep the view alive; say what happened
                self.report(f"refresh failed: {error}")

    def close(self) -> None:
        self._stop.set()
        super().close()


def dashboard(name: str | None = None, interval: float = 2.0) -> Dashboard:
    """A live dashboard of the server ``name`` (or the only one running)."""
    return Dashboard(launcher.find(name), interval=interval)
