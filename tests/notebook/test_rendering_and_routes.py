"""Pure pieces of the notebook layer: per-kernel routes, rendering of results, the Colab seam's
link as the magic shows it."""

from __future__ import annotations

import numpy as np
import pytest
from IPython.utils.capture import capture_output

from tfserve_magic.client import RequestError
from tfserve_magic.lifecycle import launcher, registry
from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.notebook import defaults, display
from tfserve_magic.status import ServerDescription


def test_routes_are_per_server_and_model() -> None:
    defaults.clear()
    assert defaults.get_default("s", "m") == defaults.Route()
    assert defaults.set_default("s", "m", version=2).describe() == "version 2"
    defaults.set_default("s", "other", label="stable")
    assert defaults.get_default("s", "m").version == 2
    assert defaults.get_default("s", "other").describe() == "label 'stable'"
    assert defaults.get_default("t", "m").describe() == "latest"
    defaults.set_default("s", "m")  # neither: back to latest
    assert defaults.get_default("s", "m") == defaults.Route()
    with pytest.raises(RequestError, match="not both"):
        defaults.set_default("s", "m", version=1, label="x")
    defaults.clear()
    assert defaults.get_default("s", "other") == defaults.Route()


def _record(name: str = "m", **changes) -> ServerRecord:
    fields = {"name": name, "pid": 4321, "host": "127.0.0.1", "rest_api_port": 8501,
                  "url": "http://127.0.0.1:8501", "models": (name,)}
    fields.update(changes)
    return ServerRecord(**fields)


def test_start_results_render_as_one_clear_message() -> None:
    handle = launcher.ServerHandle(_record())
    assert display.render_start(launcher.Launched(handle, 2.34)) == (
        "Started server m (pid 4321) at http://127.0.0.1:8501 in 2.3 s, serving m.")
    assert display.render_start(launcher.Reused(handle)) == (
        "Reusing server m (pid 4321) at http://127.0.0.1:8501, serving m.")
    failed = display.render_start(launcher.Failed("m", "boom", "line 1\nline 2"))
    assert failed == ("Could not start server m: boom\n--- server log (last lines) ---\n"
                      "line 1\nline 2")
    timed_out = display.render_start(launcher.TimedOut("m", 30.0))
    assert timed_out == ("Server m was not ready within 30 s (raise --timeout for large "
                         "models); it was stopped.")


def test_server_table_shows_dead_detached_and_whose() -> None:
    import os

    infos = [launcher.ServerInfo(_record("a", owner_pid=os.getpid(),
                                         owner_notebook="01_quickstart.ipynb"), True, 75.0, ("a",)),
             launcher.ServerInfo(_record("b", detached=True), False, 4000.0, ("b", "c")),
             launcher.ServerInfo(_record("c", owner_pid=999, owner_notebook="02_other.ipynb"),
                                 True, 5.0, ("c",))]
    table = display.render_servers(infos).splitlines()
    assert table[0].split() == ["NAME", "PID", "PORT", "GRPC", "MODELS", "UPTIME", "STATE",
                                "OWNER"]
    assert table[1].split() == ["a", "4321", "8501", "-", "a", "1m15s", "alive", "this",
                                "notebook"]
    assert table[2].split() == ["b", "4321", "8501", "-", "b,", "c", "1h06m", "dead", "detached"]
    assert table[3].split() == ["c", "4321", "8501", "-", "c", "5s", "alive", "02_other.ipynb"]
    assert display.render_servers([]).startswith("No servers.")


def test_status_shows_labels_and_load_errors() -> None:
    description = ServerDescription.from_json({"pid": 1, "models": [{
        "name": "m", "base_path": "/b", "policy": "all {}", "labels": {"stable": 1, "canary": 2},
        "versions": [{"version": 2, "state": "END", "error": "Error reading SavedModel"},
                     {"version": 1, "state": "AVAILABLE", "error": ""}]}]})
    lines = display.render_status(description).splitlines()
    assert lines[0] == "m  (all {}; /b)"
    assert lines[2].split() == ["2", "END", "canary", "Error", "reading", "SavedModel"]
    assert lines[3].split() == ["1", "AVAILABLE", "stable"]
    assert display.render_status(description, "x") == "No model named x."


def test_predictions_are_compact() -> None:
    text = display.render_prediction(np.arange(1000, dtype=np.float32))
    assert "..." in text and text.endswith("float32[1000]") and len(text) < 200
    both = display.render_prediction({"a": np.int64([1]), "b": np.float32([[0.5]])})
    assert both.splitlines() == ["a: [1]  int64[1]", "b: [[0.5]]  float32[1, 1]"]


def test_urls_html_escapes() -> None:
    html = display.urls_html([("direct", "http://h/?a=1&b=<2>")])
    assert 'href="http://h/?a=1&amp;b=&lt;2&gt;"' in html and "<script" not in html


class _FakeColab:
    def available(self) -> bool:
        return True

    def proxy_url(self, port: int) -> str:
        return f"https://{port}-colab.example/"


def test_url_magic_shows_a_colab_link_through_the_seam(ip, half_plus_two, monkeypatch) -> None:
    from tfserve_magic.notebook import colab

    ip.run_line_magic("tfserve", f"start {half_plus_two}")
    port = registry.find_record("half_plus_two").rest_api_port
    monkeypatch.setattr(colab, "bridge", _FakeColab())
    # The test shell formats text/plain only; a notebook frontend asks for HTML too.
    monkeypatch.setattr(ip.display_formatter, "active_types", ["text/plain", "text/html"])
    with capture_output() as captured:
        ip.run_line_magic("tfserve", "url half_plus_two")
    [shown] = captured.outputs
    html = shown.data["text/html"]
    assert f'href="https://{port}-colab.example/"' in html
    assert f'href="http://127.0.0.1:{port}/"' in html

    class BrokenColab(_FakeColab):
        def proxy_url(self, port: int) -> str:
            raise RuntimeError("no frontend to answer eval_js")

    monkeypatch.setattr(colab, "bridge", BrokenColab())
    with capture_output() as captured:
        ip.run_line_magic("tfserve", "url half_plus_two")
    grpc_port = registry.find_record("half_plus_two").grpc_port
    assert captured.stdout.strip() == (f"direct: http://127.0.0.1:{port}/\n"
                                       f"gRPC: 127.0.0.1:{grpc_port}")


def test_real_colab_bridge_outside_colab(monkeypatch) -> None:
    from tfserve_magic.notebook import colab

    real = colab.GoogleColabBridge()
    assert real.available() is False  # this machine is not a Colab runtime
    monkeypatch.setitem(__import__("sys").modules, "google", None)  # no google package at all
    assert real.available() is False


@pytest.mark.parametrize(("shape", "text"), [
    ({"dim": [{"size": "-1"}, {"size": "64"}]}, "[None, 64]"),
    ({"dim": [{"size": "-1"}]}, "[None]"),
    ({}, "[]"),
    ({"unknown_rank": True}, "unknown rank"),
])
def test_shapes_read_one_way(shape: dict, text: str) -> None:
    # The dashboard shows the same text (tests/notebook/test_dashboard.py, on a real model).
    info = {"dtype": "DT_FLOAT", "tensor_shape": shape}
    assert display.shape_text(info) == text
    signatures = {"serving_default": {"inputs": {"x": info}, "outputs": {}}}
    assert f"in  x: float32 {text}" in display.render_signatures(signatures)
