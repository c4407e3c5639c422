"""What the operating system says about a process id: alive, its parent, its command line.

``/proc/<pid>/stat`` is read in one place (:func:`proc_stat`). Used by the server (to follow its
parent), the lifecycle (reuse and stop) and the notebook side (which Jupyter server we descend
from), so it lives outside all three. Pure standard library; no package imports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["ProcStat", "ancestors", "cmdline", "pid_alive", "proc_stat"]


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` this package reads."""

    state: str  # R, S, D, Z, T, ...
    ppid: int


def proc_stat(pid: int) -> ProcStat | None:
    """``/proc/<pid>/stat``, or None when there is no such process (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ")".
    fields = text.rsplit(")", 1)[-1].split()
    try:
        return ProcStat(state=fields[0], ppid=int(fields[1]))
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = proc_stat(pid)
    return stat is None or stat.state != "Z"  # no /proc to ask: kill(0) said it exists


def ancestors(pid: int, limit: int = 64) -> list[int]:
    """``pid``, its parent, its grandparent, ... up to (not including) init."""
    chain: list[int] = []
    while pid > 1 and len(chain) < limit:
        chain.append(pid)
        stat = proc_stat(pid)
        if stat is None:
            break
        pid = stat.ppid
    return chain


def cmdline(pid: int) -> list[bytes] | None:
    """The argv of ``pid`` from ``/proc/<pid>/cmdline``; None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().split(b"\0")
    except OSError:
        return None
