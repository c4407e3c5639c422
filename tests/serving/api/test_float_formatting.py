"""float32 outputs print as TF Serving prints them (``%g`` when that reads back as the same
float32, else ``%.9g``), the same on the per-value path for small tensors and the vectorised
path for large ones, across the whole float32 range."""

from __future__ import annotations

import json

import numpy as np

from tfserve_magic.serving.api import responses
from tfserve_magic.serving.api.codec import RequestFormat


def _tf_serving_text_value(value: np.float32) -> float:
    text = f"{float(value):g}"
    return float(text) if np.float32(float(text)) == value else float(f"{float(value):.9g}")


def test_small_and_large_tensors_print_every_float32_as_tf_serving_does() -> None:
    rng = np.random.default_rng(3)
    values = (rng.standard_normal(4096) * 10.0 ** rng.integers(-45, 39, 4096)).astype(np.float32)
    values = np.concatenate([values[np.isfinite(values)], np.float32(
        [0.0, 2.1, 0.1, 16777217, 1e22, -9.14445e29, 3.4028235e38, 1e-45, 1.17549435e-38])])
    expected = [_tf_serving_text_value(v) for v in values]
    large = json.loads(responses.encode_predict_response(
        RequestFormat.COLUMNAR, {"y": values}))["outputs"]
    small = [json.loads(responses.encode_predict_response(
        RequestFormat.COLUMNAR, {"y": values[i:i + 8]}))["outputs"]
        for i in range(0, len(values), 8)]
    assert large == expected
    assert [v for chunk in small for v in chunk] == expected


def test_small_tensors_keep_shape_and_non_finite_tokens() -> None:
    body = responses.encode_predict_response(
        RequestFormat.COLUMNAR,
        {"y": np.float32([[2.1, np.nan], [np.inf, -np.inf]])})
    assert body == b'{"outputs":[[2.1,NaN],[Infinity,-Infinity]]}'
