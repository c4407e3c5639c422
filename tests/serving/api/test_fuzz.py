"""Seeded fuzzing of a real server subprocess with malformed requests (issue 13): hundreds of
hostile bodies and paths across every class found, never one answer of 500, the server answering
a good request correctly after every batch, resident memory growth bounded, and log lines that
no request can forge."""

from __future__ import annotations

import http.client
import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from server_process import RunningServer, start_server

SEED = 13
BATCHES = 6
PER_BATCH = 60  # 360 requests in all
PREDICT = "/v1/models/half_plus_two:predict"
Case = tuple[str, str, bytes | None]  # method, path, body


def deep(rng: random.Random) -> Case:
    depth = rng.choice([65, 200, 999, 1023, 1024, 1025, rng.randrange(60, 20_000)])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}"), (b'[{"b":', b"}]")])
    leaf = rng.choice([b"1.0", b"NaN", b'"s"', b"[]"])
    body = b'{"instances": ' + opener * depth + leaf + closer * depth + b"}"
    return "POST", PREDICT, body if rng.random() < 0.8 else body[: rng.randrange(len(body))]


def big_number(rng: random.Random) -> Case:
    digits = str(rng.randrange(1, 10)) + "".join(rng.choice("0123456789")
                                                  for _ in range(rng.choice([20, 400, 4300, 6000])))
    if rng.random() < 0.3:
        return "GET", f"/v1/models/half_plus_two/versions/{digits}", None
    wrapper = rng.choice(['{"instances": [%s]}', '{"inputs": [1.0, %s]}', '{"instances": [NaN, %s]}',
                          '{"inputs": {"x": [%s.5e3]}}', '{"signature_name": %s, "instances": [1]}'])
    return "POST", PREDICT, (wrapper % digits).encode()


def surrogate(rng: random.Random) -> Case:
    text = rng.choice([b"\\udfff", b"\\ud800", b"\\ud800x", b"\xed\xbf\xbf", b"\xff\xfe", b"\\u00"])
    where = rng.choice([b'{"signature_name": "%s", "instances": [1.0]}',
                        b'{"instances": ["%s"]}', b'{"inputs": {"%s": [1.0]}}',
                        b'{"instances": [NaN], "signature_name": "%s"}'])
    return "POST", PREDICT, where.replace(b"%s", text)


def garbage(rng: random.Random) -> Case:
    body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    return rng.choice(["POST", "PUT", "DELETE", "PATCH"]), PREDICT, body


def wrong_shape(rng: random.Random) -> Case:
    body = rng.choice([
        {"instances": [[1.0], [1.0, 2.0]]}, {"instances": [[[1.0]], [2.0]]}, {"inputs": [[1, [2]]]},
        {"instances": [{"x": 1.0}, 2.0]}, {"instances": [True, 1.0]}, {"instances": []},
        {"instances": [None]}, {"inputs": {"y": [1.0]}}, {"instances": [{"b64": "@@"}]},
        {"instances": 1.0}, {"inputs": {"x": {"b64": "AAAA"}}}, {"instances": [1.0], "inputs": [1.0]},
        {"signature_name": 7, "instances": [1.0]}, {"signature_name": "nope", "instances": [1.0]},
        {"examples": [{"x": [[1.0]]}]}, [], "text", {"instances": [16777217, 1.0]},
        {"instances": [1e39]}, {"inputs": [-1e400]},
    ])
    verb = rng.choice(["predict", "predict", "classify", "regress"])
    return "POST", f"/v1/models/half_plus_two:{verb}", json.dumps(body).encode()


def hostile_path(rng: random.Random) -> Case:
    name = rng.choice(["%0aFAKE%20LOG%20LINE", "%0d%0aFAKE%20LOG%20LINE", "%1b%5b31m", "%00",
                       "%ED%BF%BF", "%ff", "a" * 3000, "..%2f..%2fetc", "%u2028"])
    suffix = rng.choice([":predict", "/metadata", "", "/labels/%0aFAKE%20LOG%20LINE/metadata",
                         "/versions/%C2%B2"])
    method = "POST" if suffix == ":predict" else "GET"
    return method, f"/v1/models/{name}{suffix}", b'{"instances": [1.0]}' if method == "POST" else None


CLASSES: list[Callable[[random.Random], Case]] = [deep, big_number, surrogate, garbage, wrong_shape,
                                                  hostile_path]


def send(server: RunningServer, case: Case) -> tuple[int, bytes]:
    method, path, body = case
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body or b"")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def resident(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def assert_good_answer(server: RunningServer) -> None:
    status, body = send(server, ("POST", PREDICT, b'{"instances": [2.0, 6.0]}'))
    assert (status, json.loads(body)) == (200, {"predictions": [3.0, 5.0]})


def test_malformed_requests_never_get_a_500(tmp_path: Path, half_plus_two: Path) -> None:
    server = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                          log_dir=tmp_path)
    rng = random.Random(SEED)
    statuses: Counter[int] = Counter()
    per_class: Counter[str] = Counter()
    try:
        server.wait_state("half_plus_two")
        assert_good_answer(server)
        baseline = 0
        for batch in range(BATCHES):
            for _ in range(PER_BATCH):
                make = rng.choice(CLASSES)
                case = make(rng)
                status, body = send(server, case)
                statuses[status] += 1
                per_class[make.__name__] += 1
                assert status < 500, (case[0], case[1][:200], (case[2] or b"")[:200], status, body)
                assert status in (400, 403, 404, 413) or status == 200, (status, body)
                if body:
                    assert "error" in json.loads(body) or status == 200, body
            assert_good_answer(server)
            if batch == 0:
                baseline = resident(server.pid)  # after the first batch: warm caches
        growth = resident(server.pid) - baseline
        assert growth < 64 << 20, f"resident set grew by {growth >> 20} MiB"
        assert sum(statuses.values()) >= 300 and len(per_class) == len(CLASSES)
        assert statuses[400] > 200, statuses
        log = server.log()
        assert not any(line.startswith("FAKE") for line in log.splitlines())
        assert "Traceback" not in log
    finally:
        server.stop()
