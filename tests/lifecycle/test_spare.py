"""The warm spare on real processes: after a first start, the next start adopts the spare (its
pid serves the model, with the new start's secret and log) and another spare takes its place;
a kernel that exits, or is killed, leaves no spare behind; ``TFServeMagics.warm_spare`` turns
it off and ``%tfserve list`` shows its memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import wait_for

from tfserve_magic.lifecycle import launcher, spare
from tfserve_magic.pids import pid_alive


@pytest.fixture
def no_spare_after() -> Iterator[None]:
    yield
    spare.discard()


def _sum(url: str) -> list[float]:
    body = json.dumps({"inputs": {"a": [1.0, 2.0], "b": [3.0, 4.0]}}).encode()
    with urllib.request.urlopen(urllib.request.Request(
            f"{url}/v1/models/multi_io:predict", data=body), timeout=60) as answer:
        return list(json.loads(answer.read())["outputs"]["sum"])


def test_a_second_start_adopts_the_spare(runtime_dir: Path, half_plus_two: Path, multi_io: Path,
                                         no_spare_after: None) -> None:
    assert spare.current() is None  # none before a first start
    first = launcher.launch(launcher.ServerSpec(model_dir=str(half_plus_two), spare=True))
    assert isinstance(first, launcher.Launched), first
    warm = spare.current()
    assert warm is not None and warm.pid != first.handle.record.pid

    second = launcher.launch(launcher.ServerSpec(model_dir=str(multi_io), spare=True))
    assert isinstance(second, launcher.Launched), second
    handle = second.handle
    assert handle.record.pid == warm.pid  # the spare became the server
    assert _sum(handle.url) == [4.0, 6.0]
    described = handle.client.server_info()  # the management API knows the new secret
    assert described is not None and described.pid == warm.pid
    assert "Serving REST on" in Path(handle.record.log_file).read_text()  # its log, not the spare's
    following = spare.current()  # bounded to one, and there is one again for the next start
    assert following is not None and following.pid not in (warm.pid, first.handle.record.pid)

    launcher.stop(handle.name)
    assert wait_for(lambda: not pid_alive(warm.pid), 30, what="the adopted spare to stop")


_KERNEL = """
import sys
from tfserve_magic.lifecycle import launcher, spare
result = launcher.launch(launcher.ServerSpec(model_dir=sys.argv[1], spare=True))
assert isinstance(result, launcher.Launched), result
print(spare.current().pid, result.handle.record.pid, flush=True)
if sys.argv[2] == "killed":
    sys.stdin.read()  # until it is killed
"""


@pytest.mark.parametrize("end", ["exits", "killed"])
def test_a_kernel_that_ends_leaves_no_spare(runtime_dir: Path, half_plus_two: Path,
                                            end: str) -> None:
    kernel = subprocess.Popen([sys.executable, "-c", _KERNEL, str(half_plus_two), end],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TFSERVE_MAGIC_RUNTIME_DIR": str(runtime_dir)})
    assert kernel.stdout is not None
    line = kernel.stdout.readline()
    assert line, "the kernel script failed"
    spare_pid, server_pid = (int(p) for p in line.split())
    assert pid_alive(spare_pid)
    if end == "killed":
        kernel.send_signal(signal.SIGKILL)  # no atexit: the spare must notice by itself
    assert kernel.wait(120) in (0, -signal.SIGKILL)
    wait_for(lambda: not pid_alive(spare_pid), 120, what="the spare to go with its kernel")
    wait_for(lambda: not pid_alive(server_pid), 120, what="the server to go with its kernel")


def test_the_setting_turns_the_spare_off_and_list_shows_its_memory(
        ip, capsys, half_plus_two: Path, multi_io: Path, no_spare_after: None) -> None:
    try:
        ip.run_line_magic("config", "TFServeMagics.warm_spare = True")
        ip.run_line_magic("tfserve", f"start {half_plus_two}")
        warm = spare.current()
        assert warm is not None
        capsys.readouterr()
        ip.run_line_magic("tfserve", "list")
        listed = capsys.readouterr().out
        assert f"Warm spare (the next start adopts it): pid {warm.pid}, " in listed
        assert " MB resident, " in listed

        ip.run_line_magic("config", "TFServeMagics.warm_spare = False")
        wait_for(lambda: not pid_alive(warm.pid), 60, what="the spare to stop")
        ip.run_line_magic("tfserve", f"start {multi_io}")
        started = launcher.find("multi_io")
        assert started.record.pid != warm.pid
        assert spare.current() is None
        capsys.readouterr()
        ip.run_line_magic("tfserve", "list")
        assert "Warm spare" not in capsys.readouterr().out
    finally:
        ip.run_line_magic("config", "TFServeMagics.warm_spare = False")
