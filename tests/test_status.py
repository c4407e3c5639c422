"""The shared status vocabulary: the server description's one parser and its wire shape."""

from __future__ import annotations

import pytest

from tfserve_magic.status import (
    ModelDescription,
    ProtocolError,
    ServerDescription,
    VersionReport,
    VersionState,
)

PRIVATE = {"pid": 7, "version": "0.3.0", "started_at": 12.5, "model_config_file": "/c/models.config",
           "prometheus_path": "/metrics",
           "models": [{"name": "m", "base_path": "/b/m", "policy": "latest {num_versions: 1}",
                       "labels": {"stable": 2},
                       "versions": [{"version": 2, "state": "AVAILABLE", "error": ""},
                                    {"version": 1, "state": "END", "error": "bad graph"}]}]}
PUBLIC = {"version": "0.3.0", "started_at": 12.5, "prometheus_path": None,
          "models": [{"name": "m", "policy": "all {}", "labels": {},
                      "versions": [{"version": 1, "state": "LOADING", "error": ""}]}]}


def test_a_description_reads_as_fields() -> None:
    info = ServerDescription.from_json(PRIVATE)
    assert info.private and info.pid == 7 and info.model_config_file == "/c/models.config"
    model = info.model("m")
    assert model is not None and model.base_path == "/b/m" and model.labels == {"stable": 2}
    assert model.versions == (VersionReport(2, VersionState.AVAILABLE),
                              VersionReport(1, VersionState.END, "bad graph"))
    assert model.available == (2,) and info.model("other") is None
    assert info.model_names == ("m",)


@pytest.mark.parametrize("wire", [PRIVATE, PUBLIC])
def test_the_wire_shape_survives_a_round_trip(wire) -> None:
    assert ServerDescription.from_json(wire).to_json() == wire
    assert list(ServerDescription.from_json(wire).to_json()) == list(wire)


def test_without_the_secret_the_private_keys_are_left_out() -> None:
    info = ServerDescription.from_json(PUBLIC)
    assert not info.private and info.pid is None and info.model("m").base_path == ""
    told = ServerDescription.from_json(PRIVATE).to_json(private=False)
    assert "pid" not in told and "model_config_file" not in told
    assert "base_path" not in told["models"][0] and told["models"][0]["labels"] == {"stable": 2}
    # A description that never had them cannot be made to tell them.
    assert "pid" not in info.to_json(private=True)


def test_a_version_that_ended_with_an_error_is_failed() -> None:
    assert VersionReport(1, VersionState.END, "bad graph").failed
    assert not VersionReport(1, VersionState.END).failed
    assert not VersionReport(1, VersionState.LOADING, "retrying").failed
    assert ModelDescription("m").available == ()


@pytest.mark.parametrize("wire", [{}, {"models": [{"versions": []}]}, [], None,
                                  {"models": [{"name": "m", "versions": [{"state": "AVAILABLE"}]}]},
                                  {"pid": "x", "models": []}])
def test_anything_else_is_refused_with_a_reason(wire) -> None:
    with pytest.raises(ProtocolError, match="not a tfserve_magic server description"):
        ServerDescription.from_json(wire)


HANDSHAKE = {"tfserve_magic": "handshake", "format": 1, "pid": 41, "host": "127.0.0.1",
             "rest_api_port": 8501, "grpc_port": 8500, "grpc_socket_path": None,
             "version": "0.3.0", "rest_scheme": "http", "grpc_tls": False, "models": ["m"]}


def test_a_handshake_reads_as_fields_and_survives_a_round_trip() -> None:
    from tfserve_magic.status import Handshake

    handshake = Handshake.from_json(HANDSHAKE)
    assert (handshake.pid, handshake.rest_api_port, handshake.grpc_port) == (41, 8501, 8500)
    assert handshake.models == ("m",) and handshake.format == 1
    assert handshake.to_json() == HANDSHAKE
    # A server from before the format number, and one with gRPC off, still read.
    older = {k: v for k, v in HANDSHAKE.items() if k != "format"} | {"grpc_port": None}
    assert Handshake.from_json(older).grpc_port is None


@pytest.mark.parametrize("wire", [[], {"pid": 1, "rest_api_port": 2},
                                  {"tfserve_magic": "handshake", "pid": 1},
                                  {"tfserve_magic": "handshake", "pid": "x", "rest_api_port": 2}])
def test_anything_but_a_handshake_is_refused(wire) -> None:
    from tfserve_magic.status import Handshake

    with pytest.raises(ProtocolError, match="not a tfserve_magic handshake"):
        Handshake.from_json(wire)
