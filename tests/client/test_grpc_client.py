"""Client(url, grpc=...) against a real server: the same calls and answers as over REST."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tfserve_magic.client import Client, ServingError, VersionStatus
from tfserve_magic.status import Code, VersionState


@pytest.fixture(scope="module")
def clients(shared_server) -> Iterator[tuple[Client, Client]]:
    over_grpc = Client(shared_server.url, grpc=f"127.0.0.1:{shared_server.grpc_port}", timeout=60)
    yield Client(shared_server.url, timeout=60), over_grpc
    over_grpc.grpc.close()


def test_status_and_metadata_match_rest(clients) -> None:
    rest, grpc = clients
    assert grpc.status("versioned") == rest.status("versioned")
    assert grpc.status("half_plus_two", version=1) == [VersionStatus(1, VersionState.AVAILABLE, Code.OK, "")]
    assert grpc.metadata("versioned", label="canary") == rest.metadata("versioned",
                                                                      label="canary")
    assert grpc.signatures("half_plus_two") == rest.signatures("half_plus_two")


@pytest.mark.parametrize("model, data, kwargs", [
    ("half_plus_two", [1.0, 2.0, 5.0], {}),
    ("half_plus_two", np.float64([[1.0], [3.0]]), {}),
    ("versioned", [10.0], {"version": 2}),
    ("versioned", [10.0], {"label": "stable"}),
    ("multi_io", {"a": np.float32([1, 3]), "b": [2.0, 4.0]}, {}),
    ("multi_io", {"instances": [{"a": 1.0, "b": 2.0}]}, {}),
    ("strings", ["ab", "xyz"], {}),
    ("ints", {"small": [1], "big": [2**40]}, {"columnar": True}),
])
def test_predict_matches_rest(clients, model, data, kwargs) -> None:
    rest, grpc = clients
    expected, got = rest.predict(model, data, **kwargs), grpc.predict(model, data, **kwargs)
    if isinstance(expected, dict):
        assert set(got) == set(expected)
        pairs = [(got[k], expected[k]) for k in expected]
    else:
        pairs = [(got, expected)]
    for mine, theirs in pairs:
        assert mine.shape == theirs.shape and mine.tolist() == theirs.tolist()


def test_a_large_input_goes_as_tensor_content(clients) -> None:
    _, grpc = clients
    x = np.arange(2_000_000, dtype=np.float32)  # 8 MB: over gRPC's default 4 MiB answer limit
    y = grpc.predict("half_plus_two", x)
    assert y.dtype == np.float32 and np.array_equal(y, x * 0.5 + 2)


def test_classify_and_regress_match_rest(clients) -> None:
    rest, grpc = clients
    examples = [{"x": 2.0}, {"x": 20.0}]
    for verb, signature in (("classify", "classify_x_to_y"), ("regress", "regress_x_to_y")):
        assert getattr(grpc, verb)("half_plus_two", examples, signature=signature) == \
            getattr(rest, verb)("half_plus_two", examples, signature=signature)
    assert grpc.classify("half_plus_two", [{}], context={"x": 10.0},
                         signature="classify_x_to_y") == [[["", 7.0]]]


def test_errors_carry_tf_servings_message_and_code(clients, shared_server) -> None:
    _, grpc = clients
    with pytest.raises(ServingError) as error:
        grpc.predict("nope", [1.0])
    assert (error.value.message, error.value.code, error.value.status) == (
        "Servable not found for request: Latest(nope)", "NOT_FOUND", 404)
    assert str(error.value) == "Servable not found for request: Latest(nope) (NOT_FOUND)"
    with pytest.raises(ServingError) as error:
        grpc.predict("versioned", [1.0], label="gold")
    assert (error.value.message, error.value.code) == (
        "Unrecognized servable version label: gold", "INVALID_ARGUMENT")
    nowhere = Client(shared_server.url, grpc="127.0.0.1:1", timeout=5)
    with pytest.raises(ServingError) as error:
        nowhere.status("half_plus_two")
    assert error.value.message.startswith("cannot reach 127.0.0.1:1") and \
        error.value.code == "UNAVAILABLE"
