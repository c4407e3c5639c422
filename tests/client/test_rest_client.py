"""tfserve_magic.Client against a real server: numpy in, numpy out, TF Serving's own errors."""

from __future__ import annotations

import numpy as np
import pytest
from server_process import start_server

from tfserve_magic.client import Client, RequestError, ServingError, VersionStatus
from tfserve_magic.client.rest_transport import predict_body
from tfserve_magic.status import SECRET_HEADER, Code, VersionState


@pytest.fixture(scope="module")
def client(shared_server) -> Client:
    return Client(shared_server.url, timeout=30)


def test_status_lists_versions_highest_first(client: Client) -> None:
    assert client.status("half_plus_two") == [VersionStatus(1, VersionState.AVAILABLE, Code.OK, "")]
    assert [s.version for s in client.status("versioned")] == [3, 2, 1]
    assert client.status("versioned", version=2) == [VersionStatus(2, VersionState.AVAILABLE)]


def test_metadata_and_signatures(client: Client) -> None:
    meta = client.metadata("versioned", label="canary")
    assert meta["model_spec"]["version"] == "3"
    signatures = client.signatures("half_plus_two")
    assert {"serving_default", "classify_x_to_y", "regress_x_to_y"} <= set(signatures)
    assert signatures["serving_default"]["inputs"]["x"]["dtype"] == "DT_FLOAT"


def test_predict_numpy_lists_and_routes(client: Client) -> None:
    y = client.predict("half_plus_two", np.float32([1, 2, 5]))
    assert isinstance(y, np.ndarray) and np.allclose(y, [2.5, 3.0, 4.5])
    assert np.allclose(client.predict("half_plus_two", [[1.0], [3.0]]), [[2.5], [3.5]])
    assert np.allclose(client.predict("half_plus_two", np.float64([2.0])), [3.0])
    assert np.allclose(client.predict("half_plus_two", np.float16([2.0])), [3.0])
    assert np.allclose(client.predict("half_plus_two", [np.float32(4.0)]), [4.0])
    routed = [client.predict("versioned", [10.0], version=v)[0] for v in (1, 2, 3)]
    assert routed == [11.0, 12.0, 13.0]
    assert client.predict("versioned", [10.0], label="stable")[0] == 11.0
    assert client.predict("versioned", [10.0])[0] == 13.0


def test_several_outputs_come_back_as_a_dict(client: Client) -> None:
    rows = client.predict("multi_io", {"a": np.float32([1, 3]), "b": np.float32([2, 4])})
    assert set(rows) == {"sum", "product"}
    assert np.allclose(rows["sum"], [3, 7]) and np.allclose(rows["product"], [2, 12])
    columns = client.predict("multi_io", {"a": [1.0, 3.0], "b": [2.0, 4.0]}, columnar=True)
    assert np.allclose(columns["product"], [2, 12])


def test_strings_bytes_and_big_integers(client: Client) -> None:
    out = client.predict("strings", ["ab", "xyz"])
    assert out["length"].tolist() == [2, 3]
    assert [bytes(b) for b in out["upper_bytes"]] == [b"AB", b"XYZ"]
    raw = client.predict("strings", np.array([b"\xffhi"], dtype=object))  # not UTF-8: sent as b64
    assert bytes(raw["upper_bytes"][0]) == b"\xffHI"
    total = client.predict("ints", {"small": np.int32([1]), "big": np.int64([2**40])},
                           columnar=True)
    assert total.tolist() == [2**40 + 1]


def test_classify_and_regress(client: Client) -> None:
    assert client.regress("half_plus_two", [{"x": 2.0}, {"x": 80.0}],
                          signature="regress_x_to_y") == [3.0, 42.0]
    assert client.classify("half_plus_two", [{"x": 2.0}], signature="classify_x_to_y") == \
        [[["", 3.0]]]
    assert client.regress("half_plus_two", [{}, {"x": 6.0}], context={"x": 4.0},
                          signature="regress_x_to_y") == [4.0, 5.0]


def test_errors_carry_tf_servings_message_and_status(client: Client) -> None:
    with pytest.raises(ServingError) as missing:
        client.predict("half", [1.0])
    assert (missing.value.status, missing.value.message) == (
        404, "Servable not found for request: Latest(half)")
    with pytest.raises(ServingError) as label:
        client.predict("half_plus_two", [1.0], label="gold")
    assert (label.value.status, label.value.message) == (
        400, "Unrecognized servable version label: gold")
    with pytest.raises(ServingError, match="is not of expected type: float"):
        client.predict("half_plus_two", ["a"])
    with pytest.raises(RequestError, match="not both"):
        client.predict("half_plus_two", [1.0], version=1, label="stable")


def test_unreachable_server_is_a_serving_error_with_status_zero(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(ServingError) as caught:
        Client(url, timeout=5).status("m")
    assert caught.value.status == 0 and f"cannot reach {url}" in caught.value.message


def test_our_extension_endpoints(shared_server) -> None:
    client = Client(shared_server.url, timeout=30,
                    headers={SECRET_HEADER: shared_server.secret})
    info = client.server_info()
    assert info is not None and info.pid == shared_server.pid and info.private
    assert set(info.model_names) >= {"half_plus_two", "versioned"}
    versioned = info.model("versioned")
    assert versioned is not None and versioned.labels == {"stable": 1, "canary": 3}
    assert [v.version for v in versioned.versions] == [3, 2, 1]
    assert all(v.state is VersionState.AVAILABLE for v in versioned.versions)
    assert client.reload().pid == shared_server.pid
    told = Client(shared_server.url, timeout=30).server_info()  # without the secret
    assert told is not None and not told.private and told.pid is None
    assert told.model("versioned").base_path == "" and told.model_config_file is None


def test_request_bodies() -> None:
    assert predict_body([1.0], signature="s") == {"instances": [1.0], "signature_name": "s"}
    full = {"inputs": {"x": [1.0]}}
    assert predict_body(full) == full  # a complete request passes through
    assert predict_body({"a": [1, 2], "b": [3, 4]}) == {
        "instances": [{"a": 1, "b": 3}, {"a": 2, "b": 4}]}
    with pytest.raises(RequestError, match="columnar=True"):
        predict_body({"a": [1, 2], "b": [3]})


def test_a_slow_answer_is_a_timeout_not_unreachable(tmp_path, slow_model) -> None:
    server = start_server("--model_name=slow", f"--model_base_path={slow_model}",
                          log_dir=tmp_path)
    try:
        server.wait_state("slow")
        slow = Client(server.url, timeout=0.05)
        with pytest.raises(ServingError) as caught:
            slow.predict("slow", {"iterations": 20_000}, columnar=True)
        assert caught.value.status == 0
        assert caught.value.message == (f"no answer from {server.url} within 0.05 s "
                                        "(POST /v1/models/slow:predict)")
    finally:
        server.stop()


def test_metrics_come_from_the_path_the_server_reports(client: Client) -> None:
    client.predict("half_plus_two", [1.0])
    assert client.server_info().prometheus_path == "/monitoring/prometheus/metrics"
    text = client.metrics()
    assert ':tensorflow:serving:request_count{model_name="half_plus_two",status="OK"}' in text


def test_metrics_are_none_when_monitoring_is_off(tmp_path, half_plus_two) -> None:
    server = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                          log_dir=tmp_path)
    try:
        server.wait_state("half_plus_two")
        client = Client(server.url, timeout=30)
        assert client.server_info().prometheus_path is None
        assert client.metrics() is None
    finally:
        server.stop()
