"""``deploy()``, ``%tfserve deploy`` and ``tfserve-deploy`` against a real notebook server: what
the folder holds, and every refusal (with its message, and nothing written)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import tfserve_magic
from tfserve_magic.lifecycle import launcher
from tfserve_magic.operations.deploy import DeployError
from tfserve_magic.serving.models.config import parse_model_config_text
from tfserve_magic.serving.options import tf_serving_flag_names


def _dockerfile_cmd(folder: Path) -> list[str]:
    line = next(text for text in (folder / "Dockerfile").read_text().splitlines()
                if text.startswith("CMD "))
    return json.loads(line[len("CMD "):])


def _untouched(parent: Path, before: set[str]) -> bool:
    return set(os.listdir(parent)) == before  # no folder, no staging leftovers


def test_folder_ships_only_available_versions_with_container_paths(in_notebook_runtime,
                                                                   tmp_path: Path) -> None:
    result = tfserve_magic.deploy("shop", str(tmp_path / "out"))
    out = tmp_path / "out"
    assert result.path == str(out)
    shipped = sorted(p.relative_to(out / "models").as_posix()
                     for p in (out / "models").glob("*/*"))
    assert shipped == ["half_plus_two/1", "plus/1", "plus/2"]  # not the version that failed
    served = launcher.find("shop").client.server_info().model("plus")
    assert (out / "models/plus/2/saved_model.pb").read_bytes() == \
        (Path(served.base_path) / "2/saved_model.pb").read_bytes()

    models = {m.name: m for m in parse_model_config_text((out / "config/models.config").read_text())}
    assert models["plus"].base_path == "/models/plus"
    assert models["half_plus_two"].base_path == "/models/half_plus_two"
    assert dict(models["plus"].labels) == {"stable": 1, "canary": 2}
    assert models["plus"].policy.kind.value == "all"
    assert "Label 'next' of plus was left out: it points at version 3" in result.summary()
    assert (out / "config/monitoring.config").read_text() == "prometheus_config { enable: true }\n"
    assert (out / "config/batching.config").read_text() == in_notebook_runtime.batching

    expected = {"Dockerfile", "docker-compose.yml", "README.md", "config/models.config",
                "config/monitoring.config", "kubernetes/deployment.yaml",
                "kubernetes/service.yaml", "kubernetes/configmap.yaml", "kubernetes/hpa.yaml",
                "kubernetes/kustomization.yaml", "kserve/inferenceservice.yaml"}
    assert expected <= set(result.files)
    readme = (out / "README.md").read_text()
    for words in ("docker build -t shop:latest .", "kubectl apply -k kubernetes/",
                  "Moving a label in production", "| plus | 1, 2 | canary -> 2, stable -> 1 |"):
        assert words in readme


def test_dockerfile_image_matches_the_installed_api_and_carries_the_servers_flags(
        in_notebook_runtime, tmp_path: Path) -> None:
    tfserve_magic.deploy("shop", str(tmp_path / "cpu"), target="docker")
    tfserve_magic.deploy("shop", str(tmp_path / "gpu"), target="docker", gpu=2)
    release = re.match(r"\d+\.\d+\.\d+", importlib.metadata.version("tensorflow-serving-api"))
    assert release is not None
    assert f"FROM tensorflow/serving:{release.group(0)}\n" in (tmp_path / "cpu/Dockerfile").read_text()
    assert f"FROM tensorflow/serving:{release.group(0)}-gpu\n" in \
        (tmp_path / "gpu/Dockerfile").read_text()
    assert not (tmp_path / "cpu/kubernetes").exists() and not (tmp_path / "cpu/kserve").exists()

    record = launcher.find("shop").record
    ran_with = [a for a in record.argv if a.startswith("--")]
    cmd = _dockerfile_cmd(tmp_path / "cpu")
    assert cmd[:3] == ["--model_config_file=/config/models.config",
                       "--monitoring_config_file=/config/monitoring.config",
                       "--batching_parameters_file=/config/batching.config"]
    assert "--enable_batching" in ran_with and "--enable_batching=true" in cmd
    # Every TF Serving flag of the notebook server, same value; ours and the ports are not.
    for flag in ("--model_config_file_poll_wait_seconds=1", "--file_system_poll_wait_seconds=1",
                 "--max_num_load_retries=0"):
        assert flag in ran_with and flag in cmd
    assert "--allow_version_labels_for_unavailable_models" in ran_with
    assert "--allow_version_labels_for_unavailable_models=true" in cmd
    assert "--event_loop=asyncio" in ran_with  # ours: tensorflow_model_server would refuse it
    assert {f[2:].split("=")[0] for f in cmd} <= set(tf_serving_flag_names())
    assert not [f for f in cmd if f.startswith(("--rest_api_port", "--port"))]
    compose = yaml.safe_load((tmp_path / "gpu/docker-compose.yml").read_text())
    service = compose["services"]["shop"]
    assert service["ports"] == ["8500:8500", "8501:8501"] and service["build"] == "."
    assert service["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 2


def test_storage_uri_references_models_instead_of_copying(in_notebook_runtime,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    tfserve_magic.deploy("shop", str(out), storage_uri="gs://bucket/serving/", namespace="prod")
    assert not (out / "models").exists()
    models = (out / "config/models.config").read_text()
    assert 'base_path: "gs://bucket/serving/plus"' in models
    assert "COPY models/" not in (out / "Dockerfile").read_text()
    isvc = list(yaml.safe_load_all((out / "kserve/inferenceservice.yaml").read_text()))
    assert [d["spec"]["predictor"]["model"]["storageUri"] for d in isvc] == \
        ["gs://bucket/serving/plus", "gs://bucket/serving/half_plus_two"]


def test_an_existing_folder_of_ours_is_replaced(in_notebook_runtime, tmp_path: Path) -> None:
    out = tmp_path / "out"
    tfserve_magic.deploy("shop", str(out), target="kubernetes", replicas=2)
    (out / "models/plus/1/stale").write_text("from the previous run")
    tfserve_magic.deploy("shop", str(out), target="kubernetes", replicas=5)
    assert not (out / "models/plus/1/stale").exists()
    assert yaml.safe_load((out / "kubernetes/deployment.yaml").read_text())["spec"]["replicas"] == 5
    assert sorted(os.listdir(tmp_path)) == ["out"]


@pytest.mark.parametrize("kwargs, message", [
    ({"server": "nosuch"}, "no server named nosuch (known servers: shop; see %tfserve list)"),
    ({"target": "helm"}, "unknown target helm: choose from docker, kubernetes, kserve or all"),
    ({"replicas": 0}, "--replicas must be at least 1, got 0"),
    ({"gpu": -1}, "--gpu must not be negative, got -1"),
    ({"namespace": "Prod_1"}, "--namespace 'Prod_1' is not a valid Kubernetes namespace"),
    ({"storage_uri": "/mnt/models"}, "--storage-uri must be a gs:// or s3:// URI"),
])
def test_bad_input_is_refused_and_nothing_is_written(in_notebook_runtime, tmp_path: Path,
                                                     kwargs: dict, message: str) -> None:
    server = kwargs.pop("server", "shop")
    before = set(os.listdir(tmp_path))
    with pytest.raises(DeployError) as refused:
        tfserve_magic.deploy(server, str(tmp_path / "out"), **kwargs)
    assert message in str(refused.value)
    assert _untouched(tmp_path, before)


def test_a_folder_that_is_not_ours_is_refused(in_notebook_runtime, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(DeployError, match="exists and was not written by tfserve deploy"):
        tfserve_magic.deploy("shop", str(theirs))
    assert os.listdir(theirs) == ["notes.txt"]
    assert sorted(os.listdir(tmp_path)) == ["theirs"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(DeployError, match="exists and is not a folder"):
        tfserve_magic.deploy("shop", str(tmp_path / "file"))


def test_no_available_version_is_refused(isolated_runtime, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()  # ready to receive a push, nothing served yet
    launcher.start(str(empty), name="empty")
    before = set(os.listdir(tmp_path))
    with pytest.raises(DeployError) as refused:
        tfserve_magic.deploy("empty", str(tmp_path / "out"))
    assert str(refused.value) == ("model empty on server empty has no AVAILABLE version to "
                                  "deploy (versions: none); see %tfserve status empty")
    assert _untouched(tmp_path, before)


def test_a_connected_remote_server_is_refused(isolated_runtime, tmp_path: Path) -> None:
    from tfserve_magic.lifecycle import registry

    registry.write_record(registry.ServerRecord(
        name="prod", pid=0, host="tfserving.example", rest_api_port=8501,
        url="http://tfserving.example:8501", models=("plus",), remote=True))
    with pytest.raises(DeployError) as refused:
        tfserve_magic.deploy("prod", str(tmp_path / "out"))
    assert str(refused.value) == ("prod is a remote server (http://tfserving.example:8501): deploy "
                                  "writes the folder of a server started here, to roll out there")
    assert not (tmp_path / "out").exists()


def test_a_recorded_server_that_stopped_ships_what_its_policy_serves(
        isolated_runtime, tmp_path: Path, versioned_base: Path, plus_version_builds: Path) -> None:
    import shutil

    from tfserve_magic.lifecycle import processes, registry

    shutil.copytree(plus_version_builds / "2", versioned_base / "2")
    handle = launcher.start(str(versioned_base), name="gone")
    processes.terminate(handle.record.pid)  # the kernel that started it died; the record stays
    assert registry.find_record("gone") is not None
    result = tfserve_magic.deploy("gone", str(tmp_path / "out"), target="docker")
    assert sorted(os.listdir(tmp_path / "out/models/gone")) == ["2"]  # latest {1}
    assert "Server gone is not running: shipped the versions its policy selects" in result.summary()


def test_magic_and_console_script(in_notebook_runtime, tmp_path: Path, capsys) -> None:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "tfserve_magic")
    shell.run_line_magic("tfserve", f"deploy shop --out {tmp_path / 'magic'} --target kserve "
                                    "--gpu --namespace ml")
    out, err = capsys.readouterr()
    wrote = f"Wrote {tmp_path / 'magic'} for server shop: plus (versions 1, 2); half_plus_two"
    assert wrote + " (version 1)." in out, err
    isvc = yaml.safe_load_all((tmp_path / "magic/kserve/inferenceservice.yaml").read_text())
    assert next(isvc)["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    shell.run_line_magic("tfserve", f"deploy nosuch --out {tmp_path / 'x'}")
    assert "%tfserve deploy: no server named nosuch" in capsys.readouterr().err

    env = {**os.environ, "TFSERVE_MAGIC_RUNTIME_DIR": str(in_notebook_runtime.runtime)}
    script = [sys.executable, "-m", "tfserve_magic.operations.deploy.cli"]
    ok = subprocess.run([*script, "shop", "--out", str(tmp_path / "ci"), "--target", "docker"],
                        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "Wrote" in ok.stdout and (tmp_path / "ci/Dockerfile").exists()
    bad = subprocess.run([*script, "shop", "--out", str(tmp_path / "ci2"), "--replicas", "0"],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "tfserve-deploy: error: --replicas must be at least 1, got 0"
    assert not (tmp_path / "ci2").exists()
