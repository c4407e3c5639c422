"""Prometheus metrics (``prometheus_client``), exposed on the REST port when
``--monitoring_config_file`` enables them.

TF Serving's own names are kept (``:tensorflow:serving:request_count`` and friends, with TF's
label names) so existing dashboards work; ours add the version, which TF Serving does not label:
``tfserve_magic_request_count_total`` and ``tfserve_magic_request_latency_seconds``; with
batching on, ``tfserve_magic_batch_size``, ``tfserve_magic_batch_padding_rows`` and
``tfserve_magic_batch_queue_delay_seconds`` per model version. Each server
gets its own registry, so several apps in one test process do not collide.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from tfserve_magic.status import Code

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# TF Serving's request_latency buckets: exponential from 10 us, factor 1.8, 33 buckets (in us).
_TF_LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))
_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                      2.5, 5.0, 10.0, 30.0)

_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_QUEUE_DELAY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                          0.1, 0.25, 0.5, 1.0)


class _TFCounters:
    """Counters printed exactly as TF Serving prints them. prometheus_client renames counters to
    ``*_total`` in its text output, which would break dashboards written for TF Serving, so
    these few lines are rendered here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[tuple[tuple[str, str], ...], int]] = defaultdict(
            lambda: defaultdict(int))

    def inc(self, name: str, **labels: str) -> None:
        with self._lock:
            self._counts[name][tuple(sorted(labels.items()))] += 1

    def exposition(self) -> bytes:
        lines = []
        with self._lock:
            snapshot = {n: dict(c) for n, c in self._counts.items()}
        for name, help_text in _TF_COUNTERS.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            for labels, value in sorted(snapshot.get(name, {}).items()):
                rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{rendered}}} {value}")
        return ("\n".join(lines) + "\n").encode()


_TF_COUNTERS = {
    ":tensorflow:serving:request_count": "The total number of requests.",
    ":tensorflow:cc:saved_model:load_attempt_count":
        "The number of times a SavedModel was successfully loaded.",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class ServerMetrics:
    """What the REST and gRPC surfaces and the manager record."""

    def __init__(self) -> None:
        # TF Serving exports no *_created series. (prometheus_client leaves this unannotated.)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self._tf = _TFCounters()
        self._request_children: dict[tuple[str, int | None, str, str, str], tuple[Any, Any, Any]] = {}
        self._batch_series: dict[tuple[str, int], tuple[Any, Any, Any]] = {}
        self._tf_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"], buckets=_TF_LATENCY_BUCKETS_US,
            registry=self.registry)
        self._requests = Counter(
            "tfserve_magic_request_count",
            "Requests per model, version, API, status and entrypoint (REST or GRPC).",
            ["model_name", "version", "API", "status", "entrypoint"], registry=self.registry)
        self._latency = Histogram(
            "tfserve_magic_request_latency_seconds", "Request latency per model version and API.",
            ["model_name", "version", "API"], buckets=_LATENCY_BUCKETS_S, registry=self.registry)
        self._batch_size = Histogram(
            "tfserve_magic_batch_size", "Rows per batched model call (before padding).",
            ["model_name", "version"], buckets=_BATCH_SIZE_BUCKETS, registry=self.registry)
        self._batch_padding = Histogram(
            "tfserve_magic_batch_padding_rows", "Padding rows added up to an allowed batch size.",
            ["model_name", "version"], buckets=(0, *_BATCH_SIZE_BUCKETS), registry=self.registry)
        self._queue_delay = Histogram(
            "tfserve_magic_batch_queue_delay_seconds",
            "Time a request waited in the batching queue before its batch ran.",
            ["model_name", "version"], buckets=_QUEUE_DELAY_BUCKETS_S, registry=self.registry)

    def observe_request(self, model: str, version: int | None, api: str, status: str,
                        seconds: float, entrypoint: str = "REST") -> None:
        self._tf.inc(":tensorflow:serving:request_count", model_name=model, status=status)
        key = (model, version, api, status, entrypoint)
        children = self._request_children.get(key)
        if children is None:  # labels() costs more than the observations: look it up once
            version_label = "" if version is None else str(version)
            children = self._request_children[key] = (
                self._tf_latency.labels(model, api, entrypoint),
                self._requests.labels(model, version_label, api, status, entrypoint),
                self._latency.labels(model, version_label, api))
        tf_latency, requests, latency = children
        tf_latency.observe(seconds * 1e6)
        requests.inc()
        latency.observe(seconds)

    def finished(self, model: str, version: int | None, api: str, code: Code, started: float,
                 entrypoint: str = "REST") -> None:
        """One finished request of either surface, ``started`` by ``time.monotonic()``: the one
        place a request's metrics are taken (REST's handlers, the small path, gRPC)."""
        self.observe_request(model, version, api, code.name, time.monotonic() - started,
                             entrypoint)

    def observe_batch(self, model: str, version: int, rows: int, padded_rows: int,
                      queue_delays: list[float]) -> None:
        """One batch ran: its rows (before padding), padding, and each request's wait."""
        series = self._batch_series.get((model, version))
        if series is None:  # labels() takes a lock and builds a key: once per version, not batch
            version_label = str(version)
            series = self._batch_series[(model, version)] = (
                self._batch_size.labels(model, version_label),
                self._batch_padding.labels(model, version_label),
                self._queue_delay.labels(model, version_label))
        size, padding, delay = series
        size.observe(rows)
        padding.observe(padded_rows - rows)
        for seconds in queue_delays:
            delay.observe(seconds)

    def observe_load(self, path: str, ok: bool) -> None:
        self._tf.inc(":tensorflow:cc:saved_model:load_attempt_count", model_path=path,
                     status="success" if ok else "fail")

    def exposition(self) -> bytes:
        return self._tf.exposition() + generate_latest(self.registry)
