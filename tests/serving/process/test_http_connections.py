"""What a client sees of the REST port's HTTP/1.1 connections, pinned on raw sockets so that
any connection layer (Tornado's ``HTTP1Connection`` today) must keep it: pipelining, HTTP/1.0
and ``Connection: close``, ``Expect: 100-continue``, malformed requests and oversized headers,
``Content-Length`` and ``Date`` on answers, bodies split across writes, clients that leave
before their answer, and long keep-alive connections.

Slow and oversized bodies are ``test_slow_clients.py``'s; the two request paths and
keep-alive through ``http.client`` are ``tests/serving/api/test_small_requests.py``'s. All
tests here share the session's ``shared_server``."""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from server_process import RunningServer, wait_for

PREDICT = "/v1/models/half_plus_two:predict"
STATUS = "/v1/models/half_plus_two"
VERSIONED = "/v1/models/versioned/versions/2:predict"  # y = x + 2
STATUS_BODY = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                         "status": {"error_code": "OK", "error_message": ""}}]}
HEADER_LIMIT = 64 * 1024  # Tornado's max_header_size; _serve_rest keeps the default
READ_SECONDS = 10.0


@dataclass
class Answer:
    version: str
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    raw_headers: list[tuple[str, str]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


class Conn:
    """A raw client connection that parses answers itself (http.client hides interim answers,
    pipelining and the server closing)."""

    def __init__(self, server: RunningServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=READ_SECONDS)
        self.buffer = b""

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def fill(self) -> bool:
        """Read more bytes; False at EOF (or reset)."""
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        self.buffer += chunk
        return bool(chunk)

    def read_head(self) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            if not self.fill():
                raise EOFError(f"closed before a complete answer head: {self.buffer!r}")
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        match = re.fullmatch(r"(HTTP/1\.[01]) (\d{3})( .*)?", status_line)
        assert match, status_line
        pairs = [(name.strip(), value.strip()) for name, _, value in
                 (line.partition(":") for line in lines)]
        return Answer(match[1], int(match[2]), {k.lower(): v for k, v in pairs},
                      raw_headers=pairs)

    def read_answer(self, head_only: bool = False) -> Answer:
        answer = self.read_head()
        if head_only:
            return answer
        length = int(answer.headers["content-length"])  # every answer here declares one
        while len(self.buffer) < length:
            if not self.fill():
                raise EOFError(f"closed inside a body of {length}: {self.buffer!r}")
        answer.body, self.buffer = self.buffer[:length], self.buffer[length:]
        return answer

    def read_to_close(self) -> None:
        """Read until the server closes (a timeout fails the test)."""
        while self.fill():
            pass

    def closed_by_server(self) -> bool:
        """True when the server closes (EOF or reset) with nothing more sent, within the
        read timeout; False when the connection is still open at the timeout."""
        try:
            more = self.fill()
        except TimeoutError:
            return False
        assert self.buffer == b"", self.buffer
        return not more


def request(method: str, path: str, body: bytes | None = None, version: str = "HTTP/1.1",
            headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def predict_body(values: list[float]) -> bytes:
    return json.dumps({"instances": values}).encode()


def assert_predicted(answer: Answer, values: list[float], plus: float | None = None) -> None:
    """200 with half_plus_two's predictions (or versioned's x + plus, when plus is given)."""
    expected = [0.5 * x + 2 if plus is None else x + plus for x in values]
    assert (answer.status, answer.json()) == (200, {"predictions": expected})


def assert_status_answer(answer: Answer) -> None:
    assert (answer.status, answer.json()) == (200, STATUS_BODY)


def assert_still_serving(server: RunningServer) -> None:
    with Conn(server) as conn:
        conn.send(request("POST", PREDICT, predict_body([2.0, 4.0])))
        assert_predicted(conn.read_answer(), [2.0, 4.0])


# ------------------------------------------------------------------------- 1. pipelining

def test_pipelined_requests_are_answered_in_order(shared_server: RunningServer) -> None:
    with Conn(shared_server) as conn:
        conn.send(request("POST", PREDICT, predict_body([1.0, 3.0]))
                  + request("GET", STATUS)
                  + request("POST", VERSIONED, predict_body([5.0]))
                  + request("POST", PREDICT, predict_body([8.0])))
        assert_predicted(conn.read_answer(), [1.0, 3.0])
        assert_status_answer(conn.read_answer())
        assert_predicted(conn.read_answer(), [5.0], plus=2.0)
        assert_predicted(conn.read_answer(), [8.0])
        assert conn.buffer == b""  # nothing more than the four answers
        conn.send(request("GET", STATUS))  # and the connection is still open
        assert_status_answer(conn.read_answer())


# ------------------------------------------------------- 2, 3. HTTP/1.0 and Connection: close

@pytest.mark.parametrize("method, path, body", [
    ("POST", PREDICT, predict_body([2.0])), ("GET", STATUS, None)])
def test_http_1_0_without_keep_alive_is_answered_then_closed(
        shared_server: RunningServer, method: str, path: str, body: bytes | None) -> None:
    with Conn(shared_server) as conn:
        conn.send(request(method, path, body, version="HTTP/1.0"))
        answer = conn.read_answer()
        assert answer.status == 200
        assert answer.json() == ({"predictions": [3.0]} if body else STATUS_BODY)
        assert answer.headers.get("connection", "close").lower() == "close"
        assert conn.closed_by_server()


@pytest.mark.parametrize("method, path, body", [
    ("POST", PREDICT, predict_body([2.0])), ("GET", STATUS, None)])
def test_http_1_0_keep_alive_connection_serves_a_second_request(
        shared_server: RunningServer, method: str, path: str, body: bytes | None) -> None:
    keep = {"Connection": "keep-alive"}
    with Conn(shared_server) as conn:
        for values in ([2.0], [6.0]):
            conn.send(request(method, path, predict_body(values) if body else None,
                              version="HTTP/1.0", headers=keep))
            answer = conn.read_answer()
            assert answer.headers["connection"].lower() == "keep-alive"
            if body:
                assert_predicted(answer, values)
            else:
                assert_status_answer(answer)


@pytest.mark.parametrize("method, path, body", [
    ("POST", PREDICT, predict_body([2.0])), ("GET", STATUS, None)])
def test_connection_close_is_answered_then_closed(
        shared_server: RunningServer, method: str, path: str, body: bytes | None) -> None:
    with Conn(shared_server) as conn:
        conn.send(request(method, path, body, headers={"Connection": "close"}))
        answer = conn.read_answer()
        assert answer.status == 200
        assert answer.json() == ({"predictions": [3.0]} if body else STATUS_BODY)
        assert answer.headers["connection"].lower() == "close"
        assert conn.closed_by_server()


def test_http_1_1_connection_stays_open_by_default(shared_server: RunningServer) -> None:
    """The counterpart of the closing tests: without ``Connection: close`` it stays open. A
    server closes right after the answer that says so; here none says so, and each request
    sent after an answer is answered on the same connection (no clock involved)."""
    with Conn(shared_server) as conn:
        for _ in range(3):
            conn.send(request("GET", STATUS))
            answer = conn.read_answer()
            assert_status_answer(answer)
            assert answer.headers.get("connection", "").lower() != "close"
        assert conn.buffer == b""


# ---------------------------------------------------------------- 4. Expect: 100-continue

@pytest.mark.parametrize("values", [[1.0, 2.0], [1.0] * 20_000], ids=["small", "large"])
def test_expect_100_continue_gets_the_interim_answer_before_the_body(
        shared_server: RunningServer, values: list[float]) -> None:
    body = predict_body(values)
    with Conn(shared_server) as conn:
        conn.send(request("POST", PREDICT, body, headers={"Expect": "100-continue"})
                  [:-len(body)])
        interim = conn.read_head()
        assert (interim.version, interim.status) == ("HTTP/1.1", 100)
        assert conn.buffer == b""  # the interim answer alone: no final answer yet
        conn.send(body)
        assert_predicted(conn.read_answer(), values)


# ------------------------------------------------------------- 5. malformed requests

@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET /v1/models/half_plus_two\r\nHost: 127.0.0.1\r\n\r\n",  # no HTTP version
    b"GET /v1/models/half_plus_two HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /v1/models/half_plus_two HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColonHere\r\n\r\n",
    (b"POST /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
     b"Content-Length: abc\r\n\r\n"),
    bytes(range(256)) + b"\r\n\r\n",
], ids=["garbage", "no version", "http/2.0 line", "header without colon", "bad length",
        "binary"])
