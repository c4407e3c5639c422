"""Classify and Regress on a servable: the signature checks and output checks both surfaces share.

TF Serving's ``servables/tensorflow/classifier.cc`` and ``regressor.cc``: the signature must take
one string input named ``inputs`` (serialized ``tf.Example``s) and give ``classes``/``scores`` or
``outputs`` of the batch's size. The REST surface builds the examples from JSON, the gRPC surface
and warmup replay take them from ``tensorflow.serving.Input`` (:func:`serialized_input`); all end
here, and render the arrays their own way.
No TensorFlow (the servable runs the model), no Tornado, no gRPC.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfserve_magic.serving.models.manager import Servable
from tfserve_magic.serving.status_errors import InvalidArgument

__all__ = ["classify", "regress", "serialized_input"]


def _run(servable: Servable, signature: str, verb: str, serialized: np.ndarray,
         check_method: bool) -> dict[str, np.ndarray]:
    kind = "classification" if verb == "classify" else "regression"
    if signature not in servable.inputs:
        raise InvalidArgument(f"No signature was found with the name: {signature}")
    expected_method = f"tensorflow/serving/{verb}"
    method = servable.method_names.get(signature, "")
    if check_method and method != expected_method:
        raise InvalidArgument(f"Expected {kind} signature method_name to be "
                              f"{expected_method}. Was: {method}")
    inputs = servable.inputs[signature]
    if len(inputs) != 1:
        raise InvalidArgument("Expected one input Tensor.")
    if "inputs" not in inputs:
        raise InvalidArgument(f"No {kind} inputs found in SignatureDef: {signature}")
    return servable.run(signature, {"inputs": serialized})


def classify(servable: Servable, signature: str, serialized: np.ndarray,
             check_method: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(classes, scores) of ``[batch, K]`` each, either may be None."""
    outputs = _run(servable, signature, "classify", serialized, check_method)
    batch = len(serialized)
    classes, scores = outputs.get("classes"), outputs.get("scores")
    if classes is None and scores is None:
        raise InvalidArgument("Expected classification signature outputs to contain classes "
                              f"or scores: {signature}")
    for name, tensor in (("classes", classes), ("scores", scores)):
        if tensor is not None and (tensor.ndim != 2 or tensor.shape[0] != batch):
            raise InvalidArgument(f"Expected Tensor shape: [{batch} K] but got "
                                  f"{list(tensor.shape)} for {name}")
    if classes is not None and scores is not None and classes.shape != scores.shape:
        raise InvalidArgument(f"Tensors class and score should match in shape, but had shapes: "
                              f"{list(classes.shape)} and {list(scores.shape)}")
    if scores is not None and scores.dtype != np.float32:
        raise InvalidArgument("Expected scores Tensor of DT_FLOAT.")
    return classes, scores


def regress(servable: Servable, signature: str, serialized: np.ndarray,
            check_method: bool) -> np.ndarray:
    """One value per example, shape ``[batch]``."""
    outputs = _run(servable, signature, "regress", serialized, check_method)
    batch = len(serialized)
    values = outputs.get("outputs")
    if values is None:
        raise InvalidArgument(f"No regression outputs found in SignatureDef: {signature}")
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)) or \
            values.shape[0] != batch:
        raise InvalidArgument("Expected output Tensor shape to be either [batch_size] or "
                              f"[batch_size, 1] but got {list(values.shape)}")
    return values.reshape(-1)


def serialized_input(input_proto: Any) -> np.ndarray:
    """A ``tensorflow.serving.Input``'s examples, serialized (``InputToSerializedExampleTensor``:
    a context is merged into each example)."""
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
