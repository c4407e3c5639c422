"""Ready-to-paste ``curl`` commands for a predict through the proxy, built from a model's
metadata (so the lab panel needs no rules of its own). Pure functions."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

__all__ = ["curl_predict", "example_instance"]

_ZERO = {"DT_STRING": "text", "DT_BOOL": False}


def _value(info: Mapping[str, Any]) -> Any:
    leaf = _ZERO.get(info.get("dtype", "DT_FLOAT"), 0.0 if "FLOAT" in info.get("dtype", "DT_FLOAT")
                     or "DOUBLE" in info.get("dtype", "") or "HALF" in info.get("dtype", "")
                     else 0)
    shape = info.get("tensor_shape", {})
    if shape.get("unknown_rank"):
        return leaf
    dims = [int(d.get("size", -1)) for d in shape.get("dim", [])][1:]  # one row: drop the batch
    value: Any = leaf
    for size in reversed(dims):
        value = [value] * (size if size > 0 else 1)
    return value


def example_instance(metadata: Mapping[str, Any], signature: str = "serving_default") -> Any:
    """One row of zeros shaped like the signature's inputs (None if there is no such signature)."""
    signatures = metadata.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
    inputs = signatures.get(signature, {}).get("inputs", {})
    if not inputs:
        return None
    if len(inputs) == 1:
        return _value(next(iter(inputs.values())))
    return {name: _value(info) for name, info in sorted(inputs.items())}


def curl_predict(proxy_url: str, model: str, metadata: Mapping[str, Any], token: str) -> str:
    instance = example_instance(metadata)
    body = json.dumps({"instances": [instance if instance is not None else 1.0]},
                      separators=(", ", ": "))
    auth = f"-H {shlex.quote('Authorization: token ' + token)} " if token else ""
    return (f"curl {auth}-H 'Content-Type: application/json' -d {shlex.quote(body)} "
            f"{proxy_url}v1/models/{model}:predict")
