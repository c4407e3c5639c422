"""Warmup replay as TF Serving does it: --num_request_iterations_for_warmup runs each record that
many times (a model that counts its calls shows it), every record kind TF Serving replays is
replayed (predict, classify, regress, multi_inference), and a record that cannot be replayed fails
the version's load with its reason."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_process import RunningServer, run_server_expecting_failure, start_server, write_server_config


def _write(version_dir: Path, logs: list[Any]) -> None:
    import tensorflow as tf

    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for entry in logs:
            writer.write(entry.SerializeToString())


def _examples(target: Any, values: list[float]) -> None:
    for value in values:
        target.example_list.examples.add().features.feature["x"].float_list.value.append(value)


def _predict(value: float) -> Any:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([value], dtype=tf.float32))
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))


def _classify() -> Any:
    from tensorflow_serving.apis import prediction_log_pb2

    entry = prediction_log_pb2.PredictionLog()
    entry.classify_log.request.model_spec.signature_name = "classify_x_to_y"
    _examples(entry.classify_log.request.input, [1.0, 2.0])
    return entry


def _regress() -> Any:
    from tensorflow_serving.apis import prediction_log_pb2

    entry = prediction_log_pb2.PredictionLog()
    entry.regress_log.request.model_spec.signature_name = "regress_x_to_y"
    _examples(entry.regress_log.request.input, [3.0])
    return entry


def _multi_inference(*tasks: tuple[str, str]) -> Any:
    from tensorflow_serving.apis import prediction_log_pb2

    entry = prediction_log_pb2.PredictionLog()
    request = entry.multi_inference_log.request
    for signature, method in tasks:
        task = request.tasks.add()
        task.model_spec.name = "h"
        task.model_spec.signature_name = signature
        task.method_name = f"tensorflow/serving/{method}"
    _examples(request.input, [1.0])
    return entry


def _session_run() -> Any:
    from tensorflow_serving.apis import prediction_log_pb2

    entry = prediction_log_pb2.PredictionLog()
    entry.session_run_log.request.feed.add()
    return entry


@pytest.fixture(scope="module")
def warm_server(tmp_path_factory, half_plus_two) -> Iterator[RunningServer]:
    from models import build_call_counter

    root = tmp_path_factory.mktemp("warmup")
    build_call_counter(str(root / "counted"))
    _write(root / "counted" / "1", [_predict(1.0), _predict(2.0)])
    for name in ("kinds", "bad_task", "session"):
        shutil.copytree(half_plus_two / "1", root / name / "1")
    _write(root / "kinds" / "1", [
        _classify(), _regress(),
        _multi_inference(("classify_x_to_y", "classify"), ("regress_x_to_y", "regress"))])
    _write(root / "bad_task" / "1", [_multi_inference(("nope", "regress"))])
    _write(root / "session" / "1", [_session_run()])
    config, _ = write_server_config(root, {name: (root / name, "") for name in (
        "counted", "kinds", "bad_task", "session")})
    server = start_server(f"--model_config_file={config}", "--max_num_load_retries=0",
                          "--num_request_iterations_for_warmup=3", log_dir=root)
    try:
        yield server
    finally:
        server.stop()


def test_each_record_is_replayed_as_many_times_as_asked(warm_server) -> None:
    warm_server.wait_state("counted", 1)
    # Two records, three times each: the first real call is the seventh.
    assert warm_server.post("/v1/models/counted:predict", {"instances": [0.0]}).json() == \
        {"predictions": [7.0]}
    assert "Number of warmup records read: 2. Each replayed 3 time(s)." in warm_server.log()


def test_classify_regress_and_multi_inference_records_are_replayed(warm_server) -> None:
    warm_server.wait_state("kinds", 1)
    assert "Number of warmup records read: 3. Each replayed 3 time(s)." in warm_server.log()


@pytest.mark.parametrize(("model", "message"), [
    ("bad_task", "Warmup failed: No signature was found with the name: nope"),
    ("session", "Unsupported log_type for warmup: session_run_log"),
])
def test_a_record_that_cannot_be_replayed_fails_the_load(warm_server, model, message) -> None:
    warm_server.wait_state(model, 1, "END")
    status = warm_server.get(f"/v1/models/{model}").json()["model_version_status"][0]["status"]
    assert message in status["error_message"]


def test_a_negative_iteration_count_is_refused(half_plus_two: Path) -> None:
    result = run_server_expecting_failure(f"--model_base_path={half_plus_two}",
                                          "--num_request_iterations_for_warmup=-1")
    assert result.returncode == 1
    assert "--num_request_iterations_for_warmup must not be negative" in result.stderr
