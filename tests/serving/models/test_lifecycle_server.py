"""Versions coming and going on a real server: hot reload under traffic, broken versions, config
reloads, labels, warmup, time-outs, size limits, CORS and a responsive event loop."""

from __future__ import annotations

import http.client as http_client
import shutil
import threading
from pathlib import Path

import pytest
from server_process import http, start_server, wait_for


def place_version(store: Path, base: Path, version: int) -> None:
    """Copy a version in under a temporary name, then rename it: what push does."""
    staging = base / f".tmp-{version}"
    shutil.copytree(store / str(version), staging)
    staging.rename(base / str(version))


class Traffic:
    """A client that keeps predicting until stopped, recording every answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = http("POST", self.url, b'{"instances": [10.0]}', timeout=30)
            except OSError as error:  # a reset or refused connection is a failed request too
                self.failures.append(repr(error))
                continue
            if response.status == 200:
                self.answers.append(response.json()["predictions"][0])
            else:
                self.failures.append(f"{response.status} {response.body!r}")

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_new_version_takes_traffic_without_a_failed_request(tmp_path, plus_version_builds) -> None:
    base = tmp_path / "model"
    base.mkdir()
    place_version(plus_version_builds, base, 1)
    server = start_server("--model_name=m", f"--model_base_path={base}",
                          "--file_system_poll_wait_seconds=1", log_dir=tmp_path)
    try:
        server.wait_state("m", 1)
        with Traffic(server.url + "/v1/models/m:predict") as traffic:
            wait_for(lambda: len(traffic.answers) > 5, 30, what="traffic on v1")
            place_version(plus_version_builds, base, 2)
            server.wait_state("m", 2)
            wait_for(lambda: traffic.answers[-1] == 12.0, 30, what="traffic on v2")
            server.wait_state("m", 1, "END")
            # Removing v2 brings v1 back; v2 serves until v1 is AVAILABLE again.
            shutil.rmtree(base / "2")
            server.wait_state("m", 1)
            wait_for(lambda: traffic.answers[-1] == 11.0, 30, what="traffic back on v1")
        assert traffic.failures == []
        assert set(traffic.answers) == {11.0, 12.0}
        assert server.states("m") == {2: "END", 1: "AVAILABLE"}
    finally:
        server.stop()


def test_traffic_counts_refused_and_reset_connections_as_failures(closed_port) -> None:
    with Traffic(f"http://127.0.0.1:{closed_port}/v1/models/m:predict") as traffic:
        wait_for(lambda: len(traffic.failures) >= 2, 30, what="failures to be counted")
    assert traffic.answers == [] and "Connection refused" in traffic.failures[0]


def test_broken_version_never_serves_and_its_error_shows(tmp_path, plus_version_builds) -> None:
    from models import corrupt_copy

    base = tmp_path / "model"
    base.mkdir()
    place_version(plus_version_builds, base, 1)
    server = start_server("--model_name=m", f"--model_base_path={base}",
                          "--file_system_poll_wait_seconds=1", "--max_num_load_retries=0",
                          log_dir=tmp_path)
    try:
        server.wait_state("m", 1)
        corrupt_copy(str(plus_version_builds / "2"), str(tmp_path / ".broken"))
        (tmp_path / ".broken").rename(base / "2")
        server.wait_state("m", 2, "END")
        status = server.get("/v1/models/m/versions/2").json()["model_version_status"][0]
        assert status["status"]["error_code"] != "OK"
        assert "Error reading SavedModel" in status["status"]["error_message"]
        assert server.post("/v1/models/m:predict", {"instances": [10.0]}).json() == \
            {"predictions": [11.0]}
        assert server.states("m")[1] == "AVAILABLE"
        assert "Loading servable m version 2" in server.log()
    finally:
        server.stop()


def test_config_reload_adds_and_removes_models_and_moves_labels(
        tmp_path, plus_version_builds, half_plus_two) -> None:
    versioned = tmp_path / "versioned"
    versioned.mkdir()
    for v in (1, 2):
        place_version(plus_version_builds, versioned, v)
    config = tmp_path / "models.config"

    def write(models: str) -> None:
        staging = tmp_path / ".models.config.tmp"
        staging.write_text(f"model_config_list {{ {models} }}")
        staging.rename(config)

    entry = (f'config {{ name: "v" base_path: "{versioned}" model_platform: "tensorflow" '
             'model_version_policy { all {} } version_labels { key: "stable" value: LABEL } }')
    write(entry.replace("LABEL", "1"))
    server = start_server(f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1",
                          "--allow_version_labels_for_unavailable_models", log_dir=tmp_path)
    try:
        server.wait_state("v", 1)
        server.wait_state("v", 2)

        def stable() -> float:
            return server.post("/v1/models/v/labels/stable:predict",
                               {"instances": [10.0]}).json()["predictions"][0]

        assert stable() == 11.0
        write(entry.replace("LABEL", "2") +
              f' config {{ name: "h" base_path: "{half_plus_two}" model_platform: "tensorflow" }}')
        server.wait_state("h", 1)
        wait_for(lambda: stable() == 12.0, 30, what="label moved")
        write(f'config {{ name: "h" base_path: "{half_plus_two}" model_platform: "tensorflow" }}')
        server.wait_state("v", 2, "END")
        assert server.post("/v1/models/v:predict", {"instances": [1.0]}).status == 404
        # A broken config is refused and the server keeps serving what it served.
        config.write_text("model_config_list { config { name: ")
        wait_for(lambda: "Not applying the new model config" in server.log(), 30,
                 what="the log to say why")
        assert server.post("/v1/models/h:predict", {"instances": [2.0]}).json() == \
            {"predictions": [3.0]}
    finally:
        server.stop()


def test_reload_endpoint_refuses_a_label_on_an_unloaded_version(tmp_path, plus_version_builds) -> None:
    base = tmp_path / "v"
    base.mkdir()
    place_version(plus_version_builds, base, 1)
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "v" base_path: "{base}" '
                      'model_platform: "tensorflow" } }')
    server = start_server(f"--model_config_file={config}", log_dir=tmp_path)
    try:
        server.wait_state("v", 1)
        config.write_text(f'model_config_list {{ config {{ name: "v" base_path: "{base}" '
                          'model_platform: "tensorflow" version_labels { key: "stable" value: 4 } } }')
        response = server.manage("POST", "/tfserve_magic/v1/reload")
        assert (response.status, response.json()) == (400, {"error": (
            "Request to assign label to version 4 of model v, which is not currently "
            "available for inference")})
        config.write_text(f'model_config_list {{ config {{ name: "v" base_path: "{base}" '
                          'model_platform: "tensorflow" version_labels { key: "stable" value: 1 } } }')
        assert server.manage("POST", "/tfserve_magic/v1/reload").json()["models"][0]["labels"] == \
            {"stable": 1}
    finally:
        server.stop()


@pytest.mark.parametrize(("flags", "first_call"), [
    ((), 4.0),  # the three warmup requests ran before the first real one
    (("--enable_model_warmup=false",), 1.0),  # none ran
])
def test_warmup_requests_are_replayed_unless_disabled(tmp_path, flags, first_call) -> None:
    from models import build_call_counter, write_warmup

    base = tmp_path / "warm"
    build_call_counter(str(base))
    write_warmup(str(base / "1"), [1.0, 2.0, 3.0])
    server = start_server("--model_name=warm", f"--model_base_path={base}", *flags,
                          log_dir=tmp_path)
    try:
        server.wait_state("warm", 1)
        assert server.post("/v1/models/warm:predict", {"instances": [0.0]}).json() == \
            {"predictions": [first_call]}
        assert ("Number of warmup records read: 3." in server.log()) == (not flags)
    finally:
        server.stop()


def test_saved_model_tags_choose_the_meta_graph(tmp_path, half_plus_two) -> None:
    server = start_server("--model_name=h", f"--model_base_path={half_plus_two}",
                          "--saved_model_tags=serve,gpu", "--max_num_load_retries=0",
                          log_dir=tmp_path)
    try:
        server.wait_state("h", 1, "END")
        status = server.get("/v1/models/h").json()["model_version_status"][0]["status"]
        assert ("Could not find meta graph def matching supplied tags: { gpu serve }. "
                "Available tag-sets: [['serve']]") in status["error_message"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory, slow_model):
    server = start_server("--model_name=slow", f"--model_base_path={slow_model}",
                          "--rest_api_timeout_in_ms=20000", "--rest_api_enable_cors_support",
                          "--max_request_bytes=2000", log_dir=tmp_path_factory.mktemp("slow"))
    server.wait_state("slow", 1)
    yield server
    server.stop()


def _status_answers_during_a_predict(server, iterations: int) -> int:
    """Run one predict of ``iterations`` rounds; count status calls answered before it was."""
    finished = threading.Event()
    result: dict[str, object] = {}

    def long_predict() -> None:
        result["response"] = server.post("/v1/models/slow:predict",
                                         {"inputs": {"iterations": iterations}})
        finished.set()

    worker = threading.Thread(target=long_predict)
    worker.start()
    answered_before_the_predict = 0
    while not finished.is_set():
        assert server.get("/v1/models/slow").status == 200
        if not finished.is_set():
            answered_before_the_predict += 1
    worker.join(60)
    assert result["response"].status == 200
    return answered_before_the_predict


def test_status_answers_while_a_long_predict_runs(slow_server) -> None:
    # Proof by order, not by speed: status answers arrive while the predict is still
    # outstanding. A server whose event loop ran the predict itself would answer no status call
    # before the predict's own answer (at most one racing it), however slow the machine.
    iterations = 60000
    for _ in range(3):  # a machine too fast for the predict to outlast three calls: run longer
        if _status_answers_during_a_predict(slow_server, iterations) >= 3:
            return
        iterations *= 4
    raise AssertionError(f"no status call was answered while a predict of {iterations // 4} "
                         "iterations ran")


def test_timeout_gives_504(tmp_path, slow_model) -> None:
    server = start_server("--model_name=slow", f"--model_base_path={slow_model}",
                          "--rest_api_timeout_in_ms=200", log_dir=tmp_path)
    try:
        server.wait_state("slow", 1)
        response = server.post("/v1/models/slow:predict", {"inputs": {"iterations": 100000}})
        assert (response.status, response.json()) == (504, {"error": "Deadline Exceeded"})
        # The full handlers (a chunked body) keep the same deadline, one implementation.
        connection = http_client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.request("POST", "/v1/models/slow:predict", encode_chunked=True,
                           body=iter([b'{"inputs": {"iterations": 100000}}']))
        chunked = connection.getresponse()
        assert (chunked.status, chunked.read()) == (504, b'{"error":"Deadline Exceeded"}')
        assert chunked.getheader("Server") == response.headers["Server"]
        connection.close()
        assert server.get("/v1/models/slow").status == 200  # and it still answers
    finally:
        server.stop()


def test_request_size_limit(slow_server) -> None:
    big = '{"inputs": {"iterations": 1}, "pad": "' + "x" * 5000 + '"}'
    response = slow_server.post("/v1/models/slow:predict", big)
    assert response.status == 413
    assert "larger than the limit of 2000 bytes" in response.json()["error"]
    ok = slow_server.post("/v1/models/slow:predict", {"inputs": {"iterations": 1}})
    assert ok.status == 200


def test_cors_headers_and_preflight(slow_server) -> None:
    response = slow_server.get("/v1/models/slow")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "POST, GET"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
    preflight = http("OPTIONS", slow_server.url + "/v1/models/slow:predict",
                     headers={"Origin": "http://example.org"})
    assert preflight.status == 200
    missing = http("OPTIONS", slow_server.url + "/v1/models/slow:predict")
    assert (missing.status, missing.json()) == (
        400, {"error": "Origin header is missing in CORS preflight"})
