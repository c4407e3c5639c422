"""Deploying what a notebook serves to TensorFlow Serving on Docker, Kubernetes and KServe.

``deploy(server, out)`` reads a running or recorded server into a plan (plan.py) and writes one
self-contained folder (folder.py), one writer per target (docker.py, kubernetes.py, kserve.py,
readme.py). ``%tfserve deploy`` and the ``tfserve-deploy`` console script (cli.py) call it.
No TensorFlow import.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfserve_magic.operations.deploy.folder import DeployResult, write_deployment
from tfserve_magic.operations.deploy.plan import TARGETS, DeployError, plan_deployment

__all__ = ["DeployError", "DeployResult", "deploy"]


def _targets(target: str | Sequence[str]) -> tuple[str, ...]:
    names = target.split(",") if isinstance(target, str) else list(target)
    names = [n.strip() for n in names if n.strip()]
    return TARGETS if names == ["all"] else tuple(names)


def deploy(server: str, out: str, *, target: str | Sequence[str] = "all", replicas: int = 1,
           gpu: int = 0, image: str | None = None, storage_uri: str | None = None,
           namespace: str | None = None) -> DeployResult:
    """Write a deployment folder ``out`` for server ``server`` (by name or port).

    ``target``: ``docker``, ``kubernetes``, ``kserve``, a comma list, or ``all``. ``gpu``: GPUs
    per replica (the ``-gpu`` image when above 0). ``storage_uri``: ``gs://`` or ``s3://``
    folder holding one folder per model, instead of copying the versions into the image.
    Raises :class:`DeployError`, writing nothing, on bad input."""
    plan = plan_deployment(server, targets=_targets(target), replicas=replicas, gpus=gpu,
                           image=image, storage_uri=storage_uri, namespace=namespace)
    return write_deployment(plan, out)
