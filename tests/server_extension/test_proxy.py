"""The Jupyter server extension in a real Jupyter server (pytest-jupyter), in front of a real
model server: authentication, byte-for-byte forwarding, refusals, large and gzip bodies, 502."""

from __future__ import annotations

import gzip
import json
import time

import numpy as np
import pytest
import tornado.httpclient
from server_process import RunningServer, start_server

from tfserve_magic.lifecycle import registry


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"tfserve_magic": True}},
            "TFServeProxy": {"max_body_size": 64 * 1024 * 1024}}


@pytest.fixture
def jp_base_url():
    return "/user/alice/"  # a JupyterHub-style base URL


def _serve_half_plus_two(log_dir, half_plus_two) -> RunningServer:
    server = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                          log_dir=log_dir)
    server.wait_state("half_plus_two")
    return server


def _record_as_hp2(server: RunningServer) -> None:
    registry.write_record(registry.ServerRecord(
        name="hp2", pid=server.pid, host="127.0.0.1", rest_api_port=server.port, url=server.url,
        models=("half_plus_two",), log_file=str(server.log_path), started_at=time.time(),
        secret=server.secret))


@pytest.fixture(scope="module")
def shared_model_server(tmp_path_factory, half_plus_two):
    """One model server for the tests of this file that only send it requests."""
    server = _serve_half_plus_two(tmp_path_factory.mktemp("model_server"), half_plus_two)
    yield server
    server.stop()


@pytest.fixture
def model_server(tmp_path, monkeypatch, shared_model_server):
    """The shared model server, recorded as hp2 in a registry of this test only."""
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(tmp_path / "runtime"))
    assert shared_model_server.proc.poll() is None, shared_model_server.log()
    _record_as_hp2(shared_model_server)
    return shared_model_server


@pytest.fixture
def own_model_server(tmp_path, monkeypatch, half_plus_two):
    """A model server of this test only, recorded as hp2: for tests that stop or kill it."""
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(tmp_path / "runtime"))
    server = _serve_half_plus_two(tmp_path, half_plus_two)
    _record_as_hp2(server)
    yield server
    server.stop()


async def fetch(jp_fetch, *parts, method="GET", body=None, headers=None, params=None,
                **kwargs):
    try:
        return await jp_fetch(*parts, method=method, body=body, headers=headers or {},
                              params=params or {}, allow_nonstandard_methods=True, **kwargs)
    except tornado.httpclient.HTTPClientError as error:
        return error.response


async def test_proxied_answers_equal_direct_ones_byte_for_byte(jp_fetch, model_server) -> None:
    cases = [("GET", "v1/models/half_plus_two", None),
             ("GET", "v1/models/half_plus_two/metadata", None),
             ("POST", "v1/models/half_plus_two:predict", b'{"instances": [1.0, 2.0, 5.0]}'),
             ("POST", "v1/models/half_plus_two:predict", b'{"instances": ["x"]}'),
             ("POST", "v1/models/nope:predict", b'{"instances": [1.0]}'),
             ("PUT", "v1/models/half_plus_two", b"{}")]
    for method, path, body in cases:
        direct = model_server.get("/" + path) if method == "GET" else \
            model_server.post("/" + path, body) if method == "POST" else None
        proxied = await fetch(jp_fetch, "tfserve", "hp2", *path.split("/"), method=method,
                              body=body)
        if direct is None:
            assert proxied.code == 400 and b"Malformed request: PUT" in proxied.body
            continue
        assert (proxied.code, proxied.body) == (direct.status, direct.body), path
        assert proxied.headers["Content-Type"] == "application/json"
    by_port = await fetch(jp_fetch, "tfserve", str(model_server.port), "v1", "models",
                          "half_plus_two")
    assert by_port.code == 200


