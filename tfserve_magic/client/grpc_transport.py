"""The gRPC transport of :class:`tfserve_magic.client.client.Client`: TF Serving's
``PredictionService`` and ``ModelService`` through the official stubs of ``tensorflow-serving-api``.

Same methods and return types as the REST client (numpy arrays, or a dict of arrays for several
outputs; classify/regress ``results`` lists; :class:`VersionStatus` rows; metadata as TF
Serving's JSON). Numeric inputs go as ``tensor_content`` (one packed buffer, no per-element
work: why users pick gRPC for large inputs), cast to the signature's dtype, which is read once per
model route from GetModelMetadata. Errors raise :class:`ServingError` with TF Serving's message
and the gRPC code. The generated protos import the ``tensorflow`` package, so they are imported
when a transport is created, never when this module is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfserve_magic.client.tls import ClientTls
from tfserve_magic.client.transport import (
    Prediction,
    RequestError,
    ServingError,
    check_route,
    signature_defs,
)
from tfserve_magic.serving.tensor_protos import from_tensor_proto, to_tensor_proto
from tfserve_magic.status import SECRET_HEADER, Code, VersionState, VersionStatus

__all__ = ["GrpcTransport"]

_NUMPY = {"DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_INT32": np.int32,
          "DT_INT64": np.int64, "DT_BOOL": np.bool_, "DT_INT8": np.int8, "DT_INT16": np.int16,
          "DT_UINT8": np.uint8, "DT_UINT16": np.uint16, "DT_UINT32": np.uint32,
          "DT_UINT64": np.uint64, "DT_HALF": np.float16, "DT_STRING": np.object_}
_UNLIMITED = -1


def _error(error: Any, target: str) -> ServingError:
    code = error.code()
    name = code.name if code is not None else "UNKNOWN"
    if name == "UNAVAILABLE":
        return ServingError(0, f"cannot reach {target}: {error.details()}", code=name)
    return ServingError(Code.from_name(name).http_status, error.details() or name, code=name)


class GrpcTransport:
    """TF Serving's gRPC API at ``target`` (``host:port`` or ``unix:/path``)."""

    def __init__(self, target: str, *, timeout: float = 60.0, secret: str = "",
                 tls: ClientTls | None = None) -> None:
        """``secret``: a tfserve_magic server's, sent in every call's metadata; it opens
        ``HandleReloadConfigRequest``, and every method of a server started with
        ``--require_secret``."""
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.target = target
        self.timeout = timeout
        self._metadata = ((SECRET_HEADER.lower(), secret),) if secret else ()
        # No size limit on answers: a large prediction is what gRPC is picked for.
        options = [("grpc.max_receive_message_length", _UNLIMITED),
                   ("grpc.max_send_message_length", _UNLIMITED)]
        # With ``tls``: a server started with --ssl_config_file (mutual TLS with a cert_file).
        self._channel = grpc.insecure_channel(target, options=options) if tls is None else \
            grpc.secure_channel(target, tls.grpc_credentials(), options=options)
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._model = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._inputs: dict[tuple[str, int | None, str | None, str], dict[str, str]] = {}

    def __repr__(self) -> str:
        return f"GrpcTransport({self.target!r})"

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Any, request: Any) -> Any:
        import grpc

        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise _error(error, self.target) from None

    @staticmethod
    def _spec(target: Any, model: str, version: int | None, label: str | None,
              signature: str | None = None) -> None:
        check_route(version, label)
        target.name = model
        if version is not None:
            target.version.value = int(version)
        elif label is not None:
            target.version_label = label
        if signature:
            target.signature_name = signature

    def reload_config(self, config: Any) -> None:
        """``ModelService.HandleReloadConfigRequest``: serve ``config`` (a ModelServerConfig)
        from now on. Raises ServingError with the server's reason when it refuses."""
        from tensorflow_serving.apis import model_management_pb2

        request = model_management_pb2.ReloadConfigRequest()
        request.config.CopyFrom(config)
        status = self._call(self._model.HandleReloadConfigRequest, request).status
        if status.error_code:
            code = Code(status.error_code)
            raise ServingError(code.http_status, status.error_message, code=code.name)

    # ---------------------------------------------------------------- status and metadata

    def status(self, model: str, version: int | None = None) -> list[VersionStatus]:
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version, None)
        response = self._call(self._model.GetModelStatus, request)
        return [VersionStatus(s.version, VersionState(s.state), Code(s.status.error_code),
                              s.status.error_message)
                for s in response.model_version_status]

    def metadata(self, model: str, *, version: int | None = None,
                 label: str | None = None) -> dict[str, Any]:
        """As the REST metadata API renders it (``signature_def`` nested twice)."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, version, label)
        response = self._call(self._prediction.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return {"model_spec": {"name": response.model_spec.name, "signature_name": "",
                               "version": str(response.model_spec.version.value)},
                "metadata": {"signature_def": json_format.MessageToDict(
                    signatures, preserving_proto_field_name=True,
                    always_print_fields_with_no_presence=True)}}

    def _input_dtypes(self, model: str, version: int | None, label: str | None,
                      signature: str) -> dict[str, str]:
        key = (model, version, label, signature)
        if key not in self._inputs:
            found = signature_defs(self.metadata(model, version=version, label=label)).get(
                signature)
            if found is None:
                raise ServingError(400, f'Serving signature key "{signature}" not found.',
                                   code="FAILED_PRECONDITION")
            self._inputs[key] = {name: spec.get("dtype", "DT_INVALID")
                                 for name, spec in found.get("inputs", {}).items()}
        return self._inputs[key]

    # ---------------------------------------------------------------- predict

    def predict(self, model: str, data: Any, *, version: int | None = None,
                label: str | None = None, signature: str | None = None,
                columnar: bool = False) -> Prediction:
        """``columnar`` is accepted for the REST client's signature: gRPC has one format."""
        from tensorflow_serving.apis import predict_pb2

        if isinstance(data, Mapping) and ("instances" in data or "inputs" in data):
            signature = signature or data.get("signature_name") or None
        name = signature or "serving_default"
        dtypes = self._input_dtypes(model, version, label, name)
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, label, signature)
        for alias, value in _named_inputs(data, dtypes).items():
            to_tensor_proto(_as_dtype(value, dtypes.get(alias)), request.inputs[alias],
                            as_content=True)
        response = self._call(self._prediction.Predict, request)
        outputs = {alias: _readable(alias, from_tensor_proto(proto, alias))
                   for alias, proto in response.outputs.items()}
        return outputs[next(iter(outputs))] if len(outputs) == 1 else outputs

    # ---------------------------------------------------------------- classify / regress

    def classify(self, model: str, examples: Sequence[Mapping[str, Any]], *,
                 context: Mapping[str, Any] | None = None, version: int | None = None,
                 label: str | None = None, signature: str | None = None) -> list[Any]:
        from tensorflow_serving.apis import classification_pb2

        request = classification_pb2.ClassificationRequest()
        self._spec(request.model_spec, model, version, label, signature)
        _fill_input(request.input, examples, context)
        response = self._call(self._prediction.Classify, request)
        return [[[c.label, c.score] for c in row.classes]
                for row in response.result.classifications]

    def regress(self, model: str, examples: Sequence[Mapping[str, Any]], *,
                context: Mapping[str, Any] | None = None, version: int | None = None,
                label: str | None = None, signature: str | None = None) -> list[Any]:
        from tensorflow_serving.apis import regression_pb2

        request = regression_pb2.RegressionRequest()
        self._spec(request.model_spec, model, version, label, signature)
        _fill_input(request.input, examples, context)
        response = self._call(self._prediction.Regress, request)
        return [r.value for r in response.result.regressions]


