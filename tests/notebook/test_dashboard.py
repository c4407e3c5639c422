"""The dashboard against a real served model: versions come and go, a label moves, a load fails,
the route switches, and refreshing stops with the widget or the server."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from server_process import wait_for

from tfserve_magic.lifecycle import launcher
from tfserve_magic.notebook import defaults as routing
from tfserve_magic.notebook.dashboard_state import model_views, parse_traffic, rates, route_choices
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
    routing.clear()
    yield handle, base, config
    routing.clear()


def test_dashboard_follows_versions_labels_and_failures(served, plus_version_builds) -> None:
    from models import corrupt_copy

    handle, base, config = served
    dash = Dashboard(handle, autostart=False)
    panel = dash._panels["plus"]
    assert "data-version='1'" in panel.versions.value and "AVAILABLE" in panel.versions.value
    assert "stable" in panel.versions.value
    assert "<td>x</td><td>DT_FLOAT</td>" in panel.signatures.value
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
    assert "FAILED" in panel.versions.value and "Error reading SavedModel" in panel.versions.value
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
    panel = dash._panels["plus"]
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
    assert routing.get_default("lab", "plus") == routing.Route(version=1)
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
    wait_for(lambda: "data-version='2'" in dash._panels["plus"].versions.value, 60,
             what="the dashboard to show v2 by itself")
    handle.client.predict("plus", [1.0])
    wait_for(lambda: "req/s" in dash._panels["plus"].versions.value, 30,
             what="traffic in the table")
    handle.client.predict("plus", [1.0])
    wait_for(lambda: "<polyline" in dash._panels["plus"].chart.value, 30,
             what="a rate and latency chart")
    assert "mean latency, ms" in dash._panels["plus"].chart.value
    dash.close()
    wait_for(lambda: not dash.refreshing, 10, what="refreshing to stop after close")

    other = Dashboard(handle, interval=0.2)
    handle.stop()
    wait_for(lambda: not other.refreshing, 30, what="refreshing to stop with the server")
    assert "stopped answering" in other.stopped_reason
    assert "refreshing stopped" in str(other.output.outputs)


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
