"""The REST API of a real server subprocess, request by request, against TF Serving's contract
(TF Serving's REST API documentation: status, metadata, predict/classify/regress, errors)."""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from server_process import RunningServer

from tfserve_magic.status import ServerDescription


def predict(server: RunningServer, model: str, body, suffix: str = ""):
    return server.post(f"/v1/models/{model}{suffix}:predict", body)


# ------------------------------------------------------------------ status and metadata


def test_status_of_a_served_model(shared_server) -> None:
    response = shared_server.get("/v1/models/half_plus_two")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def test_zero_padded_version_folder_is_its_number(shared_server) -> None:
    status = shared_server.get("/v1/models/half_plus_two_padded").json()
    assert [v["version"] for v in status["model_version_status"]] == ["123"]
    assert predict(shared_server, "half_plus_two_padded", {"instances": [2.0]},
                   "/versions/123").json() == {"predictions": [3.0]}


def test_status_lists_versions_highest_first_and_by_version(shared_server) -> None:
    versions = shared_server.get("/v1/models/versioned").json()["model_version_status"]
    assert [v["version"] for v in versions] == ["3", "2", "1"]
    one = shared_server.get("/v1/models/versioned/versions/2").json()["model_version_status"]
    assert [v["version"] for v in one] == ["2"]
    # A label is accepted but not resolved by the status API (TF Serving quirk).
    labelled = shared_server.get("/v1/models/versioned/labels/nothing").json()
    assert len(labelled["model_version_status"]) == 3


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/v1/models/nope", 404, "Could not find any versions of model nope"),
    ("/v1/models/half_plus_two/versions/7", 404, "Could not find version 7 of model half_plus_two"),
    ("/v1/models", 400, "Missing model name in request."),
    ("/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
    ("/v1/models/half_plus_two/versions/9/metadata", 404,
     "Servable not found for request: Specific(half_plus_two, 9)"),
    ("/v1/models/half_plus_two/labels/gold/metadata", 400,
     "Unrecognized servable version label: gold"),
    ("/v1/models/half_plus_two/versions/99999999999999999999", 400,
     "Failed to convert version: 99999999999999999999 to numeric."),
])
def test_status_and_metadata_errors(shared_server, path, status, message) -> None:
    response = shared_server.get(path)
    assert (response.status, response.json()) == (status, {"error": message})
    assert response.headers["Content-Type"] == "application/json"


def test_metadata_renders_signature_defs_as_tf_serving(shared_server) -> None:
    body = shared_server.get("/v1/models/half_plus_two/metadata").json()
    assert body["model_spec"] == {"name": "half_plus_two", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "classify_x_to_y", "regress_x_to_y",
                               "__saved_model_init_op"}
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert default["inputs"]["x"]["tensor_shape"] == {"dim": [], "unknown_rank": True}
    classify_input = signatures["classify_x_to_y"]["inputs"]["inputs"]
    assert classify_input["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}],
                                              "unknown_rank": False}
    assert signatures["__saved_model_init_op"]["outputs"]["__saved_model_init_op"]["dtype"] == \
        "DT_INVALID"


def test_metadata_by_version_and_label(shared_server) -> None:
    by_label = shared_server.get("/v1/models/versioned/labels/canary/metadata").json()
    assert by_label["model_spec"]["version"] == "3"
    by_version = shared_server.get("/v1/models/versioned/versions/2/metadata").json()
    assert by_version["model_spec"]["version"] == "2"


# ------------------------------------------------------------------ predict


@pytest.mark.parametrize(("body", "expected"), [
    ({"instances": [2.0, 3.0, 4.0]}, {"predictions": [3.0, 3.5, 4.0]}),
    ({"inputs": [2.0, 3.0, 4.0]}, {"outputs": [3.0, 3.5, 4.0]}),
    ({"instances": [[1.0, 2.0], [3.0, 4.0]]}, {"predictions": [[2.5, 3.0], [3.5, 4.0]]}),
    ({"instances": [1, 2]}, {"predictions": [2.5, 3.0]}),  # ints are accepted for floats
    ({"inputs": 2.0}, {"outputs": 3.0}),  # a scalar columnar input gives a scalar output
    ({"inputs": {"x": [2.0]}}, {"outputs": [3.0]}),
    ({"instances": [{"x": 2.0}, {"x": 4.0}]}, {"predictions": [3.0, 4.0]}),
    ({"signature_name": "serving_default", "instances": [0.0]}, {"predictions": [2.0]}),
])
def test_canonical_predictions(shared_server, body, expected) -> None:
    response = predict(shared_server, "half_plus_two", body)
    assert (response.status, response.json()) == (200, expected)


