"""What a person finds in a real server's log: TensorFlow's native start-up noise dropped unless
--verbose, requests logged only when they fail or are slow (the dashboard's and the lab panel's
polling never floods it), so the last lines of the log stay useful."""

from __future__ import annotations

import itertools
import socket
from datetime import datetime
from pathlib import Path

from server_process import RunningServer, start_server

from tfserve_magic.serving.process.native_log import is_startup_noise


def _serve(half_plus_two: Path, tmp_path: Path, *flags: str) -> RunningServer:
    server = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                          "--monitoring_config_file=" + str(_monitoring(tmp_path)), *flags,
                          log_dir=tmp_path, env={"TF_CPP_MIN_LOG_LEVEL": "1"})
    server.wait_state("half_plus_two")
    return server


def _monitoring(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "monitoring.config"
    path.write_text("prometheus_config { enable: true }\n")
    return path


def _poll_as_the_dashboard_does(server: RunningServer, times: int) -> None:
    for _ in range(times):
        assert server.get("/tfserve_magic/v1/server").status == 200
        assert server.get("/v1/models/half_plus_two").status == 200
        assert server.get("/monitoring/prometheus/metrics").status == 200


def test_quiet_log_by_default(half_plus_two: Path, tmp_path: Path) -> None:
    server = _serve(half_plus_two, tmp_path / "quiet")
    try:
        _poll_as_the_dashboard_does(server, 30)
        assert server.post("/v1/models/half_plus_two:predict", {"instances": [1.0]}).status == 200
        assert server.post("/v1/models/nope:predict", {"instances": [1.0]}).status == 404
        for _ in range(5):
            assert server.get("/nope").status == 404
    finally:
        server.stop()
    lines = server.log().splitlines()
    assert not [line for line in lines if is_startup_noise(line)], lines[:8]
    assert not [line for line in lines if "200 GET" in line or "200 POST" in line]
    # A refusal once, with its reason; an unknown path once per minute, however often.
    assert sum("/v1/models/nope:predict -> 404 NOT_FOUND" in line for line in lines) == 1
    assert sum("404 GET /nope" in line for line in lines) == 1
    tail = "\n".join(lines[-8:])  # what `%tfserve logs -n 8` shows
    assert "Successfully loaded servable version {name: half_plus_two version: 1}" in \
        server.log() and "nope" in tail and "Shutting down" in tail


def test_verbose_keeps_tensorflows_messages_and_every_request(half_plus_two: Path,
                                                              tmp_path: Path) -> None:
    server = _serve(half_plus_two, tmp_path / "verbose", "--verbose")
    try:
        _poll_as_the_dashboard_does(server, 2)
    finally:
        server.stop()
    lines = server.log().splitlines()
    # This machine has no GPU: TensorFlow says so at start-up (what the quiet log drops).
    assert [line for line in lines if is_startup_noise(line)], lines[:8]
    assert sum("200 GET /tfserve_magic/v1/server" in line for line in lines) >= 2


def _refused_body(server: RunningServer, declared: int) -> bytes:
    """A request announcing a body over the limit: answered 413 at once, the body never sent."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(f"POST /tfserve_magic/nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Content-Length: {declared}\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_refusals_differing_only_in_the_clients_numbers_share_one_log_line(
        shared_server: RunningServer) -> None:
    """The README: each kind of refusal is logged once per interval (10 s); the kind leaves out
    the client's own numbers, so a client that varies them cannot make every line new. Checked
    by the server's own log times: lines of this kind are at least the interval apart."""
    declared = [10**12 + 7919 * i for i in range(12)]
    for length in declared:
        answer = _refused_body(shared_server, length)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert f"Request body of {length} bytes is larger than the limit".encode() in answer
    lines = [line for line in shared_server.log().splitlines()
             if "Refused a request from 127.0.0.1: Request body of 1000000" in line]
    assert lines, "no refusal logged"
    times = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp() for line in lines]
    assert all(later - earlier >= 9.999 for earlier, later in itertools.pairwise(times)), lines
