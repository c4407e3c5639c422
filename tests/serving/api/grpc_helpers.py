"""Requests built the way TF Serving's own clients build them (official stubs and messages)."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)


class Stubs:
    """Both services over one channel."""

    def __init__(self, target: str, options: list[tuple[str, Any]] | None = None) -> None:
        self.channel = grpc.insecure_channel(target, options=options or [])
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()


def predict_request(model: str, inputs: dict[str, Any], *, version: int | None = None,
                    label: str | None = None, signature: str = "",
                    output_filter: tuple[str, ...] = ()) -> Any:
    """Inputs as ``tf.make_tensor_proto`` makes them (numeric arrays go as tensor_content)."""
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(value if hasattr(value, "dtype") and
                                      not isinstance(value, np.ndarray)
                                      else tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request


def outputs(response: Any) -> dict[str, np.ndarray]:
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def examples_input(target: Any, rows: list[dict[str, float]]) -> None:
    for row in rows:
        example = target.example_list.examples.add()
        for key, value in row.items():
            example.features.feature[key].float_list.value.append(value)


def examples_request(kind: str, model: str, signature: str,
                     rows: list[dict[str, float]]) -> Any:
    """A ClassificationRequest (``kind="classify"``) or RegressionRequest of these examples."""
    request = (classification_pb2.ClassificationRequest() if kind == "classify"
               else regression_pb2.RegressionRequest())
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    examples_input(request.input, rows)
    return request


def classify_request(model: str, signature: str, rows: list[dict[str, float]]) -> Any:
    return examples_request("classify", model, signature, rows)


def regress_request(model: str, signature: str, rows: list[dict[str, float]]) -> Any:
    return examples_request("regress", model, signature, rows)


def metadata_request(model: str, fields: tuple[str, ...] = ("signature_def",)) -> Any:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = model
    request.metadata_field.extend(fields)
    return request


def status_request(model: str, version: int | None = None) -> Any:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    return request


def rpc_error(call: Any, request: Any, **kwargs: Any) -> tuple[grpc.StatusCode, str]:
    """(code, details) of a call that must fail."""
    try:
        call(request, timeout=kwargs.pop("timeout", 60), **kwargs)
    except grpc.RpcError as error:
        return error.code(), error.details()
    raise AssertionError("the call succeeded")