def test_float_formatting_matches_tf_serving(shared_server) -> None:
    # float32(0.2) * 0.5 + 2 is the float nearest 2.1: TF Serving prints "2.1", not 2.0999999.
    text = predict(shared_server, "half_plus_two", {"instances": [0.2, 2.0]}).body.decode()
    assert json.loads(text) == {"predictions": [2.1, 3.0]}
    assert "2.1" in text and "2.09999" not in text and "3.0" in text
    # 0.2468 -> 2.1234: six significant digits print unchanged.
    assert predict(shared_server, "half_plus_two", {"instances": [0.2468]}).json() == \
        {"predictions": [2.1234]}
    # A value needing 9 digits prints with %.9g precision, like tensorflow_model_server.
    value = predict(shared_server, "half_plus_two", {"instances": [0.123456789]}).json()
    assert value == {"predictions": [2.06172848]}


def test_non_finite_values_print_as_bare_tokens(shared_server) -> None:
    response = predict(shared_server, "half_plus_two", '{"instances": [NaN, Infinity, -Infinity]}')
    assert response.status == 200
    assert response.body.decode().replace(" ", "") == '{"predictions":[NaN,Infinity,-Infinity]}'


def test_multiple_named_inputs_and_outputs(shared_server) -> None:
    rows = predict(shared_server, "multi_io",
                   {"instances": [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]}).json()
    assert rows == {"predictions": [{"product": 2.0, "sum": 3.0}, {"product": 12.0, "sum": 7.0}]}
    columns = predict(shared_server, "multi_io", {"inputs": {"a": [1.0, 3.0], "b": [2.0, 4.0],
                                                             "ignored": 1}}).json()
    assert columns == {"outputs": {"product": [2.0, 12.0], "sum": [3.0, 7.0]}}


def test_strings_raw_and_b64_in_and_bytes_outputs_as_b64(shared_server) -> None:
    raw = predict(shared_server, "strings", {"instances": ["ab", "xyz"]}).json()
    upper = [base64.b64decode(p["upper_bytes"]["b64"]) for p in raw["predictions"]]
    assert upper == [b"AB", b"XYZ"] and [p["length"] for p in raw["predictions"]] == [2, 3]
    encoded = base64.b64encode(b"hello").decode()
    b64 = predict(shared_server, "strings", {"inputs": {"text": [{"b64": encoded}]}}).json()
    assert b64 == {"outputs": {"length": [5], "upper_bytes": [
        {"b64": base64.b64encode(b"HELLO").decode()}]}}


def test_integer_inputs(shared_server) -> None:
    ok = predict(shared_server, "ints", {"inputs": {"small": [1, 2], "big": [2**40, 5]}})
    assert ok.json() == {"outputs": [2**40 + 1, 7]}


