"""The gRPC surface: TF Serving's ``PredictionService`` and ``ModelService`` on ``grpc.aio``.

Uses only the generated code of ``tensorflow-serving-api`` (servicer bases, request/response
messages). Requests are routed through the same :class:`ServableManager` as REST (one manager:
a version swap, label move or reload is seen by both at once); tensor conversion and model
execution run on the gRPC thread pool (``--grpc_max_threads``), never on the event loop. Every
:class:`StatusError` becomes the gRPC status of its code's name with TF Serving's message
(``errors.StatusError.grpc_details``); bytes that are not the request message are
``INVALID_ARGUMENT`` (the services are registered with deserializers that do not raise, where
grpc's own would answer ``UNKNOWN`` naming a Python class); an unexpected failure is
``INTERNAL`` with its message alone. Log lines a client can cause are bounded and throttled
(``access_log.log_grpc_refusal``).

``HandleReloadConfigRequest`` needs the server's secret in the call metadata
(``x-tfserve-magic-secret``), as REST's ``/tfserve_magic/v1/reload`` needs it in a header;
with ``--require_secret`` every method does. Importing this module imports the generated
protos, which import the ``tensorflow`` package: only the server process loads it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfserve_magic.serving.api.access_log import log_grpc_refusal, log_unexpected
from tfserve_magic.serving.api.context import ServerContext
from tfserve_magic.serving.api.prediction_logs import log_grpc_call
from tfserve_magic.serving.models import inference
from tfserve_magic.serving.models.config import models_from_proto
from tfserve_magic.serving.models.manager import Servable
from tfserve_magic.serving.status_errors import (
    Code,
    ConfigError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    StatusError,
    Unimplemented,
)
from tfserve_magic.serving.tensor_protos import DTYPE_NAMES, from_tensor_proto, to_tensor_proto
from tfserve_magic.status import SECRET_HEADER

__all__ = ["add_services"]

log = logging.getLogger(__name__)

_DEFAULT_SIGNATURE = "serving_default"
_CLASSIFY = "tensorflow/serving/classify"
_REGRESS = "tensorflow/serving/regress"
_DEADLINE_SLACK_SECONDS = 0.05


_SECRET_KEY = SECRET_HEADER.lower()  # gRPC metadata keys are lower case


class _Unparsed:
    """What a request's bytes became when they are not the message its method takes."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


async def _abort(context: grpc.aio.ServicerContext, api: str, model: str,
                 error: StatusError) -> None:
    log_grpc_refusal(api, model, error)
    # absl and gRPC status codes share names and numbers.
    await context.abort(getattr(grpc.StatusCode, error.code.name), error.grpc_details())


def _route(spec: Any) -> tuple[str, int | None, str | None]:
    """(name, version, label) of a ModelSpec (``ServableRequestFromModelSpec``)."""
    if not spec.name:
        raise InvalidArgument("ModelSpec has no name specified.")
    which = spec.WhichOneof("version_choice")
    if which == "version":
        return spec.name, spec.version.value, None
    if which == "version_label":
        return spec.name, None, spec.version_label
    return spec.name, None, None


class _Surface:
    """What both services share: routing, the thread pool, metrics and error statuses."""

    def __init__(self, ctx: ServerContext, executor: Executor) -> None:
        self.ctx = ctx
        self.executor = executor

    async def call(self, api: str, model: str, context: grpc.aio.ServicerContext,
                   work: Callable[[], Any]) -> Any:
        """Run ``work`` (routing on the loop, then the pool; it returns the version served and
        the response) and turn its errors into statuses."""
        started = time.monotonic()
        try:
            version, result = await work()
        except asyncio.CancelledError:
            # gRPC cancels the handler at the client's deadline, often before in_pool's own
            # timer fires (by a few ms, as its clock reads the deadline): the request is still
            # one the server gave up on, and counted so. A client's own cancel comes earlier.
            remaining = context.time_remaining()
            if remaining is not None and remaining < _DEADLINE_SLACK_SECONDS:
                self.ctx.metrics.finished(model, None, api, Code.DEADLINE_EXCEEDED, started, "GRPC")
                log.warning("gRPC %s %s -> DEADLINE_EXCEEDED: Deadline Exceeded", api, model)
            raise
        except StatusError as error:
            self.ctx.metrics.finished(model, None, api, error.code, started, "GRPC")
            await _abort(context, api, model, error)
        except Exception as exc:  # a bug of ours: INTERNAL, its message without Python's names
            self.ctx.metrics.finished(model, None, api, Code.INTERNAL, started, "GRPC")
            exc_type, _, tb = sys.exc_info()
            assert exc_type is not None
            log_unexpected("gRPC", api, (exc_type, exc, tb))
            await context.abort(grpc.StatusCode.INTERNAL,
                                StatusError(str(exc) or "Internal error").grpc_details())
        self.ctx.metrics.finished(model, version, api, Code.OK, started, "GRPC")
        return result

    def secret_refusal(self, context: grpc.aio.ServicerContext) -> str | None:
        """Why this call may not manage the server (no or a wrong secret), or None."""
        sent = dict(context.invocation_metadata() or ()).get(_SECRET_KEY)
        return self.ctx.access.secret_refusal(
            sent if isinstance(sent, str) else None, where=f"{_SECRET_KEY} call metadata")

    async def in_pool(self, context: grpc.aio.ServicerContext, function: Callable[..., Any],
                      *args: Any) -> Any:
        """The client's deadline bounds the run, as TF Serving's RunOptions.timeout_in_ms."""
        future = asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        try:
            return await asyncio.wait_for(future, context.time_remaining())
        except asyncio.TimeoutError:
            raise DeadlineExceeded("Deadline Exceeded") from None

    def servable(self, spec: Any) -> tuple[int, Servable]:
        return self.ctx.manager.servable(*_route(spec))


