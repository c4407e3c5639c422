"""The manager's promises shown on a real server with load retries on (the unit tests in
test_manager.py show them through the scripted loader): retries and their interval, a base path
that disappears, and label updates that apply all or nothing."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from server_process import RunningServer, start_server, wait_for

_RETRIES = ("--max_num_load_retries=2", "--load_retry_interval_micros=1000000")


def _serving_version_1(tmp_path: Path, store: Path) -> tuple[Path, RunningServer]:
    """A server with retries on, polling every second, with version 1 of model m AVAILABLE."""
    base = tmp_path / "m"
    shutil.copytree(store / "1", base / "1")
    server = start_server("--model_name=m", f"--model_base_path={base}",
                          "--file_system_poll_wait_seconds=1", *_RETRIES, log_dir=tmp_path)
    try:
        server.wait_state("m", 1)
    except BaseException:
        server.stop()
        raise
    return base, server


def test_a_failing_version_is_retried_at_the_interval_while_the_old_one_serves(
        tmp_path: Path, plus_version_builds: Path, unloadable_model: Path) -> None:
    base, server = _serving_version_1(tmp_path, plus_version_builds)
    try:
        shutil.copytree(unloadable_model / "1", tmp_path / ".staging")
        (tmp_path / ".staging").rename(base / "2")
        wait_for(lambda: "Loading servable m version 2" in server.log() and
                 "this model cannot be initialised" in server.log(), 120,
                 what="the first failed load")
        first_failure = time.monotonic()
        # Version 1 answers while version 2 is retried.
        assert server.post("/v1/models/m:predict", {"instances": [0.0]}).json() == \
            {"predictions": [1.0]}
        server.wait_state("m", 2, "END")
        # Two retries, each after a 1 s interval: END is at least 2 s after the first failure.
        assert time.monotonic() - first_failure >= 1.9
        log = server.log()
        assert "Retrying load of servable m version 2 (retry 1 of 2)" in log
        assert "Retrying load of servable m version 2 (retry 2 of 2)" in log
        assert log.count("cannot be initialised") >= 3  # one attempt and two retries
        status = server.get("/v1/models/m/versions/2").json()["model_version_status"][0]
        assert "this model cannot be initialised" in status["status"]["error_message"]
        assert server.states("m") == {2: "END", 1: "AVAILABLE"}
    finally:
        server.stop()


def test_a_missing_base_path_keeps_serving_what_it_served(tmp_path: Path,
                                                          plus_version_builds: Path) -> None:
    base, server = _serving_version_1(tmp_path, plus_version_builds)
    try:
        base.rename(tmp_path / "moved")
        wait_for(lambda: f"Could not find base path {base} for servable (model m); keeping its "
                         "current versions" in server.log(), 60, what="the rescan to notice")
        assert server.post("/v1/models/m:predict", {"instances": [0.0]}).json() == \
            {"predictions": [1.0]}
        assert server.states("m") == {1: "AVAILABLE"}
    finally:
        server.stop()


def test_label_updates_apply_all_or_nothing(tmp_path: Path, plus_version_builds: Path) -> None:
    base = tmp_path / "v"
    for version in ("1", "2"):
        shutil.copytree(plus_version_builds / version, base / version)
    config = tmp_path / "models.config"

    def write(labels: str) -> None:
        config.write_text(f'model_config_list {{ config {{ name: "v" base_path: "{base}" '
                          'model_platform: "tensorflow" model_version_policy { all {} } '
                          f'{labels} }} }}')

    write("")  # labels in a startup config need loaded versions (TF Serving refuses to start)
    server = start_server(f"--model_config_file={config}", *_RETRIES, log_dir=tmp_path)
    try:
        server.wait_state("v", 1)
        server.wait_state("v", 2)
        write('version_labels { key: "stable" value: 1 }')
        assert server.manage("POST", "/tfserve_magic/v1/reload").status == 200
        # Two edits at once, the second (in the order they are checked) impossible: neither
        # applies.
        write('version_labels { key: "stable" value: 2 } version_labels { key: "wip" value: 7 }')
        response = server.manage("POST", "/tfserve_magic/v1/reload")
        assert (response.status, response.json()) == (400, {"error": (
            "Request to assign label to version 7 of model v, which is not currently "
            "available for inference")})
        stable = server.post("/v1/models/v/labels/stable:predict", {"instances": [0.0]})
        assert stable.json() == {"predictions": [1.0]}
        wip = server.post("/v1/models/v/labels/wip:predict", {"instances": [0.0]})
        assert (wip.status, wip.json()) == (
            400, {"error": "Unrecognized servable version label: wip"})
        write('version_labels { key: "stable" value: 2 } version_labels { key: "wip" value: 1 }')
        assert server.manage("POST", "/tfserve_magic/v1/reload").json()["models"][0]["labels"] == \
            {"stable": 2, "wip": 1}
    finally:
        server.stop()
