"""The dashboard's data, without widgets: server description + metrics -> view state.

Pure functions, so the dashboard's logic is tested without a browser: rows of versions with
their state, labels and load errors; per-version request rate and mean latency computed from two
Prometheus scrapes (``prometheus_client``'s parser); and the choices a user can route to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "ModelView",
    "Traffic",
    "VersionRow",
    "model_views",
    "parse_traffic",
    "rates",
    "route_choices",
]

Key = tuple[str, int]  # (model, version)


@dataclass(frozen=True)
class Traffic:
    """Cumulative requests and latency seconds per (model, version), from one scrape."""

    requests: Mapping[Key, float]
    latency_seconds: Mapping[Key, float]


@dataclass(frozen=True)
class VersionRow:
    version: int
    state: str
    labels: tuple[str, ...] = ()
    error: str = ""
    requests_per_second: float | None = None
    mean_latency_ms: float | None = None


@dataclass(frozen=True)
class ModelView:
    name: str
    policy: str
    base_path: str
    labels: Mapping[str, int]
    rows: tuple[VersionRow, ...]

    @property
    def available(self) -> tuple[int, ...]:
        return tuple(r.version for r in self.rows if r.state == "AVAILABLE")


def parse_traffic(text: str) -> Traffic:
    """Our per-version series (``tfserve_magic_request_count`` / ``..._latency_seconds``)."""
    requests: dict[Key, float] = {}
    latency: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            version = sample.labels.get("version", "")
            if not version.isdigit():
                continue
            key = (sample.labels.get("model_name", ""), int(version))
            if sample.name == "tfserve_magic_request_count_total":
                requests[key] = requests.get(key, 0.0) + sample.value
            elif sample.name == "tfserve_magic_request_latency_seconds_sum":
                latency[key] = latency.get(key, 0.0) + sample.value
    return Traffic(requests, latency)


def rates(before: Traffic | None, after: Traffic, seconds: float) -> dict[Key, tuple[float, float | None]]:
    """(requests per second, mean latency in ms) per version between two scrapes."""
    if before is None or seconds <= 0:
        return {}
    out: dict[Key, tuple[float, float | None]] = {}
    for key, count in after.requests.items():
        delta = count - before.requests.get(key, 0.0)
        spent = after.latency_seconds.get(key, 0.0) - before.latency_seconds.get(key, 0.0)
        out[key] = (max(0.0, delta) / seconds, spent / delta * 1000 if delta > 0 else None)
    return out


def model_views(info: Mapping[str, Any],
                traffic: Mapping[Key, tuple[float, float | None]] | None = None) -> list[ModelView]:
    """View state for every model of a server description (contract 2)."""
    views = []
    for entry in info.get("models", []):
        labels = dict(entry.get("labels", {}))
        by_version: dict[int, list[str]] = {}
        for label, version in labels.items():
            by_version.setdefault(int(version), []).append(label)
        rows = []
        for version in entry.get("versions", []):
            number = int(version["version"])
            rate = (traffic or {}).get((entry["name"], number))
            rows.append(VersionRow(number, version["state"], tuple(sorted(by_version.get(number, []))),
                                   version.get("error", ""),
                                   rate[0] if rate else None, rate[1] if rate else None))
        views.append(ModelView(entry["name"], entry.get("policy", ""), entry.get("base_path", ""),
                               labels, tuple(rows)))
    return views


def route_choices(view: ModelView) -> list[tuple[str, tuple[str, Any]]]:
    """Dropdown choices: latest, each AVAILABLE version, each label."""
    choices: list[tuple[str, tuple[str, Any]]] = [("latest", ("latest", None))]
    choices += [(f"version {v}", ("version", v)) for v in view.available]
    choices += [(f"label {name} (v{version})", ("label", name))
                for name, version in sorted(view.labels.items())]
    return choices
