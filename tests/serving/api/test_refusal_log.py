"""Refusals a client causes are logged with their reason, on both REST paths and on gRPC, one
line per kind and 10 s: the kind leaves out what the client sent (a model name, a value), so a
client that varies it cannot make every line new (issue 25: every log line a client can cause
is bounded and throttled). One server of its own: the shared one's log holds other tests' kinds.
"""

from __future__ import annotations

import http.client
import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_helpers import Stubs, predict_request
from server_process import RunningServer, start_server, wait_for


@pytest.fixture(scope="module")
def server(half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[RunningServer]:
    running = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                           log_dir=tmp_path_factory.mktemp("refusal_log"))
    try:
        running.wait_state("half_plus_two")
        yield running
    finally:
        running.stop()


def _post(server: RunningServer, body: bytes, chunked: bool) -> tuple[int, str]:
    """A predict with a Content-Length (the small path takes it) or chunked (the full one)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("POST", "/v1/models/half_plus_two:predict",
                           body=iter([body[:3], body[3:]]) if chunked else body,
                           encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, json.loads(response.read())["error"]
    finally:
        connection.close()


@pytest.mark.parametrize("chunked, body", [(False, b'{"instances": [["x"]]}'),
                                           (True, b'{"instances": [1.0')])
def test_the_log_says_why_a_request_failed(server: RunningServer, chunked: bool,
                                           body: bytes) -> None:
    status, error = _post(server, body, chunked)
    assert status == 400
    wait_for(lambda: f"POST /v1/models/half_plus_two:predict -> 400 INVALID_ARGUMENT: {error}"
             in server.log(), 30, what="the reason in the server log")


def _times(lines: list[str]) -> list[float]:
    return [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp() for line in lines]


def test_refusals_naming_what_the_client_sent_are_one_kind(server: RunningServer) -> None:
    stubs = Stubs(server.grpc_target)
    try:
        for i in range(12):
            name = f"ghost{i}{'x' * 5000}"
            response = server.post(f"/v1/models/{name}:predict", {"instances": [1.0]})
            assert response.status == 404, response.body
            assert name in response.json()["error"]  # the client is told in full
            with pytest.raises(grpc.RpcError) as refused:
                stubs.prediction.Predict(predict_request(
                    name.replace("ghost", "phantom"), {"x": np.array([1.0], np.float32)}),
                    timeout=60)
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        stubs.close()
    lines = server.log().splitlines()
    rest = [line for line in lines if "ghost" in line]
    grpc_lines = [line for line in lines if "phantom" in line]
    # The first of each kind says why; later ones within the interval are held back and counted.
    assert rest and "-> 404 NOT_FOUND: Servable not found for request: Latest(ghost0" in rest[0]
    assert grpc_lines and "gRPC Predict" in grpc_lines[0] and "-> NOT_FOUND" in grpc_lines[0]
    for kind in (rest, grpc_lines):
        assert all(later - earlier >= 9.999 for earlier, later in
                   itertools.pairwise(_times(kind))), kind
        assert all(len(line) < 1000 for line in kind), max(map(len, kind))  # bounded quotes
