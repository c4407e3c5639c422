"""The Kubernetes target: a Deployment, a Service (8500 gRPC, 8501 REST), a ConfigMap holding
``models.config`` (and the monitoring and batching configs), a HorizontalPodAutoscaler and a
``kustomization.yaml`` tying them together.

The ConfigMap is mounted as a directory (not ``subPath``) so that an edited ConfigMap reaches
the pods, and TF Serving re-reads it when ``--model_config_file_poll_wait_seconds`` is set: that
is how a label moves in production without a restart.
"""

from __future__ import annotations

from typing import Any

from tfserve_magic.operations.deploy.docker import GRPC_PORT, REST_PORT
from tfserve_magic.operations.deploy.plan import CONFIG_ROOT, DeploymentPlan
from tfserve_magic.operations.deploy.yaml_text import dump

__all__ = ["config_files", "kubernetes_files", "pre_stop", "resources"]

_MIB = 1024 * 1024
_CPU_REQUEST = "500m"
_HPA_CPU_PERCENT = 70


def config_files(plan: DeploymentPlan, models_config: str) -> dict[str, str]:
    """File name -> text of what the container reads from CONFIG_ROOT."""
    files = {"models.config": models_config}
    if plan.monitoring_text is not None:
        files["monitoring.config"] = plan.monitoring_text
    if plan.batching_text is not None:
        files["batching.config"] = plan.batching_text
    return files


def resources(plan: DeploymentPlan) -> dict[str, Any]:
    """Requests sized from the shipped models (a loaded SavedModel takes roughly twice its size
    on disk), plus GPUs when asked."""
    memory_mib = 256 + 2 * -(-plan.model_bytes // _MIB)
    limits: dict[str, Any] = {"memory": f"{2 * memory_mib}Mi"}
    if plan.gpus:
        limits["nvidia.com/gpu"] = plan.gpus
    return {"requests": {"cpu": _CPU_REQUEST, "memory": f"{memory_mib}Mi"}, "limits": limits}


def _metadata(plan: DeploymentPlan, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if plan.namespace:
        meta["namespace"] = plan.namespace
    meta["labels"] = _labels(plan)
    return meta


def _labels(plan: DeploymentPlan) -> dict[str, str]:
    return {"app.kubernetes.io/name": plan.app, "app.kubernetes.io/component": "model-server"}


def _probe(plan: DeploymentPlan, initial_delay: int, period: int) -> dict[str, Any]:
    # TF Serving opens its REST port only once the initial models are loaded, so the model
    # status endpoint answering 200 means the pod can serve.
    return {"httpGet": {"path": f"/v1/models/{plan.models[0].name}", "port": "http"},
            "initialDelaySeconds": initial_delay, "periodSeconds": period,
            "timeoutSeconds": 5, "failureThreshold": 3}


def pre_stop(plan: DeploymentPlan) -> dict[str, Any]:
    """TF Serving exits at once on SIGTERM (it has no drain), so the pod keeps serving for the
    server's grace period first while Kubernetes takes it out of the Service's endpoints:
    requests in flight, and those routed to it meanwhile, are answered."""
    return {"preStop": {"exec": {"command": ["sleep", str(plan.grace_seconds)]}}}


def deployment(plan: DeploymentPlan) -> dict[str, Any]:
    template_meta: dict[str, Any] = {"labels": _labels(plan)}
    if plan.prometheus_path:
        template_meta["annotations"] = {"prometheus.io/scrape": "true",
                                        "prometheus.io/port": str(REST_PORT),
                                        "prometheus.io/path": plan.prometheus_path}
    container = {
        "name": "tensorflow-serving",
        "image": plan.image,
        "args": list(plan.flags),
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
                  {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"}],
        "lifecycle": pre_stop(plan),
        "readinessProbe": _probe(plan, 5, 10),
        "livenessProbe": _probe(plan, 60, 20),  # large models load slowly: do not kill early
        "resources": resources(plan),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_ROOT, "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(plan, plan.app),
        "spec": {
            "replicas": plan.replicas,
            "selector": {"matchLabels": _labels(plan)},
            "template": {
                "metadata": template_meta,
                "spec": {"terminationGracePeriodSeconds": plan.termination_grace_seconds,
                         "containers": [container],
                         "volumes": [{"name": "config",
                                      "configMap": {"name": f"{plan.app}-config"}}]},
            },
        },
    }


def service(plan: DeploymentPlan) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(plan, plan.app),
        "spec": {"selector": _labels(plan),
                 "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc",
                            "protocol": "TCP"},
                           {"name": "http", "port": REST_PORT, "targetPort": "http",
                            "protocol": "TCP"}]},
    }


def config_map(plan: DeploymentPlan, files: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _metadata(plan, f"{plan.app}-config"), "data": dict(files)}


def autoscaler(plan: DeploymentPlan) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(plan, plan.app),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.app},
            "minReplicas": plan.replicas,
            "maxReplicas": max(4, 4 * plan.replicas),
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": _HPA_CPU_PERCENT}}}],
        },
    }


def kubernetes_files(plan: DeploymentPlan, models_config: str) -> dict[str, str]:
    """Relative path -> YAML of the Kubernetes target."""
    manifests = {
        "configmap.yaml": config_map(plan, config_files(plan, models_config)),
        "deployment.yaml": deployment(plan),
        "service.yaml": service(plan),
        "hpa.yaml": autoscaler(plan),
    }
    kustomization: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1",
                                     "kind": "Kustomization"}
    if plan.namespace:
        kustomization["namespace"] = plan.namespace
    kustomization["resources"] = list(manifests)
    files = {f"kubernetes/{name}": dump(doc) for name, doc in manifests.items()}
    files["kubernetes/kustomization.yaml"] = dump(kustomization)
    return files
