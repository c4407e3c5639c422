"""SIGTERM drains: with 16 clients in flight on each of REST and gRPC against a model that takes
~0.5 s per call, every request already sent is answered, new connections are refused, an idle
keep-alive connection is closed, and the server exits 0 before the grace period is over.
Hand-shakes only: gRPC calls are known to run by the file each call writes on entry; a REST
request is sent once its bytes are written to a connected socket."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_helpers import outputs, predict_request
from server_process import start_server, wait_for
from tensorflow_serving.apis import prediction_service_pb2_grpc

_CLIENTS = 16  # per surface
_GRACE = 120  # seconds: far beyond what 16 half-second calls need


@pytest.fixture(scope="module")
def sleepy_model(models_root: Path) -> Path:
    from models import build_sleepy

    base = models_root / "sleepy"
    build_sleepy(str(base))
    return base


def _rest_call(port: int, tag: str, value: float, sent: threading.Barrier) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", "/v1/models/sleepy:predict", json.dumps(
            {"inputs": {"tag": [tag], "x": [value]}}))
        sent.wait(60)  # the request's bytes are on a connected socket
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_sigterm_answers_every_request_in_flight_then_exits_0(tmp_path, sleepy_model) -> None:
    server = start_server("--model_name=sleepy", f"--model_base_path={sleepy_model}",
                          "--grpc_max_threads=16",
                          f"--shutdown_grace_seconds={_GRACE}", log_dir=tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    try:
        server.wait_state("sleepy", 1)
        # A kept-alive connection with nothing in flight: closed by the drain, not waited for.
        idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        idle.request("GET", "/v1/models/sleepy")
        assert idle.getresponse().read()
        channel = grpc.insecure_channel(server.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        grpc_calls = [stub.Predict.future(predict_request(
            "sleepy", {"tag": [str(markers / f"grpc{i}").encode()], "x": [float(i)]}),
            timeout=120) for i in range(_CLIENTS)]
        sent = threading.Barrier(_CLIENTS + 1)
        with ThreadPoolExecutor(_CLIENTS) as pool:
            rest_calls: list[Future[tuple[int, dict]]] = [
                pool.submit(_rest_call, server.port, str(markers / f"rest{i}"), float(i), sent)
                for i in range(_CLIENTS)]
            sent.wait(60)
            wait_for(lambda: all((markers / f"grpc{i}.started").exists()
                                 for i in range(_CLIENTS)), 60, what="every gRPC call running")
            answered_before = [call.done() for call in (*grpc_calls, *rest_calls)]
            server.proc.send_signal(signal.SIGTERM)

            wait_for(lambda: _refused(server.port), 60, what="REST refusing connections")
            answers = [call.result(120) for call in rest_calls]
        assert answers == [(200, {"outputs": [2.0 * i]}) for i in range(_CLIENTS)]
        # The drain had work to wait for: 16 REST calls on 4 request workers take four rounds.
        assert not all(answered_before)
        assert [outputs(call.result(120))["y"].tolist() for call in grpc_calls] == \
            [[2.0 * i] for i in range(_CLIENTS)]
        assert idle.sock is not None and idle.sock.recv(1) == b""  # closed by the server
        idle.close()
        with pytest.raises(grpc.RpcError) as caught:  # a new gRPC connection is refused
            _new_grpc_predict(server.grpc_target, markers)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()
        assert server.proc.wait(_GRACE + 60) == 0
        log = server.log()
        assert "Requests in flight answered in" in log
        assert "Grace period" not in log and "Event loop is closed" not in log
        assert "Traceback" not in log
    finally:
        server.stop()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    except ConnectionRefusedError:
        return True
    return False


def _new_grpc_predict(target: str, markers: Path) -> object:
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(predict_request(
            "sleepy", {"tag": [str(markers / "late").encode()], "x": [1.0]}), timeout=10)
