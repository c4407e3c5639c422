"""Batching in a real server on real SavedModels: merged calls answer exactly as the model does
in-process, padding to allowed sizes, TF Serving's refusals (too large, queue full), one bad
request in a batch, per-model parameters, a bad file at start, and a hot version swap."""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from server_process import Response, RunningServer, run_server_expecting_failure, start_server, wait_for

# Batches that only run when full (one-minute timeout): which requests shared a call is then
# known in advance, so the assertions below do not depend on timing.
ONLY_FULL = "batch_timeout_micros { value: 60000000 } num_batch_threads { value: 1 }"
PARAMS = {
    "merge": f"max_batch_size {{ value: 10 }} {ONLY_FULL}",
    "pad": "max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 8",
    "rows": f"max_batch_size {{ value: 3 }} {ONLY_FULL}",
    "multi": "max_batch_size { value: 64 } batch_timeout_micros { value: 2000 }",
    "gated": "max_batch_size { value: 1 } max_enqueued_batches { value: 1 } "
             "num_batch_threads { value: 1 }",
}


def _parallel(calls: list[Callable[[], Response]]) -> list[Response]:
    """Run the calls at once from threads; results in call order."""
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(r is not None for r in results), "a request thread did not finish"
    return results


@pytest.fixture(scope="module")
def per_model_server(tmp_path_factory, multi_io) -> Iterator[RunningServer]:
    from models import build_batch_probe, build_gated, build_row_sums

    root = tmp_path_factory.mktemp("batching")
    builders = {"merge": build_batch_probe, "pad": build_batch_probe, "rows": build_row_sums,
                "gated": build_gated}
    bases = {}
    for name, build in builders.items():
        build(str(root / name), 1)
        bases[name] = root / name
    shutil.copytree(multi_io, root / "multi")
    bases["multi"] = root / "multi"
    for name, params in PARAMS.items():
        (bases[name] / "1" / "batching_params.pbtxt").write_text(params + "\n")
    shutil.copytree(multi_io, root / "unbatched")  # no batching_params.pbtxt: served unbatched
    bases["unbatched"] = root / "unbatched"
    config = root / "models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}\n'
        for n, p in bases.items()) + "}\n")
    monitoring = root / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }\n")
    server = start_server(f"--model_config_file={config}", "--enable_batching",
                          "--enable_per_model_batching_parameters",
                          f"--monitoring_config_file={monitoring}", log_dir=root)
    try:
        for name in bases:
            server.wait_state(name)
        yield server
    finally:
        server.stop()


def _predict(server: RunningServer, model: str, body: dict[str, Any]) -> Callable[[], Response]:
    return lambda: server.post(f"/v1/models/{model}:predict", body)


def test_concurrent_requests_of_different_sizes_get_exactly_the_in_process_answers(
        per_model_server, multi_io) -> None:
    import tensorflow as tf

    serve = tf.saved_model.load(str(multi_io / "1")).signatures["serving_default"]
    rng = np.random.default_rng(7)
    bodies = []
    for rows in [1, 3, 2, 5, 1, 4, 7, 2, 1, 6, 3, 1, 2, 8, 1, 5]:
        a = rng.standard_normal(rows).astype(np.float32)
        b = rng.standard_normal(rows).astype(np.float32)
        bodies.append({"inputs": {"a": a.tolist(), "b": b.tolist()}})
    responses = _parallel([_predict(per_model_server, "multi", b) for b in bodies])
    for body, response in zip(bodies, responses, strict=True):
        assert response.status == 200, response.body
        expected = serve(a=tf.constant(body["inputs"]["a"], tf.float32),
                         b=tf.constant(body["inputs"]["b"], tf.float32))
        outputs = response.json()["outputs"]
        for name in ("sum", "product"):
            assert np.array_equal(np.asarray(outputs[name], np.float32), expected[name].numpy())


def test_requests_are_merged_into_one_model_call_and_split_back(per_model_server) -> None:
    sizes = [1, 2, 3, 4]  # 10 rows: exactly one full batch
    bodies = [{"instances": [float(10 * i + j) for j in range(n)]} for i, n in enumerate(sizes)]
    responses = _parallel([_predict(per_model_server, "merge", b) for b in bodies])
    for body, response in zip(bodies, responses, strict=True):
        assert response.status == 200, response.body
        rows = response.json()["predictions"]
        assert [r["y"] for r in rows] == [2 * x for x in body["instances"]]
        assert [r["rows"] for r in rows] == [10] * len(body["instances"])


