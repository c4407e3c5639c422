"""``%tfserve warmup``: a request log (as ``logging_config`` writes it) becomes a version's
warmup file, one model's requests only, responses dropped; mistakes get one clear message.
(The whole round trip, a live server's log replayed by the next version at its load, is in
tests/serving/api/test_request_log.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def _write_log(path: Path, models: list[str]) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        for index, model in enumerate(models):
            entry = prediction_log_pb2.PredictionLog()
            entry.log_metadata.model_spec.name = model
            request = entry.predict_log.request
            request.model_spec.name = model
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([float(index)], dtype=tf.float32))
            entry.predict_log.response.outputs["y"].CopyFrom(tf.make_tensor_proto([0.0]))
            writer.write(entry.SerializeToString())


def _read(path: Path) -> list[Any]:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    entries = []
    for record in tf.data.TFRecordDataset(str(path)):
        entry = prediction_log_pb2.PredictionLog()
        entry.ParseFromString(record.numpy())
        entries.append(entry)
    return entries


def test_warmup_magic_writes_one_models_requests(ip, capsys, tmp_path, half_plus_two) -> None:
    import tensorflow as tf

    logs = tmp_path / "logs"
    logs.mkdir()
    _write_log(logs / "requests.11.20260101-000000.00001.tfrecord", ["h", "other", "h"])
    _write_log(logs / "requests.11.20260101-000000.00002.tfrecord", ["h"])
    version = tmp_path / "h" / "2"
    shutil.copytree(half_plus_two / "1", version)
    ip.run_line_magic("tfserve", f"warmup {logs / 'requests'} {version} --model h")
    out, err = capsys.readouterr()
    target = version / "assets.extra" / "tf_serving_warmup_requests"
    assert err == ""
    assert out.strip() == (f"Wrote 3 requests (of 4 logged, from 2 file(s)) to {target}; the "
                           "version replays them when it loads.")
    entries = _read(target)
    assert [tf.make_ndarray(e.predict_log.request.inputs["x"]).tolist() for e in entries] == \
        [[0.0], [2.0], [0.0]]
    assert not any(e.predict_log.HasField("response") for e in entries)


def test_warmup_magic_says_what_is_wrong(ip, capsys, tmp_path) -> None:
    ip.run_line_magic("tfserve", f"warmup {tmp_path / 'nothing'} {tmp_path}")
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (f"%tfserve warmup: {tmp_path} is not a SavedModel version folder "
                           "(no saved_model.pb)")
