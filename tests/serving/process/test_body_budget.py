"""The server's budget for request bodies held at once (issue 25 item 2), on a real server with
a small budget: concurrent large bodies past it get 503 before they are read, small requests
are served meanwhile, and the memory of bodies whose clients left goes back to the operating
system at once, not at some later garbage collection (RSS before, at the peak, and after)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import RunningServer, start_server, wait_for
from test_http_connections import Conn

PREDICT = "/v1/models/half_plus_two:predict"
DECLARED = 15_000_000  # each large body's Content-Length
SENT = 12_000_000  # how much of it each client sends before it stops (and later leaves)
BUDGET = 40_000_000  # two such bodies fit, a third does not


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, half_plus_two: Path
           ) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("body_budget")
    running = start_server(f"--model_base_path={half_plus_two}", "--model_name=half_plus_two",
                           "--max_request_bytes=16000000",
                           f"--max_buffered_request_bytes={BUDGET}",
                           "--file_system_poll_wait_seconds=0", log_dir=root)
    try:
        running.wait_state("half_plus_two")
        yield running
    finally:
        running.stop()


def start_large_body(server: RunningServer) -> tuple[Conn, int]:
    """A client that declares a large body and asks to continue: (connection, the status of
    the server's first answer: 100 when admitted, else the refusal's)."""
    conn = Conn(server)
    conn.send(f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {DECLARED}\r\n"
              "Expect: 100-continue\r\n\r\n".encode())
    return conn, conn.read_head().status


def test_bodies_past_the_budget_get_503_while_small_requests_are_served(
        server: RunningServer) -> None:
    before = rss_mb(server.pid)
    admitted: list[Conn] = []
    refused: list[int] = []
    try:
        for _ in range(5):
            conn, status = start_large_body(server)
            if status == 100:
                conn.send(b"1" * SENT)  # held by the server until the client leaves
                admitted.append(conn)
            else:
                refused.append(status)
                conn.sock.close()
        assert len(admitted) == 2 and refused == [503, 503, 503]
        # Small requests are always admitted, whatever the large bodies hold.
        for _ in range(5):
            answer = server.post(PREDICT, {"instances": [1.0]}, timeout=30)
            assert (answer.status, answer.json()) == (200, {"predictions": [2.5]})
        wait_for(lambda: rss_mb(server.pid) - before > 20, timeout=60,
                 what="the admitted bodies to arrive")
        peak = rss_mb(server.pid)
    finally:
        for conn in admitted:
            conn.sock.close()
    # Given back without a garbage collection: nothing else runs on the server meanwhile.
    after = wait_for(lambda: (lambda now: now if now - before < 10 else None)(
        rss_mb(server.pid)), timeout=30, what="the abandoned bodies' memory to be returned")
    print(f"RSS before {before:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB")


def test_the_refusal_is_tf_serving_shaped(server: RunningServer) -> None:
    holders = []
    try:
        for _ in range(2):
            conn, status = start_large_body(server)
            assert status == 100
            holders.append(conn)
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Content-Length: {DECLARED}\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 Service Unavailable")
        assert b"Connection: close" in head
        message = json.loads(body)["error"]
        assert (f"{DECLARED} more would pass its limit of {BUDGET} bytes "
                "(--max_buffered_request_bytes). Retry later") in message
    finally:
        for conn in holders:
            conn.sock.close()
