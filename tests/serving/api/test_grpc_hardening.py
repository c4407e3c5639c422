"""gRPC as strict as REST (issue 25 items 1, 4 and 8), on real server subprocesses through the
official stubs: a tensor's element count from its shape is bounded before anything is
allocated (the 33-byte request, peak RSS measured); bytes that are not the request message,
and impossible shapes, are INVALID_ARGUMENT with no Python class names, and a client repeating
them cannot grow the log; HandleReloadConfigRequest needs the server's secret in the call
metadata; ``--require_secret`` closes every route, REST's ``/v1`` and gRPC's Predict too."""

from __future__ import annotations

import http.client
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_helpers import Stubs, outputs, predict_request, rpc_error
from server_process import RunningServer, start_server, wait_for
from server_process import http as fetch
from tensorflow_serving.apis import model_management_pb2, predict_pb2

from tfserve_magic.status import SECRET_HEADER

SECRET_KEY = SECRET_HEADER.lower()
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"


@pytest.fixture(scope="module")
def server(tmp_path_factory, half_plus_two) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("grpc_hardening")
    running = start_server(f"--model_base_path={half_plus_two}", "--model_name=half_plus_two",
                           "--file_system_poll_wait_seconds=0", log_dir=root)
    try:
        running.wait_state("half_plus_two")
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def stubs(server: RunningServer) -> Iterator[Stubs]:
    connection = Stubs(server.grpc_target)
    yield connection
    connection.close()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def repeated(shape: list[int], dtype: int = 1) -> Any:
    """One float (TF's rule repeats the last value) for a tensor of ``shape``."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    tensor = request.inputs["x"]
    tensor.dtype = dtype
    for size in shape:
        tensor.tensor_shape.dim.add().size = size
    tensor.float_val.append(1.0)
    return request


def test_a_33_byte_request_cannot_make_the_server_allocate(server: RunningServer,
                                                           stubs: Stubs) -> None:
    request = repeated([50_000_000, 1])
    assert len(request.SerializeToString()) - len("half_plus_two") + 1 == 33  # name "m": 33
    before = peak_rss_mb(server.pid)
    code, details = rpc_error(stubs.prediction.Predict, request)
    grown = peak_rss_mb(server.pid) - before
    print(f"peak RSS before {before:.0f} MB, grown by {grown:.0f} MB")  # measured: 0 MB
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == ("tensor parsing error: x (shape [50000000,1] holds 50000000 elements, "
                       "200000000 bytes as DT_FLOAT, more than the limit of 67108864 bytes "
                       "(--max_request_bytes) for values the request does not carry)")
    assert grown < 50, f"the server's peak RSS grew by {grown:.0f} MB"  # 200 MB before the fix


@pytest.mark.parametrize("shape, dtype", [([2**31, 2**31], 1), ([2**40, 1], 1),
                                          ([2**62, 2**62, 2**62], 1)])
def test_impossible_shapes_are_invalid_argument(stubs: Stubs, shape: list[int],
                                                dtype: int) -> None:
    code, details = rpc_error(stubs.prediction.Predict, repeated(shape, dtype))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("tensor parsing error: x (shape [")
    assert "<class" not in details and "Error" not in details


@pytest.mark.parametrize("shape", [[1000, 3], [2, 2, 2]])
def test_values_are_repeated_only_into_a_shape_the_signature_accepts(
        shared_server: RunningServer, shape: list[int]) -> None:
    """The strings model's text is string [None]: a rank-2 or rank-3 shape under the byte limit,
    carrying one value, is refused before it is filled (the repeat rule bounded by the signature
    too, issue 25 item 1), where it used to be filled and handed to the model."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "strings"
    tensor = request.inputs["text"]
    tensor.dtype = 7  # DT_STRING
    for size in shape:
        tensor.tensor_shape.dim.add().size = size
    tensor.string_val.append(b"a")
    stubs = Stubs(shared_server.grpc_target)
    try:
        code, details = rpc_error(stubs.prediction.Predict, request)
    finally:
        stubs.close()
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    dims = ",".join(map(str, shape))
    assert details == (f"tensor parsing error: text (shape [{dims}] does not fit the "
                       f"signature's [-1], and the request carries 1 of its {math.prod(shape)} "
                       "values)")


def test_a_shape_its_values_fill_is_still_served(stubs: Stubs) -> None:
    request = repeated([4])  # 16 bytes: under the limit, the last value repeats
    assert outputs(stubs.prediction.Predict(request, timeout=60))["y"].tolist() == [2.5] * 4


def _raw_predict(server: RunningServer, data: bytes) -> tuple[grpc.StatusCode, str]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(PREDICT_METHOD, request_serializer=lambda raw: raw,
                                   response_deserializer=lambda raw: raw)
        try:
            call(data, timeout=60)
        except grpc.RpcError as error:
            return error.code(), error.details()
    raise AssertionError("the call succeeded")


MALFORMED = {
    "corrupt": b"\xff\xff\xff\xff",
    "truncated": predict_request("half_plus_two", {"x": np.ones(3, np.float32)})
    .SerializeToString()[:-5],
    "nested groups": b"\x7b" * 200 + b"\x7c" * 200,  # past the decoder's depth limit
}


@pytest.mark.parametrize("case", MALFORMED)
def test_bytes_that_are_not_a_request_are_invalid_argument(server: RunningServer,
                                                           case: str) -> None:
    assert _raw_predict(server, MALFORMED[case]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "The request is not a well-formed tensorflow.serving.PredictRequest message")


