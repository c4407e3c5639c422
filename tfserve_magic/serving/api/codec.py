"""TF Serving's JSON requests -> numpy, as ``util/json_tensor.cc`` reads them.

Owns request parsing (predict row/columnar, classify/regress examples) and the exact
client-visible messages; ``responses`` writes the responses. Numbers take a vectorised numpy path
when the JSON is a regular numeric array and fall back to an element-wise walk that reproduces TF
Serving's errors otherwise. Pure: no TensorFlow, no Tornado (``loader`` turns feature dicts into tf.Examples).

Known deviation: a JSON ``true`` mixed into a list of numbers is read as 1 by the fast path.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from tfserve_magic.serving.api.json_slices import loads_in_slices
from tfserve_magic.serving.status_errors import InvalidArgument, Unimplemented
from tfserve_magic.serving.tensor_types import Example, TensorSpec

__all__ = [
    "RequestFormat",
    "parse_examples_request",
    "parse_json_object",
    "parse_predict_request",
    "signature_name_of",
]


class RequestFormat(enum.Enum):
    ROW = "instances"
    COLUMNAR = "inputs"


# dtype name -> (numpy dtype, name used in TF messages)
_NUMPY = {
    "DT_FLOAT": (np.float32, "float"),
    "DT_DOUBLE": (np.float64, "double"),
    "DT_INT8": (np.int8, "int8"),
    "DT_INT16": (np.int16, "int16"),
    "DT_INT32": (np.int32, "int32"),
    "DT_INT64": (np.int64, "int64"),
    "DT_UINT8": (np.uint8, "uint8"),
    "DT_UINT32": (np.uint32, "uint32"),
    "DT_UINT64": (np.uint64, "uint64"),
    "DT_BOOL": (np.bool_, "bool"),
    "DT_STRING": (np.object_, "string"),
}
_INT32 = ("DT_INT8", "DT_INT16", "DT_INT32", "DT_UINT8")
_ERROR_VALUE_LIMIT = 4096  # TF prints the whole document; we cap what goes into a message
MAX_RANK = 64  # numpy's limit (TensorFlow allows 254); deeper lists are refused, not recursed
_MAX_DEPTH = 1024  # orjson's nesting limit
_FLOAT_INT_MAX = {"DT_FLOAT": (1 << 24) - 1, "DT_DOUBLE": (1 << 53) - 1}
_FLOAT_MAX = {"DT_FLOAT": float(np.finfo(np.float32).max), "DT_DOUBLE": float(np.finfo(np.float64).max)}


def _type_name(dtype: str) -> str:
    return _NUMPY[dtype][1] if dtype in _NUMPY else dtype.removeprefix("DT_").lower()


# ---------------------------------------------------------------- JSON documents


def parse_json_object(body: bytes | bytearray) -> dict[str, Any]:
    """Parse a request body; TF Serving's messages for empty, invalid and non-object JSON.

    orjson stops at nesting depth 1024 and at numbers that overflow a double before it builds
    anything more, so a hostile body costs no more than its size; the tensor code below then
    bounds the rank before it recurses. Python's ``json`` is only asked for what orjson refuses
    but TF Serving (RapidJSON with ``kParseNanAndInfFlag``) accepts: ``NaN`` and ``Infinity``.
    """
    if not body:
        raise InvalidArgument("JSON Parse error: The document is empty")
    doc = loads_in_slices(body)  # a large body: in slices, the event loop keeps its turns
    if doc is None:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            doc = _parse_with_nan(body, exc)
    if not isinstance(doc, dict):
        raise InvalidArgument(f"JSON Value: {_show(doc)} Is not object")
    return doc


# orjson's reasons that no second parser can turn into a document TF Serving would accept.
_FINAL_REASONS = (("depth limit", f"Nesting deeper than {_MAX_DEPTH} levels."),
                  ("not valid UTF-8", "Invalid encoding in string."),
                  ("surrogate", "The surrogate pair in string is invalid."),
                  ("infinity when parsed", "Number too big to be stored in double."))
# A surrogate written as an escape (orjson has already refused any invalid UTF-8 byte).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _parse_with_nan(body: bytes | bytearray, orjson_error: orjson.JSONDecodeError) -> Any:
    for marker, reason in _FINAL_REASONS:
        if marker in orjson_error.msg:
            raise InvalidArgument(f"JSON Parse error: {reason} at offset: {orjson_error.pos}")
    try:
        doc = json.loads(body)
        if _SURROGATE_ESCAPE.search(body):
            json.dumps(doc, ensure_ascii=False).encode("utf-8")  # a lone surrogate fails here
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, digits limit, encoding
        offset = getattr(exc, "pos", orjson_error.pos)
        reason = "The document is empty." if not body.strip() else "Invalid value."
        raise InvalidArgument(f"JSON Parse error: {reason} at offset: {offset}") from None
    return doc


def _show(value: Any) -> str:
    """A JSON value as TF Serving prints it inside error messages, cut at a bounded length.

    Iterative and stops at the limit, so a message about a huge or deeply nested document costs
    no more than the limit (TF Serving prints the whole value)."""
    out: list[str] = []
    size = 0
    stack: list[Any] = [value]
    while stack and size <= _ERROR_VALUE_LIMIT:
        item = stack.pop()
        if isinstance(item, _Token):
            text = item.text
        elif isinstance(item, list):
            text = "["
            stack.append(_CLOSE_LIST)
            for index in range(len(item) - 1, -1, -1):
                stack.append(item[index])
                if index:
                    stack.append(_COMMA)
        elif isinstance(item, dict):
            text = "{"
            stack.append(_CLOSE_OBJECT)
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                key, member = entries[index]
                stack.append(member)
                stack.append(_Token(json.dumps(str(key)) + ":"))
                if index:
                    stack.append(_COMMA)
        else:
            text = json.dumps(item, allow_nan=True, default=str)
        out.append(text)
        size += len(text)
    text = "".join(out)
    if stack or len(text) > _ERROR_VALUE_LIMIT:
        text = text[:_ERROR_VALUE_LIMIT] + "...(truncated)"
    return text


@dataclass(frozen=True)
class _Token:
    text: str


_COMMA, _CLOSE_LIST, _CLOSE_OBJECT = _Token(","), _Token("]"), _Token("}")


def signature_name_of(doc: Mapping[str, Any]) -> str:
    """The optional ``signature_name``; "" means serving_default."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise InvalidArgument(f"JSON Value: {_show(doc)} not formatted correctly. "
                              "'signature_name' key must be a string value.")
    return name


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64decode(value: dict[str, str]) -> bytes:
    try:
        return base64.b64decode(value["b64"].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidArgument("Unable to base64 decode") from None


# ---------------------------------------------------------------- predict requests


def parse_predict_request(
    doc: Mapping[str, Any], inputs: Mapping[str, TensorSpec]
) -> tuple[RequestFormat, dict[str, np.ndarray]]:
    """Turn a predict body into input arrays keyed by the signature's input names."""
    if not inputs:
        raise InvalidArgument("Failed to get input map for signature: "
                              f"{doc.get('signature_name') or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise InvalidArgument(f"JSON Value: {_show(doc)} Not formatted correctly expecting only "
                              "one of 'inputs' or 'instances' keys to exist ")
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise InvalidArgument(f"JSON Value: {_show(doc)} Expecting 'instances' to be an "
                                  "list/array")
        if not instances:
            raise InvalidArgument(f"JSON Value: {_show(doc)} No values in 'instances' array")
        return RequestFormat.ROW, _from_instances(instances, inputs)
    if has_inputs:
        return RequestFormat.COLUMNAR, _from_inputs(doc["inputs"], inputs)
    raise InvalidArgument("Missing 'inputs' or 'instances' key")


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _from_instances(instances: list[Any], specs: Mapping[str, TensorSpec]) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(specs) > 1:
        raise InvalidArgument("instances is a plain list, but expecting list of objects as "
                              "multiple input tensors required as per tensorinfo_map")
    names = sorted(specs)
    if not _is_element_object(instances[0]):
        for index, element in enumerate(instances):
            if _is_element_object(element):
                raise InvalidArgument(f"Expecting value/list but got object at item {index} "
                                      "of input list")
        name = names[0]
        fast = _fast_array(instances, specs[name].dtype)
        if fast is not None:
            return {name: fast}
        return {name: _stack_elements(instances, name, specs[name].dtype, keyed=False)}
    expected = set(names)
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for index, element in enumerate(instances):
        if not _is_element_object(element):
            raise InvalidArgument(f"Expecting object but got list at item {index} of input list")
        for key in element:
            if key not in expected:
                raise InvalidArgument(
                    f"Failed to process element: {index} key: {key} of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {key}")
        if set(element) != expected:
            raise InvalidArgument(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{_show(element)} keys must be equal to: {','.join(names)}")
        for key in names:
            columns[key].append(element[key])
    result = {}
    for name in names:
        fast = _fast_array(columns[name], specs[name].dtype)
        result[name] = fast if fast is not None else _stack_elements(
            columns[name], name, specs[name].dtype, keyed=True)
    return result


def _stack_elements(elements: list[Any], name: str, dtype: str, keyed: bool) -> np.ndarray:
    """The element-wise path: one tensor per element, all of the same shape (AddInstanceItem)."""
    first_shape: tuple[int, ...] | None = None
    first_size = 0
    values: list[Any] = []
    for index, element in enumerate(elements):
        try:
            shape, flat = _dense(element, dtype)
            size = math.prod(shape)
            if first_shape is None:
                first_shape, first_size = shape, size
            elif size != first_size:
                raise InvalidArgument(f"Expecting tensor size: {first_size} but got: {size}")
            elif shape != first_shape:
                raise InvalidArgument(f"Expecting shape {_shape_text(first_shape)} but got: "
                                      f"{_shape_text(shape)}")
        except InvalidArgument as exc:
            where = f"{index} key: {name}" if keyed else f"{index}"
            raise InvalidArgument(f"Failed to process element: {where} of 'instances' list. "
                                  f"Error: {exc.code.name}: {exc.message}") from None
        values.extend(flat)
    assert first_shape is not None
    _check_rank(len(first_shape) + 1)
    return _to_array(values, dtype, (len(elements), *first_shape))


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _from_inputs(value: Any, specs: Mapping[str, TensorSpec]) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or _is_b64(value):
        if len(specs) > 1:
            raise InvalidArgument("inputs is a plain value/list, but expecting an object as "
                                  "multiple input tensors required as per tensorinfo_map")
        name = next(iter(specs))
        return {name: _tensor(value, specs[name].dtype)}
    result = {}
    for name in sorted(specs):
        if name not in value:
            raise InvalidArgument(f"Missing named input: {name} in 'inputs' object.")
        result[name] = _tensor(value[name], specs[name].dtype)
    return result


def _tensor(value: Any, dtype: str) -> np.ndarray:
    fast = _fast_array(value, dtype)
    if fast is not None:
        return fast
    shape, flat = _dense(value, dtype)
    return _to_array(flat, dtype, shape)


_SLICE_VALUES = 1 << 16  # a large list becomes an array this many values at a time


def _as_array(value: Any) -> np.ndarray:
    """``np.asarray(value)``, for a large list in slices of its rows: converting Python
    numbers holds the GIL throughout, so one call over millions of them would keep the event
    loop (and every other client) waiting; between slices it gets its turn. Raises as
    ``np.asarray`` does for what is not one regular array."""
    if not isinstance(value, list) or len(value) < 2:
        return np.asarray(value)
    first = np.asarray(value[0])
    rows = max(1, _SLICE_VALUES // max(1, first.size))
    if len(value) <= rows:
        return np.asarray(value)
    head = np.asarray(value[:rows])
    result = np.empty((len(value), *head.shape[1:]), head.dtype)
    result[:rows] = head
    for start in range(rows, len(value), rows):
        part = np.asarray(value[start:start + rows])
        if part.dtype != head.dtype or part.shape[1:] != head.shape[1:]:
            # Mixed kinds (ints then floats) promote as np.asarray would; shapes that differ
            # fail as it would.
            return np.concatenate([result[:start], part, _as_array(value[start + rows:])]
                                  if start + rows < len(value) else [result[:start], part])
        result[start:start + rows] = part
    return result


def _fast_array(value: Any, dtype: str) -> np.ndarray | None:
    """Vectorised conversion of a regular numeric/bool JSON array, or None to take the slow path
    (which also produces the exact error message)."""
    if dtype not in _NUMPY or dtype == "DT_STRING":
        return None
    try:
        array = _as_array(value)
    except (ValueError, TypeError, OverflowError):
        return None
    kind = array.dtype.kind
    target = _NUMPY[dtype][0]
    if array.size == 0:
        return array.astype(target) if kind in "biuf" else None
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        if kind in "iu":
            if np.abs(array.astype(np.float64)).max() > _FLOAT_INT_MAX[dtype]:
                return None
        elif kind == "f":
            # One rule for both formats (IsLosslessDecimal, per value): a JSON integer above
            # 2**24 (2**53 for double) is refused. numpy has already merged ints and floats, so
            # a list holding any whole number that large takes the per-value path.
            # fmax ignores NaN; the mask below is only built for the rare list that needs it.
            if np.fmax.reduce(np.abs(array), axis=None) > _FLOAT_INT_MAX[dtype]:
                magnitude = np.abs(array[np.isfinite(array)])
                large = magnitude[magnitude > _FLOAT_INT_MAX[dtype]]
                if large.size and (large.max() > _FLOAT_MAX[dtype] or
                                   (large == np.floor(large)).any()):
                    return None
        else:
            return None
        return array.astype(target)
    if dtype == "DT_BOOL":
        return array if kind == "b" else None
    if kind not in "iu":
        return None
    low, high = int(array.min()), int(array.max())
    if dtype in _INT32:
        if low < -(2**31) or high > 2**31 - 1:
            return None
        return array.astype(np.int64).astype(target)  # TF casts (wraps) into int8/16/uint8
    if dtype == "DT_INT64":
        return array.astype(np.int64) if high <= 2**63 - 1 else None
    if dtype == "DT_UINT32":
        return array.astype(target) if low >= 0 and high <= 2**32 - 1 else None
    return array.astype(target) if low >= 0 else None  # DT_UINT64


def _dense(value: Any, dtype: str) -> tuple[tuple[int, ...], list[Any]]:
    """GetDenseTensorShape + FillTensorProto: shape from the first element at each level."""
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        _check_rank(len(shape))
        if not probe:
            break
        probe = probe[0]
    flat: list[Any] = []
    _fill(value, 0, tuple(shape), dtype, flat)
    return tuple(shape), flat


def _check_rank(rank: int) -> None:
    if rank > MAX_RANK:
        raise InvalidArgument(f"Tensor of rank {rank} is deeper than the supported rank of "
                              f"{MAX_RANK}: lists are nested too deeply")


def _fill(value: Any, level: int, shape: tuple[int, ...], dtype: str, out: list[Any]) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise InvalidArgument(f"JSON Value: {_show(value)} found at incorrect level: "
                                  f"{level + 1} in the JSON DOM. Expected at level: {rank}")
        out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise InvalidArgument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise InvalidArgument(f"Encountered list at unexpected size: {len(value)} at level: "
                              f"{level} expected size: {shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _type_error(value: Any, dtype: str) -> InvalidArgument:
    return InvalidArgument(f"JSON Value: {_show(value)} Type: {_json_type(value)} is not of "
                           f"expected type: {_type_name(dtype)}")


def _scalar(value: Any, dtype: str) -> Any:
    """AddValueToTensor for one leaf."""
    if isinstance(value, dict):
        if dtype != "DT_STRING":
            raise _type_error(value, dtype)
        if not _is_b64(value):
            raise InvalidArgument(f"JSON Value: {_show(value)} not formatted correctly for "
                                  "base64 data")
        return _b64decode(value)
    if dtype not in _NUMPY:
        raise Unimplemented(f"Conversion of JSON Value: {_show(value)} to type: "
                            f"{_type_name(dtype)}")
    is_bool = isinstance(value, bool)
    is_int = isinstance(value, int) and not is_bool
    is_number = is_int or isinstance(value, float)
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        if not is_number:
            raise _type_error(value, dtype)
        lossy = (abs(value) > _FLOAT_INT_MAX[dtype]) if is_int else (
            math.isfinite(value) and abs(value) > _FLOAT_MAX[dtype])
        if lossy:
            raise InvalidArgument(f"Cannot convert JSON value: {_show(value)} to "
                                  f"{_type_name(dtype)} without loss of precision.")
        return float(value)
    if dtype == "DT_STRING":
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8", "surrogatepass")
    if dtype == "DT_BOOL":
        if not is_bool:
            raise _type_error(value, dtype)
        return value
    limits = {"DT_INT64": (-(2**63), 2**63 - 1), "DT_UINT32": (0, 2**32 - 1),
              "DT_UINT64": (0, 2**64 - 1)}.get(dtype, (-(2**31), 2**31 - 1))
    if not is_int or not limits[0] <= value <= limits[1]:
        raise _type_error(value, dtype)
    return value


def _to_array(flat: list[Any], dtype: str, shape: Sequence[int]) -> np.ndarray:
    if dtype == "DT_STRING":
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    if dtype in _INT32:
        return np.asarray(flat, dtype=np.int64).astype(_NUMPY[dtype][0]).reshape(shape)
    return np.asarray(flat, dtype=_NUMPY[dtype][0]).reshape(shape)


# ---------------------------------------------------------------- classify / regress requests


def parse_examples_request(doc: Mapping[str, Any]) -> tuple[Example | None, list[Example]]:
    """(context, examples) of a classify/regress body, as MakeExampleFromJsonObject reads them
    (its message names classify for regress too, as TF Serving's does)."""
    context = _example(doc["context"]) if "context" in doc else None
    if "examples" not in doc:
        raise InvalidArgument(f"JSON Value: {_show(doc)} When method is classify, key "
                              "'examples' is expected and was not found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise InvalidArgument(f"JSON Value: {_show(doc)} Expecting 'examples' value to be an "
                              "list/array")
    if not examples:
        raise InvalidArgument(f"JSON Value: {_show(doc)} 'examples' value is an empty array")
    return context, [_example(e) for e in examples]


def _example(value: Any) -> Example:
    if not isinstance(value, dict):
        raise InvalidArgument(f"Example must be JSON object but got JSON {_json_type(value)}")
    example: Example = {}
    for name, content in value.items():
        kind: str | None = None
        values: list[Any] = []
        for item in content if isinstance(content, list) else [content]:
            item_kind, item_value = _feature_value(name, item)
            if kind is not None and item_kind != kind:
                raise InvalidArgument(f"Unexpected element type in feature: {name} expecting "
                                      f"type: {kind}")
            kind = item_kind
            values.append(item_value)
        example[name] = (kind or "float", values)
    return example


def _feature_value(name: str, value: Any) -> tuple[str, Any]:
    if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64(value)):
        raise InvalidArgument(f"Feature: {name} has element with unexpected JSON type: "
                              f"{_json_type(value)}")
    if isinstance(value, bool):
        return "int64", int(value)
    if isinstance(value, dict):
        return "bytes", _b64decode(value)
    if isinstance(value, str):
        return "bytes", value.encode("utf-8", "surrogatepass")
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) > _FLOAT_MAX["DT_FLOAT"]:
            raise InvalidArgument(f"Cannot convert JSON value: {_show(value)} to float without "
                                  "loss of precision.")
        return "float", value
    if value > 2**63 - 1:
        raise InvalidArgument(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
    if value < -(2**63):
        raise InvalidArgument(f"JSON Value: {_show(value)} Type: Number is not of expected "
                              "type: int64")
    return "int64", value
