"""The dashboard against a real served model: versions come and go, a label moves, a load fails,
the route switches, and refreshing stops with the widget or the server."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from server_process import wait_for

from tfserve_magic.client.traffic import (
    ModelView,
    VersionRow,
    model_views,
    parse_traffic,
    rates,
    route_choices,
)
from tfserve_magic.lifecycle import launcher
from tfserve_magic.notebook import defaults
from tfserve_magic.notebook.dashboard_chart import TrafficHistory, png, traffic_figure
from tfserve_magic.notebook.display import shape_text
from tfserve_magic.notebook.widgets import Dashboard
from tfserve_magic.operations.labels import LabelError, move_label
from tfserve_magic.status import VersionState


def place(store: Path, base: Path, version: int) -> None:
    staging = base / f".tmp-{version}"
    shutil.copytree(store / str(version), staging)
    staging.rename(base / str(version))


@pytest.fixture
def served(isolated_runtime, tmp_path, plus_version_builds):
    base = tmp_path / "plus"
    base.mkdir()
    place(plus_version_builds, base, 1)
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "plus" base_path: "{base}" '
                      'model_platform: "tensorflow" model_version_policy { all {} } '
                      'version_labels { key: "stable" value: 1 } } }')
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }")
    handle = launcher.start(config=str(config), name="lab",
                            extra_flags=[f"--monitoring_config_file={monitoring}"])
    defaults.clear()
    yield handle, base, config
    defaults.clear()


def test_dashboard_follows_versions_labels_and_failures(served, plus_version_builds) -> None:
    from models import corrupt_copy

    handle, base, config = served
    dash = Dashboard(handle, autostart=False)
    panel = dash.panels["plus"]
    assert list(dash.panels) == ["plus"] and dash.models.children == (panel,)
    assert "data-version='1'" in panel.versions.value and "AVAILABLE" in panel.versions.value
    assert "stable" in panel.versions.value
    # dtypes read as in %tfserve signatures (TensorFlow's names), not as TF Serving's enum.
    assert ">x</td>" in panel.signatures.value and ">float32</td>" in panel.signatures.value
    assert "DT_" not in panel.signatures.value
    # Shapes read as everywhere in the notebook (display.shape_text: "[None]", not "(None,)").
    x = handle.client.signatures("plus")["serving_default"]["inputs"]["x"]
    assert f">{shape_text(x)}</td>" in panel.signatures.value and "[None" in shape_text(x)
    assert [label for label, _ in panel.route.options] == ["latest", "version 1",
                                                           "label stable (v1)"]

    place(plus_version_builds, base, 2)
    handle.client.reload()
    wait_for(lambda: handle.client.status("plus", 2)[0].state is VersionState.AVAILABLE, 60,
             what="v2 AVAILABLE")
    dash.refresh()
    assert "data-version='2'" in panel.versions.value

    # Move stable from 1 to 2 with the widget's own controls.
    panel.label_name.value = "stable"
    panel.label_version.value = 2
    panel.move.click()
    assert 'value: 2' in config.read_text()
    assert np.allclose(handle.client.predict("plus", [0.0], label="stable"), [2.0])
    assert "label 'stable' now points to version 2" in str(dash.output.outputs)

    # A version that fails to load shows its error, and a label cannot point at it.
    corrupt_copy(str(plus_version_builds / "3"), str(base / ".tmp-3"))
    (base / ".tmp-3").rename(base / "3")
    handle.client.reload()
    wait_for(lambda: handle.client.status("plus", 3)[0].state is VersionState.END, 60, what="v3 END")
    dash.refresh()
    # TF Serving's name for the state (END), the load error beside it, as %tfserve status says.
    failed_row = panel.versions.value.split("data-version='3'")[1].split("</tr>")[0]
    assert ">END</b>" in failed_row and "Error reading SavedModel" in failed_row
    assert "FAILED" not in panel.versions.value
    assert panel.label_version.value == 2  # the newest serving version, never the failed one
    panel.label_name.value = "stable"
    panel.label_version.value = 3
    panel.move.click()
    assert ("Request to assign label to version 3 of model plus, which is not currently "
            "available for inference") in str(dash.output.outputs)
    assert 'value: 2' in config.read_text()  # nothing changed

    # Removing version 2 is shown too.
    shutil.rmtree(base / "2")
    handle.client.reload()
    wait_for(lambda: handle.client.status("plus", 2)[0].state is VersionState.END, 60, what="v2 END")
    dash.refresh()
    assert "data-version='2'" in panel.versions.value
    assert ("version 2", ("version", 2)) not in panel.route.options
    dash.close()


def test_switching_the_route_changes_what_predict_uses(served, plus_version_builds,
                                                       capsys) -> None:
    from IPython.testing.globalipapp import get_ipython

    handle, base, _ = served
    place(plus_version_builds, base, 2)
    handle.client.reload()
    wait_for(lambda: handle.client.status("plus", 2)[0].state is VersionState.AVAILABLE, 60, what="v2")
    dash = Dashboard(handle, autostart=False)
    panel = dash.panels["plus"]
    ip = get_ipython()
    ip.run_line_magic("load_ext", "tfserve_magic")

    def predicted() -> float:
        ip.user_ns.pop("r", None)  # a failed request leaves r alone: never read an old value
        ip.run_cell_magic("predict", "plus -o r", "[0.0]")
        err = capsys.readouterr().err
        assert err == "", err
        return float(ip.user_ns["r"][0])

    assert predicted() == 2.0
    panel.route.value = ("version", 1)
    assert defaults.get_default("lab", "plus") == defaults.Route(version=1)
    assert predicted() == 1.0
    panel.route.value = ("label", "stable")
    assert predicted() == 1.0
    panel.route.value = ("latest", None)
    assert predicted() == 2.0
    dash.close()


def test_refreshes_by_itself_and_stops_when_closed_or_server_stops(served, plus_version_builds) -> None:
    handle, base, _ = served
    dash = Dashboard(handle, interval=0.2)
    assert dash.refreshing
    place(plus_version_builds, base, 2)
    wait_for(lambda: "data-version='2'" in dash.panels["plus"].versions.value, 60,
             what="the dashboard to show v2 by itself")
    panel = dash.panels["plus"]

    def charted() -> bool:
        handle.client.predict("plus", [1.0])
        series = panel.history.series(time.monotonic())
        return any(value > 0 for points in series[0].lines.values() for _, value in points)

    wait_for(charted, 30, what="a traffic chart")
    assert bytes(panel.chart.value).startswith(b"\x89PNG")
    assert panel.chart_note.value == ""
    series = panel.history.series(time.monotonic())
    assert [(s.title, s.unit) for s in series][:2] == [("Requests", "req/s"), ("Mean latency", "ms")]
    assert any(value > 0 for points in series[0].lines.values() for _, value in points)
    dash.close()
    wait_for(lambda: not dash.refreshing, 10, what="refreshing to stop after close")

    other = Dashboard(handle, interval=0.2)
    handle.stop()  # as %tfserve stop and the panel's Stop do
    wait_for(lambda: not other.refreshing, 30, what="refreshing to stop with the server")
    # A stop it was told about (the record is gone) reads "stopped", not as a crash.
    assert other.stopped_reason == ("lab was stopped (%tfserve stop or the panel's Stop); "
                                    "refreshing stopped.")
    assert "stopped answering" not in str(other.output.outputs)
    assert all(o["name"] == "stdout" for o in other.output.outputs)  # no red error box
    # Beside that, nothing says a version is still serving.
    stopped = other.panels["plus"]
    assert "AVAILABLE" not in stopped.versions.value and "STOPPED" in stopped.versions.value
    assert "stopped" in other.header.value
    assert stopped.route.disabled and stopped.move.disabled


def test_chart_has_axes_units_and_a_time_window() -> None:
    history = TrafficHistory(window=60.0)
    for second in range(0, 100, 2):
        history.add(float(second), ModelView("m", "", "", {}, (
            VersionRow(1, VersionState.AVAILABLE, requests_per_second=second / 10, mean_latency_ms=2.0),
            VersionRow(2, VersionState.AVAILABLE, requests_per_second=1.0, mean_latency_ms=None,
                       mean_batch_size=4.0, mean_queue_delay_ms=0.5))))
    series = history.series(98.0)
    assert [(s.title, s.unit) for s in series] == [
        ("Requests", "req/s"), ("Mean latency", "ms"), ("Mean batch size", "rows"),
        ("Queueing delay", "ms")]
    requests = series[0].lines
    assert sorted(requests) == [1, 2]
    assert requests[1][0] == (-60.0, 3.8) and requests[1][-1] == (0.0, 9.8)  # older points gone
    assert sorted(series[1].lines) == [1]  # no latency without requests
    figure = traffic_figure(series, 60.0)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in axes] == [s.title for s in series]
    assert [ax.get_ylabel() for ax in axes] == ["req/s", "ms", "rows", "ms"]
    assert all(ax.get_xlim() == (-60.0, 0.0) and ax.get_xlabel() == "seconds ago" for ax in axes)
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["v1", "v2"]
    figure.canvas.draw()
    assert [t.get_text() for t in axes[0].get_xticklabels()][-1] == "0"  # not "-0"
    image = png(figure)
    from PIL import Image

    with Image.open(io.BytesIO(image)) as decoded:
        assert decoded.size == (760 * 2, 380 * 2)  # twice its displayed size: sharp


def test_chart_draws_gaps_as_gaps_and_starts_with_the_table() -> None:
    history = TrafficHistory(window=60.0)
    latencies = [None, 3.0, 4.0, None, None, None, 5.0, None, 6.0, 7.0]
    for second, latency in enumerate(latencies):
        history.add(float(second * 2), ModelView("m", "", "", {}, (VersionRow(
            1, VersionState.AVAILABLE, requests_per_second=0.0 if latency is None else 1.0,
            mean_latency_ms=latency),)))
    latency_series = history.series(18.0)[1]
    values = [v for _, v in latency_series.lines[1]]
    # No latency without requests: a gap (NaN), never a line from 4.0 across to 5.0.
    assert [None if np.isnan(v) else v for v in values] == latencies[1:]
    figure = traffic_figure(history.series(18.0), 60.0)
    line = figure.axes[1].get_lines()[0]
    assert np.isnan(line.get_ydata()).sum() == 4
    assert line.get_markevery() == [5]  # the lone 5.0 is a dot (a line needs two points)
    # Before any traffic: empty axes for requests and latency, drawn with the table.
    empty = TrafficHistory(window=60.0).series(0.0)
    assert [(s.title, s.lines) for s in empty] == [("Requests", {}), ("Mean latency", {})]
    assert png(traffic_figure(empty, 60.0)).startswith(b"\x89PNG")


def test_chart_comes_with_the_first_paint_and_counts_only_model_calls(served) -> None:
    handle, _, _ = served
    dash = Dashboard(handle, autostart=False)
    panel = dash.panels["plus"]
    # The first paint has the chart (no waiting for a second refresh), shown at its size in
    # CSS pixels (the PNG holds twice as many).
    assert bytes(panel.chart.value).startswith(b"\x89PNG") and panel.chart.layout.display != "none"
    assert (panel.chart.width, panel.chart.height) == ("760", "190")
    from PIL import Image

    with Image.open(io.BytesIO(bytes(panel.chart.value))) as decoded:
        assert decoded.size == (1520, 380)
    # Looking at the server (signatures, status: what the dashboard and the lab panel poll)
    # is not traffic; a model call is.
    for _ in range(5):
        handle.client.signatures("plus")
        handle.client.status("plus")
    dash.refresh()
    assert [r.requests_per_second or 0.0 for r in dash.panels["plus"]._view.rows] == [0.0]
    handle.client.predict("plus", [1.0])
    dash.refresh()
    assert dash.panels["plus"]._view.rows[0].requests_per_second > 0
    dash.close()


def test_a_server_that_dies_reads_stopped_answering(served) -> None:
    import os
    import signal

    handle, _, _ = served
    dash = Dashboard(handle, autostart=False)
    os.kill(handle.record.pid, signal.SIGKILL)  # not a stop anyone asked for
    wait_for(lambda: not launcher.list_servers()[0].alive, 30, what="the server to die")
    dash.refresh()
    assert "The server stopped answering" in dash.stopped_reason
    assert any(o["name"] == "stderr" for o in dash.output.outputs)


def test_label_rules_without_widgets(served) -> None:
    handle, _, config = served
    with pytest.raises(LabelError, match="must match"):
        move_label(handle.client, "plus", "bad label", 1)
    with pytest.raises(LabelError, match="version 7 of model plus, which is not currently"):
        move_label(handle.client, "plus", "stable", 7)
    # A new label may point at a version not loaded yet: the launcher runs servers with
    # --allow_version_labels_for_unavailable_models, as TF Serving allows.
    assert move_label(handle.client, "plus", "next", 7) == {"stable": 1, "next": 7}
    assert 'key: "next"' in config.read_text()


def test_state_functions_on_real_metrics(served) -> None:
    handle, _, _ = served
    from urllib.request import urlopen

    def scrape():
        with urlopen(f"{handle.url}/monitoring/prometheus/metrics") as response:
            return parse_traffic(response.read().decode())

    before = scrape()
    for _ in range(4):
        handle.client.predict("plus", [1.0])
    after = scrape()
    traffic = rates(before, after, 2.0)
    assert traffic[("plus", 1)][0] == pytest.approx(2.0)
    assert traffic[("plus", 1)][1] is not None
    views = model_views(handle.client.server_info(), traffic)
    assert views[0].rows[0].requests_per_second == pytest.approx(2.0)
    assert route_choices(views[0])[-1] == ("label stable (v1)", ("label", "stable"))
    assert rates(None, after, 1.0) == {}
