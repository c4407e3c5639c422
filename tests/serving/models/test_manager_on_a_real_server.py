"""The manager's promises shown on a real server with load retries on (the unit tests in
test_manager.py show them through the scripted loader): retries and their interval, a base path
that disappears, and label updates that apply all or nothing."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
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


_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) . [\w.]+\] (.*)$")


def _load_events(log: str, model: str, version: int) -> list[tuple[str, float]]:
    """("failed" | "retry N", seconds) of each failed load and each retry of one version."""
    events = []
    for line in log.splitlines():
        match = _LOG_LINE.match(line)
        if match is None:
            continue
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        text = match.group(2)
        if text.startswith(f"Loading servable {model} version {version} from ") and \
                "cannot be initialised" in text:
            events.append(("failed", at))
        retry = re.match(rf"Retrying load of servable {model} version {version} \(retry (\d+) ",
                         text)
        if retry:
            events.append((f"retry {retry.group(1)}", at))
    return events


def test_a_failing_version_is_retried_at_the_interval_while_the_old_one_serves(
        tmp_path: Path, plus_version_builds: Path, unloadable_model: Path) -> None:
    base, server = _serving_version_1(tmp_path, plus_version_builds)
    try:
        shutil.copytree(unloadable_model / "1", tmp_path / ".staging")
        (tmp_path / ".staging").rename(base / "2")
        wait_for(lambda: "Loading servable m version 2" in server.log() and
                 "this model cannot be initialised" in server.log(), 120,
                 what="the first failed load")
        # Version 1 answers while version 2 is retried.
        assert server.post("/v1/models/m:predict", {"instances": [0.0]}).json() == \
            {"predictions": [1.0]}
        server.wait_state("m", 2, "END")
        # One attempt and two retries, in that order, each retry at least the 1 s interval
        # after the failure before it: read from the server's own log times (a busy machine
        # can only make the gaps longer).
        events = _load_events(server.log(), "m", 2)
        assert [kind for kind, _ in events] == ["failed", "retry 1", "failed", "retry 2", "failed"]
        for (_, failed_at), (_, retried_at) in zip(events[0::2], events[1::2], strict=False):
            assert retried_at - failed_at >= 0.999, events  # the log's times are to the ms
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
