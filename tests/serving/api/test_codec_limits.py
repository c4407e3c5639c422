"""Hostile request bodies meet the codec: every one is a 400 with TF Serving's message shape,
bounded in cost, and one precision rule holds for both request formats (issue 13 items 1, 4)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tfserve_magic.serving.api import codec, responses
from tfserve_magic.serving.status_errors import InvalidArgument
from tfserve_magic.serving.tensor_types import TensorSpec

X = {"x": TensorSpec("DT_FLOAT", (-1,))}


def parse_error(body: bytes) -> str:
    with pytest.raises(InvalidArgument) as caught:
        codec.parse_predict_request(codec.parse_json_object(body), X)
    return caught.value.message


@pytest.mark.parametrize("depth", [65, 300, 999, 1023, 1024, 1025, 100_000])
def test_deep_lists_are_refused_cheaply(depth: int) -> None:
    body = b'{"inputs": ' + b"[" * depth + b"1.0" + b"]" * depth + b"}"
    # CPU time of this thread, which other processes on a loaded machine do not inflate.
    started = time.thread_time()
    message = parse_error(body)
    assert time.thread_time() - started < 0.5  # a good 6 KB body costs ~1 ms
    assert ("deeper than the supported rank of 64" in message
            or "Nesting deeper than 1024 levels" in message), message


@pytest.mark.parametrize("depth", [70, 1000, 5000])
def test_deep_objects_and_deep_lists_with_nan_are_refused(depth: int) -> None:
    objects = b'{"inputs": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    assert parse_error(objects)
    with_nan = b'{"inputs": ' + b"[" * depth + b"NaN" + b"]" * depth + b"}"
    assert parse_error(with_nan).startswith(("JSON Parse error", "Tensor of rank"))


def test_rank_64_is_still_served() -> None:
    body = b'{"inputs": ' + b"[" * 64 + b"2.0" + b"]" * 64 + b"}"
    _, arrays = codec.parse_predict_request(codec.parse_json_object(body), X)
    assert arrays["x"].shape == (1,) * 64


@pytest.mark.parametrize("body, reason", [
    (b'{"instances": [' + b"9" * 5000 + b"]}", "Number too big to be stored in double."),
    (b'{"instances": [NaN, ' + b"9" * 5000 + b"]}", "Invalid value."),
    (b'{"signature_name": "\\udfff", "instances": [1.0]}',
     "The surrogate pair in string is invalid."),
    (b'{"signature_name": "\xed\xbf\xbf", "instances": [1.0]}', "Invalid encoding in string."),
    (b'{"instances": [NaN], "signature_name": "\\udfff"}', "Invalid value."),
    (b'{"instances": [NaN], "signature_name": "\xed\xbf\xbf"}', "Invalid encoding in string."),
])
def test_unrepresentable_values_are_parse_errors(body: bytes, reason: str) -> None:
    message = parse_error(body)
    assert message.startswith("JSON Parse error: " + reason + " at offset: "), message


def test_nan_bodies_still_parse() -> None:
    doc = codec.parse_json_object(b'{"instances": [NaN, Infinity, -Infinity, 1.5]}')
    assert np.isnan(doc["instances"][0]) and doc["instances"][1:] == [float("inf"), float("-inf"), 1.5]


def test_error_messages_quoting_huge_documents_are_bounded() -> None:
    big = b'{"instances": [' + b", ".join([b"[1.0, 2.0]"] * 200_000) + b'], "inputs": 1}'
    message = parse_error(big)
    assert len(message) < 4300 and message.endswith(
        "...(truncated) Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ")
    # As deep as a body can be (orjson's limit, 1024 levels): the quoted value is cut just the same.
    deep = b'{"a": ' + b'[{"a": ' * 511 + b"1" + b"}]" * 511 + b', "inputs": 1, "instances": 1}'
    message = parse_error(deep)
    assert message.startswith('JSON Value: {"a":[{"a":[{"a":') and len(message) < 4300
    assert message.endswith("...(truncated) Not formatted correctly expecting only one of "
                            "'inputs' or 'instances' keys to exist "), message


def test_an_error_body_quoting_a_lone_surrogate_still_encodes() -> None:
    assert responses.error_body("bad \udfff") == b'{"error": "bad \\udfff"}'
    assert responses.error_body("fine") == b'{"error":"fine"}'


@pytest.mark.parametrize("body", [
    b'{"inputs": {"x": [16777217, 1.0]}}',
    b'{"inputs": [16777217, 1.0]}',
    b'{"inputs": [16777217]}',
    b'{"instances": [16777217]}',
    b'{"instances": [16777217, 1.0]}',
    b'{"instances": [{"x": 16777217}, {"x": 1.0}]}',
    b'{"instances": [[1.0], [-16777217]]}',
])
def test_one_precision_rule_for_both_formats(body: bytes) -> None:
    assert "Cannot convert JSON value: " in parse_error(body)
    assert "to float without loss of precision." in parse_error(body)


@pytest.mark.parametrize("body, expected", [
    (b'{"inputs": {"x": [16777215, 1.0]}}', [16777215.0, 1.0]),
    (b'{"instances": [16777216.5, 1.0]}', [16777216.0, 1.0]),  # a double may round (TF too)
    (b'{"inputs": [1e10, 2.5]}', [1e10, 2.5]),
])
def test_lossless_or_decimal_values_are_accepted_in_both_formats(body: bytes, expected) -> None:
    _, arrays = codec.parse_predict_request(codec.parse_json_object(body), X)
    assert arrays["x"].tolist() == [np.float32(v) for v in expected]


def test_rank_mismatch_is_left_to_the_graph_in_both_formats() -> None:
    # TF Serving's JSON layer does not check signature shapes (its handler test feeds [2] and
    # [2,2] to a [-1,1] input); both formats give the same tensor to the model.
    _, rows = codec.parse_predict_request(codec.parse_json_object(b'{"instances": [[1.0, 2.0]]}'), X)
    _, cols = codec.parse_predict_request(codec.parse_json_object(b'{"inputs": [[1.0, 2.0]]}'), X)
    assert rows["x"].shape == cols["x"].shape == (1, 2)
