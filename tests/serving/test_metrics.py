"""Server metrics as a unit: TF Serving's own series exactly as it prints them, and our two
request metrics (count and latency per model version), one registry per server."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tfserve_magic.serving.metrics import ServerMetrics


def _samples(metrics: ServerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_tf_servings_request_count_is_printed_as_tf_serving_prints_it() -> None:
    metrics = ServerMetrics()
    metrics.observe_request("m", 1, "Predict", "OK", 0.002)
    metrics.observe_request("m", 1, "Predict", "OK", 0.003)
    metrics.observe_request("m", None, "Predict", "NOT_FOUND", 0.001)
    text = metrics.exposition().decode()
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 2\n' in text
    assert ':tensorflow:serving:request_count{model_name="m",status="NOT_FOUND"} 1\n' in text
    assert ":tensorflow:serving:request_count_total" not in text  # no renaming to *_total
    assert "_created" not in text  # TF Serving exports no creation times


def test_our_two_request_metrics_carry_the_version() -> None:
    metrics = ServerMetrics()
    metrics.observe_request("m", 1, "Predict", "OK", 0.002)
    metrics.observe_request("m", 2, "Predict", "OK", 0.2)
    metrics.observe_request("m", None, "Predict", "NOT_FOUND", 0.001)
    samples = _samples(metrics)

    def sample(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({"API": "Predict", "model_name": "m", **labels}.items())))]

    count = "tfserve_magic_request_count_total"
    assert sample(count, status="OK", version="1", entrypoint="REST") == 1
    assert sample(count, status="NOT_FOUND", version="", entrypoint="REST") == 1
    latency = "tfserve_magic_request_latency_seconds"
    assert sample(f"{latency}_count", version="2") == 1
    assert sample(f"{latency}_sum", version="2") == 0.2
    assert sample(f"{latency}_bucket", le="0.25", version="2") == 1
    assert sample(f"{latency}_bucket", le="0.1", version="2") == 0
    # TF's latency histogram is in microseconds and per entry point.
    assert abs(sample(":tensorflow:serving:request_latency_sum", entrypoint="REST")
               - 203_000) < 1e-6


def test_load_attempts_and_label_escaping() -> None:
    metrics = ServerMetrics()
    metrics.observe_load('/models/"quoted"\\path', True)
    metrics.observe_load("/models/x", False)
    text = metrics.exposition().decode()
    assert (':tensorflow:cc:saved_model:load_attempt_count{model_path="/models/\\"quoted\\"\\\\path",'
            'status="success"} 1') in text
    assert ':tensorflow:cc:saved_model:load_attempt_count{model_path="/models/x",status="fail"} 1' \
        in text


def test_each_server_has_its_own_registry() -> None:
    first, second = ServerMetrics(), ServerMetrics()
    first.observe_request("m", 1, "Predict", "OK", 0.01)
    assert "tfserve_magic_request_count_total{" in first.exposition().decode()
    assert "tfserve_magic_request_count_total{" not in second.exposition().decode()
