"""Warmup: replaying a version's ``assets.extra/tf_serving_warmup_requests`` as it loads.

The file is a TFRecord file of ``tensorflow.serving.PredictionLog`` records, as TF Serving's
``servables/tensorflow/saved_model_warmup*.cc`` reads it: each record is run
``--num_request_iterations_for_warmup`` times (default 1) before the version is made available;
every kind TF Serving replays is replayed (``predict_log``, ``classify_log``, ``regress_log``,
``multi_inference_log``), any other kind fails the load, as does a record that does not parse or
a file of more than 1000 records (TF Serving's ``kMaxNumRecords``). Request logs written by
``logging_config`` are files of the same records, so captured traffic can warm the next version.
No TensorFlow here: the loader calls :func:`replay_version` with TensorFlow's record reader and
tensor conversion bound in by the server (the generated protos, which import TensorFlow, are
imported when a file is replayed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from tfserve_magic.serving.models import inference
from tfserve_magic.serving.models.manager import Servable
from tfserve_magic.serving.status_errors import LoadError, Unimplemented

__all__ = ["MAX_RECORDS", "WARMUP_FILE", "replay", "replay_version"]

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000  # TF Serving's WarmupConsts::kMaxNumRecords
_DEFAULT_SIGNATURE = "serving_default"
_CLASSIFY = "tensorflow/serving/classify"
_REGRESS = "tensorflow/serving/regress"


def replay_version(servable: Servable, version_path: str, *,
                   read_records: Callable[[str], Iterable[bytes]],
                   to_array: Callable[[Any], np.ndarray], iterations: int = 1) -> int:
    """Replay the version folder's warmup file; 0 when it has none."""
    path = os.path.join(version_path, WARMUP_FILE)
    if not os.path.exists(path):
        return 0
    return replay(servable, path, read_records(path), to_array, iterations)


def replay(servable: Servable, path: str, records: Iterable[bytes],
           to_array: Callable[[Any], np.ndarray], iterations: int = 1) -> int:
    """Run each record of the warmup file at ``path`` ``iterations`` times (``to_array``:
    a TensorProto to numpy); returns how many records were read. Raises LoadError, or the
    StatusError a record's call raised."""
    from tensorflow_serving.apis import prediction_log_pb2

    count = 0
    for record in records:
        entry = prediction_log_pb2.PredictionLog()
        try:
            entry.ParseFromString(record)
        except DecodeError:
            raise LoadError(f"Failed to parse warmup record {count + 1} from {path}") from None
        for _ in range(iterations):
            _run(servable, entry, to_array)
        count += 1
        if count > MAX_RECORDS:
            raise LoadError(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) "
                            f"at {path}")
    return count


def _signature(request: Any) -> str:
    return str(request.model_spec.signature_name) or _DEFAULT_SIGNATURE


def _run(servable: Servable, entry: Any, to_array: Callable[[Any], np.ndarray]) -> None:
    kind = entry.WhichOneof("log_type")
    if kind == "predict_log":
        request = entry.predict_log.request
        servable.run(_signature(request), {name: to_array(tensor)
                                           for name, tensor in request.inputs.items()})
    elif kind == "classify_log":
        request = entry.classify_log.request
        inference.classify(servable, _signature(request),
                           inference.serialized_input(request.input), False)
    elif kind == "regress_log":
        request = entry.regress_log.request
        inference.regress(servable, _signature(request),
                          inference.serialized_input(request.input), False)
    elif kind == "multi_inference_log":
        request = entry.multi_inference_log.request
        serialized = inference.serialized_input(request.input)
        for task in request.tasks:
            if task.method_name == _CLASSIFY:
                inference.classify(servable, _signature(task), serialized, False)
            elif task.method_name == _REGRESS:
                inference.regress(servable, _signature(task), serialized, False)
            else:
                raise Unimplemented(f"Unsupported signature method_name: {task.method_name}")
    else:
        raise LoadError(f"Unsupported log_type for warmup: {kind}")
