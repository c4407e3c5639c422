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
from rest_overhead import build_models, over_grpc, over_wrk, wait_available

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


GRPC_PORTS: dict[int, int] = {}  # our servers' pid -> gRPC port (from the handshake)


def start(command: list[str], env: dict[str, str],
          log: Any) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server that prints its port (or our JSON handshake) as its first line."""
    proc = subprocess.Popen(pinned(command), stdout=subprocess.PIPE, stderr=log, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{command[:3]} exited before announcing its port")
    text = line.decode().strip()
    if not text.startswith("{"):
        return proc, int(text)
    handshake = json.loads(text)
    if handshake.get("grpc_port"):
        GRPC_PORTS[proc.pid] = int(handshake["grpc_port"])
    return proc, int(handshake["rest_api_port"])


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


def measure_grpc(server: tuple[subprocess.Popen[bytes], int], model: str, body: bytes,
                 clients: int, seconds: float) -> Row:
    """The same request over gRPC: TF Serving's official stub, the inputs packed in
    ``tensor_content`` by ``tf.make_tensor_proto``, clients on core 1 (this process)."""
    proc, _ = server
    target = f"127.0.0.1:{GRPC_PORTS[proc.pid]}"
    inputs = {k: np.asarray(v, np.float32) for k, v in orjson.loads(body)["inputs"].items()}
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    over_grpc(target, model, inputs, clients, 1.0)  # warm-up
    used = cpu_seconds(proc.pid)
    result = over_grpc(target, model, inputs, clients, seconds)
    used = cpu_seconds(proc.pid) - used
    p50, p99, _, rps = result.row()
    return Row(rps, p50, p99, used / len(result.latencies) * 1e6 if result.latencies else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--keep-log", metavar="FILE", help="copy the servers' stderr here")
    parser.add_argument("--no-image", action="store_true", help="skip the 1 MiB MobileNetV2 case")
    parser.add_argument("--pairs", type=int, default=5,
                        help="batching on/off measured this many times, back to back, for its "
                        "cost (the median of the pairs' ratios: this machine's speed drifts by "
                        "a fifth from minute to minute, a pair's two halves hardly)")
    parser.add_argument("--no-startup", action="store_true",
                        help="skip start times, idle memory and the notebooks' peak memory")
    parser.add_argument("--no-notebooks", action="store_true",
                        help="skip running the teaching notebooks for their peak memory")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)  # this checkout, here as in the servers and kernels it starts
    ensure_fastapi()
    rng = np.random.default_rng(0)
    image = not args.no_image

    def body(key: str, value: np.ndarray) -> bytes:
        return json.dumps({"inputs": {key: value.tolist()}}).encode()

    both = ("ours", "ours+batching")
    mlp1 = body("pixels", rng.random((1, 784), dtype=np.float32))
    cases = [  # (label, model, body, clients, our servers to measure; "ours gRPC": same server)
        ("tiny b1 c1", "tiny", body("x", np.float32([2.0])), 1, both),
        ("tiny b1 c16", "tiny", body("x", np.float32([2.0])), 16, both),
        ("mlp b1 c1", "mlp", mlp1, 1, (*both, "ours gRPC")),
        # 32 rows: a full batch (the notebook defaults' max_batch_size)
        ("mlp b32 c1", "mlp", body("pixels", rng.random((32, 784), dtype=np.float32)), 1,
         (*both, "ours gRPC")),
        ("mlp b1 c16", "mlp", mlp1, 16, both),
    ]
    if image:
        cases.append(("image 1MiB c1", "image",
                      body("image", rng.random((1, 224, 224, 3), dtype=np.float32)), 1,
                      (*both, "ours gRPC")))
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
            costs: dict[str, dict[str, list[float]]] = {}
            for label, model, data, clients, mine in cases:
                calls, floor = in_process(paths[model], data, args.seconds)
                seconds = args.seconds * (3 if model == "image" else 1)  # ~0.1 s per request
                rows = {name: measure_grpc(servers["ours"], model, data, clients, seconds)
                        if name == "ours gRPC" else
                        measure(servers[name], model, data, clients, seconds, root)
                        for name in (*mine, "fastapi", "ceiling")}
                table.append((label, calls, floor, rows))
                costs[label] = {name: [rows[name].cpu_us] for name in both}
                for turn in range(args.pairs - 1):  # off first, then on first, ...
                    for name in (both if turn % 2 else both[::-1]):
                        costs[label][name].append(measure(servers[name], model, data, clients,
                                                          seconds, root).cpu_us)
            report(table, costs)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
            log.close()
            if args.keep_log:
                shutil.copy(os.path.join(root, "servers.log"), args.keep_log)
        if not args.no_startup:
            startup_targets(paths["tiny"], not args.no_notebooks)


def startup_targets(tiny: str, notebooks: bool) -> None:
    """``startup.py``'s targets in the same run, from a process free to use every core."""
    import startup

    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    os.environ["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    starts = startup.measure_starts(tiny)
    floors = startup.measure_floors()
    peaks = [startup.notebook_peak(path) for path in
             sorted(startup.ROOT.joinpath("notebooks").glob("*.ipynb"))] if notebooks else []
    print()
    startup.report(starts, floors, peaks)


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference else "n/a"


def report(table: list[tuple[str, Rate, Rate, dict[str, Row]]],
           costs: dict[str, dict[str, list[float]]]) -> None:
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
    call_rates = {label: call for label, call, _, _ in table}

    def cost(label: str, mine: str, other: str) -> float | None:
        rows = by.get(label, {})
        if mine not in rows or other not in rows or not rows[other].cpu_us:
            return None
        return rows[mine].cpu_us / rows[other].cpu_us

    pairs = min((len(v) for c in costs.values() for v in c.values()), default=1)
    print("Batching's cost: server CPU per request, batching on / off (same run; the median of "
          f"{pairs} pairs measured back to back, each pair's ratio in brackets):")
    goals = [(label, 1.10, "<= 1.10") for label in
             ("tiny b1 c1", "mlp b1 c1", "mlp b32 c1 (a full batch)", "image 1MiB c1")]
    goals += [("tiny b1 c16", 1.0, "< 1"), ("mlp b1 c16", 1 / 1.3, "<= 1/1.3 (1.3x less)")]
    for label, goal, text in goals:
        samples = costs.get(label.split(" (")[0])
        if samples is None or not min(samples["ours"]):
            continue
        on, off = samples["ours+batching"], samples["ours"]
        each = [a / b for a, b in zip(on, off, strict=True)]
        on_off = float(np.median(each))
        verdict = "met" if on_off <= goal else "NOT met"
        print(f"- {label}: {on_off:.2f} [{' '.join(f'{r:.2f}' for r in each)}] "
              f"(target {text}; CPU us on {np.median(on):.0f}, off {np.median(off):.0f}) "
              f"-> {verdict}")
    print("gRPC (official stub, tensor_content) against REST JSON, same server, same run: CPU per "
          "request gRPC / REST, and each as a multiple of the in-process model call's CPU "
          "(the floor neither surface can go under):")
    for label in ("mlp b1 c1", "mlp b32 c1", "image 1MiB c1"):
        measured = cost(label, "ours gRPC", "ours")
        if measured is not None:
            floor_us = 1e6 / call_rates[label].cpu if call_rates[label].cpu else 0.0
            grpc_us, rest_us = by[label]["ours gRPC"].cpu_us, by[label]["ours"].cpu_us
            print(f"- {label}: gRPC {grpc_us:.0f} us, REST {rest_us:.0f} us -> {measured:.2f}; "
                  f"floor {floor_us:.0f} us (gRPC {grpc_us / floor_us:.1f}x, REST "
                  f"{rest_us / floor_us:.1f}x)" if floor_us else "")

if __name__ == "__main__":
    main()
