"""Cross-site requests against a real server subprocess (issue 13 item 6): a loopback server
answers only localhost Host names on every endpoint (DNS rebinding), ``--allowed_hosts`` widens
that, the management API refuses foreign origins and callers without the server's secret and
shows them nothing, and TF Serving's /v1 API keeps its behaviour (CORS only behind its flag)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import RunningServer, http, start_server

from tfserve_magic.serving.api.origins import AccessPolicy
from tfserve_magic.status import SECRET_HEADER

PREDICT = "/v1/models/half_plus_two:predict"
BODY = b'{"instances": [2.0]}'
ENDPOINTS = [  # (method, path, body): every route of the server
    ("GET", "/v1/models/half_plus_two", None),
    ("GET", "/v1/models/half_plus_two/metadata", None),
    ("POST", PREDICT, BODY),
    ("POST", "/v1/models/half_plus_two:regress",
     b'{"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}]}'),
    ("OPTIONS", PREDICT, None),
    ("GET", "/monitoring/prometheus/metrics", None),
    ("GET", "/", None),
    ("GET", "/tfserve_magic/v1/server", None),
    ("POST", "/tfserve_magic/v1/reload", b""),
]
MANAGEMENT = [e for e in ENDPOINTS if e[1].startswith("/tfserve_magic/")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, half_plus_two: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("cross_site")
    monitoring = root / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }\n")
    running = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                           f"--monitoring_config_file={monitoring}",
                           "--allowed_hosts=models.internal", log_dir=root)
    try:
        running.wait_state("half_plus_two")
        yield running
    finally:
        running.stop()


def send(server: RunningServer, method: str, path: str, body: bytes | None,
         **headers: str) -> tuple[int, dict]:
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    if method == "OPTIONS":
        headers.setdefault("Origin", "http://localhost:3000")
    response = http(method, server.url + path, body, headers=headers)
    if response.headers.get("Content-Type") != "application/json" or not response.body:
        return response.status, {}  # the metrics text, the preflight's empty body
    return response.status, response.json()


@pytest.mark.parametrize("method, path, body", ENDPOINTS)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "[::2]"])
def test_a_foreign_host_is_refused_on_every_endpoint(server, method, path, body, host) -> None:
    status, doc = send(server, method, path, body, Host=host, **{SECRET_HEADER: server.secret})
    assert status == 403
    assert doc == {"error": f"Host '{host}' is not allowed: this server answers requests for "
                            "localhost names only, so that web pages cannot reach it through "
                            "DNS rebinding (start it with --allowed_hosts=NAME to accept "
                            "requests for NAME)"}


@pytest.mark.parametrize("method, path, body", ENDPOINTS)
@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8501", "127.0.0.1", "127.1.2.3:99",
                                  "[::1]:8501", "models.internal:8501"])
def test_loopback_names_and_allowed_hosts_are_served(server, method, path, body, host) -> None:
    status, _ = send(server, method, path, body, Host=host, **{SECRET_HEADER: server.secret})
    assert status == 200


@pytest.mark.parametrize("method, path, body", MANAGEMENT)
@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:1"])
def test_management_refuses_foreign_origins_even_with_the_secret(server, method, path, body,
                                                                 origin) -> None:
    status, doc = send(server, method, path, body, Origin=origin,
                       **{SECRET_HEADER: server.secret})
    assert (status, doc) == (403, {"error": f"Cross-origin request from '{origin}' refused: the "
                                            "tfserve_magic management API only answers its own "
                                            "origin"})


@pytest.mark.parametrize("secret", [None, "", "wrong", "x" * 5000])
def test_reload_needs_the_secret(server, secret) -> None:
    headers = {} if secret is None else {SECRET_HEADER: secret}
    status, doc = send(server, "POST", "/tfserve_magic/v1/reload", b"", **headers)
    assert (status, doc) == (403, {"error": "The tfserve_magic management API needs the "
                                            f"server's secret in the {SECRET_HEADER} header "
                                            "(kept in the server's registry record)"})


@pytest.mark.parametrize("secret", [None, "wrong"])
def test_without_the_secret_the_description_has_no_pid_and_no_folders(server, secret) -> None:
    headers = {} if secret is None else {SECRET_HEADER: secret}
    status, doc = send(server, "GET", "/tfserve_magic/v1/server", None, **headers)
    assert status == 200
    assert doc["models"][0]["name"] == "half_plus_two"
    assert doc["models"][0]["versions"][0]["state"] == "AVAILABLE"
    assert "pid" not in doc and str(server.pid) not in str(doc)
    assert "base_path" not in doc["models"][0] and "model_config_file" not in doc
    full = server.manage("GET", "/tfserve_magic/v1/server").json()
    assert full["pid"] == server.pid and full["models"][0]["base_path"].startswith("/")


def test_management_answers_its_own_origin_with_the_secret(server) -> None:
    status, doc = send(server, "GET", "/tfserve_magic/v1/server", None,
                       Origin=server.url, **{SECRET_HEADER: server.secret})
    assert status == 200 and doc["pid"] == server.pid


def test_v1_keeps_tf_servings_behaviour_for_other_origins(server) -> None:
    # A browser's cross-origin "simple" POST reaches TF Serving's handler as it does upstream,
    # but without --rest_api_enable_cors_support no CORS header lets the page read the answer.
    response = http("POST", server.url + PREDICT, BODY,
                    headers={"Origin": "http://evil.example", "Content-Type": "text/plain"})
    assert (response.status, response.json()) == (200, {"predictions": [3.0]})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_server_started_without_a_secret_keeps_management_shut(tmp_path, half_plus_two) -> None:
    running = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                           log_dir=tmp_path, env={"TFSERVE_MAGIC_SECRET": ""})
    try:
        response = running.manage("POST", "/tfserve_magic/v1/reload")
        assert response.status == 403
        assert "this server was started without one" in response.json()["error"]
    finally:
        running.stop()


@pytest.mark.parametrize("bind, allowed, host, refused", [
    ("127.0.0.1", "", "evil.example", True),
    ("localhost", "", "evil.example", True),
    ("::1", "", "[::1]:1", False),
    ("0.0.0.0", "", "evil.example", False),        # bound for remote access: any Host
    ("0.0.0.0", "models.internal", "evil.example", True),
    ("127.0.0.1", "*", "evil.example", False),
])
def test_the_host_rule(bind: str, allowed: str, host: str, refused: bool) -> None:
    assert (AccessPolicy(bind, allowed).host_refusal(host) is not None) is refused
