"""The gRPC listener's flags, message limits, config reloads and a hot swap under load, on real
server subprocesses with the official stubs."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_helpers import Stubs, outputs, predict_request, rpc_error
from server_process import run_server_expecting_failure, start_server, wait_for, write_server_config
from tensorflow_serving.apis import model_management_pb2

from tfserve_magic.serving.process.flags import build_parser, parse_flags
from tfserve_magic.serving.status_errors import ConfigError

_64_MIB = 64 * 1024 * 1024


def test_grpc_flags_parse_into_options_and_none_is_ignored() -> None:
    """How the flags parse; that the server uses them is shown on real servers below
    (--grpc_host, --grpc_channel_arguments, --enable_serialization_as_tensor_content) and in
    test_grpc_api.py (--grpc_max_threads, --grpc_socket_path, the health service)."""
    options, _ = parse_flags([
        "--model_base_path=/m", "--port=0", "--grpc_max_threads=3", "--grpc_socket_path=/s",
        "--grpc_channel_arguments=grpc.max_receive_message_length=10,grpc.primary_user_agent=x",
        "--enable_grpc_healthcheck_service", "--enable_serialization_as_tensor_content",
        "--grpc_host=0.0.0.0"])
    assert (options.port, options.grpc_max_threads, options.grpc_socket_path,
            options.grpc_host) == (0, 3, "/s", "0.0.0.0")
    assert options.enable_grpc_healthcheck_service and options.enable_serialization_as_tensor_content
    assert options.ignored_flags == ()
    help_text = build_parser().format_help()
    assert "not served" not in help_text and "REST and gRPC" in help_text


@pytest.mark.parametrize("argv, message", [
    (["--grpc_channel_arguments=novalue"],
     "--grpc_channel_arguments: expected key=value, got 'novalue'"),
    (["--grpc_max_threads=-1"], "--grpc_max_threads must not be negative"),
    (["--port=8600", "--rest_api_port=8600"], "--port and --rest_api_port must differ, both are 8600"),
])
def test_bad_grpc_flags(argv, message) -> None:
    with pytest.raises(ConfigError) as error:
        parse_flags(["--model_base_path=/m", *argv])
    assert str(error.value) == message


def test_a_grpc_port_in_use_is_a_clear_start_failure(half_plus_two) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_server_expecting_failure(f"--port={port}", "--rest_api_port=0",
                                              f"--model_base_path={half_plus_two}")
    assert result.returncode == 1
    assert f"Failed to start gRPC server on 127.0.0.1:{port}" in result.stderr


@pytest.fixture(scope="module")
def big_servers(tmp_path_factory, half_plus_two):
    """Default limits (TF Serving's: INT32_MAX) and address, and a server limited by a channel
    argument and told to take gRPC on every address."""
    root = tmp_path_factory.mktemp("grpc_limits")
    default = start_server(f"--model_base_path={half_plus_two}", "--model_name=hp2",
                           "--enable_serialization_as_tensor_content", log_dir=root)
    limited = start_server(f"--model_base_path={half_plus_two}", "--model_name=hp2",
                           "--grpc_channel_arguments=grpc.max_receive_message_length=16777216",
                           "--grpc_host=0.0.0.0", log_dir=root)
    try:
        default.wait_state("hp2")
        limited.wait_state("hp2")
        yield default, limited
    finally:
        default.stop()
        limited.stop()


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=30).close()
    except ConnectionRefusedError:
        return False
    return True


def test_grpc_binds_127_0_0_1_unless_told(big_servers) -> None:
    """Safe by default (TF Serving binds every address): a connection to another loopback
    address, 127.0.0.2, is refused unless --grpc_host says otherwise; then it is served."""
    default, told = big_servers
    assert _accepts("127.0.0.1", default.grpc_port)
    assert not _accepts("127.0.0.2", default.grpc_port)
    stubs = Stubs(f"127.0.0.2:{told.grpc_port}")
    try:
        small = predict_request("hp2", {"x": np.array([2.0], np.float32)})
        assert outputs(stubs.prediction.Predict(small, timeout=60))["y"].tolist() == [3.0]
    finally:
        stubs.close()


def test_tensor_content_out_when_asked(big_servers) -> None:
    default, _ = big_servers
    stubs = Stubs(default.grpc_target)
    try:
        response = stubs.prediction.Predict(
            predict_request("hp2", {"x": np.array([2.0, 4.0], np.float32)}), timeout=60)
    finally:
        stubs.close()
    y = response.outputs["y"]
    assert not y.float_val and np.frombuffer(y.tensor_content, "<f4").tolist() == [3.0, 4.0]


def test_a_64_mib_message_needs_the_channel_argument(big_servers) -> None:
    default, limited = big_servers
    x = np.ones(_64_MIB // 4, np.float32)
    request = predict_request("hp2", {"x": x})
    # The server takes 64 MiB (TF Serving's INT32_MAX limit); the official client's default
    # channel refuses the 64 MiB answer, and takes it with the channel argument.
    plain = Stubs(default.grpc_target)
    raised = Stubs(default.grpc_target, [("grpc.max_receive_message_length", _64_MIB + 4096)])
    try:
        code, details = rpc_error(plain.prediction.Predict, request)
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in details
        y = outputs(raised.prediction.Predict(request, timeout=120))["y"]
        assert y.shape == x.shape and float(y[0]) == 2.5
    finally:
        plain.close()
        raised.close()
    # --grpc_channel_arguments reaches the server: 16 MiB there refuses the same request.
    limited_stubs = Stubs(limited.grpc_target)
    try:
        code, details = rpc_error(limited_stubs.prediction.Predict, request)
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "16777216" in details
        small = predict_request("hp2", {"x": np.array([2.0], np.float32)})
        assert outputs(limited_stubs.prediction.Predict(small, timeout=60))["y"].tolist() == [3.0]
    finally:
        limited_stubs.close()


def _reload_request(entries: dict[str, tuple[Path, dict[str, int]]]) -> object:
    request = model_management_pb2.ReloadConfigRequest()
    for name, (path, labels) in entries.items():
        config = request.config.model_config_list.config.add(name=name, base_path=str(path))
        config.model_platform = "tensorflow"
        config.model_version_policy.all.SetInParent()
        for label, version in labels.items():
            config.version_labels[label] = version
    return request


def test_reload_adds_a_model_and_moves_a_label_for_both_apis(tmp_path, plus_version_builds,
                                                              half_plus_two) -> None:
    base = tmp_path / "plus"
    for version in (1, 2):
        shutil.copytree(plus_version_builds / str(version), base / str(version))
    config, _ = write_server_config(tmp_path, {"plus": (
        base, 'model_version_policy { all {} } version_labels { key: "stable" value: 1 }')})
    server = start_server(f"--model_config_file={config}",
                          "--allow_version_labels_for_unavailable_models",
                          "--file_system_poll_wait_seconds=0", log_dir=tmp_path)
    stubs = Stubs(server.grpc_target)
    try:
        server.wait_state("plus", 1)
        server.wait_state("plus", 2)
        stable = predict_request("plus", {"x": np.array([1.0], np.float32)}, label="stable")
        assert outputs(stubs.prediction.Predict(stable, timeout=60))["y"].tolist() == [2.0]

        refused = _reload_request({"plus": (base, {"stable": 9})})
        secret = [("x-tfserve-magic-secret", server.secret)]  # reloading needs it (ours)
        assert rpc_error(stubs.model.HandleReloadConfigRequest, refused, metadata=secret) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            ("Request to assign label to version 9 of model plus, which is not currently "
             "available for inference"))

        reload = _reload_request({"plus": (base, {"stable": 2}), "hp2": (half_plus_two, {})})
        reload.metric_names.extend([":tensorflow:serving:request_count", "not_a_metric"])
        response = stubs.model.HandleReloadConfigRequest(reload, timeout=120, metadata=secret)
        assert response.status.error_code == 0
        # The README: the deltas asked for are reported, as 0 (TF's counters are not kept).
        assert [(m.name, m.WhichOneof("value_increase"), m.int64_value_increase)
                for m in response.metric] == [
            (":tensorflow:serving:request_count", "int64_value_increase", 0),
            ("not_a_metric", "int64_value_increase", 0)]
        # The reply comes once the new model is loaded; REST sees all of it at once.
        assert server.states("hp2") == {1: "AVAILABLE"}
        assert server.post("/v1/models/hp2:predict", {"instances": [2.0]}).json() == \
            {"predictions": [3.0]}
        assert server.post("/v1/models/plus/labels/stable:predict",
                           {"instances": [1.0]}).json() == {"predictions": [3.0]}
        assert outputs(stubs.prediction.Predict(stable, timeout=60))["y"].tolist() == [3.0]
    finally:
        stubs.close()
        server.stop()


def test_hot_swap_under_rest_and_grpc_load_fails_no_request(tmp_path, plus_version_builds) -> None:
    base = tmp_path / "plus"
    shutil.copytree(plus_version_builds / "1", base / "1")
    server = start_server(f"--model_base_path={base}", "--model_name=plus",
                          "--file_system_poll_wait_seconds=0", "--grpc_max_threads=4",
                          log_dir=tmp_path)
    server.wait_state("plus", 1)
    swapped = threading.Event()
    after_swap = 40  # requests per client once version 1 is gone
    limit = 3000  # a bound on each client, whatever happens
    answers: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def record(kind: str, y: float | None, error: str | None) -> None:
        with lock:
            if error:
                failures.append(f"{kind}: {error}")
            else:
                answers[f"{kind} {y}"] += 1

    def rest_client() -> None:
        left = after_swap
        for _ in range(limit):
            response = server.post("/v1/models/plus:predict", {"instances": [1.0]})
            record("REST", response.json()["predictions"][0] if response.status == 200 else None,
                   None if response.status == 200 else response.body.decode())
            if swapped.is_set():
                left -= 1
                if not left:
                    return

    def grpc_client() -> None:
        stubs = Stubs(server.grpc_target)
        left = after_swap
        try:
            for _ in range(limit):
                try:
                    response = stubs.prediction.Predict(
                        predict_request("plus", {"x": np.array([1.0], np.float32)}), timeout=60)
                    record("gRPC", float(outputs(response)["y"][0]), None)
                except grpc.RpcError as error:
                    record("gRPC", None, f"{error.code()} {error.details()}")
                if swapped.is_set():
                    left -= 1
                    if not left:
                        return
        finally:
            stubs.close()

    clients = [threading.Thread(target=f) for f in (rest_client, rest_client, grpc_client,
                                                    grpc_client)]
    try:
        for client in clients:
            client.start()
        wait_for(lambda: answers["REST 2.0"] >= 10 and answers["gRPC 2.0"] >= 10, 60,
                 what="both APIs answering before the swap")
        staging = base / ".incoming-2"
        shutil.copytree(plus_version_builds / "2", staging)
        os.rename(staging, base / "2")
        assert server.manage("POST", "/tfserve_magic/v1/reload").status == 200
        server.wait_state("plus", 1, "END")
        swapped.set()
        for client in clients:
            client.join(120)
        assert not any(c.is_alive() for c in clients)
    finally:
        swapped.set()
        server.stop()
    assert failures == []
    # Both versions answered on both APIs, and every answer is one of the two versions.
    assert set(answers) <= {"REST 2.0", "REST 3.0", "gRPC 2.0", "gRPC 3.0"}
    assert {"REST 3.0", "gRPC 3.0"} <= set(answers), answers
    assert {"REST 2.0", "gRPC 2.0"} <= set(answers), answers
