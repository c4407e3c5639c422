"""A large request's memory, measured on a real server subprocess (issue 13 item 3): the peak
resident set it adds is a small multiple of its body, and it is handed back afterwards."""

from __future__ import annotations

from pathlib import Path

from server_process import start_server, wait_for

MB = 1 << 20


def resident(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def assert_handed_back(pid: int, before: int, limit: int) -> None:
    kept: list[int] = []

    def handed_back() -> bool:
        kept.append(resident(pid, "VmRSS") - before)
        return kept[-1] < limit

    try:
        wait_for(handed_back, timeout=30, what="the server handing the memory back")
    except TimeoutError:
        raise AssertionError(f"still +{kept[-1] / MB:.0f} MiB, more than "
                             f"{limit / MB:.0f} MiB") from None


def test_peak_memory_of_a_large_request_is_a_small_multiple_of_its_body(
        tmp_path: Path, half_plus_two: Path) -> None:
    server = start_server("--model_name=half_plus_two", f"--model_base_path={half_plus_two}",
                          log_dir=tmp_path)
    try:
        server.wait_state("half_plus_two")
        assert server.post("/v1/models/half_plus_two:predict", {"instances": [1.0]}).status == 200
        # The costliest JSON per byte: the shortest float literals ("1.0, " is five bytes, each
        # becomes a Python float and then an array element).
        count = 16 * MB // 5
        body = ("{\"instances\": [" + ", ".join(["1.0"] * count) + "]}").encode()
        for _ in range(2):
            before = resident(server.pid, "VmRSS")
            with open(f"/proc/{server.pid}/clear_refs", "w", encoding="ascii") as refs:
                refs.write("5")  # resets VmHWM (the peak) to the current resident set
            response = server.post("/v1/models/half_plus_two:predict", body, timeout=300)
            assert response.status == 200
            assert response.body.startswith(b'{"predictions":[2.5,2.5,')
            peak = resident(server.pid, "VmHWM") - before
            assert peak < 16 * len(body), f"peak +{peak / MB:.0f} MiB for a {len(body) / MB:.0f} MiB body"
            # Handed back, not kept: once the answer has left, the freed heap goes to the OS.
            assert_handed_back(server.pid, before, limit=3 * len(body))
    finally:
        server.stop()
