"""A server's description and metrics read as views of its models: the data of the notebook's
dashboard and of the lab panel, without widgets.

Pure functions, so the views' logic is tested without a browser: rows of versions with
their state, labels and load errors; per-version request rate and mean latency computed from two
Prometheus scrapes (``prometheus_client``'s parser); with batching on, the mean batch size and
queueing delay per version over the same interval; and the choices a user can route to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tfserve_magic.status import ServerDescription, VersionReport, VersionState

__all__ = [
    "BatchStats",
    "ModelView",
    "Traffic",
    "VersionRow",
    "batch_stats",
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
    # batching (empty when it is off): batches run, their rows, requests queued, seconds queued
    batches: Mapping[Key, float] = field(default_factory=dict)
    batch_rows: Mapping[Key, float] = field(default_factory=dict)
    queued: Mapping[Key, float] = field(default_factory=dict)
    queue_seconds: Mapping[Key, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchStats:
    """Batching of one version between two scrapes."""

    batches_per_second: float
    mean_batch_size: float | None
    mean_queue_delay_ms: float | None


@dataclass(frozen=True)
class VersionRow(VersionReport):
    """A version as the dashboard shows it: its report (TF Serving's state, load error), the
    labels pointing at it and its traffic."""

    labels: tuple[str, ...] = ()
    requests_per_second: float | None = None
    mean_latency_ms: float | None = None
    mean_batch_size: float | None = None
    mean_queue_delay_ms: float | None = None


@dataclass(frozen=True)
class ModelView:
    name: str
    policy: str
    base_path: str
    labels: Mapping[str, int]
    rows: tuple[VersionRow, ...]

    @property
    def available(self) -> tuple[int, ...]:
        return tuple(r.version for r in self.rows if r.state is VersionState.AVAILABLE)


# Metadata and status calls are how tools look at a server (this dashboard's signature table,
# the lab panel's polling, a readiness probe), not traffic a client sends a model: not charted.
_LOOKS = frozenset({"GetModelMetadata", "GetModelStatus"})


def parse_traffic(text: str) -> Traffic:
    """Our per-version series (``tfserve_magic_request_count`` / ``..._latency_seconds``) of
    model calls (predict, classify, regress and their gRPC twins); metadata and status calls
    are left out."""
    requests: dict[Key, float] = {}
    latency: dict[Key, float] = {}
    batching: dict[str, dict[Key, float]] = {name: {} for name in _BATCH_SAMPLES.values()}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            version = sample.labels.get("version", "")
            if not version.isdigit() or sample.labels.get("API") in _LOOKS:
                continue
            key = (sample.labels.get("model_name", ""), int(version))
            if sample.name == "tfserve_magic_request_count_total":
                requests[key] = requests.get(key, 0.0) + sample.value
            elif sample.name == "tfserve_magic_request_latency_seconds_sum":
                latency[key] = latency.get(key, 0.0) + sample.value
            elif sample.name in _BATCH_SAMPLES:
                batching[_BATCH_SAMPLES[sample.name]][key] = sample.value
    return Traffic(requests, latency, **batching)


_BATCH_SAMPLES = {
    "tfserve_magic_batch_size_count": "batches",
    "tfserve_magic_batch_size_sum": "batch_rows",
    "tfserve_magic_batch_queue_delay_seconds_count": "queued",
    "tfserve_magic_batch_queue_delay_seconds_sum": "queue_seconds",
}


def batch_stats(before: Traffic | None, after: Traffic, seconds: float) -> dict[Key, BatchStats]:
    """Batches per second, mean rows per batch and mean queueing delay per version between two
    scrapes; versions without batching are left out."""
    if before is None or seconds <= 0:
        return {}
    out: dict[Key, BatchStats] = {}
    for key, count in after.batches.items():
        batches = count - before.batches.get(key, 0.0)
        rows = after.batch_rows.get(key, 0.0) - before.batch_rows.get(key, 0.0)
        queued = after.queued.get(key, 0.0) - before.queued.get(key, 0.0)
        waited = after.queue_seconds.get(key, 0.0) - before.queue_seconds.get(key, 0.0)
        out[key] = BatchStats(max(0.0, batches) / seconds,
                              rows / batches if batches > 0 else None,
                              waited / queued * 1000 if queued > 0 else None)
    return out


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


def model_views(info: ServerDescription,
                traffic: Mapping[Key, tuple[float, float | None]] | None = None,
                batching: Mapping[Key, BatchStats] | None = None) -> list[ModelView]:
    """View state for every model of a server description (contract 2)."""
    views = []
    for model in info.models:
        by_version: dict[int, list[str]] = {}
        for label, version in model.labels.items():
            by_version.setdefault(version, []).append(label)
        rows = []
        for report in model.versions:
            rate = (traffic or {}).get((model.name, report.version))
            batch = (batching or {}).get((model.name, report.version))
            rows.append(VersionRow(report.version, report.state, report.error,
                                   tuple(sorted(by_version.get(report.version, []))),
                                   rate[0] if rate else None, rate[1] if rate else None,
                                   batch.mean_batch_size if batch else None,
                                   batch.mean_queue_delay_ms if batch else None))
        views.append(ModelView(model.name, model.policy, model.base_path, dict(model.labels),
                               tuple(rows)))
    return views


def route_choices(view: ModelView) -> list[tuple[str, tuple[str, Any]]]:
    """Dropdown choices: latest, each AVAILABLE version, each label."""
    choices: list[tuple[str, tuple[str, Any]]] = [("latest", ("latest", None))]
    choices += [(f"version {v}", ("version", v)) for v in view.available]
    choices += [(f"label {name} (v{version})", ("label", name))
                for name, version in sorted(view.labels.items())]
    return choices