@pytest.mark.parametrize(("model", "body", "message"), [
    ("ints", {"inputs": {"small": [2.0], "big": [1]}},
     "JSON Value: 2.0 Type: Number is not of expected type: int32"),
    ("ints", {"inputs": {"small": [1], "big": [2.0]}},
     "JSON Value: 2.0 Type: Number is not of expected type: int64"),
    ("ints", {"inputs": {"small": [2147483648], "big": [1]}}, "is not of expected type: int32"),
    ("half_plus_two", {"instances": ["a"]},
     ("Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "
     "\"a\" Type: String is not of expected type: float")),
    ("half_plus_two", {"instances": [True]}, "Type: True is not of expected type: float"),
    ("half_plus_two", {"inputs": {"b64": "aGk="}}, "Type: Object is not of expected type: float"),
    ("strings", {"instances": [{"b64": "%%%"}]}, "Unable to base64 decode"),
    ("half_plus_two", {"instances": [[1.0, 2.0], [3.0]]}, "Expecting tensor size: 2 but got: 1"),
    ("half_plus_two", {"instances": [[[1.0, 2.0]], [[1.0], [2.0]]]},
     "Expecting shape [1,2] but got: [2,1]"),
    ("half_plus_two", {"inputs": [[1.0, 2.0], [3.0]]},
     "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
    ("half_plus_two", {"inputs": [[1.0], 2.0]}, "found at incorrect level"),
    ("half_plus_two", {"instances": [16777217]}, "without loss of precision"),
    ("multi_io", {"instances": [1.0, 2.0]},
     ("instances is a plain list, but expecting list of objects as multiple input tensors "
     "required as per tensorinfo_map")),
    ("multi_io", {"instances": [{"a": 1.0}]}, "keys must be equal to: a,b"),
    ("multi_io", {"instances": [{"a": 1.0, "b": 1.0, "c": 1.0}]},
     "JSON object: does not have named input: c"),
    ("multi_io", {"instances": [{"a": 1.0, "b": 1.0}, [1.0]]},
     "Expecting object but got list at item 1 of input list"),
    ("half_plus_two", {"instances": [1.0, {"x": 1.0}]},
     "Expecting value/list but got object at item 1 of input list"),
    ("multi_io", {"inputs": [1.0]},
     ("inputs is a plain value/list, but expecting an object as multiple input tensors required "
     "as per tensorinfo_map")),
    ("multi_io", {"inputs": {"a": [1.0]}}, "Missing named input: b in 'inputs' object."),
    ("half_plus_two", {"instances": [1.0], "inputs": [1.0]},
     "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"),
    ("half_plus_two", {"signature_name": "nope", "instances": [1.0]},
     'Serving signature name: "nope" not found in signature def'),
    ("half_plus_two", {"signature_name": 3, "instances": [1.0]},
     "'signature_name' key must be a string value."),
    ("half_plus_two", {"instance": [1.0]}, "Missing 'inputs' or 'instances' key"),
    ("half_plus_two", {"instances": 1.0}, "Expecting 'instances' to be an list/array"),
    ("half_plus_two", {"instances": []}, "No values in 'instances' array"),
    ("half_plus_two", "", "JSON Parse error: The document is empty"),
    ("half_plus_two", "{not json", "JSON Parse error: Invalid value."),
    ("half_plus_two", "[1, 2]", "Is not object"),
])
def test_bad_predict_requests_are_400_with_tf_messages(shared_server, model, body, message) -> None:
    response = predict(shared_server, model, body)
    assert response.status == 400, response.body
    assert response.headers["Content-Type"] == "application/json"
    assert message in response.json()["error"]


def test_unknown_model_version_and_label_in_predict(shared_server) -> None:
    unknown = predict(shared_server, "half", {"instances": [1.0]})
    assert (unknown.status, unknown.json()) == (
        404, {"error": "Servable not found for request: Latest(half)"})
    version = predict(shared_server, "half_plus_two", {"instances": [1.0]}, "/versions/5")
    assert (version.status, version.json()) == (
        404, {"error": "Servable not found for request: Specific(half_plus_two, 5)"})
    label = predict(shared_server, "half_plus_two", {"instances": [1.0]}, "/labels/gold")
    assert (label.status, label.json()) == (
        400, {"error": "Unrecognized servable version label: gold"})
    # The body is parsed before the model is looked up: bad JSON on an unknown model is a 400.
    assert predict(shared_server, "half", "{bad").status == 400


def test_routing_by_version_and_label(shared_server) -> None:
    def y(suffix: str) -> float:
        return predict(shared_server, "versioned", {"instances": [10.0]}, suffix).json()[
            "predictions"][0]

    assert [y(""), y("/versions/1"), y("/versions/2"), y("/versions/3")] == [13.0, 11.0, 12.0, 13.0]
    assert (y("/labels/stable"), y("/labels/canary")) == (11.0, 13.0)


# ------------------------------------------------------------------ classify and regress


def test_classify_and_regress(shared_server) -> None:
    classify = shared_server.post("/v1/models/half_plus_two:classify", {
        "signature_name": "classify_x_to_y", "examples": [{"x": 2.0}, {"x": 20.0}, {"x": 10.0}]})
    assert classify.json() == {"results": [[["", 3.0]], [["", 12.0]], [["", 7.0]]]}
    regress = shared_server.post("/v1/models/half_plus_two/versions/1:regress", {
        "signature_name": "regress_x_to_y", "examples": [{"x": 2.0}, {"x": 80.0}]})
    assert regress.json() == {"results": [3.0, 42.0]}
    # The context is merged into every example (an example's own feature wins).
    merged = shared_server.post("/v1/models/half_plus_two:regress", {
        "signature_name": "regress_x_to_y", "context": {"x": 4.0}, "examples": [{}, {"x": 6.0}]})
    assert merged.json() == {"results": [4.0, 5.0]}


@pytest.mark.parametrize(("verb", "body", "status", "message"), [
    ("classify", {"signature_name": "classify_x_to_y"}, 400,
     "When method is classify, key 'examples' is expected and was not found"),
    ("regress", {"signature_name": "regress_x_to_y", "examples": {}}, 400,
     "Expecting 'examples' value to be an list/array"),
    ("regress", {"signature_name": "regress_x_to_y", "examples": []}, 400,
     "'examples' value is an empty array"),
    ("regress", {"signature_name": "regress_x_to_y", "examples": [3]}, 400,
     "Example must be JSON object but got JSON Number"),
    ("regress", {"signature_name": "regress_x_to_y", "examples": [{"x": [1.0, "a"]}]}, 400,
     "Unexpected element type in feature: x expecting type: float"),
    ("regress", {"signature_name": "regress_x_to_y", "examples": [{"x": None}]}, 400,
     "Feature: x has element with unexpected JSON type: Null"),
    ("regress", {"signature_name": "nope", "examples": [{"x": 1.0}]}, 400,
     "No signature was found with the name: nope"),
    ("regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2**64 - 1}]}, 400,
     "Feature: x has uint64_t element. Only int64_t is supported."),
    ("classify", {"examples": [{"x": 1.0}]}, 400,
     "No classification inputs found in SignatureDef: serving_default"),
    ("regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2}]}, 400,
     "Data types don't match. Data type: int64 but expected type: float"),
])
def test_classify_regress_errors(shared_server, verb, body, status, message) -> None:
    response = shared_server.post(f"/v1/models/half_plus_two:{verb}", body)
    assert response.status == status, response.body
    assert message in response.json()["error"]


# ------------------------------------------------------------------ URL grammar and headers


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/v1/models/half_plus_two"),
    ("DELETE", "/v1/models/half_plus_two"),
    ("GET", "/v1/models/half_plus_two:predict"),
    ("POST", "/v1/models/half_plus_two/metadata"),
    ("GET", "/v1/models/half_plus_two/version/1"),
    ("GET", "/v1/models/half_plus_two/versions/abc"),
    ("GET", "/v1/models/half_plus_two/label/x"),
    ("GET", "/v1/models/half_plus_two/versions/1/labels/x"),
    ("GET", "/v1/models/half_plus_two/"),
    ("POST", "/v1/models/half_plus_two:explain"),
    ("POST", "/v1/models/half_plus_two:PREDICT"),
])
def test_malformed_paths(shared_server, method, path) -> None:
    from server_process import http

    response = http(method, shared_server.url + path, b"{}" if method in ("POST", "PUT") else None)
    assert (response.status, response.json()) == (
        400, {"error": f"Malformed request: {method} {path}"})


