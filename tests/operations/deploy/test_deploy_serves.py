"""The deployment folder, served by our own server with exactly the command line the Dockerfile
gives TensorFlow Serving, answers as the notebook server did.

No container runs here: the folder's ``models/`` stands for the container's ``/models`` (what
``COPY models/ /models/`` puts there) and a temporary folder for ``/config``; the only changes to
the command line are those two path prefixes and the ports (0: free ones, where the image uses
8500 and 8501)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from server_process import start_server

import tfserve_magic
from tfserve_magic.client import Client, ServingError
from tfserve_magic.status import VersionState

# tf_serving_entrypoint.sh of the tensorflow/serving image, with its defaults
# MODEL_NAME=model and MODEL_BASE_PATH=/models; the Dockerfile's CMD is appended.
ENTRYPOINT = ["--port=8500", "--rest_api_port=8501", "--model_name=model",
              "--model_base_path=/models/model"]


def _container_command(folder: Path) -> list[str]:
    line = next(text for text in (folder / "Dockerfile").read_text().splitlines()
                if text.startswith("CMD "))
    return ENTRYPOINT + json.loads(line[len("CMD "):])


def _mounted(flags: list[str], folder: Path, config_root: Path) -> list[str]:
    out = []
    for flag in flags:
        name, _, value = flag.partition("=")
        if name in ("--port", "--rest_api_port"):
            value = "0"
        elif value.startswith("/models"):
            value = str(folder / "models") + value[len("/models"):]
        elif value.startswith("/config"):
            value = str(config_root) + value[len("/config"):]
        out.append(f"{name}={value}")
    return out


def test_the_folder_serves_like_the_notebook_server(in_notebook_runtime, tmp_path: Path) -> None:
    folder = Path(tfserve_magic.deploy("shop", str(tmp_path / "deploy"), target="docker").path)
    config_root = tmp_path / "container-config"
    config_root.mkdir()
    for path in (folder / "config").iterdir():  # /models/... inside, as the container sees it
        (config_root / path.name).write_text(
            path.read_text().replace('"/models/', f'"{folder / "models"}/'))
    command = _container_command(folder)
    assert [f for f in command if "/models" in f or "/config" in f] == [
        "--model_base_path=/models/model", "--model_config_file=/config/models.config",
        "--monitoring_config_file=/config/monitoring.config",
        "--batching_parameters_file=/config/batching.config"]
    assert "--enable_batching=true" in command

    server = start_server(*_mounted(command, folder, config_root), log_dir=tmp_path / "logs")
    try:
        server.wait_state("plus", 1)
        server.wait_state("plus", 2)
        server.wait_state("half_plus_two", 1)
        deployed, notebook = Client(server.url), Client(in_notebook_runtime.url)
        x = np.array([1.0, 2.5, -3.0], dtype=np.float32)
        for route in ({"version": 1}, {"version": 2}, {"label": "stable"}, {"label": "canary"},
                      {}):
            assert np.array_equal(deployed.predict("plus", x, **route),
                                  notebook.predict("plus", x, **route)), route
        assert np.array_equal(deployed.predict("half_plus_two", x),
                              notebook.predict("half_plus_two", x))
        assert deployed.signatures("plus") == notebook.signatures("plus")
        assert [(s.version, s.state) for s in deployed.status("plus")] == [
            (2, VersionState.AVAILABLE), (1, VersionState.AVAILABLE)]
        with pytest.raises(ServingError, match="next"):  # version 3 failed: not shipped
            deployed.predict("plus", x, label="next")
        labels = {m.name: m.labels for m in deployed.server_info().models}
        assert labels == {"plus": {"stable": 1, "canary": 2}, "half_plus_two": {}}
        metrics = server.get("/monitoring/prometheus/metrics")
        assert metrics.status == 200 and b":tensorflow:serving:request_count" in metrics.body
    finally:
        server.stop()
