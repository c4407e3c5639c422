"""A malformed gzip body (issue 25 item 5) gets ``400 {"error": ...}`` and a close, sent with a
``Content-Length`` or in chunks: not gzip at all, cut short, or followed by other bytes; and a
client repeating one cannot grow the log (one line per kind of refusal and interval, no
traceback). Well-formed bodies, several gzip members included, are served."""

from __future__ import annotations

import gzip
import json

import pytest
from server_process import RunningServer
from test_http_connections import Conn

PREDICT = "/v1/models/half_plus_two:predict"
GOOD = b'{"instances": [1.0, 2.0]}'
GZIPPED = gzip.compress(GOOD)
MALFORMED = {
    "not gzip": (b"XXXX", "gzip body cannot be inflated (incorrect header check)"),
    "cut short": (GZIPPED[:-12], "gzip body is cut short"),
    "header only": (GZIPPED[:10], "gzip body is cut short"),
    "trailing garbage": (GZIPPED + b"garbage", "gzip body has data after its end"),
}


def post_gzip(server: RunningServer, body: bytes, chunked: bool) -> tuple[int, bytes, bool]:
    """(status, body, whether the server then closed)."""
    framing = (b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
               if chunked else b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with Conn(server) as conn:
        conn.send(f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: gzip\r\n"
                  .encode() + framing)
        answer = conn.read_answer()
        closed = answer.status == 200 or conn.closed_by_server()
    return answer.status, answer.body, closed


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_gzip_body_gets_a_400_json_error(shared_server: RunningServer, case: str,
                                                     chunked: bool) -> None:
    body, message = MALFORMED[case]
    status, answer, closed = post_gzip(shared_server, body, chunked)
    assert status == 400
    assert json.loads(answer) == {"error": f"Malformed HTTP request: {message}"}
    assert closed


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_well_formed_gzip_bodies_are_served(shared_server: RunningServer, chunked: bool) -> None:
    for body in (GZIPPED, gzip.compress(GOOD[:10]) + gzip.compress(GOOD[10:])):
        status, answer, _ = post_gzip(shared_server, body, chunked)
        assert (status, json.loads(answer)) == (200, {"predictions": [2.5, 3.0]})


def test_repeated_malformed_gzip_bodies_do_not_grow_the_log(shared_server: RunningServer) -> None:
    before = len(shared_server.log())
    for index in range(200):
        body = MALFORMED[list(MALFORMED)[index % len(MALFORMED)]][0]
        assert post_gzip(shared_server, body, chunked=bool(index % 2))[0] == 400
    grown = shared_server.log()[before:]
    assert "Traceback" not in grown and "zlib.error" not in grown
    # One line per kind of refusal and interval (four kinds here): a few hundred bytes each.
    assert len(grown) < 8_000, grown