def test_v1_prefix_is_case_insensitive_and_other_paths_are_plain_404(shared_server) -> None:
    assert shared_server.get("/V1/models/half_plus_two").status == 200
    other = shared_server.get("/v2/models/half_plus_two")
    assert other.status == 404
    assert "application/json" not in other.headers.get("Content-Type", "")


def test_the_servers_own_page_at_the_root(shared_server) -> None:
    page = shared_server.get("/")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.body.decode()
    # Every model with its versions, states and labels, in the data block the script renders.
    data = json.loads(text.split('<script type="application/json" id="tfserve-data">', 1)[1]
                      .split("</script>", 1)[0])
    models = {m["name"]: m for m in data["models"]}
    assert set(models) >= {"half_plus_two", "versioned", "multi_io"}
    assert models["versioned"]["labels"] == {"stable": 1, "canary": 3}
    assert {v["state"] for v in models["versioned"]["versions"]} == {"AVAILABLE"}
    assert "base_path" not in models["versioned"]  # folders on this machine are not shown
    # Only the page's own script and style may run: their hashes are in the policy, and the
    # script reaches the API with relative URLs only (it works under a proxy prefix).
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy
    script = text.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    assert '"v1/models/"' in script and "/tfserve_magic/" not in script and "http" not in script
    for other in ("/index.html", "/static/page.js", "/tfserve_magic", "/favicon.ico"):
        assert shared_server.get(other).status == 404, other


