"""Version policies: which of the versions on disk a model aspires to serve.

Pure functions over version numbers, mirroring ``file_system_storage_path_source.cc``:
``latest {num_versions: N}`` (default, N=1, 0 treated as 1), ``all {}`` and
``specific {versions: ...}``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["PolicyKind", "VersionPolicy", "aspired_versions"]

log = logging.getLogger(__name__)


class PolicyKind(enum.Enum):
    LATEST = "latest"
    ALL = "all"
    SPECIFIC = "specific"


@dataclass(frozen=True)
class VersionPolicy:
    kind: PolicyKind = PolicyKind.LATEST
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def latest(cls, num_versions: int = 1) -> VersionPolicy:
        return cls(PolicyKind.LATEST, max(1, num_versions))

    @classmethod
    def all(cls) -> VersionPolicy:
        return cls(PolicyKind.ALL)

    @classmethod
    def specific(cls, versions: Iterable[int]) -> VersionPolicy:
        return cls(PolicyKind.SPECIFIC, versions=tuple(sorted(set(versions))))

    def describe(self) -> str:
        """The policy in models.config text-proto syntax."""
        if self.kind is PolicyKind.LATEST:
            return f"latest {{ num_versions: {self.num_versions} }}"
        if self.kind is PolicyKind.ALL:
            return "all {}"
        return "specific { " + " ".join(f"versions: {v}" for v in self.versions) + " }"


def aspired_versions(policy: VersionPolicy, on_disk: Iterable[int], model: str = "") -> set[int]:
    """The versions of ``on_disk`` that ``policy`` wants loaded."""
    present = set(on_disk)
    if policy.kind is PolicyKind.ALL:
        return present
    if policy.kind is PolicyKind.LATEST:
        return set(sorted(present, reverse=True)[: max(1, policy.num_versions)])
    if not policy.versions:
        log.error("Model %s has a specific version policy with no versions listed", model)
    missing = [v for v in policy.versions if v not in present]
    if missing:
        log.warning("Model %s: version(s) %s named by its specific policy are not in its base path",
                    model, ", ".join(map(str, missing)))
    return present.intersection(policy.versions)
