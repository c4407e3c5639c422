"""Flags, config files, policies and version folders: units, plus the real command line failing
with a clear message and a non-zero exit."""

from __future__ import annotations

import socket

import pytest
from server_process import run_server_expecting_failure, start_server

from tfserve_magic.serving.models.config import (
    config_to_text,
    parse_model_config_text,
    parse_monitoring_config,
)
from tfserve_magic.serving.models.policy import VersionPolicy, aspired_versions
from tfserve_magic.serving.models.repository import parse_version, scan_versions
from tfserve_magic.serving.process.flags import parse_flags
from tfserve_magic.serving.status_errors import ConfigError


def test_flags_keep_tf_serving_names_defaults_and_syntax() -> None:
    options, version = parse_flags([
        "--model_base_path=/m", "--rest_api_port", "8501", "--enable_model_warmup=false",
        "--rest_api_enable_cors_support", "--max_num_load_retries=0", "--saved_model_tags=serve,gpu",
        "--per_process_gpu_memory_fraction=0.5", "--xla_cpu_compilation_enabled=true"])
    assert not version
    assert (options.model_name, options.rest_api_port, options.port) == ("default", 8501, 8500)
    assert options.enable_model_warmup is False and options.rest_api_enable_cors_support is True
    assert options.tags == ("serve", "gpu") and options.max_num_load_retries == 0
    assert options.file_system_poll_wait_seconds == 1 and options.rest_api_timeout_in_ms == 30000
    assert options.rest_api_host == "127.0.0.1"
    assert options.ignored_flags == ("xla_cpu_compilation_enabled",)
    assert parse_flags(["--version"])[1] is True


@pytest.mark.parametrize(("argv", "message"), [
    ([], "Both server_options.model_base_path and server_options.model_config_file are empty!"),
    (["--model_base_path=/m", "--rest_api_port=abc"], "expected an integer, got 'abc'"),
    (["--model_base_path=/m", "--rest_api_port=70000"], "between 0 and 65535"),
    (["--model_base_path=/m", "--enable_model_warmup=maybe"], "expected true or false"),
    (["--model_base_path=/m", "--batching_parameters_file=/b"],
     "batching_parameters_file is set without setting enable_batching"),
    (["--model_base_path=/m", "--per_process_gpu_memory_fraction=2"], "between 0 and 1"),
    (["--model_base_path=/m", "--no_such_flag=1"], "unrecognized arguments: --no_such_flag=1"),
])
def test_bad_flags(argv, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_flags(argv)


def test_model_config_round_trip_and_validation() -> None:
    text = ('model_config_list { config { name: "a" base_path: "/models/a" model_platform: '
            '"tensorflow" model_version_policy { latest { num_versions: 2 } } '
            'version_labels { key: "stable" value: 3 } } '
            'config { name: "b" base_path: "/models/b" model_version_policy { all {} } } }')
    models = parse_model_config_text(text)
    assert [(m.name, m.policy, dict(m.labels)) for m in models] == [
        ("a", VersionPolicy.latest(2), {"stable": 3}), ("b", VersionPolicy.all(), {})]
    assert parse_model_config_text(config_to_text(models)) == models


@pytest.mark.parametrize(("text", "message"), [
    ("model_config_list { config { name: ", "Error parsing text-format tensorflow.serving.ModelServerConfig"),
    ('model_config_list { config { name: "a" base_path: "/x" } config { name: "a" base_path: "/y" } }',
     "Illegal to list model a multiple times in config list"),
    ('model_config_list { config { name: "a" base_path: "relative/a" } }',
     "Expected model a to have an absolute path or URI; got base_path()=relative/a"),
    ('model_config_list { config { name: "a" base_path: "/x" model_platform: "pytorch" } }',
     "only 'tensorflow' is supported"),
])
def test_bad_model_configs(text, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_model_config_text(text)


def test_monitoring_config(tmp_path) -> None:
    path = tmp_path / "monitoring.config"
    path.write_text('prometheus_config { enable: true, path: "/metrics" }')
    settings = parse_monitoring_config(str(path))
    assert (settings.prometheus_enabled, settings.prometheus_path) == (True, "/metrics")
    path.write_text("prometheus_config { enabled: true }")
    with pytest.raises(ConfigError, match="MonitoringConfig"):
        parse_monitoring_config(str(path))


def test_policies() -> None:
    on_disk = [1, 2, 3, 5]
    assert aspired_versions(VersionPolicy.latest(1), on_disk) == {5}
    assert aspired_versions(VersionPolicy.latest(0), on_disk) == {5}  # 0 is treated as 1
    assert aspired_versions(VersionPolicy.latest(2), on_disk) == {3, 5}
    assert aspired_versions(VersionPolicy.all(), on_disk) == {1, 2, 3, 5}
    assert aspired_versions(VersionPolicy.specific([2, 4]), on_disk) == {2}
    assert aspired_versions(VersionPolicy.latest(1), []) == set()


def test_version_folders(tmp_path) -> None:
    for name in ("1", "00000123", "tmp", ".tmp-3", "1.bak", "-4", "99999999999999999999"):
        (tmp_path / name).mkdir()
    assert sorted(scan_versions(str(tmp_path))) == [1, 123]
    assert parse_version("00000123") == 123 and parse_version("abc") is None
    with pytest.raises(Exception, match="Could not find base path"):
        scan_versions(str(tmp_path / "missing"))


@pytest.mark.parametrize(("extra", "message"), [
    ([], "Both server_options.model_base_path and server_options.model_config_file are empty!"),
    (["--model_config_file=/does/not/exist.config"], "Could not read model config file"),
    (["--model_base_path=/m", "--monitoring_config_file=/does/not/exist"],
     "Could not read monitoring config file"),
    (["--model_base_path=/m", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_the_command_line_fails_clearly(extra, message) -> None:
    result = run_server_expecting_failure("--rest_api_port=0", *extra)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""  # no handshake for a server that never started


def test_labels_in_a_startup_config_need_the_flag(tmp_path, half_plus_two) -> None:
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "h" base_path: "{half_plus_two}" '
                      'version_labels { key: "stable" value: 1 } } }')
    result = run_server_expecting_failure("--rest_api_port=0", f"--model_config_file={config}")
    assert result.returncode == 1
    assert ("Request to assign label to version 1 of model h, which is not currently available "
            "for inference") in result.stderr


def test_port_already_in_use(tmp_path, half_plus_two) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_server_expecting_failure(f"--rest_api_port={port}",
                                              f"--model_base_path={half_plus_two}")
    assert result.returncode == 1
    assert f"Failed to start HTTP Server on 127.0.0.1:{port}" in result.stderr


def test_missing_base_path_serves_nothing_but_runs(tmp_path) -> None:
    server = start_server("--model_name=m", f"--model_base_path={tmp_path / 'none'}",
                          log_dir=tmp_path)
    try:
        response = server.get("/v1/models/m")
        assert (response.status, response.json()) == (
            404, {"error": "Could not find any versions of model m"})
    finally:
        assert server.stop() == 0
