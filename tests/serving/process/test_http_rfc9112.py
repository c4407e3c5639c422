"""RFC 9112 on raw sockets, each point on both request paths (issue 25 items 6 and 7): a
``Content-Length`` body goes to the small-request path, a chunked one to the full handlers,
and both must answer alike. Field values lose surrounding whitespace; ``Connection`` is a list
of tokens; HTTP/1.0 with ``Transfer-Encoding`` closes after its answer; an absolute-form target
is served as its path with its authority as the Host; a transfer coding other than
``chunked`` is a 501; an answer that says ``Connection: close`` closes, a pipelined request
behind it unanswered; and one Host policy: an HTTP/1.1 request without Host (or with two) is a
400, an empty Host is served, a foreign one refused. uvicorn (httptools or h11) does each."""

from __future__ import annotations

import json
import zlib

import pytest
from server_process import RunningServer
from test_http_connections import Conn

PREDICT = "/v1/models/half_plus_two:predict"
BODY = b'{"instances": [1.0, 2.0]}'
ANSWER = {"predictions": [2.5, 3.0]}
PATHS = ["small", "full"]  # Content-Length body: the small path; chunked: the full handlers


def predict(path: str, fields: list[str], version: str = "HTTP/1.1",
            target: str = PREDICT, body: bytes = BODY) -> bytes:
    """A predict with exactly ``fields`` (no Host unless listed), framed for ``path``."""
    if path == "small":
        framing = [f"Content-Length: {len(body)}"]
        payload = body
    else:
        framing = ["Transfer-Encoding: chunked"]
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    head = "\r\n".join([f"POST {target} {version}", *fields, *framing]) + "\r\n\r\n"
    return head.encode("latin1") + payload


def exchange(server: RunningServer, data: bytes) -> tuple[int, dict[str, str], bytes, Conn]:
    conn = Conn(server)
    conn.send(data)
    answer = conn.read_answer()
    return answer.status, answer.headers, answer.body, conn


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fields", [["Host: 127.0.0.1", "User-Agent: curl/8 "],
                                    ["Host: localhost "], ["Host:\t127.0.0.1\t"]],
                         ids=["user-agent", "host", "tabs"])
def test_whitespace_around_a_field_value_is_not_part_of_it(
        shared_server: RunningServer, path: str, fields: list[str]) -> None:
    status, _, body, conn = exchange(shared_server, predict(path, fields))
    conn.sock.close()
    assert (status, json.loads(body)) == (200, ANSWER)


@pytest.mark.parametrize("path", PATHS)
def test_connection_is_a_list_of_tokens(shared_server: RunningServer, path: str) -> None:
    first = predict(path, ["Host: 127.0.0.1", "Connection: keep-alive, close"])
    with Conn(shared_server) as conn:
        conn.send(first + predict(path, ["Host: 127.0.0.1"]))
        answer = conn.read_answer()
        assert (answer.status, answer.json()) == (200, ANSWER)
        assert answer.headers.get("connection") == "close"
        assert conn.closed_by_server()  # the second request is not answered, not even a 400


def test_http_1_0_with_transfer_encoding_is_answered_then_closed(
        shared_server: RunningServer) -> None:
    data = predict("full", ["Host: 127.0.0.1", "Connection: keep-alive"], version="HTTP/1.0")
    with Conn(shared_server) as conn:
        conn.send(data + predict("small", ["Host: 127.0.0.1"], version="HTTP/1.0"))
        answer = conn.read_answer()
        assert (answer.status, answer.json()) == (200, ANSWER)
        assert answer.headers.get("connection", "").lower() != "keep-alive"
        assert conn.closed_by_server()


@pytest.mark.parametrize("path", PATHS)
def test_an_absolute_form_target_is_served_as_its_path(shared_server: RunningServer,
                                                       path: str) -> None:
    target = f"http://127.0.0.1:{shared_server.port}{PREDICT}"
    status, headers, body, conn = exchange(shared_server, predict(path, [], target=target))
    conn.sock.close()
    assert (status, json.loads(body)) == (200, ANSWER)
    assert headers["content-type"] == "application/json"
    # Its authority is the Host the access policy judges, whatever the Host field says.
    foreign = predict(path, ["Host: 127.0.0.1"], target=f"http://evil.example{PREDICT}")
    status, _, body, conn = exchange(shared_server, foreign)
    conn.sock.close()
    assert status == 403
    assert "Host 'evil.example' is not allowed" in json.loads(body)["error"]


def test_an_absolute_form_get_is_served_as_its_path(shared_server: RunningServer) -> None:
    with Conn(shared_server) as conn:
        conn.send(b"GET http://localhost/v1/models/half_plus_two HTTP/1.1\r\n\r\n")
        answer = conn.read_answer()
    assert answer.status == 200
    assert answer.json()["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate, chunked", "identity, chunked"])
def test_a_transfer_coding_other_than_chunked_is_refused(shared_server: RunningServer,
                                                         coding: str) -> None:
    data = predict("full", ["Host: 127.0.0.1"]).replace(
        b"Transfer-Encoding: chunked", f"Transfer-Encoding: {coding}".encode())
    with Conn(shared_server) as conn:
        conn.send(data)
        answer = conn.read_answer()
        assert answer.status == 501
        assert answer.json() == {"error": f"Unsupported Transfer-Encoding: {coding}"}
        assert conn.closed_by_server()


def test_an_answer_that_says_close_leaves_a_pipelined_request_unanswered(
        shared_server: RunningServer) -> None:
    # A gzip body that inflates past --max_request_bytes (64 MiB): the handler's early 413,
    # which says Connection: close before the body has all arrived.
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join([*(squeeze.compress(bytes(1 << 20)) for _ in range(65)), squeeze.flush()])
    head = (f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(bomb)}\r\n\r\n").encode()
    with Conn(shared_server) as conn:
        conn.send(head + bomb + predict("small", ["Host: 127.0.0.1"]))
        answer = conn.read_answer()
        assert answer.status == 413
        assert answer.headers["connection"] == "close"
        conn.read_to_close()
        assert b"HTTP/1.1" not in conn.buffer  # nothing answered after it


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fields, version, status", [
    ([], "HTTP/1.1", 400),
    (["Host: 127.0.0.1", "Host: 127.0.0.1"], "HTTP/1.1", 400),
    (["Host: 127.0.0.1", "Host: evil.example"], "HTTP/1.1", 400),
    (["Host:"], "HTTP/1.1", 200),
    ([], "HTTP/1.0", 200),
    (["Host: evil.example"], "HTTP/1.1", 403),
    (["Host: localhost:1"], "HTTP/1.1", 200),
], ids=["missing", "twice", "two different", "empty", "http/1.0 without", "foreign",
        "localhost"])
def test_both_paths_apply_one_host_policy(shared_server: RunningServer, path: str,
                                          fields: list[str], version: str, status: int) -> None:
    if version == "HTTP/1.0" and path == "full":
        pytest.skip("HTTP/1.0 has no chunked framing")
    got, _, body, conn = exchange(shared_server, predict(path, fields, version=version))
    conn.sock.close()
    assert got == status, body
    doc = json.loads(body)
    if status == 200:
        assert doc == ANSWER
    elif status == 400:
        assert doc["error"] in ("Malformed HTTP request: Missing Host header",
                                "Malformed HTTP request: Multiple Host headers")
    else:
        assert "Host 'evil.example' is not allowed" in doc["error"]