def _predict(request: Any, served: int, servable: Servable, as_content: bool,
             max_bytes: int) -> Any:
    """``predict_util.cc`` RunPredict, on the pool."""

    signature = request.model_spec.signature_name or _DEFAULT_SIGNATURE
    specs = servable.inputs.get(signature)
    if specs is None:
        raise FailedPrecondition(f'Serving signature key "{signature}" not found.')
    sent, wanted = sorted(request.inputs), sorted(specs)
    if len(sent) != len(wanted):
        raise InvalidArgument(
            f"input size does not match signature: {len(sent)}!={len(wanted)} "
            f"len({{{','.join(sent)}}}) != len({{{','.join(wanted)}}}). Sent extra: "
            f"{{{','.join(sorted(set(sent) - set(wanted)))}}}. Missing but required: "
            f"{{{','.join(sorted(set(wanted) - set(sent)))}}}.")
    inputs: dict[str, np.ndarray] = {}
    for index, alias in enumerate(sent):
        if alias not in specs:
            raise InvalidArgument(f"input tensor alias not found in signature: {alias}. Inputs "
                                  f"expected to be in the set {{{','.join(wanted)}}}.")
        proto = request.inputs[alias]
        want = specs[alias].dtype
        if DTYPE_NAMES.get(proto.dtype) != want:
            got = DTYPE_NAMES.get(proto.dtype, str(proto.dtype))
            raise InvalidArgument(f"Expects arg[{index}] to be {_short(want)} but {_short(got)} "
                                  "is provided")
        inputs[alias] = from_tensor_proto(proto, alias, max_bytes, specs[alias].shape)
    outputs_spec = servable.outputs.get(signature, {})
    chosen: list[str] = []
    for alias in request.output_filter:
        if alias not in outputs_spec:
            raise InvalidArgument(f"output tensor alias not found in signature: {alias} Outputs "
                                  f"expected to be in the set {{{','.join(sorted(outputs_spec))}}}.")
        if alias in chosen:
            raise InvalidArgument(f"duplicate output tensor alias: {alias}")
        chosen.append(alias)
    outputs = servable.run(signature, inputs)
    response = predict_pb2.PredictResponse()
    _model_spec(response.model_spec, request.model_spec.name, signature, served)
    for alias in chosen or sorted(outputs):
        to_tensor_proto(outputs[alias], response.outputs[alias], as_content=as_content)
    return response


def _short(dtype: str) -> str:
    return dtype.removeprefix("DT_").lower()


def _model_spec(target: Any, name: str, signature: str, version: int) -> None:
    target.name = name
    target.signature_name = signature
    target.version.value = version


def _fill_classifications(result: Any, classes: np.ndarray | None,
                          scores: np.ndarray | None) -> None:
    shape = (classes if classes is not None else scores).shape  # type: ignore[union-attr]
    for row in range(shape[0]):
        classification = result.classifications.add()
        for column in range(shape[1]):
            entry = classification.classes.add()
            if classes is not None:
                label = classes[row, column]
                entry.label = label.decode("utf-8", "replace") if isinstance(label, bytes) \
                    else str(label)
            if scores is not None:
                entry.score = float(scores[row, column])


def _classify(request: Any, served: int, servable: Servable, check: bool) -> Any:

    signature = request.model_spec.signature_name or _DEFAULT_SIGNATURE
    serialized = inference.serialized_input(request.input)
    response = classification_pb2.ClassificationResponse()
    _fill_classifications(response.result,
                          *inference.classify(servable, signature, serialized, check))
    _model_spec(response.model_spec, request.model_spec.name, signature, served)
    return response


