"""``tensorflow.TensorProto`` <-> numpy, as TensorFlow's ``Tensor::FromProto`` / ``AsProtoField``
read and write it.

Pure: works on the proto objects it is handed (a request's ``inputs[name]``, a response's
``outputs[name]``) and never imports TensorFlow or the generated protos, so the REST-only parts of
the server and the kernel side stay light. Inputs may use the packed ``tensor_content`` or the
typed ``*_val`` fields (fewer typed values than the shape holds repeat the last one, none at all
means zeros: TensorFlow's rule), and what that rule would expand is bounded before anything is
allocated: a tensor may hold more than ``max_bytes`` (the server's ``--max_request_bytes``, the
limit a REST body has) only when its values were all sent, so a 33-byte request naming a shape
of ``[50000000, 1]`` is TF Serving's ``tensor parsing error`` at once; and the rule fills only a
shape the signature accepts (its rank and fixed sizes), never one the model would refuse anyway.
Outputs use the typed fields unless asked for ``tensor_content``
(``--enable_serialization_as_tensor_content``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tfserve_magic.serving.status_errors import InvalidArgument, Unimplemented

__all__ = ["DTYPE_NAMES", "DTYPE_NUMBERS", "from_tensor_proto", "to_tensor_proto"]

# types.proto DataType numbers of the dtypes served: name -> (number, numpy dtype, typed field)
_DTYPES: dict[str, tuple[int, Any, str]] = {
    "DT_FLOAT": (1, np.float32, "float_val"),
    "DT_DOUBLE": (2, np.float64, "double_val"),
    "DT_INT32": (3, np.int32, "int_val"),
    "DT_UINT8": (4, np.uint8, "int_val"),
    "DT_INT16": (5, np.int16, "int_val"),
    "DT_INT8": (6, np.int8, "int_val"),
    "DT_STRING": (7, np.object_, "string_val"),
    "DT_INT64": (9, np.int64, "int64_val"),
    "DT_BOOL": (10, np.bool_, "bool_val"),
    "DT_UINT16": (17, np.uint16, "int_val"),
    "DT_HALF": (19, np.float16, "half_val"),
    "DT_UINT32": (22, np.uint32, "uint32_val"),
    "DT_UINT64": (23, np.uint64, "uint64_val"),
}
DTYPE_NUMBERS = {name: number for name, (number, _, _) in _DTYPES.items()}
DTYPE_NAMES = {number: name for name, number in DTYPE_NUMBERS.items()}
_BY_NUMPY = {np.dtype(np_type): name for name, (_, np_type, _) in _DTYPES.items()
             if name != "DT_STRING"}


def _shape(proto: Any, alias: str) -> tuple[int, ...]:
    if proto.tensor_shape.unknown_rank:
        raise InvalidArgument(f"tensor parsing error: {alias}")
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if any(d < 0 for d in shape):
        raise InvalidArgument(f"tensor parsing error: {alias}")
    return shape


def from_tensor_proto(proto: Any, alias: str, max_bytes: int | None = None,
                      accepts: tuple[int, ...] | None = None) -> np.ndarray:
    """A request tensor as numpy; a proto TensorFlow could not parse gives TF Serving's error.
    ``max_bytes``: the most a tensor may expand to beyond the values it carries (None: no
    bound, for a client reading a server's answer); ``accepts``: the signature's shape for it
    (-1 for any size; None: any shape), which a tensor that expands must fit."""
    name = DTYPE_NAMES.get(proto.dtype)
    if name is None:
        raise Unimplemented(f"Input tensor {alias} has a dtype ({proto.dtype}) this server does "
                            "not convert")
    shape = _shape(proto, alias)
    size = math.prod(shape)  # a Python int: exact, however large the dims
    _, np_type, field = _DTYPES[name]
    if proto.tensor_content and name != "DT_STRING":
        dtype = np.dtype(np_type).newbyteorder("<")
        if len(proto.tensor_content) != size * dtype.itemsize:
            raise InvalidArgument(f"tensor parsing error: {alias}")
        return np.frombuffer(proto.tensor_content, dtype=dtype).astype(np_type, copy=False).reshape(
            shape)
    values = getattr(proto, field)
    count = len(values)
    if count > size:
        raise InvalidArgument(f"tensor parsing error: {alias}")
    if max_bytes is not None and count < size:
        _check_expansion(alias, shape, size, np.dtype(np_type).itemsize, name, max_bytes)
    if accepts is not None and count < size and not _accepted(shape, accepts):
        raise InvalidArgument(
            f"tensor parsing error: {alias} (shape [{_dims(shape)}] does not fit the signature's "
            f"[{_dims(accepts)}], and the request carries {count} of its {size} values)")
    if name == "DT_STRING":
        flat = np.empty(size, dtype=object)
        flat[:count] = list(values)
        if count < size:
            flat[count:] = values[-1] if count else b""
        return flat.reshape(shape)
    if name == "DT_HALF":
        data = np.asarray(values, dtype=np.uint16).view(np.float16)
    else:
        data = np.asarray(values, dtype=np_type)
    if count == size:
        return data.reshape(shape)
    flat = np.zeros(size, dtype=np_type)
    flat[:count] = data
    if count:
        flat[count:] = data[-1]
    return flat.reshape(shape)


def _check_expansion(alias: str, shape: tuple[int, ...], size: int, itemsize: int, name: str,
                     max_bytes: int) -> None:
    """TF Serving's error, before any allocation, for a shape that the repeat-the-last-value
    rule would fill past ``max_bytes`` (or past what numpy can index at all)."""
    needed = size * itemsize
    if needed > max_bytes or size >= 2**63:
        raise InvalidArgument(
            f"tensor parsing error: {alias} (shape [{_dims(shape)}] holds {size} elements, "
            f"{needed} bytes as {name}, more than the limit of {max_bytes} bytes "
            "(--max_request_bytes) for values the request does not carry)")


def _accepted(shape: tuple[int, ...], accepts: tuple[int, ...]) -> bool:
    return len(shape) == len(accepts) and all(
        want < 0 or have == want for have, want in zip(shape, accepts, strict=True))


def _dims(shape: tuple[int, ...]) -> str:
    return ",".join(str(d) for d in shape)


def to_tensor_proto(array: np.ndarray, proto: Any, *, as_content: bool = False) -> None:
    """Fill ``proto`` (e.g. ``response.outputs[name]``) with an output array."""
    array = np.asarray(array)
    if array.dtype == np.object_ or array.dtype.kind in "SU":
        name = "DT_STRING"
    else:
        name = _BY_NUMPY.get(array.dtype)  # type: ignore[assignment]
        if name is None:
            raise Unimplemented(f"Conversion of output dtype {array.dtype} to a TensorProto")
    number, np_type, field = _DTYPES[name]
    proto.dtype = number
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add().size = size
    if name == "DT_STRING":
        proto.string_val.extend(
            item if isinstance(item, bytes) else str(item).encode() for item in array.reshape(-1))
    elif as_content:
        proto.tensor_content = np.ascontiguousarray(
            array, dtype=np.dtype(np_type).newbyteorder("<")).tobytes()
    elif name == "DT_HALF":
        proto.half_val.extend(array.reshape(-1).view(np.uint16).tolist())
    else:
        getattr(proto, field).extend(array.reshape(-1).tolist())