def test_percent_encoded_model_names(shared_server) -> None:
    assert shared_server.get("/v1/models/half%5Fplus%5Ftwo").status == 200


@pytest.mark.parametrize("name", ["{base}", "{base}%2F1", "..%2F..%2Fhalf_plus_two", "..",
                                  "%2Fetc%2Fpasswd"])
def test_model_names_from_urls_name_configured_models_only(shared_server, half_plus_two,
                                                          name: str) -> None:
    # A name is looked up among the configured models, never opened as a path: the base path
    # of a served model, its version folder or a path out of it is just an unknown name.
    from urllib.parse import quote

    name = name.format(base=quote(str(half_plus_two), safe=""))
    for path, api in ((f"/v1/models/{name}", "GET"), (f"/v1/models/{name}/metadata", "GET"),
                      (f"/v1/models/{name}:predict", "POST")):
        response = shared_server.get(path) if api == "GET" else \
            shared_server.post(path, {"instances": [1.0]})
        assert response.status == 404, (path, response.body)
        assert "Servable not found for request: Latest(" in response.json()["error"] or \
            "Could not find any versions of model" in response.json()["error"]


def test_no_cors_headers_unless_enabled(shared_server) -> None:
    assert "Access-Control-Allow-Origin" not in shared_server.get("/v1/models/half_plus_two").headers


def test_server_description_endpoint(shared_server) -> None:
    response = shared_server.manage("GET", "/tfserve_magic/v1/server")
    info = response.json()
    assert info["pid"] == shared_server.pid
    # The wire shape the lab panel and other clients read, key order included.
    assert list(info) == ["pid", "version", "started_at", "model_config_file", "prometheus_path",
                          "models"]
    assert list(info["models"][0]) == ["name", "base_path", "policy", "labels", "versions"]
    assert list(info["models"][0]["versions"][0]) == ["version", "state", "error"]
    assert orjson.dumps(ServerDescription.from_json(info).to_json()) == response.body
    versioned = next(m for m in info["models"] if m["name"] == "versioned")
    assert versioned["labels"] == {"stable": 1, "canary": 3}
    assert versioned["policy"] == "all {}"
    assert [v["version"] for v in versioned["versions"]] == [3, 2, 1]


def test_prometheus_metrics(shared_server) -> None:
    predict(shared_server, "half_plus_two", {"instances": [1.0]})
    predict(shared_server, "half_plus_two", {"instances": ["x"]})
    response = shared_server.get("/monitoring/prometheus/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    text = response.body.decode()
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="half_plus_two",status="OK"}' in text
    assert ':tensorflow:serving:request_count{model_name="half_plus_two",status="INVALID_ARGUMENT"}' in text
    assert ":tensorflow:serving:request_latency_bucket{" in text
    assert ('tfserve_magic_request_count_total{API="Predict",entrypoint="REST",'
            'model_name="half_plus_two",status="OK",version="1"}') in text
    assert ('tfserve_magic_request_latency_seconds_count{API="Predict",model_name="half_plus_two",'
            'version="1"}') in text