def test_batches_are_padded_to_the_next_allowed_size_and_padding_never_reaches_callers(
        per_model_server) -> None:
    for rows, padded in [(1, 4), (4, 4), (5, 8)]:
        response = per_model_server.post("/v1/models/pad:predict",
                                         {"inputs": [float(x) for x in range(rows)]})
        assert response.status == 200, response.body
        outputs = response.json()["outputs"]
        assert outputs["y"] == [2.0 * x for x in range(rows)]
        assert outputs["rows"] == [padded] * rows


def test_a_request_larger_than_max_batch_size_is_refused_with_tf_serving_message(
        per_model_server) -> None:
    response = per_model_server.post("/v1/models/pad:predict", {"inputs": [1.0] * 9})
    assert response.status == 400
    assert response.json() == {"error": "Task size 9 is larger than maximum input batch size 8"}


def test_a_request_whose_inputs_differ_in_rows_is_refused_with_tf_serving_message(
        per_model_server) -> None:
    response = per_model_server.post("/v1/models/multi:predict",
                                     {"inputs": {"a": [1.0, 2.0], "b": [1.0]}})
    assert response.status == 400
    assert response.json() == {
        "error": "Batching Run() input tensors must have equal 0th-dimension size"}


def test_one_bad_request_in_a_batch_fails_alone(per_model_server) -> None:
    good = [{"instances": [[1.0, 2.0, 3.0]]}, {"instances": [[4.0, 5.0, 6.0]]}]
    failing = {"instances": [[1.0, -1.0, 0.0]]}  # merged with the good ones; the model refuses it
    bad_shape = {"instances": [[1.0, 2.0, 3.0, 4.0]]}  # refused before it can join the batch
    responses = _parallel([_predict(per_model_server, "rows", b)
                           for b in [good[0], failing, bad_shape, good[1]]])
    assert [r.status for r in responses] == [200, 400, 400, 200], [r.body for r in responses]
    # The merged call of three failed, so each was run again on its own (rows: 1).
    assert responses[0].json()["predictions"] == [{"sum": 6.0, "rows": 1}]
    assert responses[3].json()["predictions"] == [{"sum": 15.0, "rows": 1}]
    assert "assertion failed" in responses[1].json()["error"], responses[1].body
    assert responses[2].json() == {"error": "Input 't' has shape [1,4], which does not match the "
                                            "signature's shape [-1,3] (-1: any size)"}
    assert "A batch of 3 requests to rows version 1 failed" in per_model_server.log()


def test_a_full_queue_answers_unavailable_with_tf_serving_message(per_model_server, tmp_path) -> None:
    gate = tmp_path / "open"
    body = {"inputs": {"gate": [str(gate)], "x": [1.5]}}
    results: list[Response] = []

    def send() -> None:
        results.append(per_model_server.post("/v1/models/gated:predict", body))

    # One call runs (held by the gate; it says so with a file), then of two more requests one
    # waits in the queue (one batch of one) and the other cannot fit: exactly one refusal.
    threads = [threading.Thread(target=send) for _ in range(3)]
    try:
        threads[0].start()
        wait_for(lambda: Path(f"{gate}.started").exists(), timeout=60,
                 what="the first call to start running")
        for thread in threads[1:]:
            thread.start()
        refused = wait_for(lambda: [r for r in results if r.status == 503], timeout=60,
                           what="a queue-full refusal")
    finally:
        gate.write_text("")
        for thread in threads:
            thread.join(120)
    assert refused[0].json() == {
        "error": "The batch scheduling queue to which this task was submitted is full; "
                 "currently 1 batches enqueued and max_enqueued_batches is 1"}
    assert sorted(r.status for r in results) == [200, 200, 503], [r.body for r in results]
    assert all(r.json()["outputs"] == [3.0] for r in results if r.status == 200)


def test_per_model_parameters_and_batch_metrics(per_model_server) -> None:
    calls = [_predict(per_model_server, "merge", {"instances": [1.0] * 10}),
             _predict(per_model_server, "pad", {"instances": [1.0]}),
             _predict(per_model_server, "multi", {"inputs": {"a": [1.0], "b": [2.0]}}),
             _predict(per_model_server, "unbatched", {"inputs": {"a": [1.0], "b": [2.0]}})]
    assert [r.status for r in _parallel(calls)] == [200] * 4
    metrics = per_model_server.get("/monitoring/prometheus/metrics").body.decode()
    assert 'tfserve_magic_batch_size_count{model_name="merge",version="1"}' in metrics
    assert 'tfserve_magic_batch_padding_rows_sum{model_name="pad",version="1"}' in metrics
    assert 'tfserve_magic_batch_queue_delay_seconds_count{model_name="multi",version="1"}' in metrics
    assert 'model_name="unbatched"' not in metrics.split("tfserve_magic_batch_size")[1]
    log = per_model_server.log()
    assert "Wrapping servable merge version 1 to perform batch processing (max_batch_size=10" in log
    assert "Wrapping servable unbatched" not in log
    assert "Event loop: uvloop" in log


