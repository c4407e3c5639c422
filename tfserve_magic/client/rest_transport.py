"""The REST transport of :class:`~tfserve_magic.client.client.Client`: TF Serving's REST API
(and our own endpoints beside it) over urllib.

Works against tfserve_magic's server and against a real ``tensorflow_model_server`` alike.
Requests are built from numpy with orjson; answers come back as numpy arrays, or a dict of
arrays when a signature has several outputs, typed by the signature's output dtypes (read once
per route). Errors raise :class:`~tfserve_magic.client.transport.ServingError` with TF
Serving's message. No TensorFlow import.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from tfserve_magic.client.tls import ClientTls
from tfserve_magic.client.transport import (
    Prediction,
    RequestError,
    ServingError,
    check_route,
    signature_defs,
)
from tfserve_magic.status import Code, VersionState, VersionStatus

__all__ = ["RestTransport", "predict_body"]


def _model_path(model: str, version: int | None, label: str | None) -> str:
    check_route(version, label)
    path = f"/v1/models/{urllib.parse.quote(model, safe='')}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{urllib.parse.quote(label, safe='')}"
    return path


def _jsonable(value: Any) -> Any:
    """numpy/bytes -> what TF Serving's JSON expects (bytes as {"b64": ...})."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return _jsonable(value.tolist())
        if value.dtype == np.float16:
            return value.astype(np.float32)  # orjson writes float32/64 only
        return np.ascontiguousarray(value)
    if isinstance(value, (bytes, bytearray)):
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _to_numpy(value: Any) -> np.ndarray:
    def unwrap(item: Any) -> Any:
        if isinstance(item, dict) and set(item) == {"b64"}:
            return base64.b64decode(item["b64"])
        if isinstance(item, list):
            return [unwrap(i) for i in item]
        return item

    value = unwrap(value)
    array = np.asarray(value)
    if array.dtype.kind == "U":
        return array.astype(object)
    return array


# TF Serving's output dtypes -> numpy: JSON numbers alone would all come back as float64/int64.
_NUMPY_DTYPES = {"DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_HALF": np.float16,
                 "DT_BFLOAT16": np.float32, "DT_INT8": np.int8, "DT_INT16": np.int16,
                 "DT_INT32": np.int32, "DT_INT64": np.int64, "DT_UINT8": np.uint8,
                 "DT_UINT16": np.uint16, "DT_UINT32": np.uint32, "DT_UINT64": np.uint64,
                 "DT_BOOL": np.bool_}


def _typed(array: np.ndarray, dtype: Any) -> np.ndarray:
    return array.astype(dtype) if dtype is not None and array.dtype.kind in "biuf" else array


def _with_dtypes(prediction: Prediction, dtypes: Mapping[str, Any]) -> Prediction:
    if isinstance(prediction, dict):
        return {k: _typed(v, dtypes.get(k)) for k, v in prediction.items()}
    only = next(iter(dtypes.values())) if len(dtypes) == 1 else None
    return _typed(prediction, only)


def _decode_outputs(body: dict[str, Any]) -> Prediction:
    if "predictions" in body:
        rows = body["predictions"]
        if rows and isinstance(rows[0], dict) and set(rows[0]) != {"b64"}:
            return {k: _to_numpy([row[k] for row in rows]) for k in rows[0]}
        return _to_numpy(rows)
    outputs = body["outputs"]
    if isinstance(outputs, dict) and set(outputs) != {"b64"}:
        return {k: _to_numpy(v) for k, v in outputs.items()}
    return _to_numpy(outputs)


def predict_body(data: Any, *, signature: str | None = None, columnar: bool = False) -> dict[str, Any]:
    """The JSON document for ``data``: a full request (a dict with ``instances`` or ``inputs``)
    passes through; a dict of arrays is named inputs; anything else is the single input."""
    if isinstance(data, Mapping) and ("instances" in data or "inputs" in data):
        body = dict(data)
    elif columnar:
        body = {"inputs": _jsonable(data)}
    elif isinstance(data, Mapping):
        columns = {k: np.asarray(v) if not isinstance(v, np.ndarray) else v for k, v in data.items()}
        sizes = {len(v) for v in columns.values() if v.ndim}
        if len(sizes) != 1:
            raise RequestError("named inputs in row format need the same first dimension; "
                             "use columnar=True for inputs of different batch sizes")
        n = sizes.pop()
        body = {"instances": [{k: _jsonable(v[i]) for k, v in columns.items()} for i in range(n)]}
    else:
        body = {"instances": _jsonable(data)}
    if signature:
        body["signature_name"] = signature
    return body


