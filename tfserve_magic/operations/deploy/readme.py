"""The deployment folder's README.md: what is in it, build, push, apply, and how to move a
version label in production."""

from __future__ import annotations

from tfserve_magic import __version__
from tfserve_magic.operations.deploy.docker import GRPC_PORT, REST_PORT
from tfserve_magic.operations.deploy.plan import DeploymentPlan

__all__ = ["readme"]


def _models_table(plan: DeploymentPlan) -> str:
    rows = ["| model | versions | labels |", "| --- | --- | --- |"]
    for model in plan.models:
        labels = ", ".join(f"{k} -> {v}" for k, v in sorted(model.config.labels.items())
                           if k not in model.dropped_labels) or "none"
        rows.append(f"| {model.name} | {', '.join(map(str, model.versions))} | {labels} |")
    return "\n".join(rows)


def _docker(plan: DeploymentPlan) -> str:
    gpus = "--gpus all " if plan.gpus else ""
    return f"""## Docker

```sh
docker build -t {plan.image} .
docker run --rm -p {GRPC_PORT}:{GRPC_PORT} -p {REST_PORT}:{REST_PORT} {gpus}{plan.image}
# or: docker compose up --build
curl http://localhost:{REST_PORT}/v1/models/{plan.models[0].name}
```

The image is `{plan.base_image}` (the release of the `tensorflow-serving-api` this folder was
written with) plus `config/`{"" if plan.storage_uri else " and `models/`"}. Push it where your
cluster pulls from: `docker push {plan.image}`.
"""


def _kubernetes(plan: DeploymentPlan) -> str:
    ns = f" -n {plan.namespace}" if plan.namespace else ""
    gpus = f", {plan.gpus} GPU(s) each" if plan.gpus else ""
    return f"""## Kubernetes

```sh
kubectl apply -k kubernetes/
kubectl{ns} rollout status deployment/{plan.app}
kubectl{ns} port-forward service/{plan.app} {REST_PORT}:{REST_PORT}
```

`kubernetes/` holds a Deployment ({plan.replicas} replica(s) of `{plan.image}`{gpus}),
a Service for {GRPC_PORT} (gRPC) and {REST_PORT} (REST), a ConfigMap with the files of `config/`
mounted at `/config`, a HorizontalPodAutoscaler on CPU and a `kustomization.yaml`. Readiness
and liveness probes ask the model status endpoint `/v1/models/{plan.models[0].name}`.{
    f" Prometheus scrapes `{plan.prometheus_path}` on port {REST_PORT}." if plan.prometheus_path else ""}
"""


def _kserve(plan: DeploymentPlan) -> str:
    where = (f"KServe downloads each model from `{plan.storage_uri}/<model>`." if plan.storage_uri
             else f"KServe reads each model from the PersistentVolumeClaim `{plan.app}-models`: "
                  "create it and copy `models/<model>/` into it first.")
    return f"""## KServe

```sh
kubectl apply -f kserve/inferenceservice.yaml
```

One InferenceService per model, with KServe's TensorFlow runtime (TF Serving). {where}
KServe serves each model's latest version; roll a new one out gradually with
`canaryTrafficPercent` on the predictor.
"""


def _labels(plan: DeploymentPlan) -> str:
    return f"""## Moving a label in production

Labels live in `config/models.config` (`version_labels`), exactly as in the notebook. Edit the
file (on Kubernetes: the ConfigMap in `kubernetes/configmap.yaml`, then `kubectl apply -k
kubernetes/`). TF Serving re-reads it by itself when it runs with
`--model_config_file_poll_wait_seconds` above 0; otherwise send it the new config with the
`HandleReloadConfigRequest` gRPC call, for example from a notebook:

```python
%tfserve connect http://HOST:{REST_PORT} --grpc HOST:{GRPC_PORT} --name production
```

then move the label with the dashboard's "Move label" (`%tfserve dashboard production`): a
connected server with a gRPC address gets the new config through `HandleReloadConfigRequest`.
Keep `config/models.config` in step, so the next rollout has the same labels. A label may only
point at a version that is AVAILABLE; with `--model_config_file_poll_wait_seconds` above 0 the
server re-reads its file and undoes a change made over gRPC, so use one way or the other.
"""


def readme(plan: DeploymentPlan) -> str:
    sections = [f"""# {plan.app}: TensorFlow Serving deployment

Written by tfserve_magic {__version__} from the notebook server `{plan.server}`
(`tfserve-deploy {plan.server}` or `%tfserve deploy {plan.server}` writes it again).

{_models_table(plan)}

- `config/`: `models.config` (base paths as the container sees them{
    f", under `{plan.storage_uri}`" if plan.storage_uri else ", `/models/<model>`"}) and the
  monitoring/batching configs the server ran with.
""" + ("- `models/`: the served version folders, copied.\n" if plan.copies_models else "")
                + f"- Flags: `{' '.join(plan.flags)}`\n"]
    if "docker" in plan.targets or "kubernetes" in plan.targets:
        sections.append(_docker(plan))
    if "kubernetes" in plan.targets:
        sections.append(_kubernetes(plan))
    if "kserve" in plan.targets:
        sections.append(_kserve(plan))
    sections.append(_labels(plan))
    return "\n".join(sections)
