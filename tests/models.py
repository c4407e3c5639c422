"""Tiny real SavedModels for tests (the demo models live in tfserve_magic.demo.models)."""

from __future__ import annotations

import os
from typing import Any

from tfserve_magic.operations.export import export_version


def build_multi_io(base: str, version: int = 1) -> str:
    import tensorflow as tf

    class MultiIO(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="a"),
                                      tf.TensorSpec([None], tf.float32, name="b")])
        def serve(self, a: Any, b: Any) -> dict[str, Any]:
            return {"sum": a + b, "product": a * b}

    module = MultiIO()
    return export_version(module, base, version, {"serving_default": module.serve}).path


def build_strings(base: str, version: int = 1) -> str:
    import tensorflow as tf

    class Strings(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text: Any) -> dict[str, Any]:
            return {"length": tf.strings.length(text), "upper_bytes": tf.strings.upper(text)}

    module = Strings()
    return export_version(module, base, version, {"serving_default": module.serve}).path


def build_ints(base: str, version: int = 1) -> str:
    import tensorflow as tf

    class Ints(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="small"),
                                      tf.TensorSpec([None], tf.int64, name="big")])
        def serve(self, small: Any, big: Any) -> dict[str, Any]:
            return {"total": tf.cast(small, tf.int64) + big}

    module = Ints()
    return export_version(module, base, version, {"serving_default": module.serve}).path


def build_pixels(base: str, version: int = 1) -> str:
    """serving_default: scores (float32 [None, 2]) = pixels (float32 [None, 4]) @ a 4x2 matrix."""
    import tensorflow as tf

    class Pixels(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="pixels")])
        def serve(self, pixels: Any) -> dict[str, Any]:
            return {"scores": tf.matmul(pixels, tf.constant([[1.0, 0.0], [0.0, 1.0],
                                                             [0.5, 0.5], [0.1, 0.2]]))}

    return export_version(Pixels(), base, version).path


def build_two_signatures(base: str, version: int = 1) -> str:
    """serving_default: y = 2 x; "triple": y = 3 x (a second predict signature)."""
    import tensorflow as tf

    class TwoSignatures(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def double(self, x: Any) -> dict[str, Any]:
            return {"y": 2.0 * x}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def triple(self, x: Any) -> dict[str, Any]:
            return {"y": 3.0 * x}

    module = TwoSignatures()
    return export_version(module, base, version, {"serving_default": module.double,
                                                  "triple": module.triple}).path


def build_plus_version(base: str, version: int) -> str:
    """y = x + version: which version answered is visible in the prediction."""
    import tensorflow as tf

    class PlusVersion(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: Any) -> dict[str, Any]:
            return {"y": x + float(version)}

    module = PlusVersion()
    return export_version(module, base, version, {"serving_default": module.serve}).path


def build_call_counter(base: str, version: int = 1) -> str:
    """y = how many times the model has been called, this call included (warmup calls too)."""
    import tensorflow as tf

    class CallCounter(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = tf.Variable(0.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: Any) -> dict[str, Any]:
            calls = self.calls.assign_add(1.0)
            return {"y": tf.zeros_like(x) + calls}

    module = CallCounter()
    return export_version(module, base, version, {"serving_default": module.serve}).path


def build_slow(base: str, version: int = 1) -> str:
    """``iterations`` rounds of a small matmul: a predict that takes as long as asked."""
    import tensorflow as tf

    class Slow(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="iterations")])
        def serve(self, iterations: Any) -> dict[str, Any]:
            m = tf.ones([64, 64]) / 64.0
            _, out = tf.while_loop(lambda i, acc: i < iterations,
                                   lambda i, acc: (i + 1, tf.matmul(acc, m)),
                                   (tf.constant(0), tf.ones([64, 64])))
            return {"checksum": tf.reshape(tf.reduce_sum(out), [1])}

    module = Slow()
    return export_version(module, base, version, {"serving_default": module.serve}).path


def build_unloadable(base: str, version: int = 1) -> str:
    """A SavedModel that saves fine but cannot load: a resource whose initialiser (run by
    ``tf.saved_model.load``, never by the save) fails with "this model cannot be initialised"."""
    return export_version(unloadable_module(), base, version).path


def unloadable_module() -> Any:
    """The tf.Module behind :func:`build_unloadable` (for pushing it from a notebook)."""
    import tensorflow as tf

    class FailsOnLoad(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self) -> Any:
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="")

        def _initialize(self) -> None:
            tf.debugging.Assert(False, ["this model cannot be initialised"])

    class Unloadable(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.resource = FailsOnLoad()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: Any) -> dict[str, Any]:
            return {"y": x + 1.0}

    return Unloadable()