async def test_servers_api_lists_and_stops(jp_fetch, own_model_server) -> None:
    listing = json.loads((await fetch(jp_fetch, "tfserve", "api", "servers")).body)
    (entry,) = listing["servers"]
    assert entry["name"] == "hp2" and entry["alive"] is True
    assert entry["proxy_url"] == "/user/alice/tfserve/hp2/"
    assert entry["status"]["models"][0]["versions"][0]["state"] == "AVAILABLE"
    assert "secret" not in entry and own_model_server.secret not in json.dumps(listing)
    log = json.loads((await fetch(jp_fetch, "tfserve", "api", "servers", "hp2", "log")).body)
    assert any("Successfully loaded servable" in line for line in log["lines"])
    stopped = await fetch(jp_fetch, "tfserve", "api", "servers", "hp2", "stop", method="POST",
                          body=b"")
    assert json.loads(stopped.body) == {"stopped": ["hp2"]}
    assert own_model_server.proc.wait(30) is not None
    assert registry.read_records() == []


async def test_requests_without_credentials_are_refused(jp_fetch, model_server) -> None:
    for parts, method, body in [
            (("tfserve", "hp2", "v1", "models", "half_plus_two"), "GET", None),
            (("tfserve", "hp2", "v1", "models", "half_plus_two:predict"), "POST", b"{}"),
            (("tfserve", "api", "servers"), "GET", None),
            (("tfserve", "api", "servers", "hp2", "stop"), "POST", b"")]:
        response = await fetch(jp_fetch, *parts, method=method, body=body,
                               headers={"Authorization": ""})
        assert response.code == 403, parts
        # The refusal says how to authenticate, in TF Serving's error shape (not "'_xsrf'
        # argument missing", which is what a script that forgot its token used to get).
        message = json.loads(response.body)["error"]
        assert "'Authorization: token <token>'" in message and "?token=<token>" in message, \
            (parts, message)
    wrong = await fetch(jp_fetch, "tfserve", "hp2", "v1", "models", "half_plus_two:predict",
                        method="POST", body=b"{}", headers={"Authorization": "token wrong"})
    assert wrong.code == 403 and "?token=<token>" in json.loads(wrong.body)["error"]
    assert model_server.proc.poll() is None  # the refused stop did nothing


async def test_a_token_in_the_url_works_for_scripts(jp_fetch, jp_serverapp, model_server) -> None:
    token = jp_serverapp.identity_provider.token
    response = await fetch(jp_fetch, "tfserve", "hp2", "v1", "models", "half_plus_two:predict",
                           method="POST", body=b'{"instances": [2.0]}',
                           headers={"Authorization": ""}, params={"token": token})
    assert (response.code, json.loads(response.body)) == (200, {"predictions": [3.0]})


async def test_only_recorded_servers_are_reachable(jp_fetch, model_server, tmp_path) -> None:
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        unrecorded = other.getsockname()[1]
        for target in (str(unrecorded), "example.org", "127.0.0.1", "hp3"):
            response = await fetch(jp_fetch, "tfserve", target, "v1", "models", "x")
            assert response.code == 404, target
            assert "No running model server named or on port" in json.loads(response.body)["error"]
    outside = await fetch(jp_fetch, "tfserve", "hp2", "other", "path")
    assert outside.code == 404


