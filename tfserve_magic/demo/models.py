"""The bundled demo models, used by ``make demo``, the teaching notebooks and the tests.

* ``half_plus_two``: TF Serving's classic test model, y = 0.5 x + 2, with ``serving_default``
  (any shape), and ``classify_x_to_y`` / ``regress_x_to_y`` signatures on tf.Example inputs.
* ``digits``: a softmax classifier of scikit-learn's bundled 8x8 digits (no download), trained
  in a second or two: input ``pixels`` float32 [batch, 64] scaled to [0, 1]; outputs
  ``probabilities`` [batch, 10] and ``classes`` int64 [batch].

Each builder writes one version atomically (through ``export``) and imports TensorFlow only when
called.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfserve_magic.operations.export import export_version

__all__ = ["build_digits_classifier", "build_half_plus_two", "digits_dataset"]


def build_half_plus_two(base_path: str, version: int = 1, *, a: float = 0.5,
                        b: float = 2.0) -> str:
    """Write half_plus_two (or y = a x + b) as ``base_path/<version>``; returns that folder."""
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = tf.Variable(a, dtype=tf.float32)
            self.b = tf.Variable(b, dtype=tf.float32)

        @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="x")])
        def predict(self, x: Any) -> dict[str, Any]:
            return {"y": self.a * x + self.b}

        def _parse(self, serialized: Any) -> Any:
            features = tf.io.parse_example(
                serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})
            return self.a * features["x"] + self.b

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs: Any) -> dict[str, Any]:
            return {"scores": self._parse(inputs)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress(self, inputs: Any) -> dict[str, Any]:
            return {"outputs": self._parse(inputs)}

    module = HalfPlusTwo()
    signatures = {"serving_default": module.predict, "classify_x_to_y": module.classify,
                  "regress_x_to_y": module.regress}
    return export_version(module, base_path, version, signatures=signatures).path


def digits_dataset(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) from scikit-learn's digits, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(len(x) * 0.8)
    train, test = order[:split], order[split:]
    return x[train], y[train], x[test], y[test]


def build_digits_classifier(base_path: str, version: int = 1, *, steps: int = 300,
                            learning_rate: float = 0.5, hidden: int = 0) -> tuple[str, float]:
    """Train and write the digits classifier; returns (version folder, test accuracy).

    ``hidden`` > 0 adds a hidden layer (an "improved" version for the versioning lessons)."""
    import tensorflow as tf

    train_x, train_y, test_x, test_y = digits_dataset()
    rng = np.random.default_rng(version)

    class Digits(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            width = hidden or 64
            self.w1 = tf.Variable(rng.normal(0, 0.1, (64, width)).astype(np.float32)) \
                if hidden else None
            self.b1 = tf.Variable(np.zeros(width, np.float32)) if hidden else None
            self.w = tf.Variable(rng.normal(0, 0.1, (width, 10)).astype(np.float32))
            self.b = tf.Variable(np.zeros(10, np.float32))

        def logits(self, pixels: Any) -> Any:
            h = tf.nn.relu(pixels @ self.w1 + self.b1) if hidden else pixels
            return h @ self.w + self.b

        @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="pixels")])
        def predict(self, pixels: Any) -> dict[str, Any]:
            probabilities = tf.nn.softmax(self.logits(pixels))
            return {"probabilities": probabilities,
                    "classes": tf.argmax(probabilities, axis=-1)}

    model = Digits()
    optimizer = tf.keras.optimizers.SGD(learning_rate)
    xs, ys = tf.constant(train_x), tf.constant(train_y)

    @tf.function
    def step() -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                ys, model.logits(xs)))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    for _ in range(steps):
        step()
    predicted = model.predict(tf.constant(test_x))["classes"].numpy()
    accuracy = float(np.mean(predicted == test_y))
    path = export_version(model, base_path, version,
                          signatures={"serving_default": model.predict}).path
    return path, accuracy
