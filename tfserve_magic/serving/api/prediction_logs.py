"""The ``PredictionLog`` records of logged calls (``apis/prediction_log.proto``), REST and gRPC alike.

A gRPC call is logged with the request it received and the response it sent. A REST call is
logged as the gRPC call it amounts to, as TF Serving's REST handler turns JSON into the same
``PredictRequest`` / ``ClassificationRequest`` / ``RegressionRequest`` before logging: the inputs
as tensors, the examples as ``tf.Example`` protos (a context merged into each), the outputs as the
response. ``log_metadata`` carries the model, the version that answered, the signature, the
sampling config and the SavedModel tags. Every function here runs on the request log's writer
thread, never on the request path; the generated protos (which import TensorFlow) are imported
there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tfserve_magic.serving.api.context import ServerContext
from tfserve_magic.serving.models.config import RequestLogging

__all__ = ["LogContext", "Recorder", "grpc_record", "log_grpc_call", "recorder",
           "rest_classify_record", "rest_predict_record", "rest_regress_record"]

# Records one finished REST call: ``record(builder, *parts)`` queues ``builder(context, *parts)``.
Recorder = Callable[..., None]

_KINDS = {"Predict": "predict_log", "Classify": "classify_log", "Regress": "regress_log",
          "MultiInference": "multi_inference_log"}


class LogContext:
    """What every record of one call says about it."""

    __slots__ = ("model", "settings", "signature", "tags", "version")

    def __init__(self, model: str, version: int, signature: str, settings: RequestLogging,
                 tags: Sequence[str]) -> None:
        self.model = model
        self.version = version
        self.signature = signature
        self.settings = settings
        self.tags = tags

    def record(self, kind: str) -> tuple[Any, Any]:
        """A PredictionLog with its metadata filled, and its ``kind`` part."""
        from tensorflow_serving.apis import prediction_log_pb2

        entry = prediction_log_pb2.PredictionLog()
        meta = entry.log_metadata
        meta.model_spec.name = self.model
        meta.model_spec.version.value = self.version
        meta.model_spec.signature_name = self.signature
        meta.sampling_config.sampling_rate = self.settings.sampling_rate
        meta.saved_model_tags.extend(self.tags)
        meta.timestamp_secs = int(time.time())
        return entry, getattr(entry, kind)

    def spec(self, target: Any) -> None:
        target.name = self.model
        target.version.value = self.version
        target.signature_name = self.signature


def grpc_record(api: str, context: LogContext, request: Any, response: Any) -> bytes:
    """A gRPC call as it was received and answered."""
    entry, part = context.record(_KINDS[api])
    part.request.CopyFrom(request)
    part.response.CopyFrom(response)
    return bytes(entry.SerializeToString())


def rest_predict_record(context: LogContext, inputs: Mapping[str, np.ndarray],
                        outputs: Mapping[str, np.ndarray]) -> bytes:
    from tfserve_magic.serving.tensor_protos import to_tensor_proto

    entry, part = context.record("predict_log")
    context.spec(part.request.model_spec)
    for name, array in inputs.items():
        to_tensor_proto(np.asarray(array), part.request.inputs[name])
    context.spec(part.response.model_spec)
    for name, array in outputs.items():
        to_tensor_proto(np.asarray(array), part.response.outputs[name])
    return bytes(entry.SerializeToString())


def _examples(target: Any, serialized: np.ndarray) -> None:
    for data in serialized:
        target.example_list.examples.add().ParseFromString(data)


def rest_classify_record(context: LogContext, serialized: np.ndarray,
                         classes: np.ndarray | None, scores: np.ndarray | None) -> bytes:
    entry, part = context.record("classify_log")
    context.spec(part.request.model_spec)
    _examples(part.request.input, serialized)
    context.spec(part.response.model_spec)
    rows = (classes if classes is not None else scores)
    assert rows is not None  # inference.classify returns one of them at least
    for row in range(rows.shape[0]):
        classification = part.response.result.classifications.add()
        for column in range(rows.shape[1]):
            entry_class = classification.classes.add()
            if classes is not None:
                label = classes[row, column]
                entry_class.label = label.decode("utf-8", "replace") \
                    if isinstance(label, bytes) else str(label)
            if scores is not None:
                entry_class.score = float(scores[row, column])
    return bytes(entry.SerializeToString())


def rest_regress_record(context: LogContext, serialized: np.ndarray, values: np.ndarray) -> bytes:
    entry, part = context.record("regress_log")
    context.spec(part.request.model_spec)
    _examples(part.request.input, serialized)
    context.spec(part.response.model_spec)
    for value in values.tolist():
        part.response.result.regressions.add().value = value
    return bytes(entry.SerializeToString())


def recorder(ctx: ServerContext, model: str, served: int, signature: str) -> Recorder | None:
    """For a REST call to ``model`` that its sampling picked: what records it, else None."""
    request_log = ctx.request_log
    settings = request_log.sampled(model) if request_log is not None else None
    if request_log is None or settings is None:
        return None
    context = LogContext(model, served, signature, settings, ctx.options.tags)

    def record(builder: Callable[..., bytes], *parts: Any) -> None:
        request_log.submit(settings, lambda: builder(context, *parts))

    return record


def log_grpc_call(ctx: ServerContext, api: str, spec: Any, served: int, request: Any,
                  response: Any) -> None:
    """Queue a finished gRPC call's record when its model's sampling picks it."""
    request_log = ctx.request_log
    settings = request_log.sampled(spec.name) if request_log is not None else None
    if request_log is None or settings is None:
        return
    context = LogContext(spec.name, served, spec.signature_name or "serving_default", settings,
                         ctx.options.tags)
    request_log.submit(settings, lambda: grpc_record(api, context, request, response))