class RestTransport:
    """TF Serving's REST API at ``url`` (``http://host:port``); ``headers`` go with every
    request (a server's secret, from its registry record)."""

    def __init__(self, url: str, *, timeout: float = 60.0,
                 headers: Mapping[str, str] | None = None, tls: ClientTls | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})
        # https:// with the given authority and client certificate (the system's otherwise).
        self._ssl = tls.ssl_context() if tls is not None and self.url.startswith("https") \
            else None
        self._dtypes: dict[tuple[str, int | None, str | None, str], dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"RestTransport({self.url!r})"

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; returns the decoded JSON, raises ServingError on failure."""
        payload = self.send(method, path, body)
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            return json.loads(payload)  # NaN / Infinity tokens

    def send(self, method: str, path: str, body: Any = None) -> bytes:
        """Send one request; returns the answer's bytes, raises ServingError on failure."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(
                body, option=orjson.OPT_SERIALIZE_NUMPY)
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  **self.headers})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self._ssl) as response:
                answer: bytes = response.read()
                return answer
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                message = json.loads(payload)["error"]
            except (ValueError, KeyError, TypeError):
                message = payload.decode(errors="replace").strip() or error.reason
            raise ServingError(error.code, str(message)) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                raise ServingError(0, f"no answer from {self.url} within {self.timeout:g} s "
                                      f"({method} {path})") from None
            raise ServingError(0, f"cannot reach {self.url}: {reason}") from None

    def status(self, model: str, version: int | None = None) -> list[VersionStatus]:
        body = self.request("GET", _model_path(model, version, None))
        return [VersionStatus(int(v["version"]), VersionState.from_name(v["state"]),
                              Code.from_name(v["status"]["error_code"]),
                              v["status"].get("error_message", ""))
                for v in body["model_version_status"]]

    def metadata(self, model: str, *, version: int | None = None,
                 label: str | None = None) -> dict[str, Any]:
        answer: dict[str, Any] = self.request("GET", _model_path(model, version, label) + "/metadata")
        return answer

    def predict(self, model: str, data: Any, *, version: int | None = None,
                label: str | None = None, signature: str | None = None,
                columnar: bool = False) -> Prediction:
        body = predict_body(data, signature=signature, columnar=columnar)
        prediction = _decode_outputs(self.request(
            "POST", _model_path(model, version, label) + ":predict", body))
        return _with_dtypes(prediction, self._output_dtypes(model, version, label,
                                                            signature or "serving_default"))

    def _output_dtypes(self, model: str, version: int | None, label: str | None,
                       signature: str) -> dict[str, Any]:
        """The signature's output dtypes (asked once per route and signature)."""
        key = (model, version, label, signature)
        if key not in self._dtypes:
            try:
                outputs = signature_defs(self.metadata(model, version=version, label=label))[
                    signature]["outputs"]
            except (ServingError, KeyError, TypeError):
                return {}  # no metadata: JSON's own types
            self._dtypes[key] = {name: _NUMPY_DTYPES.get(info.get("dtype", ""))
                                 for name, info in outputs.items()}
        return self._dtypes[key]

    def classify(self, model: str, examples: Sequence[Mapping[str, Any]], *,
                 context: Mapping[str, Any] | None = None, version: int | None = None,
                 label: str | None = None, signature: str | None = None) -> list[Any]:
        return self._examples("classify", model, examples, context, version, label, signature)

    def regress(self, model: str, examples: Sequence[Mapping[str, Any]], *,
                context: Mapping[str, Any] | None = None, version: int | None = None,
                label: str | None = None, signature: str | None = None) -> list[Any]:
        return self._examples("regress", model, examples, context, version, label, signature)

    def _examples(self, verb: str, model: str, examples: Sequence[Mapping[str, Any]],
                  context: Mapping[str, Any] | None, version: int | None, label: str | None,
                  signature: str | None) -> list[Any]:
        body: dict[str, Any] = {"examples": _jsonable(list(examples))}
        if context is not None:
            body["context"] = _jsonable(context)
        if signature:
            body["signature_name"] = signature
        path = _model_path(model, version, label) + f":{verb}"
        results: list[Any] = self.request("POST", path, body)["results"]
        return results
