"""tfserve_magic against the peer users would pick instead (FastAPI + uvicorn), a ceiling row
(a constant-answer Tornado handler on the same event loop) and the in-process model call, all
measured in the same run, each figure printed as a ratio to FastAPI, to the ceiling and to the
in-process call. Every server is pinned to core 0 and the load generator (`wrk`, Debian's
package) to core 1. FastAPI and uvicorn are installed into the running Python by this script
when missing (they are not dependencies of the package). Not a test: absolute numbers vary
between runs on a shared machine; compare the ratios of one run.

    python benchmarks/peers.py [--seconds 3] [--no-image]
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from rest_overhead import build_models, over_wrk, wait_available

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


@dataclass
class Row:
    rps: float
    p50: float
    p99: float
    cpu_us: float  # server CPU time (all threads) per request: contention on a shared core
    #                stretches latency and cuts req/s, but hardly changes this

    @property
    def capacity(self) -> float:
        """Requests per second one dedicated core would serve at this CPU cost."""
        return 1e6 / self.cpu_us if self.cpu_us else 0.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ensure_fastapi() -> None:
    if importlib.util.find_spec("fastapi") and importlib.util.find_spec("uvicorn"):
        return
    print("installing the FastAPI peer (fastapi, uvicorn[standard]) into this Python ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "fastapi==0.163.2",
                    "uvicorn[standard]==0.54.0"], check=True)


def pinned(command: list[str]) -> list[str]:
    return ["taskset", "-c", "0", *command] if shutil.which("taskset") else command


def start(command: list[str], env: dict[str, str],
          log: Any) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server that prints its port (or our JSON handshake) as its first line."""
    proc = subprocess.Popen(pinned(command), stdout=subprocess.PIPE, stderr=log, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{command[:3]} exited before announcing its port")
    text = line.decode().strip()
    return proc, int(json.loads(text)["rest_api_port"]) if text.startswith("{") else int(text)


@dataclass
class Rate:
    wall: float  # per second of wall time
    cpu: float  # per second of this process's CPU time


def in_process(path: str, body: bytes, seconds: float) -> tuple[Rate, Rate]:
    """(model calls, parse+call+encode with orjson) per second, one thread."""
    import tensorflow as tf

    function = tf.saved_model.load(os.path.join(path, "1")).signatures["serving_default"]
    (key, value), = orjson.loads(body)["inputs"].items()
    feeds = {key: tf.constant(np.asarray(value, np.float32))}

    def call() -> None:
        {k: v.numpy() for k, v in function(**feeds).items()}

    def floor() -> None:
        (name, data), = orjson.loads(body)["inputs"].items()
        outputs = function(**{name: tf.constant(np.asarray(data, np.float32))})
        orjson.dumps({"outputs": {k: v.numpy() for k, v in outputs.items()}},
                     option=orjson.OPT_SERIALIZE_NUMPY)

    def rate(work: Callable[[], None]) -> Rate:
        work()
        count, started, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - started < seconds:
            work()
            count += 1
        return Rate(count / (time.perf_counter() - started), count / (time.process_time() - cpu))

    return rate(call), rate(floor)


def measure(server: tuple[subprocess.Popen[bytes], int], model: str, body: bytes, clients: int,
            seconds: float, root: str) -> Row:
    proc, port = server
    for _ in range(3):  # warm-up: the first calls of a model are slow (MobileNetV2: seconds)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", f"/v1/models/{model}:predict", body)
        conn.getresponse().read()
        conn.close()
    over_wrk(port, model, body, clients, 1, root)
    started = time.perf_counter()
    used = cpu_seconds(proc.pid)
    result = over_wrk(port, model, body, clients, seconds, root)
    used = cpu_seconds(proc.pid) - used
    if result is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    p50, p99, _, rps = result
    served = rps * (time.perf_counter() - started)
    return Row(rps, p50, p99, used / served * 1e6 if served else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--keep-log", metavar="FILE", help="copy the servers' stderr here")
    parser.add_argument("--no-image", action="store_true", help="skip the 1 MiB MobileNetV2 case")
    args = parser.parse_args()
    ensure_fastapi()
    rng = np.random.default_rng(0)
    image = not args.no_image

    def body(key: str, value: np.ndarray) -> bytes:
        return json.dumps({"inputs": {key: value.tolist()}}).encode()

    cases = [  # (label, model, body, clients, our servers to measure)
        ("tiny b1 c1", "tiny", body("x", np.float32([2.0])), 1, ("ours",)),
        ("tiny b1 c16", "tiny", body("x", np.float32([2.0])), 16, ("ours", "ours+batching")),
        ("mlp b1 c16", "mlp", body("pixels", rng.random((1, 784), dtype=np.float32)), 16,
         ("ours", "ours+batching")),
    ]
    if image:
        cases.append(("image 1MiB c1", "image",
                      body("image", rng.random((1, 224, 224, 3), dtype=np.float32)), 1, ("ours",)))
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryDirectory() as root:
        paths = build_models(root, image)
        config = os.path.join(root, "models.config")
        with open(config, "w") as handle:
            handle.write("model_config_list {\n" + "".join(
                f'  config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}\n'
                for n, p in paths.items()) + "}\n")
        from tfserve_magic.serving.batching.parameters import NOTEBOOK_DEFAULTS

        batching = os.path.join(root, "batching.config")
        with open(batching, "w") as handle:
            handle.write(NOTEBOOK_DEFAULTS.to_text())
        ours = [sys.executable, "-m", "tfserve_magic.serving", "--rest_api_port=0", "--port=0",
                f"--model_config_file={config}"]
        commands = {
            "ours": ours,
            "ours+batching": [*ours, "--enable_batching", f"--batching_parameters_file={batching}"],
            "fastapi": [sys.executable, os.path.join(HERE, "peer_fastapi.py"),
                        *(f"{n}={p}" for n, p in paths.items())],
            "ceiling": [sys.executable, os.path.join(HERE, "ceiling.py")],
        }
        log = open(os.path.join(root, "servers.log"), "wb")  # noqa: SIM115 (closed below)
        servers = {name: start(command, env, log) for name, command in commands.items()}
        try:
            for name in ("ours", "ours+batching"):
                for model in paths:
                    wait_available(servers[name][1], model)
            table = []
            for label, model, data, clients, mine in cases:
                calls, floor = in_process(paths[model], data, args.seconds)
                seconds = args.seconds * (3 if model == "image" else 1)  # ~0.1 s per request
                rows = {name: measure(servers[name], model, data, clients, seconds, root)
                        for name in (*mine, "fastapi", "ceiling")}
                table.append((label, calls, floor, rows))
            report(table)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
            log.close()
            if args.keep_log:
                shutil.copy(os.path.join(root, "servers.log"), args.keep_log)


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference else "n/a"


def report(table: list[tuple[str, Rate, Rate, dict[str, Row]]]) -> None:
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end;"
          " server on core 0, wrk on core 1")
    print("Measured req/s (and latency) depend on how much of core 0 the server got; CPU us per "
          "request does not, so ratios are given for both: req/s | per-core capacity (1e6/CPU us).")
    header = ("| workload | server | req/s | p50 ms | p99/p50 | CPU us/req | x FastAPI |"
              " x ceiling | x in-process call | x in-process orjson floor |")
    print(header)
    print("|" + "---|" * 10)
    for label, calls, floor, rows in table:
        fastapi, ceiling = rows["fastapi"], rows["ceiling"]
        for name, row in rows.items():
            if not row.rps or not row.p50:
                print(f"| {label} | {name} | no answers | | | | | | | |")
                continue
            print(f"| {label} | {name} | {row.rps:.0f} | {row.p50 * 1e3:.2f} | "
                  f"{row.p99 / row.p50:.1f} | {row.cpu_us:.0f} | "
                  f"{ratio(row.rps, fastapi.rps)} / {ratio(row.capacity, fastapi.capacity)} | "
                  f"{ratio(row.rps, ceiling.rps)} / {ratio(row.capacity, ceiling.capacity)} | "
                  f"{ratio(row.rps, calls.wall)} / {ratio(row.capacity, calls.cpu)} | "
                  f"{ratio(row.rps, floor.wall)} / {ratio(row.capacity, floor.cpu)} |")
    print()
    by = {label: rows for label, _, _, rows in table}
    floors = {label: floor for label, _, floor, _ in table}

    def versus(label: str, ours: str, other: str) -> tuple[float, float]:
        mine, theirs = by[label][ours], by[label][other]
        return mine.rps / theirs.rps, mine.capacity / theirs.capacity

    targets = [
        ("tiny b1 c1 >= 1.1x FastAPI", versus("tiny b1 c1", "ours", "fastapi"), 1.1),
        ("tiny b1 c16 batching >= 2x FastAPI", versus("tiny b1 c16", "ours+batching", "fastapi"), 2.0),
        ("tiny b1 c16 batching >= 0.8x ceiling",
         versus("tiny b1 c16", "ours+batching", "ceiling"), 0.8),
        ("mlp b1 c16 batching >= 2x FastAPI", versus("mlp b1 c16", "ours+batching", "fastapi"), 2.0),
    ]
    if "image 1MiB c1" in by and by["image 1MiB c1"]["ours"].rps:
        image, floor = by["image 1MiB c1"]["ours"], floors["image 1MiB c1"]
        targets.append(("image 1MiB >= 0.9x in-process orjson floor",
                        (image.rps / floor.wall, image.capacity / floor.cpu), 0.9))
    print("Targets (req/s ratio / per-core capacity ratio):")
    for name, (measured, capacity), goal in targets:
        verdict = "met" if min(measured, capacity) >= goal else (
            "met on capacity only" if capacity >= goal else
            "met on req/s only" if measured >= goal else "NOT met")
        print(f"- {name}: {measured:.2f} / {capacity:.2f} -> {verdict}")
    for label in ("tiny b1 c16", "mlp b1 c16"):
        worst = max(r.p99 / r.p50 for n, r in by[label].items() if n.startswith("ours"))
        print(f"- {label} p99 <= 3x p50 (ours, worst): {worst:.1f} -> "
              f"{'met' if worst <= 3 else 'NOT met'}")

if __name__ == "__main__":
    main()
