"""Process supervision on real child processes: SIGTERM, SIGCONT for a stopped server, the SIGKILL
fallback for one that ignores SIGTERM, and never a signal to a process that is not ours."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tfserve_magic.lifecycle import processes
from tfserve_magic.pids import pid_alive

_WAIT_ON_STDIN = "import signal, sys\n{setup}\nprint('ready', flush=True)\nsys.stdin.read()\n"


def _child(setup: str = "", *argv: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", _WAIT_ON_STDIN.format(setup=setup), *argv],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"  # handlers are set
    return proc


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        processes.forget(proc.pid)


def test_terminate_stops_a_child_with_sigterm(children) -> None:
    proc = _child()
    children.append(proc)
    processes.track(proc)
    processes.terminate(proc.pid)
    assert proc.returncode == -signal.SIGTERM


def test_a_stopped_child_still_sees_its_sigterm(children) -> None:
    proc = _child()
    children.append(proc)
    processes.track(proc)
    proc.send_signal(signal.SIGSTOP)
    processes.terminate(proc.pid, grace=30)
    assert proc.returncode == -signal.SIGTERM  # SIGCONT let it act on SIGTERM, no SIGKILL needed


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(children) -> None:
    proc = _child("signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    children.append(proc)
    processes.track(proc)
    processes.terminate(proc.pid, grace=0.5)
    assert proc.returncode == -signal.SIGKILL


def test_an_untracked_process_that_is_no_model_server_is_never_signalled(children) -> None:
    proc = _child()
    children.append(proc)
    assert processes.is_model_server(proc.pid) is False
    processes.terminate(proc.pid, grace=0.5)
    assert proc.poll() is None and pid_alive(proc.pid)


def test_an_untracked_model_server_is_signalled(children) -> None:
    # A server started by another kernel: recognised by its command line, not by being ours.
    proc = _child("", "-m", "tfserve_magic.serving")
    children.append(proc)
    assert processes.is_model_server(proc.pid) is True
    processes.terminate(proc.pid)
    assert processes.wait_gone(proc.pid, 10) and proc.wait(10) == -signal.SIGTERM


def test_wait_gone_of_a_finished_process(children) -> None:
    proc = _child()
    children.append(proc)
    proc.kill()
    proc.wait(10)
    assert processes.wait_gone(proc.pid, 0.1) is True
    assert processes.is_model_server(proc.pid) is False
