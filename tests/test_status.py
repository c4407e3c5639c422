"""The shared status vocabulary: the server description's one parser and its wire shape."""

from __future__ import annotations

import pytest

from tfserve_magic.status import (
    ModelDescription,
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
    with pytest.raises(ValueError, match="not a tfserve_magic server description"):
        ServerDescription.from_json(wire)
