"""The request codec as a pure unit (no server): TF Serving's JSON predict and example requests
become numpy arrays and Example dicts, or an InvalidArgument with TF Serving's words."""

from __future__ import annotations

import numpy as np
import pytest

from tfserve_magic.serving.api.codec import (
    RequestFormat,
    TensorSpec,
    parse_examples_request,
    parse_json_object,
    parse_predict_request,
    signature_name_of,
)
from tfserve_magic.serving.status_errors import InvalidArgument

X = {"x": TensorSpec("DT_FLOAT", (-1,))}
AB = {"a": TensorSpec("DT_FLOAT", (-1,)), "b": TensorSpec("DT_INT64", (-1,))}
TEXT = {"text": TensorSpec("DT_STRING", (-1,))}


def parse(body: str, specs=X) -> tuple[RequestFormat, dict[str, np.ndarray]]:
    return parse_predict_request(parse_json_object(body.encode()), specs)


def refused(body: str, specs=X) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse(body, specs)
    return caught.value.message


def test_row_format_one_input() -> None:
    fmt, arrays = parse('{"instances": [1.0, 2, 3.5]}')
    assert fmt is RequestFormat.ROW
    assert arrays["x"].dtype == np.float32 and arrays["x"].tolist() == [1.0, 2.0, 3.5]


def test_row_format_named_inputs_become_columns() -> None:
    _, arrays = parse('{"instances": [{"a": 1.5, "b": 7}, {"a": 2.5, "b": 8}]}', AB)
    assert arrays["a"].tolist() == [1.5, 2.5] and arrays["b"].dtype == np.int64
    assert arrays["b"].tolist() == [7, 8]


def test_columnar_format_keeps_shapes() -> None:
    fmt, arrays = parse('{"inputs": {"a": [[1, 2], [3, 4]], "b": [5]}}', AB)
    assert fmt is RequestFormat.COLUMNAR
    assert arrays["a"].shape == (2, 2) and arrays["b"].tolist() == [5]
    _, single = parse('{"inputs": 3.0}')
    assert single["x"].shape == () and float(single["x"]) == 3.0


def test_strings_and_b64() -> None:
    _, arrays = parse('{"instances": ["héllo", {"b64": "AAE="}]}', TEXT)
    assert arrays["text"].dtype == np.object_
    assert arrays["text"].tolist() == ["héllo".encode(), b"\x00\x01"]


def test_nan_and_infinity_are_accepted_as_tf_serving_does() -> None:
    _, arrays = parse('{"instances": [NaN, Infinity, -Infinity]}')
    assert np.isnan(arrays["x"][0]) and arrays["x"][1:].tolist() == [np.inf, -np.inf]


def test_signature_name() -> None:
    assert signature_name_of({}) == ""
    assert signature_name_of({"signature_name": "classify_x_to_y"}) == "classify_x_to_y"
    with pytest.raises(InvalidArgument, match="'signature_name' key must be a string value"):
        signature_name_of({"signature_name": 3})


@pytest.mark.parametrize(("body", "specs", "message"), [
    ("", X, "JSON Parse error: The document is empty"),
    ("[1]", X, "JSON Value: [1] Is not object"),
    ("{bad", X, "JSON Parse error: Invalid value. at offset: 1"),
    ('{"instances": [1], "inputs": [1]}', X,
     "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"),
    ('{"instances": 1}', X, "Expecting 'instances' to be an list/array"),
    ('{"instances": []}', X, "No values in 'instances' array"),
    ('{"nothing": 1}', X, "Missing 'inputs' or 'instances' key"),
    ('{"instances": ["a"]}', X, 'JSON Value: "a" Type: String is not of expected type: float'),
    ('{"instances": [[1], [1, 2]]}', X,
     ("Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting "
     "tensor size: 1 but got: 2")),
    ('{"instances": [1, 2]}', AB,
     "instances is a plain list, but expecting list of objects as multiple input tensors"),
    ('{"instances": [{"a": 1}]}', AB, "keys must be equal to: a,b"),
    ('{"instances": [{"a": 1, "b": 2, "c": 3}]}', AB,
     ("key: c of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not have named "
     "input: c")),
    ('{"instances": [{"a": 1, "b": 2}, 3]}', AB,
     "Expecting object but got list at item 1 of input list"),
    ('{"inputs": {"a": [1]}}', AB, "Missing named input: b in 'inputs' object."),
    ('{"inputs": [1]}', AB, "inputs is a plain value/list, but expecting an object"),
    ('{"instances": [{"b64": "%%%"}]}', TEXT, "Unable to base64 decode"),
])
def test_refusals_say_what_tf_serving_says(body: str, specs, message: str) -> None:
    assert message in refused(body, specs)


def test_a_signature_without_inputs_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="Failed to get input map for signature: DEFAULT"):
        parse_predict_request({"instances": [1]}, {})


def test_examples_and_context() -> None:
    context, examples = parse_examples_request(
        {"context": {"lang": "en"}, "examples": [{"x": 2.5, "n": [1, 2], "raw": {"b64": "AQ=="}}]})
    assert context == {"lang": ("bytes", [b"en"])}
    assert examples == [{"x": ("float", [2.5]), "n": ("int64", [1, 2]),
                         "raw": ("bytes", [b"\x01"])}]


@pytest.mark.parametrize(("doc", "message"), [
    ({}, "When method is classify, key 'examples' is expected and was not found"),
    ({"examples": {}}, "Expecting 'examples' value to be an list/array"),
    ({"examples": []}, "'examples' value is an empty array"),
    ({"examples": [3]}, "Example must be JSON object but got JSON Number"),
    ({"examples": [{"x": [1.0, "a"]}]}, ("Unexpected element type in feature: x expecting type: "
                                        "float")),
    ({"examples": [{"x": None}]}, "Feature: x has element with unexpected JSON type: Null"),
    ({"examples": [{"x": 2**64}]}, "Feature: x has uint64_t element. Only int64_t is supported."),
])
def test_example_refusals(doc, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_examples_request(doc)
    assert message in caught.value.message
