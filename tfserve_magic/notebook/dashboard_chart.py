"""The dashboard's traffic chart: what it remembers and how it is drawn.

``TrafficHistory`` keeps, per model, the last ``window`` seconds of each charted quantity per
version (request rate, mean latency and, when batching is on, mean batch size and queueing
delay), as pure data. ``traffic_figure`` draws them with matplotlib (one panel per quantity,
with its unit, a shared time axis in seconds before now, one line per version) and ``png``
turns the figure into the bytes an ``ipywidgets.Image`` shows: a static PNG works the same in
JupyterLab, Notebook 7, VS Code and Colab, and nothing is fetched by the browser. matplotlib is
imported only when a chart is drawn. No TensorFlow, no widgets.
"""

from __future__ import annotations

import io
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tfserve_magic.client.traffic import ModelView

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CHARTED", "SCALE", "Series", "TrafficHistory", "png", "traffic_figure"]

# Pixels drawn per pixel shown: sharp on high-density screens (2x), and on others when the
# browser scales it down. The Image widget is given the figure's size in CSS pixels.
SCALE = 2

# (title, unit, VersionRow attribute), in the order the panels are drawn.
CHARTED = (
    ("Requests", "req/s", "requests_per_second"),
    ("Mean latency", "ms", "mean_latency_ms"),
    ("Mean batch size", "rows", "mean_batch_size"),
    ("Queueing delay", "ms", "mean_queue_delay_ms"),
)


@dataclass(frozen=True)
class Series:
    """One chart panel: a quantity over time, one line of (seconds before now, value) per
    version; a NaN value is a gap (a refresh without requests: no latency to draw)."""

    title: str
    unit: str
    lines: dict[int, tuple[tuple[float, float], ...]]


class TrafficHistory:
    """The charted quantities of one model's versions over the last ``window`` seconds."""

    def __init__(self, window: float = 120.0) -> None:
        self.window = window
        self._points: dict[str, dict[int, deque[tuple[float, float]]]] = {
            attribute: {} for _, _, attribute in CHARTED}

    def add(self, now: float, view: ModelView) -> None:
        """Record the values ``view`` carries at time ``now`` (seconds, monotonic); a value
        missing after some were recorded is a gap, so no line is drawn across it."""
        for row in view.rows:
            for _, _, attribute in CHARTED:
                value = getattr(row, attribute)
                points = self._points[attribute].get(row.version)
                if value is not None:
                    self._points[attribute].setdefault(row.version, deque()).append(
                        (now, float(value)))
                elif points:
                    points.append((now, math.nan))
        for per_version in self._points.values():
            for points in per_version.values():
                while points and points[0][0] < now - self.window:
                    points.popleft()

    def series(self, now: float) -> list[Series]:
        """The panels to draw, times made relative to ``now``: requests and latency always
        (empty axes until traffic is known), batching's only when it has values."""
        out = []
        for index, (title, unit, attribute) in enumerate(CHARTED):
            lines = {version: tuple((t - now, v) for t, v in points)
                     for version, points in sorted(self._points[attribute].items())
                     if any(not math.isnan(v) for _, v in points)}
            if lines or index < 2:
                out.append(Series(title, unit, lines))
        return out


def traffic_figure(series: Sequence[Series], window: float, width_inches: float = 7.6) -> Figure:
    """A matplotlib figure with one panel per series, two panels a row."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    rows = max(1, (len(series) + 1) // 2)
    figure = Figure(figsize=(width_inches, 1.9 * rows), dpi=100, layout="constrained")
    axes = figure.subplots(rows, 2, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(series):
            ax.set_visible(False)
            continue
        panel = series[index]
        for version, points in panel.lines.items():
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", markevery=_isolated(ys), markersize=3, linewidth=1.5,
                    label=f"v{version}")
        ax.set_title(panel.title, loc="left", fontsize=9)
        ax.set_ylabel(panel.unit, fontsize=8)
        ax.set_xlim(-window, 0)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{abs(x):g}"))
        ax.set_xlabel("seconds ago", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if panel.lines:
            ax.legend(fontsize=7, loc="upper left", frameon=False)
    return figure


def _isolated(values: Sequence[float]) -> list[int]:
    """Indices of values with no drawn neighbour (a line needs two points): shown as dots."""
    def drawn(i: int) -> bool:
        return 0 <= i < len(values) and not math.isnan(values[i])

    return [i for i in range(len(values)) if drawn(i) and not drawn(i - 1) and not drawn(i + 1)]


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes at ``SCALE`` times its size in CSS pixels (matplotlib's Agg
    renderer; no pyplot, no display)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi * SCALE)
    return buffer.getvalue()
