"""Large bodies parsed in slices (``serving/api/json_slices.py``) give exactly the document one
``orjson.loads`` gives, and leave to it whatever they cannot split, errors included."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from tfserve_magic.serving.api.codec import parse_json_object
from tfserve_magic.serving.api.json_slices import SLICE_BYTES, loads_in_slices
from tfserve_magic.serving.status_errors import InvalidArgument

ROWS = SLICE_BYTES  # enough rows for a body of several slices

SPLIT = {
    "flat": {"instances": [i * 0.25 for i in range(ROWS)]},
    "rows": {"signature_name": "s", "instances": [[i, 1.5, -2e10] for i in range(ROWS // 3)]},
    "objects": {"instances": [{"b64": "QUJD", "x": [1, 2]} for _ in range(ROWS // 4)],
                "other": [1, 2]},
    "strings with brackets": {"instances": ["a,b]c[{" for _ in range(ROWS // 2)]},
    "columnar": {"inputs": [[True, False]] * (ROWS // 2)},
    "named inputs": {"inputs": {"x": [1.0] * ROWS}},
    "named inputs beside others": {"signature_name": "s",
                                   "inputs": {"a": [1, 2], "x": [[0.5, 1]] * (ROWS // 2),
                                              "z": {"b64": "QUJD"}}},
}


@pytest.mark.parametrize("case", SPLIT)
@pytest.mark.parametrize("indent", [None, 1])
def test_a_large_body_parses_to_the_same_document(case: str, indent: int | None) -> None:
    doc = SPLIT[case]
    body = json.dumps(doc, indent=indent).encode()
    assert len(body) > 4 * SLICE_BYTES
    assert loads_in_slices(body) == doc == orjson.loads(body)


LEFT_WHOLE: dict[str, Any] = {
    "small": b'{"instances": [1.0, 2.0]}',
    "escapes": json.dumps({"instances": ['a\\"b'] * ROWS}).encode(),
    "no dominant array": json.dumps({"inputs": {f"x{i}": [1.0] * (ROWS // 8)
                                                for i in range(8)}}).encode(),
    "not an object": json.dumps([1.0] * ROWS).encode(),
}


@pytest.mark.parametrize("case", LEFT_WHOLE)
def test_what_it_cannot_split_is_left_to_one_parse(case: str) -> None:
    body = LEFT_WHOLE[case]
    assert loads_in_slices(body) is None


def test_a_malformed_large_body_gets_the_whole_parse_error() -> None:
    body = bytearray(json.dumps(SPLIT["flat"]).encode())
    middle = len(body) // 2
    body[middle] = ord("x")
    assert loads_in_slices(body) is None
    with pytest.raises(InvalidArgument) as refused:
        parse_json_object(body)
    assert refused.value.message.startswith("JSON Parse error: ")
