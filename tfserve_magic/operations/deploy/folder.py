"""Writing a deployment folder: all or nothing.

Everything is staged in a hidden sibling folder and renamed into place at the end, so a failure
half-way leaves no partial folder. A folder that exists is replaced only when it is one of ours
(it holds the marker file this module writes) or empty; any other folder is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from tfserve_magic import __version__
from tfserve_magic.operations.deploy.docker import docker_files
from tfserve_magic.operations.deploy.kserve import kserve_files
from tfserve_magic.operations.deploy.kubernetes import config_files, kubernetes_files
from tfserve_magic.operations.deploy.plan import DeployError, DeploymentPlan
from tfserve_magic.operations.deploy.readme import readme
from tfserve_magic.serving.models.config import config_to_text

__all__ = ["MARKER", "DeployResult", "write_deployment"]

MARKER = ".tfserve-deploy.json"


@dataclass(frozen=True)
class DeployResult:
    """What was written, for the magic and the console script to report."""

    path: str
    files: tuple[str, ...]
    plan: DeploymentPlan

    def summary(self) -> str:
        models = "; ".join(
            f"{m.name} (version{'s' if len(m.versions) > 1 else ''} {_numbers(m.versions)})"
            for m in self.plan.models)
        targets = ", ".join(self.plan.targets)
        readme = os.path.join(self.path, "README.md")
        image, base = self.plan.image, self.plan.base_image
        lines = [f"Wrote {self.path} for server {self.plan.server}: {models}.",
                 f"Image: {image} on {base}; targets: {targets}; see {readme}."]
        if not self.plan.running:
            lines.append(f"Server {self.plan.server} is not running: shipped the versions its "
                         "policy selects on disk.")
        for model in self.plan.models:
            for label, version in sorted(model.dropped_labels.items()):
                lines.append(f"Label {label!r} of {model.name} was left out: it points at "
                             f"version {version}, which is not shipped.")
        return "\n".join(lines)


def _numbers(versions: Mapping[int, str]) -> str:
    return ", ".join(map(str, versions))


def _check_target(path: str) -> None:
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path) or os.path.islink(path):
        raise DeployError(f"{path} exists and is not a folder; choose another --out")
    if os.listdir(path) and not os.path.isfile(os.path.join(path, MARKER)):
        raise DeployError(f"{path} exists and was not written by tfserve deploy (it has no "
                          f"{MARKER}); choose another --out or empty it first")


def _texts(plan: DeploymentPlan) -> dict[str, str]:
    models_config = config_to_text(plan.container_configs())
    texts = {f"config/{name}": text for name, text in config_files(plan, models_config).items()}
    if "docker" in plan.targets or "kubernetes" in plan.targets:
        texts.update(docker_files(plan))  # Kubernetes runs the image the Dockerfile builds
    if "kubernetes" in plan.targets:
        texts.update(kubernetes_files(plan, models_config))
    if "kserve" in plan.targets:
        texts.update(kserve_files(plan))
    texts["README.md"] = readme(plan)
    return texts


def _stage(plan: DeploymentPlan, staging: str) -> list[str]:
    written = []
    for relative, text in _texts(plan).items():
        target = os.path.join(staging, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
        written.append(relative)
    if plan.copies_models:
        for model in plan.models:
            for version, source in model.versions.items():
                relative = f"models/{model.name}/{version}"
                shutil.copytree(source, os.path.join(staging, relative), symlinks=False)
                written.append(relative + "/")
    marker: Mapping[str, object] = {"generator": "tfserve_magic", "version": __version__,
                                    "server": plan.server, "files": sorted(written)}
    with open(os.path.join(staging, MARKER), "w", encoding="utf-8") as handle:
        json.dump(marker, handle, indent=1)
    return sorted(written)


def write_deployment(plan: DeploymentPlan, out: str) -> DeployResult:
    """Write ``plan`` into folder ``out``; raises DeployError (and writes nothing) on bad input."""
    path = os.path.abspath(os.path.expanduser(out))
    _check_target(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    try:
        files = _stage(plan, staging)
        if os.path.exists(path):
            retired = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
            os.replace(path, os.path.join(retired, "previous"))
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DeployResult(path, tuple(files), plan)