def _regress(request: Any, served: int, servable: Servable, check: bool) -> Any:

    signature = request.model_spec.signature_name or _DEFAULT_SIGNATURE
    serialized = inference.serialized_input(request.input)
    response = regression_pb2.RegressionResponse()
    for value in inference.regress(servable, signature, serialized, check).tolist():
        response.result.regressions.add().value = value
    _model_spec(response.model_spec, request.model_spec.name, signature, served)
    return response


def _check_tasks(request: Any, servable: Servable) -> None:
    """``multi_inference.cc``: one model, distinct known signatures, classify/regress only."""
    model, seen = "", set()
    for task in request.tasks:
        if not task.model_spec.name:
            raise InvalidArgument("Found ModelSpec with an empty model name.")
        if model and task.model_spec.name != model:
            raise InvalidArgument("All ModelSpecs in a MultiInferenceRequest must access the "
                                  "same model name.")
        model = task.model_spec.name
        signature = task.model_spec.signature_name or _DEFAULT_SIGNATURE
        if signature in seen:
            raise InvalidArgument(f"Duplicate evaluation of signature: {signature}")
        seen.add(signature)
        if signature not in servable.inputs:
            raise InvalidArgument(f"Requested signature not found in model graph: {signature}")
        if task.method_name not in (_CLASSIFY, _REGRESS):
            raise Unimplemented(f"Unsupported signature method_name: {task.method_name}")