def _named_inputs(data: Any, dtypes: Mapping[str, str]) -> dict[str, Any]:
    """The same data shapes the REST client accepts, as one value per input name."""
    if isinstance(data, Mapping) and "instances" in data:
        rows = data["instances"]
        if rows and isinstance(rows[0], Mapping) and set(rows[0]) != {"b64"}:
            return {k: [row[k] for row in rows] for k in rows[0]}
        data = rows
    elif isinstance(data, Mapping) and "inputs" in data:
        data = data["inputs"]
    if isinstance(data, Mapping) and set(data) != {"b64"}:
        return dict(data)
    if len(dtypes) != 1:
        raise RequestError(f"the signature has inputs {sorted(dtypes)}: pass a dict of them")
    return {next(iter(dtypes)): data}


def _as_dtype(value: Any, dtype: str | None) -> np.ndarray:
    if dtype == "DT_STRING":
        array = np.asarray(value, dtype=object)
        flat = [v.encode() if isinstance(v, str) else v for v in array.reshape(-1)]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(array.shape)
    target = _NUMPY.get(dtype or "")
    return np.asarray(value, dtype=target) if target is not None else np.asarray(value)


def _readable(alias: str, array: np.ndarray) -> np.ndarray:
    """Strings as the REST client returns them: text, except ``*_bytes`` outputs."""
    if array.dtype != object or alias.endswith("_bytes"):
        return array
    out = np.empty(array.shape, dtype=object)
    out.reshape(-1)[:] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                          for v in array.reshape(-1)]
    return out


def _fill_feature(feature: Any, value: Any) -> None:
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if all(isinstance(v, (str, bytes)) for v in values):
        feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v for v in values)
    elif all(isinstance(v, (bool, int, np.integer)) for v in values):
        feature.int64_list.value.extend(int(v) for v in values)
    else:
        feature.float_list.value.extend(float(v) for v in values)


def _fill_example(example: Any, features: Mapping[str, Any]) -> None:
    for key, value in features.items():
        _fill_feature(example.features.feature[key], value)


def _fill_input(target: Any, examples: Sequence[Mapping[str, Any]],
                context: Mapping[str, Any] | None) -> None:
    if context is None:
        for features in examples:
            _fill_example(target.example_list.examples.add(), features)
        return
    listed = target.example_list_with_context
    _fill_example(listed.context, context)
    for features in examples:
        _fill_example(listed.examples.add(), features)

