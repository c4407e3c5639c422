"""Supervising model-server child processes: track them, signal them safely, reap them.

Stop is SIGTERM (plus SIGCONT, so a stopped process sees it), a wait with a deadline, then
SIGKILL. A recorded pid is only ever signalled while it still runs a tfserve_magic server: after
a crash the number may belong to an unrelated program. No TensorFlow, no Jupyter imports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

from tfserve_magic.pids import cmdline, pid_alive
from tfserve_magic.waits import Deadline, wait_until

__all__ = ["forget", "is_model_server", "terminate", "track", "wait_gone"]

_children: dict[int, subprocess.Popen[bytes]] = {}


def track(proc: subprocess.Popen[bytes]) -> None:
    """Remember a child we started, so it is always ours to signal, and reap it the moment it
    exits, however it ends (killed from outside, crashed): no ``<defunct>`` entry stays."""
    _children[proc.pid] = proc
    threading.Thread(target=_reap, args=(proc,), name=f"tfserve-reap-{proc.pid}",
                     daemon=True).start()


def _reap(proc: subprocess.Popen[bytes]) -> None:
    # poll(), not a blocking wait(): that would hold Popen's wait lock for the child's whole
    # life and make every timed wait of terminate() time out.
    wait_until(lambda: proc.poll() is not None,
               Deadline(float("inf"), f"model server {proc.pid} to exit"), interval=0.5)
    # Once reaped, the pid may be handed to an unrelated process: it is no longer ours.
    if _children.get(proc.pid) is proc:
        _children.pop(proc.pid, None)


def forget(pid: int) -> None:
    _children.pop(pid, None)


def wait_gone(pid: int, timeout: float) -> bool:
    """Whether ``pid`` exited within ``timeout`` seconds (our own children are also reaped)."""
    child = _children.get(pid)
    if child is not None:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    gone = wait_until(lambda: not pid_alive(pid), Deadline.after(timeout, f"process {pid} to exit"),
                      interval=0.05)
    return bool(gone)


def is_model_server(pid: int) -> bool:
    """Whether ``pid`` still runs a tfserve_magic server: a recorded pid may have been reused by
    an unrelated process after the server died, and that one must never be signalled."""
    if not os.path.isdir("/proc/self"):
        return True  # no /proc to ask (not Linux): trust the record
    argv = cmdline(pid)
    if argv is None:
        return False  # gone
    return any(part.endswith((b"tfserve-server", b"tfserve_magic.serving")) for part in argv)


def terminate(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL; reap our own children. Only ever signals a model server."""
    if pid not in _children and not is_model_server(pid):
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not pid_alive(pid):
            break
        try:
            os.kill(pid, sig)
            if sig == signal.SIGTERM:
                os.kill(pid, signal.SIGCONT)  # a stopped (SIGSTOP) server must see its SIGTERM
        except ProcessLookupError:
            break
        if wait_gone(pid, wait):
            break
    child = _children.pop(pid, None)
    if child is not None and child.poll() is None:
        child.wait(5)


