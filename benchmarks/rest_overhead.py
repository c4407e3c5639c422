"""What the REST and gRPC paths cost, next to the in-process model call measured in the same run.

Builds two models (tiny y = 0.5x + 2, and an MLP 784-256-10), serves them with the real server
subprocess, and measures latency p50/p99/mean and throughput at concurrency 1 and 16 with
keep-alive HTTP clients on loopback and TF Serving's official gRPC stubs (one channel, numeric
inputs as tensor_content, as tf.make_tensor_proto sends them): Python threads always, and `wrk`
too when it is installed (Debian's package; then the server is pinned to core 0 and wrk to core
1, so the client's own cost is not charged to the server). Every row prints its ratio to the
in-process call of the
same model and batch, measured here and now (absolute times vary by up to ~40% between runs on a
shared 2-core machine; ratios are what to compare). Not a test: run `make bench`.

    python benchmarks/rest_overhead.py [--seconds 3] [--image]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Result:
    latencies: list[float]
    elapsed: float

    def row(self) -> tuple[float, float, float, float]:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return p50, p99, statistics.fmean(lat), len(lat) / self.elapsed


def build_models(root: str, image: bool) -> dict[str, str]:
    import tensorflow as tf

    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": 0.5 * x + 2.0}

    class MLP(tf.Module):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.w1 = tf.Variable(rng.normal(size=(784, 256)).astype(np.float32) * 0.05)
            self.w2 = tf.Variable(rng.normal(size=(256, 10)).astype(np.float32) * 0.05)

        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32, name="pixels")])
        def serve(self, pixels):
            return {"probabilities": tf.nn.softmax(tf.nn.relu(pixels @ self.w1) @ self.w2)}

    models = {"tiny": Tiny(), "mlp": MLP()}
    if image:
        keras_model = tf.keras.applications.MobileNetV2(weights=None)

        class Image(tf.Module):
            def __init__(self) -> None:
                self.model = keras_model

            @tf.function(input_signature=[tf.TensorSpec([None, 224, 224, 3], tf.float32,
                                                        name="image")])
            def serve(self, image):
                return {"probabilities": self.model(image)}

        models["image"] = Image()
    paths = {}
    for name, module in models.items():
        path = os.path.join(root, name)
        tf.saved_model.save(module, os.path.join(path, "1"),
                            signatures={"serving_default": module.serve})
        paths[name] = path
    return paths


def in_process(path: str, inputs: dict[str, np.ndarray], seconds: float) -> Result:
    import tensorflow as tf

    function = tf.saved_model.load(os.path.join(path, "1")).signatures["serving_default"]
    feeds = {k: tf.constant(v) for k, v in inputs.items()}
    function(**feeds)
    latencies = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        {k: v.numpy() for k, v in function(**feeds).items()}
        latencies.append(time.perf_counter() - t0)
    return Result(latencies, time.perf_counter() - start)


def _timed_clients(concurrency: int, seconds: float,
                   client: Callable[[], Callable[[], None]]) -> Result:
    """``concurrency`` threads, each calling the request function ``client()`` gave it until the
    deadline; every call's latency is kept."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        send = client()
        mine = []
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            send()
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(latencies, time.perf_counter() - start)


def over_rest(port: int, model: str, body: bytes, concurrency: int, seconds: float) -> Result:
    def client() -> Callable[[], None]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # one per thread

        def send() -> None:
            conn.request("POST", f"/v1/models/{model}:predict", body)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")

        return send

    return _timed_clients(concurrency, seconds, client)


