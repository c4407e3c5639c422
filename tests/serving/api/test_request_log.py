"""Request logging from ``logging_config``: REST and gRPC calls written as TF Serving's
``PredictionLog`` records to TFRecord files, read back with ``tf.data.TFRecordDataset``; the
sampling rate honoured; an unwritable folder and a full disk reported and never failing a
request; the captured log made the next version's warmup file and replayed at its load."""

from __future__ import annotations

import json
import resource
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_helpers import classify_request, predict_request
from server_process import RunningServer, start_server, wait_for, write_server_config
from tensorflow_serving.apis import (
    inference_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfserve_magic.operations.warmup import WarmupError, log_files, warmup_from_log


def _logging(prefix: Path, rate: float) -> str:
    return (f'logging_config {{ log_collector_config {{ filename_prefix: "{prefix}" }} '
            f'sampling_config {{ sampling_rate: {rate} }} }}')


def _records(prefix: Path) -> list[Any]:
    import tensorflow as tf

    entries = []
    for path in log_files(str(prefix)):
        try:
            for record in tf.data.TFRecordDataset(path):
                entry = prediction_log_pb2.PredictionLog()
                entry.ParseFromString(record.numpy())
                entries.append(entry)
        except tf.errors.DataLossError:
            pass  # the last record of a file still being written
    return entries


def _wait_records(prefix: Path, count: int) -> list[Any]:
    return wait_for(lambda: (lambda found: found if len(found) >= count else None)(
        _records(prefix)), 60, what=f"{count} records in {prefix}.*")


@pytest.fixture(scope="module")
def logged(tmp_path_factory, half_plus_two) -> Iterator[tuple[RunningServer, Path]]:
    root = tmp_path_factory.mktemp("request_log")
    logs = root / "logs"
    logs.mkdir()
    shutil.copytree(half_plus_two, root / "tenth")
    config, _ = write_server_config(root, {
        "h": (half_plus_two, _logging(logs / "h", 1.0)),
        "tenth": (root / "tenth", _logging(logs / "tenth", 0.1)),
    })
    server = start_server(f"--model_config_file={config}", log_dir=root)
    try:
        server.wait_state("h", 1)
        server.wait_state("tenth", 1)
        yield server, logs
    finally:
        server.stop()


def test_rest_and_grpc_calls_are_logged_as_sent_and_answered(logged) -> None:
    import tensorflow as tf

    server, logs = logged
    rest_predict = server.post("/v1/models/h:predict", {"instances": [1.0, 2.0]}).json()
    rest_classify = server.post("/v1/models/h:classify", {
        "signature_name": "classify_x_to_y", "examples": [{"x": 3.0}]}).json()
    rest_regress = server.post("/v1/models/h:regress", {
        "signature_name": "regress_x_to_y", "examples": [{"x": 4.0}]}).json()
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        predict = predict_request("h", {"x": np.array([5.0], np.float32)})
        predicted = stub.Predict(predict, timeout=60)
        classify = classify_request("h", "classify_x_to_y", [{"x": 6.0}])
        classified = stub.Classify(classify, timeout=60)
        regress = regression_pb2.RegressionRequest()
        regress.model_spec.name, regress.model_spec.signature_name = "h", "regress_x_to_y"
        regress.input.example_list.examples.add().features.feature["x"].float_list.value.append(7)
        regressed = stub.Regress(regress, timeout=60)
        multi = inference_pb2.MultiInferenceRequest()
        task = multi.tasks.add()
        task.model_spec.name, task.model_spec.signature_name = "h", "regress_x_to_y"
        task.method_name = "tensorflow/serving/regress"
        multi.input.example_list.examples.add().features.feature["x"].float_list.value.append(8)
        inferred = stub.MultiInference(multi, timeout=60)

    entries = _wait_records(logs / "h", 7)
    assert len(entries) == 7  # in the order answered: one client, one call at a time
    kinds = [entry.WhichOneof("log_type") for entry in entries]
    assert kinds == ["predict_log", "classify_log", "regress_log", "predict_log",
                     "classify_log", "regress_log", "multi_inference_log"]
    for entry in entries:
        meta = entry.log_metadata
        assert (meta.model_spec.name, meta.model_spec.version.value) == ("h", 1)
        assert meta.sampling_config.sampling_rate == 1.0 and list(meta.saved_model_tags) == \
            ["serve"]
    # REST calls as the gRPC calls they amount to: the sent values, the returned answers.
    rest = entries[0].predict_log
    assert tf.make_ndarray(rest.request.inputs["x"]).tolist() == [1.0, 2.0]
    assert tf.make_ndarray(rest.response.outputs["y"]).tolist() == rest_predict["predictions"]
    example = entries[1].classify_log.request.input.example_list.examples[0]
    assert list(example.features.feature["x"].float_list.value) == [3.0]
    classes = entries[1].classify_log.response.result.classifications[0].classes
    assert [[c.label, c.score] for c in classes] == rest_classify["results"][0]
    assert [r.value for r in entries[2].regress_log.response.result.regressions] == \
        rest_regress["results"]
    # gRPC calls exactly as received and answered.
    assert (entries[3].predict_log.request, entries[3].predict_log.response) == \
        (predict, predicted)
    assert (entries[4].classify_log.request, entries[4].classify_log.response) == \
        (classify, classified)
    assert (entries[5].regress_log.request, entries[5].regress_log.response) == \
        (regress, regressed)
    assert (entries[6].multi_inference_log.request, entries[6].multi_inference_log.response) \
        == (multi, inferred)
    # A refused call is not logged (TF Serving logs answered calls).
    assert server.post("/v1/models/h:predict", {"instances": ["text"]}).status == 400


def test_the_sampling_rate_is_honoured(logged) -> None:
    server, logs = logged
    calls = 600
    body = json.dumps({"instances": [1.0]})
    for _ in range(calls):
        assert server.post("/v1/models/tenth:predict", body).status == 200
    server.post("/v1/models/h:predict", {"instances": [0.0]})  # a marker: written after them
    wait_for(lambda: any(entry.predict_log.request.inputs["x"].float_val == [0.0]
                         for entry in _records(logs / "h")), 60, what="the marker record")
    logged_count = len(_records(logs / "tenth"))
    # 600 draws at 0.1: 60 expected, standard deviation 7.3; this band is over 5 of them.
    assert 22 <= logged_count <= 100, logged_count


@pytest.fixture(scope="module")
def failing(tmp_path_factory, half_plus_two) -> Iterator[tuple[RunningServer, Path]]:
    root = tmp_path_factory.mktemp("failing_log")
    (root / "a_file").write_text("not a folder")
    (root / "logs").mkdir()
    shutil.copytree(half_plus_two, root / "full")
    config, _ = write_server_config(root, {
        "nowhere": (half_plus_two, _logging(root / "a_file" / "logs" / "n", 1.0)),
        "full": (root / "full", _logging(root / "logs" / "full", 1.0)),
    })
    server = start_server(f"--model_config_file={config}", log_dir=root)
    try:
        server.wait_state("nowhere", 1)
        server.wait_state("full", 1)
        yield server, root
    finally:
        server.stop()


def test_an_unwritable_folder_is_reported_and_fails_no_request(failing) -> None:
    server, root = failing
    for value in range(5):
        assert server.post("/v1/models/nowhere:predict", {"instances": [float(value)]}).json() \
            == {"predictions": [value / 2 + 2]}
    wait_for(lambda: f"Request log: cannot write {root}/a_file/logs/n.*" in server.log(), 60,
             what="the request log's complaint")
    assert server.log().count("Request log: cannot write") == 1  # once per cause and minute


def test_a_full_disk_is_reported_and_fails_no_request(failing) -> None:
    server, root = failing
    # Files of this server may not grow past 256 KiB from now on: a disk that fills up.
    limit = 256 * 1024
    assert Path(server.log_path).stat().st_size < limit // 2
    resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (limit, limit))
    big = json.dumps({"instances": [0.5] * 8192})  # a record of 32 KiB and more
    for _ in range(16):
        response = server.post("/v1/models/full:predict", big)
        assert response.status == 200 and len(response.json()["predictions"]) == 8192
    wait_for(lambda: f"Request log: cannot write {root}/logs/full.*" in server.log(), 60,
             what="the request log's complaint")
    assert "File too large" in server.log()
    assert server.post("/v1/models/full:predict", {"instances": [1.0]}).json() == \
        {"predictions": [2.5]}


