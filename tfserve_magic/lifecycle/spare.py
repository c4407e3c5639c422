"""The kernel side of the warm spare: one server process started ahead, adopted by the next start.

Every start pays TensorFlow's import in the new server process (seconds); a teacher starts and
stops servers many times in a lesson. After a first start in a kernel (never before: a kernel
that serves nothing pays nothing), :func:`ensure` starts one spare, ``python -m
tfserve_magic.serving --spare``, which imports the serving side and waits on its stdin
(``serving/process/spare.py``); :func:`take` hands it the next start's command line, secret and
log instead of spawning a process, and that start returns as soon as the model is loaded. At
most one spare per kernel; it goes with the kernel (atexit stops it; a killed kernel closes its
stdin, which ends it); ``%config TFServeMagics.warm_spare = False`` (``ServerSpec.spare``) turns
it off. A spare is only used while the kernel's environment is the one it was started with
(environment variables TensorFlow reads at import are already read), and never for a
``verbose`` start (TensorFlow's start-up messages went to the spare's own log).
No TensorFlow import.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from tfserve_magic.lifecycle import processes, registry

__all__ = ["SpareInfo", "current", "discard", "ensure", "take"]

SERVER = (sys.executable, "-m", "tfserve_magic.serving")


@dataclass(frozen=True)
class SpareInfo:
    """The spare as ``%tfserve list`` shows it."""

    pid: int
    rss_mb: float  # resident memory (TensorFlow's library pages shared with other processes)
    private_mb: float  # what it alone holds (anonymous pages): the memory it really costs


@dataclass
class _Spare:
    proc: subprocess.Popen[bytes]
    environ: dict[str, str]


class _Slot:
    """The one spare of this process."""

    spare: _Spare | None = None


_lock = threading.Lock()
_slot = _Slot()


def ensure() -> None:
    """Start the spare unless one is running (bounded to one per kernel)."""
    with _lock:
        if _slot.spare is not None and _slot.spare.proc.poll() is None:
            return
        environ = dict(os.environ)
        with open(registry.registry_dir() / f".spare-{os.getpid()}.log", "wb") as log:
            proc = subprocess.Popen([*SERVER, "--spare"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                                    close_fds=True, env=environ)
        processes.track(proc)
        _slot.spare = _Spare(proc, environ)
        atexit.unregister(discard)
        atexit.register(discard)


def take(argv: Sequence[str], secret: str, log_path: str) -> subprocess.Popen[bytes] | None:
    """The spare, turned into the server ``argv`` describes (its handshake is next on its
    stdout), or None when there is none to use (then start a process as usual)."""
    with _lock:
        spare, _slot.spare = _slot.spare, None
    if spare is None:
        return None
    if (spare.proc.poll() is not None or spare.environ != dict(os.environ)
            or tuple(argv[:3]) != SERVER):
        _stop(spare)
        return None
    open(log_path, "wb").close()  # the spare appends to a fresh log
    orders = {"argv": list(argv[3:]), "secret": secret, "log": log_path, "cwd": os.getcwd()}
    assert spare.proc.stdin is not None
    try:
        spare.proc.stdin.write(json.dumps(orders).encode() + b"\n")
        spare.proc.stdin.close()
    except OSError:  # it died between the poll and the write
        _stop(spare)
        return None
    return spare.proc


def current() -> SpareInfo | None:
    """The running spare, with its memory, or None."""
    with _lock:
        spare = _slot.spare
    if spare is None or spare.proc.poll() is not None:
        return None
    pid = spare.proc.pid
    return SpareInfo(pid, _status_kb(pid, "VmRSS") / 1024,
                     (_status_kb(pid, "RssAnon")) / 1024)


def discard() -> None:
    """Stop the spare (at exit; when the setting is turned off)."""
    with _lock:
        spare, _slot.spare = _slot.spare, None
    if spare is not None:
        _stop(spare)


def _stop(spare: _Spare) -> None:
    if spare.proc.stdin is not None:
        with contextlib.suppress(OSError):
            spare.proc.stdin.close()  # end of file: a waiting spare exits by itself
    processes.terminate(spare.proc.pid)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(registry.registry_dir() / f".spare-{os.getpid()}.log")


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
