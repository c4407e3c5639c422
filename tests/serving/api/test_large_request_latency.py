"""A legal large request does not stall other clients (issue 25 item 3): while a 40 MB JSON
predict is received, parsed (in slices: ``json_slices``, ``codec._as_array``), run and written
back (in slices: ``responses``), a small client's predicts keep being answered. Judged by
the large request's own time, not by the clock alone, so a loaded CI box keeps it: the longest
a small predict waits is under a second, or an eighth of the large request's time on a box
slow enough to need it (before: 9 s of 18 s, or 3.7 s of 18.7 s, on a loaded 2-core box; now
0.5-0.8 s there, 1.2 s once for the gzip body). The large request's peak memory is measured
too (the README states it)."""

from __future__ import annotations

import gzip
import http.client
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import RunningServer, start_server

PREDICT = "/v1/models/half_plus_two:predict"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, half_plus_two: Path
           ) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("large_request")
    running = start_server(f"--model_base_path={half_plus_two}", "--model_name=half_plus_two",
                           "--file_system_poll_wait_seconds=0", log_dir=root)
    try:
        running.wait_state("half_plus_two")
        yield running
    finally:
        running.stop()


def memory_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


# gzip: 58 KB inflating to 40 MB; named: the columnar form with the input's name (sliced too)
@pytest.mark.parametrize("encoding", ["plain", "gzip", "named"])
def test_small_predicts_are_answered_while_a_40_mb_body_is_served(
        server: RunningServer, encoding: str) -> None:
    count = 8_000_000
    values = "[" + ", ".join(["1.0"] * count) + "]"
    body = (f'{{"inputs": {{"x": {values}}}}}' if encoding == "named"
            else f'{{"instances": {values}}}').encode()
    assert len(body) >= 40_000_000
    headers = {}
    if encoding == "gzip":
        body, headers = gzip.compress(body), {"Content-Encoding": "gzip"}
    waits: list[float] = []
    large_done = threading.Event()

    def small_client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        try:
            while not large_done.is_set():
                started = time.monotonic()
                connection.request("POST", PREDICT, body=b'{"instances": [1.0]}')
                answer = connection.getresponse()
                assert (answer.status, answer.read()) == (200, b'{"predictions":[2.5]}')
                waits.append(time.monotonic() - started)
        finally:
            connection.close()

    before = memory_mb(server.pid, "VmHWM")
    small = threading.Thread(target=small_client)
    small.start()
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    try:
        connection.request("POST", PREDICT, body=body, headers=headers)
        answer = connection.getresponse()
        status, answered = answer.status, answer.read()
    finally:
        connection.close()
        large = time.monotonic() - started
        large_done.set()
        small.join(120)
    del body
    assert status == 200
    key = b'{"outputs":' if encoding == "named" else b'{"predictions":'  # TF Serving's answers
    assert answered.startswith(key + b"[2.5,2.5,") and answered.count(b",") == count - 1
    grown = memory_mb(server.pid, "VmHWM") - before
    longest = max(waits)
    print(f"large request {large:.1f} s, peak RSS +{grown:.0f} MB; {len(waits)} small "
          f"predicts meanwhile, the longest {longest:.2f} s")
    assert len(waits) >= 20
    assert longest < max(1.0, large / 8), (longest, large)
