"""What the lab panel is given to render (``server_extension.panel``): the panel's TypeScript has
no rules of its own, so the states, labels by version and curl commands are checked here."""

from __future__ import annotations

from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.server_extension.examples import curl_predict
from tfserve_magic.server_extension.panel import server_view, shown_curl
from tfserve_magic.status import ServerDescription

RECORD = ServerRecord(name="s", pid=12, host="127.0.0.1", rest_api_port=8501,
                      url="http://127.0.0.1:8501", models=("m",))
WIRE = {"pid": 12, "version": "0.1", "started_at": 1.5, "model_config_file": "/c/models.config",
        "prometheus_path": None,
        "models": [{"name": "m", "base_path": "/m", "policy": "all {}",
                    "labels": {"stable": 1, "canary": 2, "blue": 1},
                    "versions": [{"version": 3, "state": "END", "error": "bad saved_model.pb"},
                                 {"version": 2, "state": "AVAILABLE", "error": ""},
                                 {"version": 1, "state": "END", "error": ""}]}]}
STATUS = ServerDescription.from_json(WIRE)
METADATA = {"metadata": {"signature_def": {"signature_def": {"serving_default": {
    "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"},
                                                                    {"size": "2"}]}}}}}}}}


def test_versions_arrive_ready_to_render() -> None:
    view = server_view(RECORD, STATUS, "/jp/tfserve/s/", {}, token="")
    assert view["alive"] is True and view["proxy_url"] == "/jp/tfserve/s/"
    assert view["name"] == "s" and view["pid"] == 12 and view["rest_api_port"] == 8501
    (model,) = view["model_views"]
    assert model["versions"] == [
        {"version": 3, "state": "END", "labels": "", "error": "bad saved_model.pb"},
        {"version": 2, "state": "AVAILABLE", "labels": "canary", "error": ""},
        {"version": 1, "state": "END", "labels": "blue, stable", "error": ""}]
    assert model["curl"] is None  # no metadata: no example
    assert view["status"] == WIRE  # the description goes on as the server gave it


def test_a_server_that_does_not_answer_has_no_models() -> None:
    view = server_view(RECORD, None, "/tfserve/s/", {}, token="t")
    assert view["alive"] is False and view["model_views"] == []


def test_the_token_goes_to_the_clipboard_not_the_screen() -> None:
    token = "5ecret0ken"
    command = curl_predict("http://h/tfserve/s/", "m", METADATA, token)
    view = server_view(RECORD, STATUS, "/tfserve/s/", {"m": command}, token=token)
    curl = view["model_views"][0]["curl"]
    assert curl["command"] == command and token in command
    assert token not in curl["shown"]
    assert curl["shown"] == ("curl -H \"Authorization: token $JUPYTER_TOKEN\" -H 'Content-Type: "
                             "application/json' -d '{\"instances\": [[0.0, 0.0]]}' "
                             "http://h/tfserve/s/v1/models/m:predict")
    assert shown_curl("curl http://h/", "") == "curl http://h/"
