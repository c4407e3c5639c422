"""Loading and running SavedModels: the only module of the server that imports TensorFlow.

:class:`SavedModelLoader` is the production implementation of the loader seam
(``manager.Loader``): it reads the MetaGraphDef for the requested tags (for metadata, rendered as
TF Serving renders it), loads the model with ``tf.saved_model.load``, replays warmup requests and
runs signatures on numpy inputs. :func:`configure_tensorflow` applies threading and the GPU plan
once per process, before the first model loads. TensorFlow is imported lean
(``tensorflow_import``): its runtime modules by name, never ``tf.*`` (which would build the whole
API, Keras included).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tfserve_magic.serving.models.devices import DevicePlan, gpu_total_memory_mb, plan_devices
from tfserve_magic.serving.models.tensorflow_import import importing_runtime, use_lean_tensorflow
from tfserve_magic.serving.options import ServerOptions
from tfserve_magic.serving.status_errors import Code, InvalidArgument, LoadError, StatusError
from tfserve_magic.serving.tensor_types import Example, TensorSpec

__all__ = ["SavedModelLoader", "SavedModelServable", "Warmup", "configure_tensorflow",
           "open_tfrecord", "read_tfrecords", "tensor_to_array"]

log = logging.getLogger(__name__)

use_lean_tensorflow()  # before the first import from tensorflow (after logging: TF logs at import)

with importing_runtime():
    from google.protobuf import json_format
    from tensorflow.core.example import example_pb2
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.compat import v2_compat
    from tensorflow.python.data.ops import readers
    from tensorflow.python.eager import context
    from tensorflow.python.framework import config as tf_config
    from tensorflow.python.framework import constant_op, dtypes, errors_impl, tensor_util
    from tensorflow.python.lib.io import tf_record
    from tensorflow.python.saved_model import load as saved_model_load
    from tensorflow_serving.apis import get_model_metadata_pb2

# What ``tensorflow/__init__`` would have done (eager execution, resource variables, control
# flow v2); idempotent when the full API was imported anyway.
v2_compat.enable_v2_behavior()


_configured = threading.Lock()
_plan: DevicePlan | None = None


def configure_tensorflow(options: ServerOptions) -> DevicePlan:
    """Apply threading and GPU settings; must run before TensorFlow initialises devices."""
    global _plan  # noqa: PLW0603  # devices can be configured once per process
    with _configured:
        if _plan is not None:
            return _plan
        gpus = tf_config.list_physical_devices("GPU")
        plan = plan_devices(options, len(gpus), gpu_total_memory_mb() if gpus else [])
        if plan.intra_op_threads:
            tf_config.set_intra_op_parallelism_threads(plan.intra_op_threads)
        if plan.inter_op_threads:
            tf_config.set_inter_op_parallelism_threads(plan.inter_op_threads)
        if gpus:
            chosen = [gpus[g.index] for g in plan.gpus]
            tf_config.set_visible_devices(chosen, "GPU")
            for gpu_plan, device in zip(plan.gpus, chosen, strict=False):
                if gpu_plan.memory_limit_mb is not None:
                    tf_config.set_logical_device_configuration(
                        device, [context.LogicalDeviceConfiguration(
                            memory_limit=gpu_plan.memory_limit_mb)])
                elif gpu_plan.memory_growth:
                    tf_config.set_memory_growth(device, True)
            log.info("GPUs: %s", ", ".join(
                f"{g.index} (growth={g.memory_growth}, limit_mb={g.memory_limit_mb})"
                for g in plan.gpus) or "none (CPU only)")
        else:
            log.info("No GPU visible to TensorFlow; running on the CPU (--verbose shows "
                     "TensorFlow's own start-up messages)")
        _plan = plan
        return plan


_DATATYPE_NAMES = {v: k for k, v in types_pb2.DataType.items()}


def _spec_text(spec: TensorSpec) -> str:
    """``float32 [None, 64]``: the dtype as numpy names it and the shape, None for any size."""
    try:
        dtype = dtypes.as_dtype(types_pb2.DataType.Value(spec.dtype)).name
    except (ValueError, TypeError):
        dtype = spec.dtype.removeprefix("DT_").lower()
    if spec.shape is None:
        return f"{dtype} (any shape)"
    return f"{dtype} [" + ", ".join("None" if d < 0 else str(d) for d in spec.shape) + "]"


def _refused(signature: str, specs: Mapping[str, TensorSpec],
             inputs: Mapping[str, np.ndarray], tensorflow_says: str) -> str:
    """A refused input as a person reads it: TensorFlow's reason without its graph internals,
    and what the signature expects beside what was sent; the latter first when the shapes do
    not fit (that is what to change), else after (the values were refused, not the shapes)."""
    wanted = ", ".join(f"{name}: {_spec_text(spec)}" for name, spec in sorted(specs.items()))
    sent = ", ".join(f"{name}: {list(np.shape(value))}" for name, value in sorted(inputs.items()))
    expectation = f"signature {signature} expects {wanted}; the request sent {sent}"
    reason = _without_graph_internals(tensorflow_says)
    if not reason:
        return expectation
    if _shapes_fit(specs, inputs):
        return f"{reason} ({expectation})"
    return f"{expectation} (TensorFlow: {reason})"


def _shapes_fit(specs: Mapping[str, TensorSpec], inputs: Mapping[str, np.ndarray]) -> bool:
    def fits(spec: TensorSpec, shape: tuple[int, ...]) -> bool:
        return spec.shape is None or (len(spec.shape) == len(shape) and all(
            want < 0 or want == got for want, got in zip(spec.shape, shape, strict=True)))

    return set(specs) == set(inputs) and all(fits(specs[n], np.shape(v)) for n, v in inputs.items())


# TensorFlow's wrapping of an op's error: a header, where in the graph, (no) stack traces, the
# node again and the traced function's name. None of it tells a caller what to send instead.
_GRAPH_LINES = re.compile(r"Graph execution error:|Detected at node .*|<stack traces unavailable>"
                          r"|\[\[\{\{node .*\}\}\]\].*|File \".*|")
_OP_NAME = re.compile(r"\s*\[Op:[^\]]*\]")


def _without_graph_internals(message: str) -> str:
    lines = [_OP_NAME.sub("", line).strip() for line in message.splitlines()]
    return " ".join(line for line in lines if not _GRAPH_LINES.fullmatch(line))


def _spec(info: Any) -> TensorSpec:
    shape = None if info.tensor_shape.unknown_rank else tuple(
        d.size for d in info.tensor_shape.dim)
    return TensorSpec(_DATATYPE_NAMES.get(info.dtype, "DT_INVALID"), shape)


def _read_meta_graph(path: str, tags: Sequence[str]) -> Any:
    pb = os.path.join(path, "saved_model.pb")
    pbtxt = os.path.join(path, "saved_model.pbtxt")
    saved = saved_model_pb2.SavedModel()
    try:
        if os.path.exists(pb):
            with open(pb, "rb") as handle:
                saved.ParseFromString(handle.read())
        elif os.path.exists(pbtxt):
            from google.protobuf import text_format

            with open(pbtxt, encoding="utf-8") as handle:
                text_format.Parse(handle.read(), saved)
        else:
            raise LoadError("Could not find SavedModel .pb or .pbtxt at supplied export "
                            f"directory path: {path}")
    except LoadError:
        raise
    except Exception as exc:  # protobuf DecodeError, OSError
        raise LoadError(f"Error reading SavedModel at {path}: {exc or type(exc).__name__}") from None
    wanted = set(tags)
    for meta_graph in saved.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == wanted:
            return meta_graph
    available = [sorted(m.meta_info_def.tags) for m in saved.meta_graphs]
    raise LoadError(f"Could not find meta graph def matching supplied tags: "
                    f"{{ {' '.join(sorted(wanted))} }}. Available tag-sets: {available}. "
                    "To inspect available tag-sets in the SavedModel, please use the "
                    "SavedModel CLI: `saved_model_cli`")


def _has_flat_call(function: Any) -> bool:
    """Whether ``function`` has TensorFlow's private flat call in the shape this module calls
    it: ``_call_flat(<the inputs>, captured_inputs)`` (``tensor_inputs`` on a ConcreteFunction,
    ``args`` on a revived signature's wrapper) and ``_arg_keywords``, the input names in the
    flat call's order. Any other shape (a TensorFlow release that changed them) leaves every
    call on the public keyword call: slower, never a client-facing error.
    ``tests/serving/models/test_loader.py`` fails on a TensorFlow where this is False."""
    call = getattr(function, "_call_flat", None)
    keywords = getattr(function, "_arg_keywords", None)  # a list, or a repeated proto field
    if call is None or keywords is None or not all(isinstance(k, str) for k in keywords):
        return False
    try:
        parameters = list(inspect.signature(call).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return (len(parameters) == 2 and parameters[1].name == "captured_inputs"
            and all(p.kind in positional and p.default is p.empty for p in parameters))


class _Signature:
    """How one signature is called. Inputs that match the signature exactly (its names, shapes
    within its dims) go straight to the function's flat call, as TensorFlow's own keyword
    binding ends up doing, without that binding's checks and packing (a third of a tiny
    model's call). The flat call is private to TensorFlow: :func:`_has_flat_call` checks its
    shape once per signature, and a test checks on each supported TensorFlow that it is used.
    Anything else takes the public call, whose errors users see."""

    def __init__(self, function: Any, specs: Mapping[str, TensorSpec]) -> None:
        self._function = function
        self._specs = specs
        self._dtypes: dict[str, Any] = {}
        for name in specs:  # (an input TensorFlow has no dtype for is refused at each call)
            with contextlib.suppress(TypeError, ValueError):
                self._dtypes[name] = _tf_dtype(specs, name)
        order = tuple(function._arg_keywords) if _has_flat_call(function) else ()
        self._order = order if set(order) == set(specs) == set(self._dtypes) and order else ()

    @property
    def flat(self) -> bool:
        """Whether inputs that fit the signature take the flat call."""
        return bool(self._order)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, Any]:
        dtypes = self._dtypes
        feeds = {name: constant_op.constant(value, dtype=dtypes[name] if name in dtypes else
                                   _tf_dtype(self._specs, name))
                 for name, value in inputs.items()}
        if self._order and feeds.keys() == self._dtypes.keys() and all(
                _fits(feeds[name].shape, self._specs[name].shape) for name in self._order):
            function = self._function
            return function._call_flat(  # type: ignore[no-any-return]
                [feeds[name] for name in self._order], function.captured_inputs)
        return self._function(**feeds)  # type: ignore[no-any-return]


def _tf_dtype(specs: Mapping[str, TensorSpec], name: str) -> Any:
    """The TensorFlow dtype of a signature input (None for a name it does not have)."""
    if name not in specs:
        return None
    return dtypes.as_dtype(types_pb2.DataType.Value(specs[name].dtype))


def _fits(shape: Any, dims: tuple[int, ...] | None) -> bool:
    if dims is None:
        return True
    if len(shape) != len(dims):
        return False
    return all(want < 0 or have == want for have, want in zip(shape, dims, strict=True))


class SavedModelServable:
    """One loaded version: signatures, metadata and execution."""

    def __init__(self, path: str, tags: Sequence[str]) -> None:
        self.path = path
        meta_graph = _read_meta_graph(path, tags)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in meta_graph.signature_def.items():
            signature_map.signature_def[key].CopyFrom(signature)
        self._metadata: dict[str, Any] = json_format.MessageToDict(
            signature_map, preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True)
        self.method_names = {k: s.method_name for k, s in meta_graph.signature_def.items()}
        self.inputs = {k: {n: _spec(i) for n, i in s.inputs.items()}
                       for k, s in meta_graph.signature_def.items()}
        self.outputs = {k: {n: _spec(o) for n, o in s.outputs.items()}
                        for k, s in meta_graph.signature_def.items()}
        try:
            self._model = saved_model_load.load(path, tags=list(tags))
        except Exception as exc:
            raise LoadError(f"{type(exc).__name__}: {exc}") from None
        self._signatures = {key: _Signature(function, self.inputs.get(key, {}))
                            for key, function in self._model.signatures.items()}

    def signature_metadata(self) -> dict[str, Any]:
        """``SignatureDefMap`` as JSON (``{"signature_def": {...}}``)."""
        return self._metadata

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a signature; TensorFlow's errors become ServingErrors with TF's code."""
        called = self._signatures.get(signature)
        if called is None:
            raise InvalidArgument(f"Serving signature name: \"{signature}\" not found in "
                                  "signature def")
        specs = self.inputs.get(signature, {})
        try:
            results = called(inputs)
        except errors_impl.OpError as exc:
            message = exc.message
            if exc.error_code == Code.INVALID_ARGUMENT.value:
                message = _refused(signature, specs, inputs, message)
            raise StatusError(message, Code(exc.error_code)) from None
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(_refused(signature, specs, inputs, str(exc).strip().splitlines()[0]
                                           if str(exc) else type(exc).__name__)) from None
        return {name: value.numpy() for name, value in results.items()}

    def serialize_examples(self, context: Example | None, examples: Sequence[Example]) -> np.ndarray:
        """tf.Examples for classify/regress; context merged as TF Serving does (proto merge)."""
        prefix = _to_example(context).SerializeToString() if context else b""
        serialized = np.empty(len(examples), dtype=object)
        serialized[:] = [prefix + _to_example(e).SerializeToString() for e in examples]
        return serialized


def _to_example(example: Example) -> Any:
    proto = example_pb2.Example()
    for name, (kind, values) in example.items():
        feature = proto.features.feature[name]
        if kind == "bytes":
            feature.bytes_list.value.extend(values)
        elif kind == "int64":
            feature.int64_list.value.extend(values)
        else:
            feature.float_list.value.extend(values)
    return proto


Warmup = Callable[[Any, str], int]  # (servable, version folder) -> warmup records replayed


class SavedModelLoader:
    """The production loader: ``load(path)`` -> :class:`SavedModelServable`, warmed up by
    ``warmup`` (``serving.api.warmup``, which replays through the API checks) when given."""

    def __init__(self, options: ServerOptions, warmup: Warmup | None = None) -> None:
        self._tags = options.tags
        self._warmup = warmup if options.enable_model_warmup else None
        self._iterations = options.num_request_iterations_for_warmup

    def load(self, path: str) -> SavedModelServable:
        servable = SavedModelServable(path, self._tags)
        if self._warmup is not None:
            try:
                replayed = self._warmup(servable, path)
            except StatusError as exc:
                raise LoadError(f"Warmup failed: {exc.message}") from None
            except LoadError:
                raise
            except Exception as exc:
                raise LoadError(f"Warmup failed: {type(exc).__name__}: {exc}") from None
            if replayed:
                log.info("Finished reading warmup data for model at %s. Number of warmup "
                         "records read: %d. Each replayed %d time(s).", path, replayed,
                         self._iterations)
        return servable


def read_tfrecords(path: str) -> Iterator[bytes]:
    """The records of a TFRecord file (TensorFlow's reader)."""
    return (record.numpy() for record in readers.TFRecordDatasetV2(path))


def tensor_to_array(proto: Any) -> np.ndarray:
    """A TensorProto as numpy (TensorFlow's ``make_ndarray``)."""
    array: np.ndarray = tensor_util.MakeNdarray(proto)
    return array


def open_tfrecord(path: str) -> Any:
    """TensorFlow's TFRecord writer, for the request log (``serving.api.request_log``)."""
    return tf_record.TFRecordWriter(path)