def over_grpc(target: str, model: str, inputs: dict[str, np.ndarray], concurrency: int,
              seconds: float) -> Result:
    """TF Serving's official stub, one channel shared by the threads (as gRPC clients do)."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        stub.Predict(request, timeout=60)
        return _timed_clients(concurrency, seconds,
                              lambda: lambda: stub.Predict(request, timeout=60))


def over_wrk(port: int, model: str, body: bytes, concurrency: int, seconds: float,
             root: str) -> tuple[float, float, float, float] | None:
    """(p50, p99, mean, req/s) from wrk, or None when wrk is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = os.path.join(root, "post.lua")
    body_path = os.path.join(root, "body.json")
    with open(body_path, "wb") as handle:
        handle.write(body)
    with open(script, "w") as handle:
        handle.write(f'wrk.method = "POST"\nlocal f = io.open("{body_path}", "rb")\n'
                     "wrk.body = f:read('*a')\nf:close()\n"
                     "done = function(summary, latency, requests)\n"
                     "  io.write(string.format('RESULT %f %f %f %f\\n', latency:percentile(50),"
                     " latency:percentile(99), latency.mean, summary.requests /"
                     " (summary.duration / 1e6)))\nend\n")
    command = [wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
               "-s", script,
               f"http://127.0.0.1:{port}/v1/models/{model}:predict"]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", "1", *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                         check=False).stdout
    for line in out.splitlines():
        if line.startswith("RESULT"):
            p50, p99, mean, rps = (float(x) for x in line.split()[1:])
            return p50 / 1e6, p99 / 1e6, mean / 1e6, rps
    return None


def start_server(config: str) -> tuple[subprocess.Popen[bytes], int, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfserve_magic.serving", "--rest_api_port=0", "--port=0",
         f"--model_config_file={config}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(proc.pid)], capture_output=True,
                       check=False)
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("server exited before its handshake")
    handshake = json.loads(line)
    return proc, handshake["rest_api_port"], handshake["grpc_port"]


def wait_available(port: int, model: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", f"/v1/models/{model}")
        if b"AVAILABLE" in conn.getresponse().read():
            return
        time.sleep(0.1)  # polling a condition with a deadline, in a benchmark
    raise TimeoutError(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--image", action="store_true", help="also MobileNetV2 (1 MiB body)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cases = [
        ("tiny", 1, {"x": np.float32([2.0])}),
        ("mlp", 1, {"pixels": rng.random((1, 784), dtype=np.float32)}),
        ("mlp", 32, {"pixels": rng.random((32, 784), dtype=np.float32)}),
    ]
    if args.image:
        cases.append(("image", 1, {"image": rng.random((1, 224, 224, 3), dtype=np.float32)}))
    with tempfile.TemporaryDirectory() as root:
        paths = build_models(root, args.image)
        config = os.path.join(root, "models.config")
        with open(config, "w") as handle:
            handle.write("model_config_list {\n" + "".join(
                f'  config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}\n'
                for n, p in paths.items()) + "}\n")
        proc, port, grpc_port = start_server(config)
        try:
            for name in paths:
                wait_available(port, name)
            header = (f"{'model':<6} {'batch':>5} {'path':<14} {'p50 ms':>8} {'p99 ms':>8} "
                      f"{'mean ms':>8} {'req/s':>8} {'p50 x call':>10} {'mean x call':>11}")
            print(header)
            print("-" * len(header))
            for name, batch, inputs in cases:
                base = in_process(paths[name], inputs, args.seconds)
                b50, b99, bmean, brps = base.row()
                print(f"{name:<6} {batch:>5} {'in-process':<14} {b50*1e3:8.3f} {b99*1e3:8.3f} "
                      f"{bmean*1e3:8.3f} {brps:8.0f} {1.0:10.1f} {1.0:11.1f}")
                (key, value), = inputs.items()
                body = json.dumps({"inputs": {key: value.tolist()}}).encode()
                for concurrency in (1, 16):
                    rows = [(f"py c={concurrency}",
                             over_rest(port, name, body, concurrency, args.seconds).row())]
                    measured = over_wrk(port, name, body, concurrency, args.seconds, root)
                    if measured is not None:
                        rows.append((f"wrk c={concurrency}", measured))
                    rows.append((f"grpc c={concurrency}", over_grpc(
                        f"127.0.0.1:{grpc_port}", name, inputs, concurrency, args.seconds).row()))
                    for label, (p50, p99, mean, rps) in rows:
                        print(f"{name:<6} {batch:>5} {label:<14} {p50*1e3:8.3f} {p99*1e3:8.3f} "
                              f"{mean*1e3:8.3f} {rps:8.0f} {p50/b50:10.1f} {mean/bmean:11.1f}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