def write_warmup(version_dir: str, x_values: list[float]) -> str:
    """assets.extra/tf_serving_warmup_requests with one PredictionLog per value."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for value in x_values:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = "serving_default"
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([value], dtype=tf.float32))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def corrupt_copy(source_version_dir: str, target_version_dir: str) -> None:
    """A version folder whose saved_model.pb is truncated."""
    import shutil

    shutil.copytree(source_version_dir, target_version_dir)
    pb = os.path.join(target_version_dir, "saved_model.pb")
    with open(pb, "rb") as handle:
        data = handle.read()
    with open(pb, "wb") as handle:
        handle.write(data[: len(data) // 3])


def build_batch_probe(base: str, version: int = 1) -> str:
    """y = 2x, and ``rows``: how many rows the model call that answered had (shows merging and
    padding from the outside)."""
    import tensorflow as tf

    class BatchProbe(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: Any) -> dict[str, Any]:
            rows = tf.shape(x)[0]
            return {"y": x * 2.0, "rows": tf.fill([rows], rows)}

    module = BatchProbe()
    return export_version(module, base, version, {"serving_default": module.serve}).path


def build_row_sums(base: str, version: int = 1) -> str:
    """t: [None, 3] -> the sum of each row, and ``rows`` as in :func:`build_batch_probe`; a
    negative value fails the call (INVALID_ARGUMENT), as a bad request would."""
    import tensorflow as tf

    class RowSums(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="t")])
        def serve(self, t: Any) -> dict[str, Any]:
            rows = tf.shape(t)[0]
            with tf.control_dependencies([tf.debugging.assert_non_negative(t)]):
                total = tf.reduce_sum(t, axis=1)
            return {"sum": total, "rows": tf.fill([rows], rows)}

    module = RowSums()
    return export_version(module, base, version, {"serving_default": module.serve}).path


def build_gated(base: str, version: int = 1) -> str:
    """y = 2x, answered only once a file matching ``gate[0]`` exists: a model call that a test
    holds open and then releases, without timing guesses. On entry the call writes the file
    ``gate[0] + ".started"``, so a test can wait until the call is running."""
    import tensorflow as tf

    class Gated(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="gate"),
                                      tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, gate: Any, x: Any) -> dict[str, Any]:
            started = tf.io.write_file(tf.strings.join([gate[0], ".started"]), "")
            with tf.control_dependencies([started]):
                waited = tf.while_loop(
                    lambda i: tf.equal(tf.size(tf.io.matching_files(gate[0])), 0),
                    lambda i: i + 1, [tf.constant(0)])[0]
            return {"y": x * 2.0 + tf.cast(waited * 0, tf.float32)}

    module = Gated()
    return export_version(module, base, version, {"serving_default": module.serve}).path


def build_double_bool(base: str, version: int = 1) -> str:
    """float64 and bool in and out: d -> twice (double), flag -> negated (bool)."""
    import tensorflow as tf

    class DoubleBool(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float64, name="d"),
                                      tf.TensorSpec([None], tf.bool, name="flag")])
        def serve(self, d: Any, flag: Any) -> dict[str, Any]:
            return {"twice": d * 2.0, "negated": tf.logical_not(flag)}

    module = DoubleBool()
    return export_version(module, base, version, {"serving_default": module.serve}).path


def build_keras_mlp(base: str, version: int = 1) -> str:
    """A Keras 3 model exported for serving (``model.export``): 8 -> 16 (relu) -> 3 (softmax),
    fixed weights; returns the version folder. Its one input is ``keras_tensor``."""
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return export_version(model, base, version).path


def build_sleepy(base: str, version: int = 1, seconds: float = 0.5) -> str:
    """y = 2x after ``seconds`` of sleep (not CPU: many calls sleep at once). On entry the call
    writes the file ``tag[0] + ".started"``, so a test can wait until a call is running."""
    import tensorflow as tf

    class Sleepy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="tag"),
                                      tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, tag: Any, x: Any) -> dict[str, Any]:
            started = tf.io.write_file(tf.strings.join([tag[0], ".started"]), "")
            with tf.control_dependencies([started]):
                data = tf.data.Dataset.from_tensors(x)
            spec = {"output_types": [tf.float32], "output_shapes": [[None]]}
            slept = tf.raw_ops.SleepDataset(input_dataset=data._variant_tensor,
                                            sleep_microseconds=int(seconds * 1e6), **spec)
            one = tf.raw_ops.TakeDataset(input_dataset=slept, count=1, **spec)  # sleeps once
            (y,) = tf.raw_ops.DatasetToSingleElement(dataset=one, **spec)
            return {"y": y * 2.0}

    module = Sleepy()
    return export_version(module, base, version, {"serving_default": module.serve}).path