def test_malformed_requests_get_400_and_a_close(shared_server: RunningServer,
                                                data: bytes) -> None:
    with Conn(shared_server) as conn:
        conn.send(data)
        answer = conn.read_answer()
        assert answer.status == 400
        assert set(answer.json()) == {"error"}
        assert answer.json()["error"].startswith("Malformed HTTP request: "), answer.json()
        assert conn.closed_by_server()
    assert_still_serving(shared_server)


def test_malformed_request_after_a_good_one_keeps_the_good_answer(
        shared_server: RunningServer) -> None:
    with Conn(shared_server) as conn:
        conn.send(request("POST", PREDICT, predict_body([4.0])) + b"GARBAGE\r\n\r\n")
        assert_predicted(conn.read_answer(), [4.0])
        answer = conn.read_answer()
        assert answer.status == 400
        assert answer.json() == {"error": "Malformed HTTP request: Invalid method encountered"}
        assert conn.closed_by_server()


# ----------------------------------------------------------------- 6. header size limit

def test_headers_over_the_limit_get_431_and_a_close(shared_server: RunningServer) -> None:
    with Conn(shared_server) as conn:
        conn.send(request("GET", STATUS, headers={"X-Big": "a" * (HEADER_LIMIT + 1000)}))
        answer = conn.read_answer()
        assert answer.status == 431
        assert answer.json() == {
            "error": f"Request headers are larger than the limit of {HEADER_LIMIT} bytes"}
        assert conn.closed_by_server()
    assert_still_serving(shared_server)
    assert wait_for(lambda: "Refused a request from 127.0.0.1: Request headers are larger "
                            f"than the limit of {HEADER_LIMIT} bytes" in shared_server.log(),
                    timeout=10, what="the refusal in the server log")


