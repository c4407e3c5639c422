"""The response writer as a pure unit (no server): numpy outputs become TF Serving's JSON, with
its float formatting, bare NaN/Infinity tokens, b64 for ``*_bytes`` outputs and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfserve_magic.serving.api.codec import RequestFormat
from tfserve_magic.serving.api.responses import (
    dumps,
    encode_classify_response,
    encode_predict_response,
    encode_regress_response,
    error_body,
)
from tfserve_magic.serving.status_errors import InvalidArgument, Unimplemented

ROW, COLUMNAR = RequestFormat.ROW, RequestFormat.COLUMNAR


def test_one_output_row_and_columnar() -> None:
    y = {"y": np.float32([2.5, 3.0])}
    assert encode_predict_response(ROW, y) == b'{"predictions":[2.5,3.0]}'
    assert encode_predict_response(COLUMNAR, y) == b'{"outputs":[2.5,3.0]}'


def test_several_outputs_are_rows_of_objects_or_an_object_of_columns() -> None:
    outputs = {"sum": np.float32([4, 6]), "product": np.int64([3, 8])}
    assert json.loads(encode_predict_response(ROW, outputs)) == {
        "predictions": [{"product": 3, "sum": 4.0}, {"product": 8, "sum": 6.0}]}
    assert json.loads(encode_predict_response(COLUMNAR, outputs)) == {
        "outputs": {"product": [3, 8], "sum": [4.0, 6.0]}}


def test_float32_prints_as_tf_serving_prints_it() -> None:
    # 0.1 as float32 is 0.100000001...: TF Serving prints the shortest text that round-trips.
    body = encode_predict_response(ROW, {"y": np.float32([0.1, 1 / 3, 16777217])})
    assert body == b'{"predictions":[0.1,0.333333343,16777216.0]}'


def test_non_finite_values_are_bare_tokens() -> None:
    body = encode_predict_response(ROW, {"y": np.float32([np.nan, np.inf, -np.inf])})
    assert body == b'{"predictions":[NaN,Infinity,-Infinity]}'
    assert dumps({"a": float("nan")}) == b'{"a":NaN}'


def test_strings_and_bytes_outputs() -> None:
    text = np.array([b"ab", "é".encode()], dtype=object)
    assert json.loads(encode_predict_response(ROW, {"upper": text})) == {"predictions": ["ab", "é"]}
    assert json.loads(encode_predict_response(ROW, {"upper_bytes": text})) == {
        "predictions": [{"b64": "YWI="}, {"b64": "w6k="}]}


def test_scalar_outputs() -> None:
    assert encode_predict_response(COLUMNAR, {"y": np.float32(2.5)}) == b'{"outputs":2.5}'
    with pytest.raises(InvalidArgument, match="Tensor name: y has no shape information"):
        encode_predict_response(ROW, {"y": np.float32(2.5)})


def test_row_outputs_must_share_their_batch_size() -> None:
    with pytest.raises(InvalidArgument,
                       match="Tensor name: b has inconsistent batch size: 3 expecting: 2"):
        encode_predict_response(ROW, {"a": np.zeros(2), "b": np.zeros(3)})


def test_unsupported_output_types_are_unimplemented() -> None:
    with pytest.raises(Unimplemented, match="Conversion of output tensor c of dtype complex64"):
        encode_predict_response(COLUMNAR, {"c": np.complex64([1j])})


def test_classify_and_regress_results() -> None:
    body = encode_classify_response(np.array([[b"cat", b"dog"]], dtype=object),
                                    np.float32([[0.25, 0.75]]))
    assert body == b'{"results":[[["cat",0.25],["dog",0.75]]]}'
    assert encode_classify_response(None, np.float32([[0.5]])) == b'{"results":[[["",0.5]]]}'
    assert encode_classify_response(np.array([[b"x"]], dtype=object), None) == \
        b'{"results":[[["x",0.0]]]}'
    assert encode_regress_response(np.float32([[3.0], [42.0]])) == b'{"results":[3.0,42.0]}'


def test_error_body() -> None:
    assert error_body('quote " and é') == '{"error":"quote \\" and é"}'.encode()
