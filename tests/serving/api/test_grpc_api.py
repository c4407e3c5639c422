"""TF Serving's gRPC API on a real server subprocess, through the official stubs of
``tensorflow-serving-api`` (its PredictionService and ModelService, and TF Serving's errors)."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_helpers import (
    Stubs,
    classify_request,
    metadata_request,
    outputs,
    predict_request,
    regress_request,
    rpc_error,
    status_request,
)
from server_process import VERSIONED_CONFIG, RunningServer, start_server, wait_for, write_server_config
from tensorflow_serving.apis import get_model_metadata_pb2, inference_pb2, model_management_pb2, predict_pb2


@pytest.fixture(scope="module")
def double_bool(models_root: Path) -> Path:
    from models import build_double_bool

    base = models_root / "double_bool"
    if not base.exists():
        build_double_bool(str(base))
    return base


@pytest.fixture(scope="module")
def gated(models_root: Path) -> Path:
    from models import build_gated

    base = models_root / "gated"
    if not base.exists():
        build_gated(str(base))
    return base


@pytest.fixture(scope="module")
def server(tmp_path_factory, half_plus_two, multi_io, strings_model, ints_model, double_bool,
           gated, plus_version_builds) -> Iterator[RunningServer]:
    """One server for the read-only requests: health service and a Unix socket on, and a pool
    of two gRPC threads."""
    root = tmp_path_factory.mktemp("grpc_server")
    shutil.copytree(plus_version_builds, root / "versioned")
    entries = {
        "half_plus_two": (half_plus_two, ""), "multi_io": (multi_io, ""),
        "strings": (strings_model, ""), "ints": (ints_model, ""),
        "double_bool": (double_bool, ""), "gated": (gated, ""),
        "versioned": (root / "versioned", VERSIONED_CONFIG)}
    config, monitoring = write_server_config(root, entries)
    running = start_server(f"--model_config_file={config}",
                           "--allow_version_labels_for_unavailable_models",
                           f"--monitoring_config_file={monitoring}",
                           f"--grpc_socket_path={root / 'grpc.sock'}",
                           "--enable_grpc_healthcheck_service", "--grpc_max_threads=2",
                           "--file_system_poll_wait_seconds=0", log_dir=root)
    try:
        for name in entries:
            running.wait_state(name)
        for version in (1, 2, 3):
            running.wait_state("versioned", version)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def stubs(server: RunningServer) -> Iterator[Stubs]:
    connection = Stubs(server.grpc_target)
    yield connection
    connection.close()


# ------------------------------------------------------------------ Predict


def test_handshake_reports_the_grpc_port(server) -> None:
    assert server.grpc_port > 0 and server.grpc_port != server.port
    assert server.handshake["grpc_socket_path"].endswith("grpc.sock")
    assert "not served" not in server.log()


def test_predict_with_typed_fields_answers_in_typed_fields(stubs) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    tensor = request.inputs["x"]
    tensor.dtype = 1  # DT_FLOAT
    tensor.tensor_shape.dim.add().size = 3
    tensor.float_val.extend([1.0, 2.0, 3.0])
    response = stubs.prediction.Predict(request, timeout=60)
    y = response.outputs["y"]
    assert list(y.float_val) == [2.5, 3.0, 3.5] and not y.tensor_content
    assert [d.size for d in y.tensor_shape.dim] == [3]
    assert (response.model_spec.name, response.model_spec.signature_name,
            response.model_spec.version.value) == ("half_plus_two", "serving_default", 1)


def test_predict_with_tensor_content_in(stubs) -> None:
    x = np.arange(1000, dtype=np.float32)
    request = predict_request("half_plus_two", {"x": x})
    assert request.inputs["x"].tensor_content  # tf.make_tensor_proto packs numeric arrays
    got = outputs(stubs.prediction.Predict(request, timeout=60))["y"]
    np.testing.assert_array_equal(got, x * 0.5 + 2)


def test_typed_fields_shorter_than_the_shape_repeat_the_last_value(stubs) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    tensor = request.inputs["x"]
    tensor.dtype = 1
    tensor.tensor_shape.dim.add().size = 3
    tensor.float_val.append(4.0)
    assert list(stubs.prediction.Predict(request, timeout=60).outputs["y"].float_val) == \
        [4.0, 4.0, 4.0]


@pytest.mark.parametrize("model, inputs, expected", [
    ("multi_io", {"a": np.array([1.0, 2.0], np.float32), "b": np.array([3.0, 4.0], np.float32)},
     {"sum": np.array([4.0, 6.0], np.float32), "product": np.array([3.0, 8.0], np.float32)}),
    ("ints", {"small": np.array([1, -2], np.int32), "big": np.array([2**40, 5], np.int64)},
     {"total": np.array([2**40 + 1, 3], np.int64)}),
    ("double_bool", {"d": np.array([0.1, 1e300], np.float64), "flag": np.array([True, False])},
     {"twice": np.array([0.2, 2e300]), "negated": np.array([False, True])}),
    ("strings", {"text": np.array([b"ab", "\u00e9".encode()], dtype=object)},
     {"length": np.array([2, 2], np.int32), "upper_bytes": np.array([b"AB", "\u00e9".encode()],
                                                                   dtype=object)}),
])
def test_every_dtype_round_trips(stubs, model, inputs, expected) -> None:
    got = outputs(stubs.prediction.Predict(predict_request(model, inputs), timeout=60))
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_array_equal(got[name], value)


@pytest.mark.parametrize("spec, expected_y, version", [
    ({}, 4.0, 3),
    ({"version": 2}, 3.0, 2),
    ({"label": "stable"}, 2.0, 1),
    ({"label": "canary"}, 4.0, 3),
])
def test_routing_by_version_and_label(stubs, spec, expected_y, version) -> None:
    request = predict_request("versioned", {"x": np.array([1.0], np.float32)}, **spec)
    response = stubs.prediction.Predict(request, timeout=60)
    assert outputs(response)["y"].tolist() == [expected_y]
    assert response.model_spec.version.value == version


def test_output_filter(stubs) -> None:
    inputs = {"a": np.array([2.0], np.float32), "b": np.array([5.0], np.float32)}
    response = stubs.prediction.Predict(
        predict_request("multi_io", inputs, output_filter=("product",)), timeout=60)
    assert list(response.outputs) == ["product"]
    assert outputs(response)["product"].tolist() == [10.0]


def test_named_signature_of_half_plus_two(stubs) -> None:
    # classify_x_to_y is a TF2 predict-method signature: Predict may call it by name.
    response = stubs.prediction.Predict(predict_request(
        "half_plus_two", {"inputs": _serialized_examples([2.0])}, signature="classify_x_to_y"),
        timeout=60)
    assert response.model_spec.signature_name == "classify_x_to_y"
    assert outputs(response)["scores"].tolist() == [[3.0]]


def _serialized_examples(values: list[float]) -> np.ndarray:
    import tensorflow as tf

    return np.array([tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[v]))})).SerializeToString()
        for v in values], dtype=object)


# ------------------------------------------------------------------ Classify, Regress, Multi


def test_classify_and_regress_as_tf_serving_tests(stubs) -> None:
    result = stubs.prediction.Classify(
        classify_request("half_plus_two", "classify_x_to_y", [{"x": 2.0}, {"x": 20.0}]),
        timeout=60)
    assert [[(c.label, c.score) for c in row.classes] for row in
            result.result.classifications] == [[("", 3.0)], [("", 12.0)]]
    assert result.model_spec.signature_name == "classify_x_to_y"
    regressed = stubs.prediction.Regress(
        regress_request("half_plus_two", "regress_x_to_y", [{"x": 2.0}, {"x": 80.0}]), timeout=60)
    assert [r.value for r in regressed.result.regressions] == [3.0, 42.0]
    assert regressed.model_spec.version.value == 1


def test_classify_merges_the_context_into_each_example(stubs) -> None:
    request = classify_request("half_plus_two", "classify_x_to_y", [])
    listed = request.input.example_list_with_context
    listed.context.features.feature["x"].float_list.value.append(10.0)
    listed.examples.add()
    result = stubs.prediction.Classify(request, timeout=60)
    assert result.result.classifications[0].classes[0].score == 7.0


def test_multi_inference_shares_one_input(stubs) -> None:
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (("classify_x_to_y", "tensorflow/serving/classify"),
                              ("regress_x_to_y", "tensorflow/serving/regress")):
        task = request.tasks.add()
        task.model_spec.name = "half_plus_two"
        task.model_spec.signature_name = signature
        task.method_name = method
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.append(2.0)
    response = stubs.prediction.MultiInference(request, timeout=60)
    first, second = response.results
    assert first.classification_result.classifications[0].classes[0].score == 3.0
    assert second.regression_result.regressions[0].value == 3.0
    assert (second.model_spec.signature_name, second.model_spec.version.value) == \
        ("regress_x_to_y", 1)


# ------------------------------------------------------------------ metadata and status


def test_get_model_metadata_packs_the_signature_def_map(stubs) -> None:
    response = stubs.prediction.GetModelMetadata(metadata_request("half_plus_two"), timeout=60)
    assert (response.model_spec.name, response.model_spec.version.value) == ("half_plus_two", 1)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def) == {"serving_default", "classify_x_to_y",
                                             "regress_x_to_y", "__saved_model_init_op"}
    default = signatures.signature_def["serving_default"]
    assert default.method_name == "tensorflow/serving/predict"
    assert default.inputs["x"].dtype == 1


def test_get_model_status_lists_states_as_enum_ints(stubs) -> None:
    response = stubs.model.GetModelStatus(status_request("versioned"), timeout=60)
    assert [(s.version, s.state, s.status.error_code) for s in response.model_version_status] == \
        [(3, 30, 0), (2, 30, 0), (1, 30, 0)]
    one = stubs.model.GetModelStatus(status_request("versioned", 2), timeout=60)
    assert [s.version for s in one.model_version_status] == [2]


# ------------------------------------------------------------------ errors


def _spec_only(model: str) -> predict_pb2.PredictRequest:
    return predict_request(model, {"x": np.array([1.0], np.float32)})


@pytest.mark.parametrize("request_factory, code, message", [
    (lambda: _spec_only("nope"), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Latest(nope)"),
    (lambda: predict_request("versioned", {"x": np.array([1.0], np.float32)}, version=9),
     grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(versioned, 9)"),
    (lambda: predict_request("versioned", {"x": np.array([1.0], np.float32)}, label="gold"),
     grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: gold"),
    (lambda: _spec_only(""), grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified."),
    (predict_pb2.PredictRequest, grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec"),
    (lambda: predict_request("half_plus_two", {"x": np.array([1.0], np.float32)},
                             signature="nah"),
     grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nah" not found.'),
    (lambda: predict_request("multi_io", {"a": np.array([1.0], np.float32)}),
     grpc.StatusCode.INVALID_ARGUMENT,
     ("input size does not match signature: 1!=2 len({a}) != len({a,b}). Sent extra: {}. "
      "Missing but required: {b}.")),
    (lambda: predict_request("half_plus_two", {"z": np.array([1.0], np.float32)}),
     grpc.StatusCode.INVALID_ARGUMENT,
     "input tensor alias not found in signature: z. Inputs expected to be in the set {x}."),
    (lambda: predict_request("half_plus_two", {"x": np.array([1.0], np.float64)}),
     grpc.StatusCode.INVALID_ARGUMENT, "Expects arg[0] to be float but double is provided"),
    (lambda: predict_request("multi_io", {"a": np.array([1.0], np.float32),
                                          "b": np.array([1.0], np.float32)},
                             output_filter=("sum", "nope")),
     grpc.StatusCode.INVALID_ARGUMENT,
     ("output tensor alias not found in signature: nope Outputs expected to be in the set "
      "{product,sum}.")),
    (lambda: predict_request("multi_io", {"a": np.array([1.0], np.float32),
                                          "b": np.array([1.0], np.float32)},
                             output_filter=("sum", "sum")),
     grpc.StatusCode.INVALID_ARGUMENT, "duplicate output tensor alias: sum"),
])
def test_predict_errors(stubs, request_factory, code, message) -> None:
    assert rpc_error(stubs.prediction.Predict, request_factory()) == (code, message)


def test_a_tensor_whose_content_does_not_match_its_shape(stubs) -> None:
    request = _spec_only("half_plus_two")
    request.inputs["x"].tensor_content = b"\x00" * 7
    assert rpc_error(stubs.prediction.Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error: x")


def test_long_messages_are_truncated_as_tf_serving(stubs) -> None:
    label = "l" * 2000
    code, details = rpc_error(stubs.prediction.Predict, predict_request(
        "versioned", {"x": np.array([1.0], np.float32)}, label=label))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == ("Unrecognized servable version label: " + label)[:1024] + "...TRUNCATED"


def test_classify_regress_and_multi_inference_errors(stubs) -> None:
    prediction = stubs.prediction
    assert rpc_error(prediction.Classify, classify_request("half_plus_two", "classify_x_to_y",
                                                           [])) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")
    assert rpc_error(prediction.Regress, regress_request("half_plus_two", "nah", [{"x": 1.0}])) \
        == (grpc.StatusCode.INVALID_ARGUMENT, "No signature was found with the name: nah")
    assert rpc_error(prediction.Classify, classify_request("multi_io", "", [{"x": 1.0}])) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Expected one input Tensor.")
    request = inference_pb2.MultiInferenceRequest()
    for method in ("tensorflow/serving/classify", "tensorflow/serving/predict"):
        task = request.tasks.add()
        task.model_spec.name = "half_plus_two"
        task.model_spec.signature_name = "classify_x_to_y" if "classify" in method else \
            "serving_default"
        task.method_name = method
    request.input.example_list.examples.add()
    assert rpc_error(prediction.MultiInference, request) == (
        grpc.StatusCode.UNIMPLEMENTED,
        "Unsupported signature method_name: tensorflow/serving/predict")
    request.tasks[1].model_spec.name = "ints"
    assert rpc_error(prediction.MultiInference, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "All ModelSpecs in a MultiInferenceRequest must access the same model name.")


@pytest.mark.parametrize("request_factory, message", [
    (lambda: metadata_request("half_plus_two", ()),
     "GetModelMetadataRequest must specify at least one metadata_field"),
    (lambda: metadata_request("half_plus_two", ("signature_def", "graph")),
     "Metadata field graph is not supported"),
    (lambda: get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"]),
     "Missing ModelSpec"),
])
def test_metadata_errors(stubs, request_factory, message) -> None:
    assert rpc_error(stubs.prediction.GetModelMetadata, request_factory()) == (
        grpc.StatusCode.INVALID_ARGUMENT, message)


def test_status_errors(stubs) -> None:
    assert rpc_error(stubs.model.GetModelStatus, status_request("nope")) == (
        grpc.StatusCode.NOT_FOUND, "Could not find any versions of model nope")
    assert rpc_error(stubs.model.GetModelStatus, status_request("versioned", 7)) == (
        grpc.StatusCode.NOT_FOUND, "Could not find version 7 of model versioned")


def test_reload_refuses_what_tf_serving_refuses(server, stubs, half_plus_two) -> None:
    request = model_management_pb2.ReloadConfigRequest()
    secret = [("x-tfserve-magic-secret", server.secret)]  # ours: reloading needs it
    assert rpc_error(stubs.model.HandleReloadConfigRequest, request, metadata=secret) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ("ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
         "ModelConfigList is currently supported"))
    for _ in range(2):
        entry = request.config.model_config_list.config.add(name="twice",
                                                            base_path=str(half_plus_two))
        entry.model_platform = "tensorflow"
    assert rpc_error(stubs.model.HandleReloadConfigRequest, request, metadata=secret) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Illegal to list model twice multiple times in config list")


def _grpc_predict_count(server: RunningServer, model: str, status: str) -> float:
    """The server's own count of gRPC Predict calls to ``model`` that ended with ``status``."""
    text = server.get("/monitoring/prometheus/metrics").body.decode()
    found = re.search(r'^tfserve_magic_request_count_total\{API="Predict",entrypoint="GRPC",'
                      rf'model_name="{model}",status="{status}",version="[0-9]*"\}} (\S+)$',
                      text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_the_server_gives_up_at_the_clients_deadline_and_counts_it(server, stubs, tmp_path) -> None:
    """The client's deadline bounds the model call on the server, as TF Serving's
    RunOptions.timeout_in_ms: a call held open by the gated model is abandoned at the deadline,
    logged and counted DEADLINE_EXCEEDED by the server (a server that left the deadline to the
    client would wait for the gate, and count nothing, or OK once it opens)."""
    gate = tmp_path / "open"
    request = predict_request("gated", {"gate": np.array([str(gate).encode()], object),
                                        "x": np.float32([1.5])})
    late, served = (_grpc_predict_count(server, "gated", s) for s in ("DEADLINE_EXCEEDED", "OK"))
    try:
        code, _ = rpc_error(stubs.prediction.Predict, request, timeout=3)
        assert code is grpc.StatusCode.DEADLINE_EXCEEDED
        # The model call runs on (its pool thread is not stopped; on a busy machine it may
        # only start after the deadline): the server still counts the request as given up.
        wait_for(lambda: Path(f"{gate}.started").exists(), 60, what="the model call to run")
        wait_for(lambda: _grpc_predict_count(server, "gated", "DEADLINE_EXCEEDED") == late + 1,
                 60, what="the server to count the call DEADLINE_EXCEEDED")
        assert "gRPC Predict gated -> DEADLINE_EXCEEDED: Deadline Exceeded" in server.log()
        assert _grpc_predict_count(server, "gated", "OK") == served
    finally:
        gate.write_text("")  # lets the abandoned call end on its pool thread
    answer = stubs.prediction.Predict(request, timeout=60)  # the gate is open: served at once
    assert outputs(answer)["y"].tolist() == [3.0]
    assert _grpc_predict_count(server, "gated", "OK") == served + 1
    assert _grpc_predict_count(server, "gated", "DEADLINE_EXCEEDED") == late + 1


def test_grpc_model_calls_run_on_the_pool_of_grpc_max_threads_not_the_event_loop(
        server, stubs, tmp_path) -> None:
    """Two calls held open by the gated model fill the pool of --grpc_max_threads=2: the event
    loop still answers REST and gRPC status calls, and a third Predict, refused on a pool thread
    in a moment once it has one, waits for a thread until its deadline; once the gates open all
    run. (A model call on the loop would stall the status calls; a bigger pool would refuse the
    third at once.)"""
    def gated_request(gate: Path) -> object:
        return predict_request("gated", {"gate": np.array([str(gate).encode()], object),
                                         "x": np.float32([1.5])})

    held = [tmp_path / "a", tmp_path / "b"]
    answers: list[object] = []
    threads = [threading.Thread(target=lambda g=gate: answers.append(
        stubs.prediction.Predict(gated_request(g), timeout=120))) for gate in held]
    (tmp_path / "open").write_text("")
    try:
        for thread in threads:
            thread.start()
        for gate in held:
            wait_for(lambda g=gate: Path(f"{g}.started").exists(), 60,
                     what="both held calls to be running")
        status = server.get("/v1/models/half_plus_two")
        assert status.status == 200, status.body
        assert stubs.model.GetModelStatus(status_request("gated"), timeout=60).model_version_status
        # Checked on a pool thread without TensorFlow (whose own threads the held calls use).
        misnamed = predict_request("half_plus_two", {"nope": np.float32([1.0])})
        code, _ = rpc_error(stubs.prediction.Predict, misnamed, timeout=3)
        assert code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert answers == []
    finally:
        for gate in held:
            gate.write_text("")
        for thread in threads:
            thread.join(120)
    assert [outputs(answer)["y"].tolist() for answer in answers] == [[3.0], [3.0]]
    assert rpc_error(stubs.prediction.Predict, misnamed)[0] is grpc.StatusCode.INVALID_ARGUMENT
    answer = stubs.prediction.Predict(gated_request(tmp_path / "open"), timeout=60)
    assert outputs(answer)["y"].tolist() == [3.0]


# ------------------------------------------------------------------ health, socket, metrics


def test_health_service_marks_tf_serving_services_serving(server) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "PredictionService", "ModelService"):
            response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
            assert response.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as error:
            health.Check(health_pb2.HealthCheckRequest(service="Nope"), timeout=30)
        assert error.value.code() is grpc.StatusCode.NOT_FOUND