def test_absent_num_batch_threads_means_one_batch_thread_per_core(per_model_server) -> None:
    """The README: absent fields take TensorFlow's defaults, one batch thread per core. "pad"
    has no num_batch_threads; "merge" asks for one."""
    log = per_model_server.log()
    cores = os.cpu_count()
    assert ("Wrapping servable pad version 1 to perform batch processing (max_batch_size=8, "
            f"batch_timeout_micros=0, max_enqueued_batches=10, num_batch_threads={cores})") in log
    assert "max_enqueued_batches=10, num_batch_threads=1)" in log.split(
        "Wrapping servable merge version 1")[1].splitlines()[0]


@pytest.mark.parametrize("text, message", [
    ("max_batch_size: 8", ("Invalid protobuf file: '{file}': 1:17 : 'max_batch_size: 8': "
     "Expected \"{{\".")),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 4", ("{file}: Last entry in "
     "allowed_batch_sizes must match max_batch_size; last entry was 4; expected 8")),
])
def test_a_bad_parameters_file_is_refused_at_start(tmp_path, half_plus_two, text, message) -> None:
    file = tmp_path / "batching.config"
    file.write_text(text)
    result = run_server_expecting_failure(f"--model_base_path={half_plus_two}", "--enable_batching",
                                          f"--batching_parameters_file={file}", "--rest_api_port=0")
    assert result.returncode == 1
    assert f"tfserve-server: error: {message.format(file=file)}" in result.stderr


def test_batching_across_a_hot_version_swap_fails_no_request(tmp_path, plus_version_builds) -> None:
    base = tmp_path / "plus"
    shutil.copytree(plus_version_builds / "1", base / "1")
    params = tmp_path / "batching.config"
    params.write_text("max_batch_size { value: 16 } batch_timeout_micros { value: 5000 }\n")
    server = start_server(f"--model_base_path={base}", "--model_name=plus", "--enable_batching",
                          f"--batching_parameters_file={params}",
                          "--file_system_poll_wait_seconds=1", log_dir=tmp_path)
    failures: list[Response] = []
    answers: set[float] = set()
    swapped = threading.Event()
    lock = threading.Lock()

    def client() -> None:
        for _ in range(2000):  # bounded; stops soon after version 2 answers
            response = server.post("/v1/models/plus:predict", {"instances": [10.0, 20.0]})
            with lock:
                if response.status != 200:
                    failures.append(response)
                else:
                    first = response.json()["predictions"][0]
                    answers.add(first)
                    if first == 12.0:
                        swapped.set()
            if swapped.is_set() and len(answers) > 1:
                return

    try:
        server.wait_state("plus", 1)
        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        wait_for(lambda: answers, timeout=60, what="first answers from version 1")
        # Staged beside the base path, then renamed in (as the README says): a poll never sees
        # a half-copied version 2.
        shutil.copytree(plus_version_builds / "2", tmp_path / ".staging")
        (tmp_path / ".staging").rename(base / "2")
        for thread in threads:
            thread.join(180)
        assert swapped.is_set(), "version 2 never answered"
        assert not failures, [(f.status, f.body) for f in failures[:3]]
        assert answers <= {11.0, 12.0}
        server.wait_state("plus", 1, "END")
    finally:
        server.stop()


def _versions_rows(table: str) -> list[dict[str, str]]:
    """The dashboard's versions table as {column: cell text} per version row."""
    head, *rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table)
    columns = re.findall(r"<th[^>]*>(.*?)</th>", head)
    return [dict(zip(columns, (re.sub(r"<[^>]+>", "", cell)
                               for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)), strict=True))
            for row in rows]


