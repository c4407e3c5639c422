"""The KServe target: one ``InferenceService`` per model with the TensorFlow predictor.

KServe's TensorFlow runtime is TF Serving itself (``runtimeVersion`` pins the same release), so
the same SavedModel folders serve there. It downloads each model from ``storageUri``: the
``--storage-uri`` given (``<uri>/<model>``), or else a PersistentVolumeClaim the README explains
how to fill.
"""

from __future__ import annotations

from typing import Any

from tfserve_magic.operations.deploy.kubernetes import pre_stop, resources
from tfserve_magic.operations.deploy.plan import DeploymentPlan, ModelPlan, app_name, serving_api_version
from tfserve_magic.operations.deploy.yaml_text import dump_all

__all__ = ["inference_service", "kserve_files", "storage_uri"]


def storage_uri(plan: DeploymentPlan, model: ModelPlan) -> str:
    if plan.storage_uri:
        return f"{plan.storage_uri}/{model.name}"
    return f"pvc://{plan.app}-models/{model.name}"


def inference_service(plan: DeploymentPlan, model: ModelPlan) -> dict[str, Any]:
    name = plan.app if len(plan.models) == 1 else f"{plan.app}-{app_name(model.name)}"
    metadata: dict[str, Any] = {"name": name[:63].rstrip("-")}
    if plan.namespace:
        metadata["namespace"] = plan.namespace
    if plan.prometheus_path:
        metadata["annotations"] = {"serving.kserve.io/enable-prometheus-scraping": "true"}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": {
            "minReplicas": plan.replicas,
            "terminationGracePeriodSeconds": plan.termination_grace_seconds,
            "model": {
                "lifecycle": pre_stop(plan),
                "modelFormat": {"name": "tensorflow"},
                "runtimeVersion": serving_api_version() + ("-gpu" if plan.gpus else ""),
                "storageUri": storage_uri(plan, model),
                "resources": resources(plan),
            },
        }},
    }


def kserve_files(plan: DeploymentPlan) -> dict[str, str]:
    return {"kserve/inferenceservice.yaml":
            dump_all(inference_service(plan, model) for model in plan.models)}
