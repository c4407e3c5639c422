"""The live model dashboard, built with core ipywidgets only (JupyterLab, Notebook 7, Colab,
VS Code).

For each model of a server: its versions with state, labels, load errors and traffic; a chart
of the last two minutes of traffic per version (matplotlib, shown as a PNG, see
``dashboard_chart``); the signatures of a chosen version; which version or label ``%%predict``
uses by default; and moving a label (a models.config edit the server reloads, see ``labels``).
The view refreshes itself on a background thread until it is closed or the server stops; every
error lands in the widget's Output area; once the server stops, no version reads as serving.
The data logic lives in ``client.traffic``. No TensorFlow import.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Mapping
from typing import Any

import ipywidgets as w

from tfserve_magic.client import ServingError
from tfserve_magic.client.traffic import (
    BatchStats,
    ModelView,
    Traffic,
    VersionRow,
    batch_stats,
    model_views,
    parse_traffic,
    rates,
    route_choices,
)
from tfserve_magic.lifecycle import launcher, registry
from tfserve_magic.notebook import defaults
from tfserve_magic.notebook.dashboard_chart import TrafficHistory, png, traffic_figure
from tfserve_magic.notebook.display import dtype_name, shape_text
from tfserve_magic.operations.labels import LabelError, move_label
from tfserve_magic.status import VersionState

__all__ = ["Dashboard", "ModelPanel", "dashboard"]

_SERVING, _CHANGING, _GONE, _FAILED = "#1a7f37", "#9a6700", "#6e7781", "#cf222e"
_STATE_COLOURS = {VersionState.AVAILABLE: _SERVING, VersionState.START: _CHANGING,
                  VersionState.LOADING: _CHANGING, VersionState.UNLOADING: _CHANGING,
                  VersionState.END: _GONE}
_CHART_WINDOW = 120.0  # seconds of traffic the chart shows


def _cell(tag: str, text: str, align: str = "left", style: str = "") -> str:
    # Inline styles: the same alignment for a header and its values in every front end.
    return (f"<{tag} style='text-align:{align};padding:2px 14px 2px 0;white-space:nowrap;"
            f"vertical-align:top;{style}'>{text}</{tag}>")


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _state_html(row: VersionRow, stopped: bool) -> str:
    """The state cell: STOPPED once the server is gone, else TF Serving's state (END in red for
    a load error, which the row shows beside it)."""
    if stopped:
        text, colour = "STOPPED", _GONE
    else:
        text = row.state.name
        colour = _FAILED if row.failed else _STATE_COLOURS.get(row.state, "#000")
    return f"<b style='color:{colour}'>{text}</b>"


def _versions_table(view: ModelView, stopped: bool = False) -> str:
    """One row per version; numbers right-aligned under right-aligned headers. Once the
    server is stopped, no version is shown as serving."""
    batching = any(r.mean_batch_size is not None or r.mean_queue_delay_ms is not None
                   for r in view.rows)
    columns = [("version", "right"), ("state", "left"), ("labels", "left"),
               ("req/s", "right"), ("latency, ms", "right")]
    if batching:
        columns += [("batch size", "right"), ("queue, ms", "right")]
    columns.append(("load error", "left"))
    head = "".join(_cell("th", name, align, "border-bottom:1px solid #d0d7de")
                   for name, align in columns)
    rows = []
    for row in view.rows:
        values = [str(row.version), _state_html(row, stopped),
                  html.escape(", ".join(row.labels)),
                  "" if stopped else _number(row.requests_per_second, 1),
                  "" if stopped else _number(row.mean_latency_ms, 1)]
        if batching:
            values += ["" if stopped else _number(row.mean_batch_size, 1),
                       "" if stopped else _number(row.mean_queue_delay_ms, 2)]
        values.append(html.escape(row.error))
        cells = "".join(
            _cell("td", value, align, "white-space:normal;color:#cf222e" if name == "load error"
                  else "")
            for value, (name, align) in zip(values, columns, strict=True))
        rows.append(f"<tr class='tfserve-version' data-version='{row.version}'>{cells}</tr>")
    body = "".join(rows) or f"<tr><td colspan={len(columns)}><i>no versions yet</i></td></tr>"
    return (f"<table class='tfserve-versions' style='border-collapse:collapse;width:auto'><tr>{head}</tr>"
            f"{body}</table>")


def _signatures_table(signatures: dict[str, Any]) -> str:
    columns = [("signature", "left"), ("", "left"), ("name", "left"), ("dtype", "left"),
               ("shape", "left")]
    rows = []
    for name in sorted(s for s in signatures if not s.startswith("__")):
        for kind in ("inputs", "outputs"):
            for key, info in sorted(signatures[name].get(kind, {}).items()):
                values = [html.escape(name), kind[:-1], html.escape(key),
                          dtype_name(info.get("dtype", "")), shape_text(info)]
                rows.append("<tr>" + "".join(_cell("td", v, a) for v, (_, a) in
                                             zip(values, columns, strict=True)) + "</tr>")
    head = "".join(_cell("th", n, a, "border-bottom:1px solid #d0d7de") for n, a in columns)
    return (f"<table class='tfserve-signatures' style='border-collapse:collapse;width:auto'><tr>{head}</tr>"
            + "".join(rows) + "</table>")


class ModelPanel(w.VBox):
    """One model's part of the dashboard; rebuilt values, stable widgets.

    What it shows: ``versions`` and ``signatures`` (HTML tables), ``chart`` (a PNG) with
    ``chart_note``, and the controls ``route`` (what ``%%predict`` uses), ``label_name``,
    ``label_version`` and ``move`` (the *Move label* button), ``signature_version``. Made and
    updated by its ``Dashboard`` (see ``Dashboard.panels``)."""

    def __init__(self, owner: Dashboard, name: str) -> None:
        self.owner = owner
        self.name = name
        self.history = TrafficHistory(_CHART_WINDOW)
        self._view: ModelView | None = None
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
        self.chart = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.chart.add_class("tfserve-chart")
        self.chart.layout.display = "none"
        self.chart_note = w.HTML()
        self._shown_signatures: int | None = None
        super().__init__([
            w.HTML(f"<h4 style='margin:4px 0'>{html.escape(name)}</h4>"), self.versions,
            self.chart, self.chart_note, self.route, w.HBox([self.label_name, self.label_version, self.move]),
            self.signature_version, self.signatures])

    def update(self, view: ModelView) -> None:
        self._view = view
        self.versions.value = _versions_table(view)
        self._draw_chart(view)
        choices = route_choices(view)
        if [c[1] for c in choices] != [c[1] for c in self.route.options]:
            current = self.route.value
            self.route.unobserve(self._route_changed, names="value")
            self.route.options = choices
            if current is None:  # first fill: show the route %%predict already uses
                route = defaults.get_default(self.owner.handle.name, self.name)
                current = ("version", route.version) if route.version is not None else (
                    ("label", route.label) if route.label else ("latest", None))
            self.route.value = current if current in [c[1] for c in choices] else ("latest", None)
            self.route.observe(self._route_changed, names="value")
        self.label_name.options = tuple(sorted(view.labels))
        versions = tuple(r.version for r in view.rows)
        if tuple(self.label_version.options) != versions:
            # New options reset the choice: keep a serving one, else offer the newest serving
            # version (never one that failed to load or was unloaded; a person may still pick
            # it, and the server says why a label cannot point there).
            previous = self.label_version.value
            self.label_version.options = versions
            self.label_version.value = previous if previous in view.available else (
                view.available[0] if view.available else None)
        if tuple(self.signature_version.options) != view.available:
            previous = self.signature_version.value
            self.signature_version.options = view.available
            if view.available and previous not in view.available:
                self.signature_version.value = view.available[0]
        if self.signature_version.value != self._shown_signatures:
            self._signatures_changed({"new": self.signature_version.value})

    def _draw_chart(self, view: ModelView) -> None:
        """Drawn at every refresh from the first on, with the table (empty axes until two
        scrapes of the metrics give a rate)."""
        if not self.owner.metrics:
            self.chart_note.value = "<i>No traffic chart: this server's metrics are off.</i>"
            return
        now = time.monotonic()
        self.history.add(now, view)
        figure = traffic_figure(self.history.series(now), _CHART_WINDOW)
        width, height = (round(v) for v in figure.get_size_inches() * figure.dpi)
        self.chart.value = png(figure)
        self.chart.width, self.chart.height = str(width), str(height)  # CSS pixels
        self.chart.layout.display = None
        self.chart_note.value = ""

    def show_stopped(self) -> None:
        """The server is gone: no version reads as serving, and nothing can be changed."""
        if self._view is not None:
            self.versions.value = _versions_table(self._view, stopped=True)
        for control in (self.route, self.label_name, self.label_version, self.move,
                        self.signature_version):
            control.disabled = True

    def _route_changed(self, change: dict[str, Any]) -> None:
        kind, value = change["new"] or ("latest", None)
        defaults.set_default(self.owner.handle.name, self.name,
                            version=value if kind == "version" else None,
                            label=value if kind == "label" else None)

    def _move_clicked(self, _button: Any) -> None:
        label, version = self.label_name.value.strip(), self.label_version.value
        if not label or version is None:
            self.owner.report("Choose a label name and a version first.")
            return
        try:
            record = self.owner.handle.record
            labels = move_label(self.owner.handle.client, self.name, label, int(version),
                                grpc=record.grpc_target if record.remote else None)
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
        self._panels: dict[str, ModelPanel] = {}  # shown or not: stable widgets
        self._traffic: Traffic | None = None
        self._traffic_at = 0.0
        self._batching: dict[tuple[str, int], BatchStats] = {}
        self.metrics = True  # until a scrape finds them off
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
    def panels(self) -> Mapping[str, ModelPanel]:
        """The panels shown, by model name, in the order shown."""
        return {c.name: c for c in self.models.children if isinstance(c, ModelPanel)}

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
                if self._stopped_on_purpose():
                    self._halt(f"{self.handle.name} was stopped (%tfserve stop or the panel's "
                               "Stop); refreshing stopped.", on_purpose=True)
                else:
                    self._halt(f"The server stopped answering ({error.message}); refreshing "
                               "stopped.")
                return
            if info is None:
                self._halt("This is not a tfserve_magic server; nothing to show.")
                return
            traffic = self._scrape()
            views = model_views(info, traffic, self._batching)
            self.header.value = (f"<b>{html.escape(self.handle.name)}</b> at "
                                 f"<code>{html.escape(self.handle.url)}</code> "
                                 f"(pid {info.pid})")
            for view in views:
                panel = self._panels.get(view.name)
                if panel is None:
                    panel = self._panels[view.name] = ModelPanel(self, view.name)
                try:
                    panel.update(view)
                except Exception as error:  # a widget problem must not kill the refresh loop
                    self.report(f"{view.name}: {error}")
            shown = [self._panels[v.name] for v in views]
            if list(self.models.children) != shown:
                self.models.children = shown

    def _scrape(self) -> dict[tuple[str, int], tuple[float, float | None]]:
        try:
            text = self.handle.client.metrics()
        except ServingError:
            text = None
        if text is None:
            self.metrics = False
            return {}  # metrics are off for this server (or it is not answering): no traffic
        now = time.monotonic()
        current = parse_traffic(text)
        result = rates(self._traffic, current, now - self._traffic_at)
        self._batching = batch_stats(self._traffic, current, now - self._traffic_at)
        self._traffic, self._traffic_at = current, now
        return result

    def _stopped_on_purpose(self) -> bool:
        """Whether the server was stopped (its record removed by ``launcher.stop``, or replaced
        by another server of that name) rather than died under its record."""
        record = registry.find_record(self.handle.name)
        return record is None or (record.pid, record.url) != (self.handle.record.pid,
                                                              self.handle.url)

    def _halt(self, reason: str, on_purpose: bool = False) -> None:
        self.stopped_reason = reason
        self._stop.set()
        for panel in self._panels.values():
            panel.show_stopped()
        colour = _GONE if on_purpose else _FAILED
        self.header.value = (f"<b>{html.escape(self.handle.name)}</b> at "
                             f"<code>{html.escape(self.handle.url)}</code> "
                             f"<b style='color:{colour}'>stopped</b>")
        self.report(reason, error=not on_purpose)

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
