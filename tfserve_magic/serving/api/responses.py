"""TF Serving's JSON output: predictions, outputs and results, as ``util/json_tensor.cc``
writes them.

Floats keep TF Serving's formatting (``%g`` when it round-trips, else ``%.9g`` for float32), so
clients parse exactly the numbers tensorflow_model_server sends; NaN and Infinity print as bare
tokens; DT_STRING outputs named ``*_bytes`` print as ``{"b64": ...}``. Numbers are written by
orjson straight from numpy. Pure: no TensorFlow, no Tornado.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from tfserve_magic.serving.api.codec import RequestFormat
from tfserve_magic.serving.status_errors import InvalidArgument, Unimplemented

__all__ = ["dumps", "encode_classify_response", "error_body", "encode_predict_response",
           "encode_regress_response"]



_FORMAT_SLICE = 1 << 16


def error_body(message: str) -> bytes:
    """``{"error": message}`` (MakeJsonFromStatus); a message quoting a lone surrogate from a
    request still encodes (as ``\\udfff``) instead of failing the error response itself."""
    try:
        return orjson.dumps({"error": message})
    except TypeError:
        return json.dumps({"error": message}).encode("ascii")


def dumps(doc: Any) -> bytes:
    """Serialise a response document (numpy arrays allowed; NaN/Infinity as TF prints them)."""
    try:
        text = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        text = b"null"  # an unusual type: take the general path below
    # orjson writes non-finite floats as null; TF Serving writes the bare tokens NaN/Infinity.
    if b"null" in text and _has_nonfinite_or_odd(doc):
        return json.dumps(_plain(doc), allow_nan=True, separators=(",", ":")).encode()
    return text


def _has_nonfinite_or_odd(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "biuf" or (
            value.dtype.kind == "f" and not bool(np.isfinite(value).all()))
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nonfinite_or_odd(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nonfinite_or_odd(v) for v in value)
    return not isinstance(value, (str, int, bool, type(None), np.generic))


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _round_significant(values: np.ndarray, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """The doubles nearest to each value printed with ``%.{digits}g``, and where that was exact
    arithmetic (powers of ten up to 1e22 are exact doubles; elsewhere the caller formats)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        magnitude = np.where(values == 0, 0, np.floor(np.log10(np.abs(values))))
        places = (digits - 1 - magnitude).astype(np.int64)
        ok = np.abs(places) <= 22
        places = np.where(ok, places, 0)
        up = places >= 0
        scale = np.power(10.0, np.abs(places))
        scaled = np.where(up, values * scale, values / scale)
        ok &= np.abs(scaled) < 2.0**53
        rounded = np.rint(scaled)
        result = np.where(up, rounded / scale, rounded * scale)
    return result, ok


_SMALL = 64  # below this many values, per-value formatting beats ~30 vectorised numpy calls


def _tf_float32_value(value: float) -> float:
    """One float32 (as a double) -> the double of TF Serving's text for it."""
    text = f"{value:g}"
    try:
        if _F32.unpack(_F32.pack(float(text)))[0] == value:
            return float(text)
    except OverflowError:  # %g rounded past float32's largest value
        pass
    return float(f"{value:.9g}")


_F32 = struct.Struct("f")


def _small_float32_json(array: np.ndarray) -> Any:
    """Small float32 tensors as nested lists, same numbers as the vectorised path."""
    def convert(item: Any) -> Any:
        if isinstance(item, list):
            return [convert(v) for v in item]
        return _tf_float32_value(item) if math.isfinite(item) else item

    return convert(array.tolist())


def _tf_float32_values(array: np.ndarray) -> np.ndarray:
    """float32 -> the double values of TF Serving's text (``%g`` if it round-trips, else
    ``%.9g``), so that clients parse exactly the numbers tensorflow_model_server sends."""
    wide = array.astype(np.float64)
    six, ok6 = _round_significant(wide, 6)
    exact6 = ok6 & (six.astype(np.float32) == array)
    nine, ok9 = _round_significant(wide, 9)
    result = np.where(exact6, six, nine)
    slow = ~ok6 | ~(exact6 | ok9)  # not decided by exact arithmetic: format those values
    if slow.any():
        flat_result = result.reshape(-1)
        for index in np.flatnonzero(slow.reshape(-1)):
            value = float(array.reshape(-1)[index])
            text = f"{value:g}"
            if np.float32(float(text)) != np.float32(value):
                text = f"{value:.9g}"
            flat_result[index] = float(text)
    return result


