"""Every generated manifest is valid: offline against the Kubernetes API schemas that
``kubernetes-validate`` ships, rendered by ``kubectl kustomize`` (``make test`` installs Debian's
kubectl; a missing kubectl fails, it is not skipped), and the KServe InferenceService against
the required fields of its CRD."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import tfserve_magic

K8S_VERSION = "1.30"
VARIANTS = {
    "default": {},
    "gpu_namespace_replicas": {"gpu": 2, "namespace": "ml-prod", "replicas": 3},
    "storage_uri": {"storage_uri": "s3://models/shop", "image": "registry.example/shop:1"},
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.fixture(scope="module")
def folders(notebook_server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("manifests")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(notebook_server.runtime))
        return {name: Path(tfserve_magic.deploy("shop", str(root / name), **kwargs).path)
                for name, kwargs in VARIANTS.items()}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kubernetes_manifests_match_the_api_schemas(folders: dict[str, Path],
                                                    variant: str) -> None:
    kinds = []
    for path in sorted((folders[variant] / "kubernetes").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in _documents(path):
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)
            kinds.append(document["kind"])
    assert sorted(kinds) == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Service"]


def test_the_schema_check_catches_a_broken_manifest(folders: dict[str, Path]) -> None:
    deployment = _documents(folders["default"] / "kubernetes/deployment.yaml")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError, match="'pth' was unexpected"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    del deployment["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=False)


def test_deployment_service_configmap_and_autoscaler_say_what_was_asked(
        folders: dict[str, Path]) -> None:
    folder = folders["gpu_namespace_replicas"] / "kubernetes"
    deployment = _documents(folder / "deployment.yaml")[0]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert deployment["metadata"]["namespace"] == "ml-prod" and deployment["spec"]["replicas"] == 3
    assert container["image"] == "shop:latest"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/plus", "port": "http"}
    assert container["livenessProbe"]["initialDelaySeconds"] > \
        container["readinessProbe"]["initialDelaySeconds"]
    # TF Serving has no drain: the pod serves through the server's grace period (its
    # --shutdown_grace_seconds, 20 by default) before SIGTERM, within a longer termination grace.
    assert container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "20"]}}}
    assert pod["spec"]["terminationGracePeriodSeconds"] == 30
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true",
                                              "prometheus.io/port": "8501",
                                              "prometheus.io/path": "/monitoring/prometheus/metrics"}
    dockerfile = (folders["gpu_namespace_replicas"] / "Dockerfile").read_text()
    assert "CMD " + str(container["args"]).replace("'", '"') in dockerfile  # same flags
    assert container["volumeMounts"] == [{"name": "config", "mountPath": "/config",
                                          "readOnly": True}]
    service = _documents(folder / "service.yaml")[0]
    assert {(p["name"], p["port"]) for p in service["spec"]["ports"]} == {("grpc", 8500),
                                                                         ("http", 8501)}
    config_map = _documents(folder / "configmap.yaml")[0]
    config_dir = folders["gpu_namespace_replicas"] / "config"
    assert config_map["data"] == {p.name: p.read_text() for p in config_dir.iterdir()}
    hpa = _documents(folder / "hpa.yaml")[0]
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["scaleTargetRef"]["name"] == "shop"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kubectl_kustomize_renders_the_folder(folders: dict[str, Path], variant: str) -> None:
    rendered = subprocess.run(["kubectl", "kustomize", str(folders[variant] / "kubernetes")],
                              capture_output=True, text=True, timeout=120, check=False)
    assert rendered.returncode == 0, rendered.stderr
    documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert sorted(d["kind"] for d in documents) == ["ConfigMap", "Deployment",
                                                    "HorizontalPodAutoscaler", "Service"]
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    if variant == "gpu_namespace_replicas":
        assert {d["metadata"]["namespace"] for d in documents} == {"ml-prod"}


# Required fields of InferenceService v1beta1, from KServe's CRD
# (config/crd/full/serving.kserve.io_inferenceservices.yaml): spec requires predictor; a
# predictor's model (ModelSpec) requires modelFormat, whose name is required. The name must be a
# DNS-1035 label (KServe's admission webhook) and storageUri one of the schemes KServe reads.
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")


def _kserve_problems(document: dict[str, Any]) -> list[str]:
    problems = []
    if document.get("apiVersion") != "serving.kserve.io/v1beta1":
        problems.append("apiVersion")
    if document.get("kind") != "InferenceService":
        problems.append("kind")
    if not _DNS_1035.match(document.get("metadata", {}).get("name", "")):
        problems.append("metadata.name")
    predictor = document.get("spec", {}).get("predictor")
    if not isinstance(predictor, dict):
        return [*problems, "spec.predictor"]
    model = predictor.get("model", {})
    if not model.get("modelFormat", {}).get("name"):
        problems.append("spec.predictor.model.modelFormat.name")
    if not re.match(r"(gs|s3|pvc|https?|hdfs|webhdfs)://", model.get("storageUri", "")):
        problems.append("spec.predictor.model.storageUri")
    return problems


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kserve_inference_services_have_their_crds_required_fields(folders: dict[str, Path],
                                                                  variant: str) -> None:
    documents = _documents(folders[variant] / "kserve/inferenceservice.yaml")
    assert len(documents) == 2  # one per model
    for document in documents:
        assert _kserve_problems(document) == []
        assert document["spec"]["predictor"]["model"]["modelFormat"] == {"name": "tensorflow"}
        assert document["spec"]["predictor"]["minReplicas"] == VARIANTS[variant].get("replicas", 1)
        assert document["spec"]["predictor"]["terminationGracePeriodSeconds"] == 30
        assert document["spec"]["predictor"]["model"]["lifecycle"] == \
            {"preStop": {"exec": {"command": ["sleep", "20"]}}}
    broken = dict(documents[0], spec={"predictor": {"model": {"storageUri": "ftp://x"}}})
    assert _kserve_problems(broken) == ["spec.predictor.model.modelFormat.name",
                                        "spec.predictor.model.storageUri"]