def test_headers_under_the_limit_are_served(shared_server: RunningServer) -> None:
    with Conn(shared_server) as conn:
        conn.send(request("GET", STATUS, headers={"X-Big": "a" * (HEADER_LIMIT - 2000)}))
        assert_status_answer(conn.read_answer())
        conn.send(request("POST", PREDICT, predict_body([1.0]),
                          headers={f"X-Many-{i}": "b" * 100 for i in range(300)}))
        assert_predicted(conn.read_answer(), [1.0])


# ------------------------------------------------------ 7. framing headers, HEAD, methods

@pytest.mark.parametrize("values", [[1.0], [1.0] * 20_000], ids=["small", "large"])
def test_answers_carry_content_length_and_date(shared_server: RunningServer,
                                               values: list[float]) -> None:
    with Conn(shared_server) as conn:
        conn.send(request("POST", PREDICT, predict_body(values)) + request("GET", STATUS))
        for answer in (conn.read_answer(), conn.read_answer()):
            assert answer.status == 200
            assert answer.headers["content-type"] == "application/json"
            names = [name.lower() for name, _ in answer.raw_headers]
            assert names.count("content-length") == 1 and names.count("date") == 1
            assert int(answer.headers["content-length"]) == len(answer.body)
            parsed = time.mktime(time.strptime(answer.headers["date"],
                                               "%a, %d %b %Y %H:%M:%S GMT"))
            assert abs(parsed - time.mktime(time.gmtime())) < 60
            assert "transfer-encoding" not in answer.headers
        assert conn.buffer == b""


def test_head_gets_the_error_status_and_headers_without_a_body(
        shared_server: RunningServer) -> None:
    message = {"error": f"Malformed request: HEAD {STATUS}"}
    with Conn(shared_server) as conn:
        conn.send(request("HEAD", STATUS) + request("GET", STATUS))
        head = conn.read_answer(head_only=True)
        assert head.status == 400
        assert head.headers["content-type"] == "application/json"
        assert int(head.headers["content-length"]) == len(json.dumps(message,
                                                                     separators=(",", ":")))
        # No body follows: the next bytes are the pipelined GET's answer.
        assert_status_answer(conn.read_answer())
        assert conn.buffer == b""


@pytest.mark.parametrize("method, status, message", [
    ("PUT", 400, f"Malformed request: PUT {STATUS}"),
    ("DELETE", 400, f"Malformed request: DELETE {STATUS}"),
    ("FOO", 400, "Malformed HTTP request: Invalid method encountered"),
])
def test_unsupported_methods_get_tf_serving_json_errors(
        shared_server: RunningServer, method: str, status: int, message: str | None) -> None:
    with Conn(shared_server) as conn:
        conn.send(request(method, STATUS, b""))
        answer = conn.read_answer()
        assert answer.status == status
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) == {"error"}
        if message is not None:
            assert answer.json() == {"error": message}
    assert_still_serving(shared_server)