def _json_tensor(name: str, array: np.ndarray) -> Any:
    """An output tensor ready for ``dumps`` (orjson writes 0-d arrays as null: unwrap them)."""
    value = _json_array(name, array)
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value


def _json_array(name: str, array: np.ndarray) -> Any:
    if array.dtype == np.object_ or array.dtype.kind in "SU":
        as_b64 = name.endswith("_bytes")

        def leaf(item: Any) -> Any:
            data = item if isinstance(item, bytes) else str(item).encode()
            if as_b64:
                return {"b64": base64.b64encode(data).decode("ascii")}
            return data.decode("utf-8", "replace")

        return _map_nested(array.tolist(), leaf)
    if array.dtype == np.float32 or array.dtype == np.float16:
        if array.size <= _SMALL and array.ndim:
            return _small_float32_json(array.astype(np.float32))
        # In slices: the rounding below makes ~10 temporaries per value, which for a whole
        # large output would cost tens of times the response's size at once.
        flat = array.astype(np.float32).reshape(-1)
        out = np.empty(flat.shape, np.float64)
        for start in range(0, flat.size, _FORMAT_SLICE):
            part = flat[start:start + _FORMAT_SLICE]
            finite = np.isfinite(part)
            values = _tf_float32_values(np.where(finite, part, 0).astype(np.float32))
            out[start:start + _FORMAT_SLICE] = np.where(finite, values, part)
        return out.reshape(array.shape)
    if array.dtype.kind == "f":
        return array.astype(np.float64)
    if array.dtype.kind in "iub":
        return np.ascontiguousarray(array)
    raise Unimplemented(f"Conversion of output tensor {name} of dtype {array.dtype} to JSON")


def _map_nested(value: Any, leaf: Any) -> Any:
    if isinstance(value, list):
        return [_map_nested(v, leaf) for v in value]
    return leaf(value)


def encode_predict_response(fmt: RequestFormat, outputs: Mapping[str, np.ndarray]) -> bytes:
    """MakeJsonFromTensors: ``predictions`` (row) or ``outputs`` (columnar)."""
    names = sorted(outputs)
    if fmt is RequestFormat.COLUMNAR:
        if len(names) == 1:
            return _one_member("outputs", _json_tensor(names[0], outputs[names[0]]))
        return dumps({"outputs": {n: _json_tensor(n, outputs[n]) for n in names}})
    batch: int | None = None
    for name in names:
        array = outputs[name]
        if array.ndim == 0:
            raise InvalidArgument(f"Tensor name: {name} has no shape information ")
        if batch is None:
            batch = array.shape[0]
        elif array.shape[0] != batch:
            raise InvalidArgument(f"Tensor name: {name} has inconsistent batch size: "
                                  f"{array.shape[0]} expecting: {batch}")
    if len(names) == 1:
        return _one_member("predictions", _json_tensor(names[0], outputs[names[0]]))
    columns = {n: _json_tensor(n, outputs[n]) for n in names}
    rows = [{n: columns[n][i] for n in names} for i in range(batch or 0)]
    return dumps({"predictions": rows})


def _one_member(key: str, value: Any) -> bytes:
    """``dumps({key: value})``, a large array written in slices of rows: orjson holds the GIL
    for a whole call, so one call over millions of numbers would keep the event loop (and
    every other client) waiting; between slices it gets its turn. Same bytes either way."""
    if not isinstance(value, np.ndarray) or value.ndim == 0 or value.size <= _FORMAT_SLICE:
        return dumps({key: value})
    rows = max(1, _FORMAT_SLICE // max(1, value[0].size))
    parts = [dumps(value[start:start + rows])[1:-1] for start in range(0, len(value), rows)]
    return b'{"%s":[%s]}' % (key.encode(), b",".join(parts))


def encode_classify_response(classes: np.ndarray | None, scores: np.ndarray | None) -> bytes:
    """``{"results": [[[label, score], ...], ...]}``; a missing label is "", a missing score 0."""
    batch, width = (classes if classes is not None else scores).shape[:2]  # type: ignore[union-attr]
    labels = classes.tolist() if classes is not None else [[b""] * width for _ in range(batch)]
    values = (_tf_float32_values(scores.astype(np.float32)).tolist() if scores is not None
              else [[0.0] * width for _ in range(batch)])
    results = [[[_text(labels[i][j]), values[i][j]] for j in range(width)] for i in range(batch)]
    return dumps({"results": results})


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def encode_regress_response(values: np.ndarray) -> bytes:
    return dumps({"results": _tf_float32_values(values.reshape(-1).astype(np.float32))})