def test_clients_repeating_bad_calls_cannot_grow_the_log(server: RunningServer,
                                                         stubs: Stubs) -> None:
    before = len(server.log())
    for index in range(300):
        assert _raw_predict(server, MALFORMED[list(MALFORMED)[index % 3]])[0] is \
            grpc.StatusCode.INVALID_ARGUMENT
        if index % 10 == 0:
            assert rpc_error(stubs.prediction.Predict, repeated([2**40, 1]))[0] is \
                grpc.StatusCode.INVALID_ARGUMENT
    huge = predict_pb2.PredictRequest()
    huge.model_spec.name = "m" * 1_000_000
    assert rpc_error(stubs.prediction.Predict, huge)[0] is grpc.StatusCode.NOT_FOUND
    grown = server.log()[before:]
    assert "Traceback" not in grown and "<class" not in grown
    assert max(len(line) for line in grown.splitlines()) < 1_000
    assert len(grown) < 5_000, grown  # 330 refusals: one line per kind and interval


def _reload(stubs: Stubs, half_plus_two: Path, metadata: list[tuple[str, str]]) -> Any:
    request = model_management_pb2.ReloadConfigRequest()
    entry = request.config.model_config_list.config.add(name="half_plus_two",
                                                        base_path=str(half_plus_two))
    entry.model_platform = "tensorflow"
    return stubs.model.HandleReloadConfigRequest(request, timeout=120, metadata=metadata)


@pytest.mark.parametrize("metadata", [[], [(SECRET_KEY, "wrong")]], ids=["none", "wrong"])
def test_reload_without_the_secret_is_refused(server: RunningServer, stubs: Stubs,
                                              half_plus_two: Path,
                                              metadata: list[tuple[str, str]]) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _reload(stubs, half_plus_two, metadata)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert refused.value.details() == (
        "The tfserve_magic management API needs the server's secret in the "
        "x-tfserve-magic-secret call metadata (kept in the server's registry record)")
    assert server.states("half_plus_two") == {1: "AVAILABLE"}


def test_reload_with_the_secret_is_done(server: RunningServer, stubs: Stubs,
                                        half_plus_two: Path) -> None:
    response = _reload(stubs, half_plus_two, [(SECRET_KEY, server.secret)])
    assert response.status.error_code == 0


def test_the_client_sends_the_secret(server: RunningServer, half_plus_two: Path) -> None:
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from tfserve_magic.client.grpc_transport import GrpcTransport
    from tfserve_magic.client.transport import ServingError

    config = text_format.Parse(
        f'model_config_list {{ config {{ name: "half_plus_two" base_path: "{half_plus_two}" '
        'model_platform: "tensorflow" } }', model_server_config_pb2.ModelServerConfig())
    GrpcTransport(server.grpc_target, secret=server.secret).reload_config(config)
    with pytest.raises(ServingError) as refused:
        GrpcTransport(server.grpc_target).reload_config(config)
    assert refused.value.code == "PERMISSION_DENIED"


@pytest.fixture(scope="module")
def shared_host_server(tmp_path_factory, half_plus_two) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("require_secret")
    shutil.copytree(half_plus_two, root / "half_plus_two")
    running = start_server(f"--model_base_path={root / 'half_plus_two'}",
                           "--model_name=half_plus_two", "--require_secret",
                           "--file_system_poll_wait_seconds=0", log_dir=root)
    try:
        yield running
    finally:
        running.stop()


def test_require_secret_closes_every_route(shared_host_server: RunningServer) -> None:
    server = shared_host_server
    secret = {SECRET_HEADER: server.secret}
    status = f"{server.url}/v1/models/half_plus_two"
    assert fetch("GET", status).status == 403
    assert fetch("GET", status, headers={SECRET_HEADER: "wrong"}).status == 403
    body = b'{"instances": [1.0]}'
    for chunked in (False, True):  # the small path and the full one
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.request("POST", "/v1/models/half_plus_two:predict",
                           body=iter([body]) if chunked else body, encode_chunked=chunked)
        answer = connection.getresponse()
        assert answer.status == 403
        assert "needs the server's secret" in json.loads(answer.read())["error"]
        connection.close()
    wait_for(lambda: b"AVAILABLE" in fetch("GET", status, headers=secret).body,
             what="model loaded")
    assert fetch("POST", f"{status}:predict", body, headers=secret).json() == \
        {"predictions": [2.5]}
    stubs = Stubs(server.grpc_target)
    try:
        request = predict_request("half_plus_two", {"x": np.array([1.0], np.float32)})
        assert rpc_error(stubs.prediction.Predict, request)[0] is \
            grpc.StatusCode.PERMISSION_DENIED
        answer = stubs.prediction.Predict(request, timeout=60,
                                          metadata=[(SECRET_KEY, server.secret)])
        assert outputs(answer)["y"].tolist() == [2.5]
    finally:
        stubs.close()


def test_a_launched_server_requiring_the_secret_serves_its_handle(
        isolated_runtime: Path, half_plus_two: Path) -> None:
    from tfserve_magic.client.client import Client
    from tfserve_magic.client.transport import ServingError
    from tfserve_magic.lifecycle import launcher

    handle = launcher.start(str(half_plus_two), extra_flags=["--require_secret"])
    x = np.array([1.0], np.float32)
    assert handle.client.predict("half_plus_two", x).tolist() == [2.5]  # REST, with the secret
    assert handle.grpc_client().predict("half_plus_two", x).tolist() == [2.5]  # gRPC, too
    with pytest.raises(ServingError) as refused:
        Client(handle.url).predict("half_plus_two", x)  # another user's process: no secret
    assert refused.value.status == 403
    with pytest.raises(ServingError) as refused:
        Client(handle.url, grpc=handle.grpc_target).predict("half_plus_two", x)
    assert refused.value.code == "PERMISSION_DENIED"
