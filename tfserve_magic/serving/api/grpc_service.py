"""The gRPC surface: TF Serving's ``PredictionService`` and ``ModelService`` on ``grpc.aio``.

Uses only the generated code of ``tensorflow-serving-api`` (servicer bases, request/response
messages). Requests are routed through the same :class:`ServableManager` as REST (one manager:
a version swap, label move or reload is seen by both at once); tensor conversion and model
execution run on the gRPC thread pool (``--grpc_max_threads``), never on the event loop. Every
:class:`StatusError` becomes the gRPC status of its code's name with TF Serving's message
(``errors.StatusError.grpc_details``). Importing this module imports the generated protos,
which import the ``tensorflow`` package: only the server process loads it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from tfserve_magic.serving.api import inference
from tfserve_magic.serving.api.context import ServerContext
from tfserve_magic.serving.api.grpc_tensors import DTYPE_NAMES, from_tensor_proto, to_tensor_proto
from tfserve_magic.serving.errors import (
    Code,
    ConfigError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    StatusError,
    Unimplemented,
)
from tfserve_magic.serving.models.config import models_from_proto
from tfserve_magic.serving.models.manager import Servable

__all__ = ["add_services"]

log = logging.getLogger(__name__)

_DEFAULT_SIGNATURE = "serving_default"
_CLASSIFY = "tensorflow/serving/classify"
_REGRESS = "tensorflow/serving/regress"
_DEADLINE_SLACK_SECONDS = 0.05


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
                self._observe(model, None, api, Code.DEADLINE_EXCEEDED, started)
                log.warning("gRPC %s %s -> DEADLINE_EXCEEDED: Deadline Exceeded", api, model)
            raise
        except StatusError as error:
            self._observe(model, None, api, error.code, started)
            log.warning("gRPC %s %s -> %s: %s", api, model, error.code.name, error.message[:2000])
            # absl and gRPC status codes share names and numbers.
            await context.abort(getattr(grpc.StatusCode, error.code.name),
                                error.grpc_details())
        self._observe(model, version, api, Code.OK, started)
        return result

    def _observe(self, model: str, version: int | None, api: str, code: Code,
                 started: float) -> None:
        self.ctx.metrics.observe_request(model, version, api, code.name,
                                         time.monotonic() - started, entrypoint="GRPC")

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


def _predict(request: Any, served: int, servable: Servable, as_content: bool) -> Any:
    """``predict_util.cc`` RunPredict, on the pool."""
    from tensorflow_serving.apis import predict_pb2

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
        inputs[alias] = from_tensor_proto(proto, alias)
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


def _serialized_examples(input_proto: Any) -> np.ndarray:
    """``InputToSerializedExampleTensor``: a context is merged into each example."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        prefix, examples = b"", input_proto.example_list.examples
    elif kind == "example_list_with_context":
        listed = input_proto.example_list_with_context
        prefix, examples = listed.context.SerializeToString(), listed.examples
    else:
        examples = []
    if not examples:
        raise InvalidArgument("Input is empty.")
    serialized = np.empty(len(examples), dtype=object)
    serialized[:] = [prefix + example.SerializeToString() for example in examples]
    return serialized


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
    from tensorflow_serving.apis import classification_pb2

    signature = request.model_spec.signature_name or _DEFAULT_SIGNATURE
    serialized = _serialized_examples(request.input)
    response = classification_pb2.ClassificationResponse()
    _fill_classifications(response.result,
                          *inference.classify(servable, signature, serialized, check))
    _model_spec(response.model_spec, request.model_spec.name, signature, served)
    return response


def _regress(request: Any, served: int, servable: Servable, check: bool) -> Any:
    from tensorflow_serving.apis import regression_pb2

    signature = request.model_spec.signature_name or _DEFAULT_SIGNATURE
    serialized = _serialized_examples(request.input)
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
    from tensorflow_serving.apis import inference_pb2

    _check_tasks(request, servable)
    serialized = _serialized_examples(request.input)
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
            return served, await surface.in_pool(context, function, request, served, servable,
                                                 *args)

        return await surface.call(api, spec.name, context, work)

    async def Predict(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run("Predict", request, context, request.model_spec, _predict,
                               self._as_content)

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
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(surface), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(surface), server)