async def test_large_and_gzip_bodies(jp_fetch, model_server) -> None:
    values = np.linspace(0, 1, 1_000_000).astype(np.float32)
    body = json.dumps({"inputs": values.tolist()}).encode()
    assert len(body) > 8 * 1024 * 1024
    response = await fetch(jp_fetch, "tfserve", "hp2", "v1", "models", "half_plus_two:predict",
                           method="POST", body=body)
    assert response.code == 200
    assert np.allclose(json.loads(response.body)["outputs"][-3:], 0.5 * values[-3:] + 2)
    packed = gzip.compress(b'{"instances": [2.0]}')
    response = await fetch(jp_fetch, "tfserve", "hp2", "v1", "models", "half_plus_two:predict",
                           method="POST", body=packed,
                           headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert (response.code, json.loads(response.body)) == (200, {"predictions": [3.0]}), response.body


async def test_body_over_the_limit_is_413(jp_fetch, jp_serverapp, model_server) -> None:
    jp_serverapp.web_app.settings["tfserve_proxy_config"].max_body_size = 100
    response = await fetch(jp_fetch, "tfserve", "hp2", "v1", "models", "half_plus_two:predict",
                           method="POST", body=b'{"instances": [' + b"1.0," * 100 + b"1.0]}")
    assert response.code == 413
    assert "TFServeProxy.max_body_size" in json.loads(response.body)["error"]


async def test_upstream_stopped_mid_test_gives_502(jp_fetch, own_model_server, closed_port) -> None:
    first = await fetch(jp_fetch, "tfserve", "hp2", "v1", "models", "half_plus_two")
    assert first.code == 200
    # The model server crashes; its record stays behind and now names a live process (this
    # test process) and a port that refuses connections, as after a crash and pid reuse. (The
    # dead server's own port could be taken by another program meanwhile.)
    import os

    own_model_server.proc.kill()
    own_model_server.proc.wait(30)
    registry.write_record(registry.ServerRecord(
        name="hp2", pid=os.getpid(), host="127.0.0.1", rest_api_port=closed_port,
        url=f"http://127.0.0.1:{closed_port}", models=("half_plus_two",)))
    response = await fetch(jp_fetch, "tfserve", "hp2", "v1", "models", "half_plus_two")
    assert response.code == 502
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Model server hp2 at" in json.loads(response.body)["error"]


async def test_the_servers_page_through_the_proxy(jp_fetch, model_server) -> None:
    page = await fetch(jp_fetch, "tfserve", "hp2/")
    assert page.code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert b'"name":"half_plus_two"' in page.body
    # The page's own policy lets its script run; Jupyter's API policy would forbid any.
    policies = page.headers.get_list("Content-Security-Policy")
    assert any("script-src 'sha256-" in p for p in policies)
    assert not any("default-src 'none'" in p and "script-src" not in p for p in policies)
    slashless = await fetch(jp_fetch, "tfserve", "hp2", follow_redirects=False)
    assert slashless.code in (301, 302)
    assert slashless.headers["Location"].endswith("/user/alice/tfserve/hp2/")
    anonymous = await fetch(jp_fetch, "tfserve", "hp2/", headers={"Authorization": ""},
                            follow_redirects=False)
    assert anonymous.code == 302 and "/user/alice/login" in anonymous.headers["Location"]
    missing = await fetch(jp_fetch, "tfserve", "hp3/")
    assert missing.code == 404


class _Upstream:
    """A plain HTTP server standing where a model server would, reporting the request headers it
    received (what the proxy forwards cannot be seen from a model server's answers). Paths
    ending in ``hold`` are answered only once ``release`` is set."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.received: list[dict[str, str]] = []
        self.release = threading.Event()
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.received.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.endswith("hold"):
                    upstream.release.wait(60)
                body = b'{"ok": true}'
                self.send_response(200)
                for name, value in (("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body))), ("X-Model", "yes"),
                                    ("Proxy-Authenticate", "Basic"),
                                    ("Keep-Alive", "timeout=5")):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(tmp_path / "runtime"))
    server = _Upstream()
    registry.write_record(registry.ServerRecord(
        name="echo", pid=os.getpid(), host="127.0.0.1", rest_api_port=server.port,
        url=f"http://127.0.0.1:{server.port}", models=("m",)))
    yield server
    server.close()


async def test_hop_by_hop_headers_and_jupyter_credentials_are_not_forwarded(
        jp_fetch, upstream) -> None:
    response = await fetch(jp_fetch, "tfserve", "echo", "v1", "models", "m", headers={
        "Cookie": "_xsrf=abc; jupyter-session=secret", "X-XSRFToken": "abc",
        "Origin": "http://elsewhere.example", "Referer": "http://elsewhere.example/page",
        "Proxy-Authorization": "Basic c2VjcmV0", "Keep-Alive": "timeout=5", "TE": "trailers",
        "X-Request-Id": "r-1", "Accept": "application/json", "X-Tfserve-Magic-Secret": "guess"})
    assert response.code == 200 and json.loads(response.body) == {"ok": True}
    [received] = upstream.received
    for name in ("authorization", "cookie", "x-xsrftoken", "origin", "referer",
                 "proxy-authorization", "keep-alive", "te", "x-tfserve-magic-secret"):
        assert name not in received, (name, received)
    assert received["host"] == f"127.0.0.1:{upstream.port}"  # the model server's, not Jupyter's
    assert received["x-request-id"] == "r-1" and received["accept"] == "application/json"
    # The same on the way back: the upstream's hop-by-hop headers stay behind.
    assert response.headers["X-Model"] == "yes"
    assert "Proxy-Authenticate" not in response.headers and "Keep-Alive" not in response.headers


async def test_an_upstream_that_does_not_answer_in_time_is_a_504(jp_fetch, jp_serverapp,
                                                                 upstream) -> None:
    jp_serverapp.web_app.settings["tfserve_proxy_config"].request_timeout = 0.5
    response = await fetch(jp_fetch, "tfserve", "echo", "v1", "models", "hold")
    assert response.code == 504
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.body) == {"error": (
        f"Model server echo at http://127.0.0.1:{upstream.port} did not answer: "
        "Timeout during request")}


async def test_a_login_cookie_without_xsrf_is_refused_for_posts(jp_fetch, jp_serverapp,
                                                                model_server) -> None:
    token = jp_serverapp.identity_provider.token
    # A browser's login: the token in a page URL sets Jupyter's login cookie.
    login = await fetch(jp_fetch, "tree", params={"token": token}, headers={"Authorization": ""},
                        follow_redirects=False)
    cookies = [c.split(";", 1)[0] for c in login.headers.get_list("Set-Cookie")]
    assert any(c.startswith("username-") for c in cookies), login.headers
    cookie = "; ".join(cookies)
    path = ("tfserve", "hp2", "v1", "models", "half_plus_two:predict")
    refused = await fetch(jp_fetch, *path, method="POST", body=b'{"instances": [1.0]}',
                          headers={"Authorization": "", "Cookie": cookie})
    assert refused.code == 403
    assert json.loads(refused.body) == {"error": "'_xsrf' argument missing from POST"}
    xsrf = next(c.split("=", 1)[1] for c in cookies if c.startswith("_xsrf="))
    allowed = await fetch(jp_fetch, *path, method="POST", body=b'{"instances": [1.0]}',
                          headers={"Authorization": "", "Cookie": cookie, "X-XSRFToken": xsrf})
    assert (allowed.code, json.loads(allowed.body)) == (200, {"predictions": [2.5]})


async def test_the_log_api_returns_the_last_n_lines(jp_fetch, model_server) -> None:
    async def log(n: str):
        return await fetch(jp_fetch, "tfserve", "api", "servers", "hp2", "log", params={"n": n})

    three = json.loads((await log("3")).body)
    lines = model_server.log_path.read_text().splitlines()  # the server logs nothing meanwhile
    assert three == {"name": "hp2", "lines": lines[-3:]}
    assert json.loads((await log("0")).body)["lines"] == lines[-1:]  # at least one line
    bad = await log("many")
    assert (bad.code, json.loads(bad.body)) == (400, {"error": "n must be a whole number"})


async def test_a_connected_remote_is_proxied_only_when_connected_from_a_kernel(
        jp_fetch, model_server) -> None:
    from tfserve_magic.lifecycle.remote import connect

    connect(model_server.url, "far", from_kernel=True)  # what %tfserve connect records
    connect(model_server.url, "stranger")  # written without the user's kernel saying so
    listed = await fetch(jp_fetch, "tfserve", "api", "servers")  # what the lab panel shows
    rows = {row["name"]: row for row in json.loads(listed.body)["servers"]}
    assert rows["far"]["alive"] and rows["far"]["remote"] and rows["far"]["proxy_allowed"]
    assert rows["far"]["status"]["models"][0]["name"] == "half_plus_two"
    assert rows["far"]["proxy_url"] == "/user/alice/tfserve/far/"
    direct = model_server.get("/v1/models/half_plus_two")
    proxied = await fetch(jp_fetch, "tfserve", "far", "v1", "models", "half_plus_two")
    assert (proxied.code, proxied.body) == (direct.status, direct.body)
    refused = await fetch(jp_fetch, "tfserve", "stranger", "v1", "models", "half_plus_two")
    assert refused.code == 403
    assert json.loads(refused.body) == {"error": "Model server stranger is remote and was not "
                                                 "connected from your kernel (%tfserve connect); "
                                                 "the proxy does not forward to it"}
    stop = await fetch(jp_fetch, "tfserve", "api", "servers", "far", "stop", method="POST",
                       body=b"")
    assert stop.code == 409
    assert "far is a remote server" in json.loads(stop.body)["error"]
    assert model_server.proc.poll() is None and registry.find_record("far") is not None