def test_unix_socket_serves_the_same_api(server) -> None:
    socket_stubs = Stubs(f"unix:{server.handshake['grpc_socket_path']}")
    try:
        response = socket_stubs.prediction.Predict(_spec_only("half_plus_two"), timeout=60)
        assert outputs(response)["y"].tolist() == [2.5]
    finally:
        socket_stubs.close()


def test_metrics_count_grpc_requests_by_entrypoint(server, stubs) -> None:
    stubs.prediction.Predict(_spec_only("half_plus_two"), timeout=60)
    rpc_error(stubs.prediction.Predict, _spec_only("nope"))
    server.post("/v1/models/half_plus_two:predict", {"instances": [1.0]})
    text = server.get("/monitoring/prometheus/metrics").body.decode()
    assert ('tfserve_magic_request_count_total{API="Predict",entrypoint="GRPC",'
            'model_name="half_plus_two",status="OK",version="1"}') in text
    assert ('tfserve_magic_request_count_total{API="Predict",entrypoint="GRPC",'
            'model_name="nope",status="NOT_FOUND",version=""}') in text
    assert ('tfserve_magic_request_count_total{API="Predict",entrypoint="REST",'
            'model_name="half_plus_two",status="OK",version="1"}') in text
    assert (':tensorflow:serving:request_latency_count{API="Predict",entrypoint="GRPC",'
            'model_name="half_plus_two"}') in text