# ------------------------------------------------------------ 8. bodies split across writes

@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0], [0.5] * 20_000],
                         ids=["small path", "full handler"])
def test_body_split_across_writes_is_answered(shared_server: RunningServer,
                                              values: list[float]) -> None:
    body = predict_body(values)
    assert (len(body) < 64 * 1024) == (len(values) == 3)
    third = len(body) // 3
    with Conn(shared_server) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.send(request("POST", PREDICT, body)[:-len(body)])
        for piece in (body[:third], body[third:2 * third], body[2 * third:]):
            conn.send(piece)
        assert_predicted(conn.read_answer(), values)
        # The connection is in step for the next request.
        conn.send(request("POST", PREDICT, predict_body([2.0])))
        assert_predicted(conn.read_answer(), [2.0])


def test_headers_split_mid_line_are_answered(shared_server: RunningServer) -> None:
    data = request("POST", PREDICT, predict_body([2.0]))
    with Conn(shared_server) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for cut in range(0, len(data), 7):
            conn.send(data[cut:cut + 7])
        assert_predicted(conn.read_answer(), [2.0])


# ---------------------------------------------------- 9. clients that leave before the answer

def _request_count(server: RunningServer, model: str) -> float:
    text = server.get("/monitoring/prometheus/metrics").body.decode()
    pattern = (r'^:tensorflow:serving:request_count\{model_name="' + re.escape(model)
               + r'",status="OK"\} (\S+)$')
    return sum(float(m) for m in re.findall(pattern, text, flags=re.M))


def test_clients_that_leave_before_their_answer_do_not_hurt_the_server(
        shared_server: RunningServer) -> None:
    # Its own model, so that the metrics count only these requests.
    path = "/v1/models/half_plus_two_padded:predict"
    before_log = len(shared_server.log())
    before = _request_count(shared_server, "half_plus_two_padded")
    small, large = predict_body([1.0]), predict_body([1.0] * 20_000)
    half_closed = []
    for body in (small, large):
        gone = socket.create_connection(("127.0.0.1", shared_server.port), timeout=READ_SECONDS)
        gone.sendall(request("POST", path, body))
        gone.close()  # left at once
        conn = Conn(shared_server)
        conn.send(request("POST", path, body))
        conn.sock.shutdown(socket.SHUT_WR)  # done sending, still reading
        half_closed.append(conn)
    wait_for(lambda: _request_count(shared_server, "half_plus_two_padded") >= before + 4,
             timeout=30, what="the four deserted requests being served")
    assert_still_serving(shared_server)
    for conn, values in zip(half_closed, ([1.0], [1.0] * 20_000), strict=True):
        with conn:
            # A half-close means "done sending": the answer still comes, whole, then a close.
            conn.read_to_close()
            assert_predicted(conn.read_answer(), values)
            assert conn.buffer == b""
    grown = shared_server.log()[before_log:]
    assert "Traceback" not in grown and " E " not in grown, grown[-3000:]


def test_a_client_that_shuts_its_side_mid_body_is_closed_at_once(
        shared_server: RunningServer) -> None:
    # The body can never arrive: the server closes now, not after the 120 s body timeout.
    for body_sent in (b"", b'{"instances": '):
        with Conn(shared_server) as conn:
            conn.send(f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100"
                      "\r\n\r\n".encode() + body_sent)
            conn.sock.shutdown(socket.SHUT_WR)
            assert conn.closed_by_server()
    assert_still_serving(shared_server)


# ------------------------------------------------------------- 10. long keep-alive connections

def test_many_requests_on_one_keep_alive_connection(shared_server: RunningServer) -> None:
    with Conn(shared_server) as conn:
        for index in range(200):
            if index % 2:
                conn.send(request("GET", STATUS))
                assert_status_answer(conn.read_answer())
            else:
                values = [float(index), float(-index)]
                conn.send(request("POST", PREDICT, predict_body(values)))
                assert_predicted(conn.read_answer(), values)
            assert conn.buffer == b""