def test_captured_traffic_warms_the_next_version(tmp_path, plus_version_builds) -> None:
    from models import build_call_counter

    base = tmp_path / "counter"
    build_call_counter(str(base))
    logs = tmp_path / "logs"
    logs.mkdir()
    config, _ = write_server_config(tmp_path, {"counter": (base, _logging(logs / "c", 1.0))})
    server = start_server(f"--model_config_file={config}", "--file_system_poll_wait_seconds=1",
                          log_dir=tmp_path)
    try:
        server.wait_state("counter", 1)
        for value in (1.0, 2.0, 3.0):
            server.post("/v1/models/counter:predict", {"instances": [value]})
        _wait_records(logs / "c", 3)
        staged = tmp_path / "staged"
        shutil.copytree(base / "1", staged)  # the next version, before the server sees it
        written = warmup_from_log(str(logs / "c"), staged, model="counter")
        assert (written.records, written.read) == (3, 3)
        staged.rename(base / "2")
        server.wait_state("counter", 2)
        # Its three warmup calls ran before this, its first real one.
        assert server.post("/v1/models/counter/versions/2:predict",
                           {"instances": [0.0]}).json() == {"predictions": [4.0]}
        assert "Number of warmup records read: 3." in server.log()
    finally:
        server.stop()
    with pytest.raises(WarmupError, match="hold no request to model other"):
        warmup_from_log(str(logs / "c"), base / "1", model="other")
    with pytest.raises(WarmupError, match="no request log files"):
        warmup_from_log(str(logs / "nothing"), base / "1")
    with pytest.raises(WarmupError, match="is not a SavedModel version folder"):
        warmup_from_log(str(logs / "c"), tmp_path)


def test_files_rotate_and_only_the_newest_are_kept(tmp_path, half_plus_two) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    config, _ = write_server_config(tmp_path, {"h": (half_plus_two, _logging(logs / "r", 1.0))})
    server = start_server(f"--model_config_file={config}", "--request_log_file_bytes=2000",
                          "--request_log_max_files=3", log_dir=tmp_path)
    try:
        server.wait_state("h", 1)
        for value in range(60):
            assert server.post("/v1/models/h:predict", {"instances": [float(value)]}).status \
                == 200
        wait_for(lambda: any(entry.predict_log.request.inputs["x"].float_val == [59.0]
                             for entry in _records(logs / "r")), 60, what="the last record")
        files = log_files(str(logs / "r"))
        assert len(files) == 3  # rotated many times, the oldest deleted
        assert [path.rsplit(".", 2)[-2] for path in files] == sorted(
            path.rsplit(".", 2)[-2] for path in files)
        record = 2000 // 10  # a record is well under this: a file stops one record past 2000
        assert all(Path(path).stat().st_size < 2000 + record for path in files)
        kept = [entry.predict_log.request.inputs["x"].float_val[0]
                for entry in _records(logs / "r")]
        assert kept == sorted(kept) and kept[-1] == 59.0 and kept[0] > 0.0
    finally:
        server.stop()
