"""The small-request path (``serving/api/small_requests.py``) answers exactly as the full
handlers do. Each request goes to a real server twice: with a ``Content-Length`` (the small
path takes it) and chunked (the small path leaves it to the full handlers), and both answers
must agree in status, body and headers (``Server`` included: one header list for both)."""

from __future__ import annotations

import http.client
import json

import pytest
from server_process import RunningServer


def send(server: RunningServer, path: str, body: bytes, chunked: bool,
         method: str = "POST") -> tuple[int, bytes, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        if chunked:
            connection.request(method, path, body=iter([body[:3], body[3:]]), encode_chunked=True)
        else:
            connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


CASES = {
    "predict": ("/v1/models/half_plus_two:predict", b'{"instances": [1.0, 2.0]}'),
    "columnar": ("/v1/models/half_plus_two:predict", b'{"inputs": [[1.0], [2.5]]}'),
    "version": ("/v1/models/versioned/versions/2:predict", b'{"instances": [1.0]}'),
    "label": ("/v1/models/versioned/labels/canary:predict", b'{"instances": [1.0]}'),
    "regress": ("/v1/models/half_plus_two:regress",
                b'{"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}]}'),
    "classify": ("/v1/models/half_plus_two:classify",
                 b'{"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}]}'),
    "unknown model": ("/v1/models/nope:predict", b'{"instances": [1.0]}'),
    "unknown version": ("/v1/models/half_plus_two/versions/9:predict", b'{"instances": [1.0]}'),
    "bad json": ("/v1/models/half_plus_two:predict", b'{"instances": [1.0'),
    "both keys": ("/v1/models/half_plus_two:predict", b'{"instances": [1.0], "inputs": [1.0]}'),
    "wrong dtype": ("/v1/models/half_plus_two:predict", b'{"instances": ["a"]}'),
    "empty body": ("/v1/models/half_plus_two:predict", b""),
    "upper-case verb": ("/v1/models/half_plus_two:PREDICT", b'{"instances": [1.0]}'),
    "query string": ("/v1/models/half_plus_two:predict?x=1", b'{"instances": [1.0]}'),
}


@pytest.mark.parametrize("case", CASES)
def test_both_paths_answer_alike(shared_server: RunningServer, case: str) -> None:
    path, body = CASES[case]
    small = send(shared_server, path, body, chunked=False)
    full = send(shared_server, path, body, chunked=True)
    # One set of headers, whichever path answered (the Date aside, which may tick between).
    assert full[2]["server"].startswith("TornadoServer")
    assert small[0] == full[0]
    assert small[1] == full[1]
    assert "date" in small[2]
    assert {k: v for k, v in small[2].items() if k != "date"} == \
        {k: v for k, v in full[2].items() if k not in ("date", "transfer-encoding")}
    assert (small[0] == 200) == (case in ("predict", "columnar", "version", "label", "regress",
                                          "classify", "query string"))
    if small[0] != 200:
        assert set(json.loads(small[1])) == {"error"}


def test_answers_are_what_tf_serving_gives(shared_server: RunningServer) -> None:
    status, body, headers = send(shared_server, *CASES["predict"], chunked=False)
    assert (status, json.loads(body)) == (200, {"predictions": [2.5, 3.0]})
    assert headers["content-type"] == "application/json"
    status, body, _ = send(shared_server, *CASES["unknown model"], chunked=False)
    assert status == 404
    assert json.loads(body) == {"error": "Servable not found for request: Latest(nope)"}


def test_keep_alive_connection_serves_both_paths_in_turn(shared_server: RunningServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", shared_server.port, timeout=60)
    try:
        answers = []
        for index in range(6):
            body = json.dumps({"instances": [float(index)]}).encode()
            if index % 2:
                connection.request("POST", "/v1/models/half_plus_two:predict",
                                   body=iter([body]), encode_chunked=True)
            else:
                connection.request("POST", "/v1/models/half_plus_two:predict", body=body)
            response = connection.getresponse()
            answers.append(json.loads(response.read())["predictions"][0])
        assert answers == [0.5 * i + 2 for i in range(6)]
    finally:
        connection.close()


