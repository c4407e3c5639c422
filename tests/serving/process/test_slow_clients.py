"""Slow and half-sent requests against a real server subprocess (issue 13 item 2): headers and
bodies have deadlines, connections that have not finished sending are shed first when the
server nears its connection or descriptor limit, good clients keep being served, the log stays
small, and chunked or gzip bodies over the limit get the same 413 JSON as plain ones."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import RunningServer, start_server, wait_for

GOOD = {"instances": [2.0, 4.0]}
PREDICT = "/v1/models/half_plus_two:predict"


def half_sent(port: int, index: int) -> socket.socket | None:
    """A connection that sent part of a request and then nothing: headers or body cut short."""
    sock = socket.socket()
    sock.settimeout(10)
    try:
        sock.connect(("127.0.0.1", port))
        if index % 2:
            sock.sendall(b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        else:
            sock.sendall(b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"instances\": [")
    except OSError:
        sock.close()
        return None  # the server had no room: refusing at connect is fair too
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset by the server


def assert_good_clients_served(server: RunningServer, count: int = 5) -> None:
    for _ in range(count):
        response = server.post(PREDICT, GOOD, timeout=20)
        assert (response.status, response.json()) == (200, {"predictions": [3.0, 4.0]})


@pytest.mark.parametrize("flags, reason", [
    ((), ""),  # the limit from the descriptor table (or accept() failing, whichever is first)
    (("--max_connections=100000",), "accept() failed"),  # a limit too high: accept() fails first
])
def test_half_sent_connections_cannot_lock_good_clients_out(
        tmp_path: Path, half_plus_two: Path, flags: tuple[str, ...], reason: str) -> None:
    server = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                          "--http_header_timeout_seconds=300", "--http_body_timeout_seconds=300",
                          *flags, log_dir=tmp_path, max_open_files=256)
    held: list[socket.socket] = []
    try:
        server.wait_state("half_plus_two")
        log_before = len(server.log())
        for index in range(400):  # more than the server has descriptors
            sock = half_sent(server.port, index)
            if sock is not None:
                held.append(sock)
        assert_good_clients_served(server)
        shed = wait_for(lambda: sum(closed_by_server(s) for s in held) >= 100, timeout=60,
                        what="the server closing half-sent connections")
        assert shed
        assert_good_clients_served(server)
        grown = server.log()[log_before:]
        assert f"to make room ({reason}" in grown, grown[-3000:]
        # One access line per good request; everything about the 400 connections is throttled.
        other = [line for line in grown.splitlines() if "tornado.access" not in line]
        assert len(grown) < 20_000 and len(other) < 30, grown[-3000:]
        assert server.proc.poll() is None
    finally:
        for sock in held:
            sock.close()
        server.stop()


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory, half_plus_two: Path
                  ) -> Iterator[RunningServer]:
    server = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                          "--max_request_bytes=2000", "--http_header_timeout_seconds=1",
                          "--http_body_timeout_seconds=2",
                          log_dir=tmp_path_factory.mktemp("strict"))
    try:
        server.wait_state("half_plus_two")
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("index", [0, 1], ids=["body cut short", "headers cut short"])
def test_half_sent_requests_time_out(strict_server: RunningServer, index: int) -> None:
    sock = half_sent(strict_server.port, index)
    assert sock is not None
    try:
        assert wait_for(lambda: closed_by_server(sock), timeout=15,
                        what="the server closing a half-sent request")
    finally:
        sock.close()
    assert_good_clients_served(strict_server, 1)


def post_raw(server: RunningServer, body: bytes, headers: dict[str, str],
             chunked: bool = False) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        if chunked:
            connection.request("POST", PREDICT, body=iter([body[i:i + 500] for i in
                                                           range(0, len(body), 500)]),
                               headers=headers, encode_chunked=True)
        else:
            connection.request("POST", PREDICT, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


LARGE = json.dumps({"instances": [1.0] * 2000}).encode()  # 10 KB: five times the limit


@pytest.mark.parametrize("how", ["plain", "chunked", "gzip", "chunked gzip"])
def test_bodies_over_the_limit_are_413_json_however_they_are_sent(
        strict_server: RunningServer, how: str) -> None:
    body = gzip.compress(LARGE) if "gzip" in how else LARGE
    headers = {"Content-Encoding": "gzip"} if "gzip" in how else {}
    status, doc = post_raw(strict_server, body, headers, chunked="chunked" in how)
    assert status == 413
    assert "larger than the limit of 2000 bytes (--max_request_bytes)" in doc["error"]
    assert_good_clients_served(strict_server, 1)


@pytest.mark.parametrize("how", ["chunked", "gzip"])
def test_bodies_under_the_limit_are_served_however_they_are_sent(
        strict_server: RunningServer, how: str) -> None:
    body = json.dumps(GOOD).encode()
    headers = {"Content-Encoding": "gzip"} if how == "gzip" else {}
    status, doc = post_raw(strict_server, gzip.compress(body) if how == "gzip" else body,
                           headers, chunked=how == "chunked")
    assert (status, doc) == (200, {"predictions": [3.0, 4.0]})


def _cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _gzip_bomb(inflated_mib: int) -> bytes:
    """A gzip body of zeros: about a thousandth of its inflated size."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    zeros = bytes(1 << 20)
    return b"".join([*(squeeze.compress(zeros) for _ in range(inflated_mib)), squeeze.flush()])


def test_a_gzip_bomb_is_refused_without_being_inflated(strict_server: RunningServer) -> None:
    bomb = _gzip_bomb(512)
    assert len(bomb) < 1 << 20  # under the connection's own limit: the handler must refuse it
    before = _cpu_seconds(strict_server.proc.pid)
    with socket.create_connection(("127.0.0.1", strict_server.port), timeout=30) as sock:
        sock.sendall(f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: gzip"
                     f"\r\nContent-Length: {len(bomb)}\r\n\r\n".encode() + bomb)
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes: the body has been read
            answer += chunk
    spent = _cpu_seconds(strict_server.proc.pid) - before
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b"larger than the limit of 2000 bytes (--max_request_bytes)" in body
    # Inflating 512 MiB costs seconds; once the 413 is out, the rest is read past, not inflated.
    assert spent < 1.0, f"the server spent {spent:.2f} s of CPU on a refused body"
    assert_good_clients_served(strict_server, 1)


def test_idle_connections_close_without_a_warning(tmp_path: Path, half_plus_two: Path) -> None:
    """A browser keeps connections open between requests (and opens spares it never uses):
    closing them at the header deadline is routine, so the log says nothing; a client that
    began a request and stalled still gets its warning."""
    server = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                          "--http_header_timeout_seconds=1", log_dir=tmp_path)
    try:
        server.wait_state("half_plus_two")
        spare = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        kept = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        kept.sendall(f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                     f"{len(json.dumps(GOOD))}\r\n\r\n{json.dumps(GOOD)}".encode())
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")
        for sock in (spare, kept):
            assert wait_for(lambda sock=sock: closed_by_server(sock), timeout=15,
                            what="the server closing an idle connection")
            sock.close()
        assert "waiting for headers" not in server.log(), server.log()
        stalled = half_sent(server.port, 1)
        assert stalled is not None
        assert wait_for(lambda: closed_by_server(stalled), timeout=15,
                        what="the server closing a stalled request")
        stalled.close()
        assert wait_for(lambda: "Closed a connection waiting for headers" in server.log(),
                        timeout=15, what="the stalled request's warning")
    finally:
        server.stop()