def _batch_counts(server: RunningServer, model: str) -> tuple[float, float]:
    """(batches, rows) of ``model`` version 1 from the server's Prometheus text."""
    text = server.get("/monitoring/prometheus/metrics").body.decode()

    def value(name: str) -> float:
        found = re.search(rf'^tfserve_magic_batch_size_{name}\{{model_name="{model}",'
                          rf'version="1"\}} (\S+)$', text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    return value("count"), value("sum")


def test_dashboard_shows_batch_size_and_queueing_delay(per_model_server, isolated_runtime) -> None:
    from tfserve_magic.client.traffic import batch_stats, model_views, parse_traffic
    from tfserve_magic.lifecycle import launcher
    from tfserve_magic.lifecycle.remote import connect
    from tfserve_magic.notebook.widgets import Dashboard
    from tfserve_magic.status import ServerDescription

    def scrape() -> Any:
        return parse_traffic(per_model_server.get("/monitoring/prometheus/metrics").body.decode())

    connect(per_model_server.url, "batching", secret=per_model_server.secret)
    dash = Dashboard(launcher.find("batching"), autostart=False)  # its first scrape: the baseline
    try:
        merge_panel = dash.panels["merge"]
        assert "batch size" not in merge_panel.versions.value  # no batches yet
        before = scrape()
        counts_before = _batch_counts(per_model_server, "merge")
        bodies = [{"instances": [1.0] * 4}, {"instances": [2.0] * 6}]  # one full batch of 10
        assert [r.status for r in _parallel([_predict(per_model_server, "merge", b)
                                             for b in bodies])] == [200, 200]
        after = scrape()
        stats = batch_stats(before, after, 2.0)
        merge = stats[("merge", 1)]
        # One batch of 10 rows by the server's own counters (read here, not by batch_stats).
        counted = _batch_counts(per_model_server, "merge")
        assert counted == (counts_before[0] + 1, counts_before[1] + 10), (counts_before, counted)
        assert merge.batches_per_second * 2.0 == 1 and merge.mean_batch_size == 10.0
        assert merge.mean_queue_delay_ms is not None and merge.mean_queue_delay_ms > 0
        assert ("unbatched", 1) not in stats
        info = ServerDescription.from_json(
            per_model_server.manage("GET", "/tfserve_magic/v1/server").json())
        view = next(v for v in model_views(info, {("merge", 1): (1.0, 2.0)}, stats)
                    if v.name == "merge")
        assert view.rows[0].mean_batch_size == 10.0

        dash.refresh()  # what the user sees: the same batch, from the dashboard's own scrapes
        [row] = _versions_rows(merge_panel.versions.value)
        assert row["version"] == "1" and row["batch size"] == "10.0"
        assert row["queue, ms"] == f"{merge.mean_queue_delay_ms:.2f}"  # the same batch's delay
        [unbatched] = _versions_rows(dash.panels["unbatched"].versions.value)
        assert "batch size" not in unbatched and unbatched["version"] == "1"
    finally:
        dash.close()


def test_rest_and_grpc_requests_share_one_batch(per_model_server) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # TF Serving's stubs
    from grpc_helpers import Stubs, outputs, predict_request

    stubs = Stubs(per_model_server.grpc_target)
    try:
        def over_grpc() -> Any:
            request = predict_request("merge", {"x": np.float32([5.0] * 6)})
            return outputs(stubs.prediction.Predict(request, timeout=60))

        results: list[Any] = [None, None]

        def run(index: int, call: Callable[[], Any]) -> None:
            results[index] = call()

        threads = [threading.Thread(target=run, args=(0, over_grpc)),
                   threading.Thread(target=run, args=(1, _predict(
                       per_model_server, "merge", {"instances": [1.0] * 4})))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        stubs.close()
    grpc_outputs, rest = results
    assert grpc_outputs["y"].tolist() == [10.0] * 6 and grpc_outputs["rows"].tolist() == [10] * 6
    assert rest.status == 200 and rest.json()["predictions"] == [{"y": 2.0, "rows": 10}] * 4


def test_a_request_past_its_deadline_leaves_its_batch_to_the_others(tmp_path) -> None:
    """A REST request whose deadline passes while it waits in a queue is answered 504 and
    dropped from its batch; the request that later fills that batch gets its own answer."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # TF Serving's stubs
    from grpc_helpers import Stubs, outputs, predict_request
    from models import build_batch_probe

    build_batch_probe(str(tmp_path / "merge"), 1)
    (tmp_path / "merge" / "1" / "batching_params.pbtxt").write_text(PARAMS["merge"] + "\n")
    server = start_server(f"--model_base_path={tmp_path / 'merge'}", "--model_name=merge",
                          "--enable_batching", "--enable_per_model_batching_parameters",
                          "--rest_api_timeout_in_ms=500", log_dir=tmp_path)
    stubs = None
    try:
        server.wait_state("merge")
        late = server.post("/v1/models/merge:predict", {"instances": [1.0] * 4})
        assert late.status == 504 and late.json() == {"error": "Deadline Exceeded"}
        stubs = Stubs(server.grpc_target)
        # 6 more rows fill the batch of 10 that the late request's 4 rows still sit in.
        answer = outputs(stubs.prediction.Predict(
            predict_request("merge", {"x": np.float32([5.0] * 6)}), timeout=60))
        assert answer["y"].tolist() == [10.0] * 6
        assert answer["rows"].tolist() == [6] * 6  # the late request's rows did not run
        assert "Batch processing failed" not in server.log()
    finally:
        if stubs is not None:
            stubs.close()
        server.stop()