def _multi_inference(request: Any, served: int, servable: Servable, check: bool) -> Any:

    _check_tasks(request, servable)
    serialized = inference.serialized_input(request.input)
    response = inference_pb2.MultiInferenceResponse()
    for task in request.tasks:
        signature = task.model_spec.signature_name or _DEFAULT_SIGNATURE
        result = response.results.add()
        if task.method_name == _CLASSIFY:
            _fill_classifications(result.classification_result,
                                  *inference.classify(servable, signature, serialized, check))
        else:
            for value in inference.regress(servable, signature, serialized, check).tolist():
                result.regression_result.regressions.add().value = value
        _model_spec(result.model_spec, task.model_spec.name, task.model_spec.signature_name,
                    served)
    return response


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """tensorflow.serving.PredictionService."""

    def __init__(self, surface: _Surface) -> None:
        self._surface = surface
        options = surface.ctx.options
        self._as_content = options.enable_serialization_as_tensor_content
        self._check = options.enable_signature_method_name_check

    async def _run(self, api: str, request: Any, context: grpc.aio.ServicerContext,
                   spec: Any, function: Callable[..., Any], *args: Any) -> Any:
        surface = self._surface

        async def work() -> Any:
            if api != "MultiInference" and not request.HasField("model_spec"):
                raise InvalidArgument("Missing ModelSpec")
            served, servable = surface.servable(spec)
            response = await surface.in_pool(context, function, request, served, servable,
                                             *args)
            log_grpc_call(surface.ctx, api, spec, served, request, response)
            return served, response

        return await surface.call(api, spec.name, context, work)

    async def Predict(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run("Predict", request, context, request.model_spec, _predict,
                               self._as_content, self._surface.ctx.options.max_request_bytes)

    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run("Classify", request, context, request.model_spec, _classify,
                               self._check)

    async def Regress(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run("Regress", request, context, request.model_spec, _regress,
                               self._check)

    async def MultiInference(self, request: Any,
                             context: grpc.aio.ServicerContext) -> Any:
        # GetModelSpecFromRequest: the first task's spec, else an empty one (no name).
        spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        return await self._run("MultiInference", request, context, spec, _multi_inference,
                               self._check)

    async def GetModelMetadata(self, request: Any,
                               context: grpc.aio.ServicerContext) -> Any:
        surface = self._surface

        async def work() -> Any:
            if not request.HasField("model_spec"):
                raise InvalidArgument("Missing ModelSpec")
            if not request.metadata_field:
                raise InvalidArgument("GetModelMetadataRequest must specify at least one "
                                      "metadata_field")
            for field in request.metadata_field:
                if field != "signature_def":
                    raise InvalidArgument(f"Metadata field {field} is not supported")
            served, servable = surface.servable(request.model_spec)
            signatures = json_format.ParseDict(servable.signature_metadata(),
                                               get_model_metadata_pb2.SignatureDefMap())
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.version.value = served
            response.metadata["signature_def"].Pack(signatures)
            return served, response

        return await surface.call("GetModelMetadata", request.model_spec.name, context, work)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """tensorflow.serving.ModelService."""

    def __init__(self, surface: _Surface) -> None:
        self._surface = surface

    async def GetModelStatus(self, request: Any,
                             context: grpc.aio.ServicerContext) -> Any:
        manager = self._surface.ctx.manager

        async def work() -> Any:
            if not request.HasField("model_spec"):
                raise InvalidArgument("Missing ModelSpec")
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            response = get_model_status_pb2.GetModelStatusResponse()
            for status in manager.status(spec.name, version):
                entry = response.model_version_status.add()
                entry.version = status.version
                entry.state = int(status.state)
                entry.status.error_code = int(status.error_code)
                entry.status.error_message = status.error_message
            return None, response

        return await self._surface.call("GetModelStatus", request.model_spec.name, context, work)

    async def HandleReloadConfigRequest(self, request: Any,
                                        context: grpc.aio.ServicerContext) -> Any:
        manager = self._surface.ctx.manager
        refusal = self._surface.secret_refusal(context)
        if refusal is not None:
            return await _abort(context, "HandleReloadConfigRequest", "",
                                PermissionDenied(refusal))

        async def work() -> Any:
            if request.config.WhichOneof("config") != "model_config_list":
                raise InvalidArgument("ServerModelConfig type not supported by "
                                      "HandleReloadConfigRequest. Only ModelConfigList is "
                                      "currently supported")
            try:
                models = models_from_proto(request.config)
            except ConfigError as exc:
                raise InvalidArgument(str(exc)) from None
            new = [m.name for m in models if m.name not in manager.model_names]
            log.info("gRPC HandleReloadConfigRequest: models %s",
                     ", ".join(m.name for m in models) or "(none)")
            manager.apply_config(models)
            await manager.wait_models(new)
            response = model_management_pb2.ReloadConfigResponse()
            response.status.error_code = int(Code.OK)
            for name in request.metric_names:  # TF's monitoring metrics are not tracked here:
                response.metric.add(name=name, int64_value_increase=0)  # as TF for unknown names
            return None, response

        return await self._surface.call("HandleReloadConfigRequest", "", context, work)


def add_services(server: grpc.aio.Server, ctx: ServerContext, executor: Executor) -> None:
    """Register both services on ``server`` (before it starts)."""
    surface = _Surface(ctx, executor)
    server.add_generic_rpc_handlers((
        _handlers("tensorflow.serving.PredictionService", _PREDICTION_METHODS,
                  PredictionService(surface), surface),
        _handlers("tensorflow.serving.ModelService", _MODEL_METHODS, ModelService(surface),
                  surface)))


# Each service's methods and message types, as in prediction_service.proto and
# model_service.proto. Named here, not read from prediction_service_pb2 / model_service_pb2:
# tensorflow-serving-api 2.20's copies of those two modules are pre-upb code that no protobuf
# since 4 imports (`DESCRIPTOR.has_options = True`), and 2.20 is our floor (Colab's TF 2.20).
_PREDICTION_METHODS: dict[str, tuple[Any, Any]] = {
    "Classify": (classification_pb2.ClassificationRequest, classification_pb2.ClassificationResponse),
    "Regress": (regression_pb2.RegressionRequest, regression_pb2.RegressionResponse),
    "Predict": (predict_pb2.PredictRequest, predict_pb2.PredictResponse),
    "MultiInference": (inference_pb2.MultiInferenceRequest, inference_pb2.MultiInferenceResponse),
    "GetModelMetadata": (get_model_metadata_pb2.GetModelMetadataRequest,
                         get_model_metadata_pb2.GetModelMetadataResponse),
}
_MODEL_METHODS: dict[str, tuple[Any, Any]] = {
    "GetModelStatus": (get_model_status_pb2.GetModelStatusRequest,
                       get_model_status_pb2.GetModelStatusResponse),
    "HandleReloadConfigRequest": (model_management_pb2.ReloadConfigRequest,
                                  model_management_pb2.ReloadConfigResponse),
}


def _handlers(service: str, methods: dict[str, tuple[Any, Any]], servicer: Any,
              surface: _Surface) -> grpc.GenericRpcHandler:
    """The service's methods as the generated ``add_*_to_server`` registers them, but with
    deserializers that never raise (see the module doc) and, with ``--require_secret``, the
    secret checked first."""
    handlers = {}
    for name, (request_type, response_type) in methods.items():
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            _checked(getattr(servicer, name), name, surface),
            request_deserializer=_lenient(request_type.FromString,
                                          request_type.DESCRIPTOR.full_name),
            response_serializer=response_type.SerializeToString)
    return grpc.method_handlers_generic_handler(service, handlers)


def _lenient(parse: Callable[[bytes], Any], type_name: str) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except (DecodeError, RecursionError):
            return _Unparsed(type_name)

    return deserialize


def _checked(method: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]], api: str,
             surface: _Surface) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    require_secret = surface.ctx.options.require_secret

    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if require_secret:
            refusal = surface.secret_refusal(context)
            if refusal is not None:
                return await _abort(context, api, "", PermissionDenied(refusal))
        if isinstance(request, _Unparsed):
            return await _abort(context, api, "", InvalidArgument(
                f"The request is not a well-formed {request.type_name} message"))
        return await method(request, context)

    return handle
