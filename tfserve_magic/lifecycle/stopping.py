"""Stopping servers: one by name, every recorded one, and at exit the ones this process owns.

A server started without ``detach`` is owned by the process that started it and stops with it
(atexit here; ``--exit_with_parent_pid`` covers a kernel that is killed). Another live
kernel's server is that notebook's: stopping it takes ``force`` (the magic's ``--force``, the
lab panel's confirmation). A remote server (``%tfserve connect``) is never ours to stop. No
TensorFlow import.
"""

from __future__ import annotations

import atexit
import os
import threading

from tfserve_magic.lifecycle import processes, registry
from tfserve_magic.lifecycle.refusals import (
    AmbiguousName,
    NotOurServer,
    OwnedElsewhere,
    UnknownServer,
)

__all__ = ["disown", "own", "stop"]

_owned: set[str] = set()
_lock = threading.Lock()


def own(name: str) -> None:
    """Stop ``name`` when this process exits (unless it was stopped or taken over since)."""
    with _lock:
        atexit.unregister(_stop_owned)  # registered once, however many servers start
        atexit.register(_stop_owned)
        _owned.add(name)


def disown(name: str) -> None:
    """``name`` is no longer ours to stop at exit (it was stopped, or never came up)."""
    _owned.discard(name)


def _stop_owned() -> None:
    """At exit: stop the servers this process started and that are still the recorded ones (a
    name may have been stopped, or taken over by another kernel's server, since)."""
    for name in list(_owned):
        _owned.discard(name)
        record = registry.find_record(name)
        if record is not None and record.owner_pid == os.getpid():
            processes.terminate(record.pid)
            registry.remove_record(name)


def stop(name: str | None = None, *, all: bool = False, force: bool = False) -> list[str]:
    """Stop one server by name (or port), or every recorded one; returns the names stopped.

    A name means this process's own server first. A server another live kernel (notebook)
    started stops only with ``force``: without it, one is refused and ``all=True`` leaves those
    serving. Raises :class:`UnknownServer`, :class:`AmbiguousName` (no name and not exactly
    one server), :class:`NotOurServer` (a remote server) or :class:`OwnedElsewhere`."""
    if all:
        targets = [r for r in registry.read_records() if not r.remote]  # not ours: keep serving
        if not force:
            targets = [r for r in targets if not registry.owned_elsewhere(r)]
    else:
        if name is None:
            records = registry.read_records()
            mine = [r for r in records if r.owner_pid == os.getpid()]
            if len(mine or records) != 1:
                raise AmbiguousName("name the server to stop (or use all=True): "
                                 f"{[r.name for r in records] or 'none is running'}")
            targets = mine or records
        else:
            record = registry.resolve(name)
            if record is None:
                raise UnknownServer(f"no server named {name}")
            targets = [record]
    for record in targets:
        if record.remote:
            raise NotOurServer(f"{record.name} is a remote server ({record.url}, connected with "
                             "%tfserve connect): it is not ours to stop. %tfserve disconnect "
                             f"{record.name} forgets it.")
        if not force and registry.owned_elsewhere(record):
            raise OwnedElsewhere(f"{record.name} belongs to {record.owner} (kernel pid "
                                 f"{record.owner_pid}, still running): stopping it takes that "
                                 "notebook's server away. Stop it there, or add --force "
                                 "(force=True in Python) to stop it anyway.")
    for record in targets:
        # The record goes first: whoever sees the server stop answering (a dashboard) also
        # sees that it was stopped on purpose, not that it died.
        registry.remove_record(record.name)
        processes.terminate(record.pid)
        disown(record.name)
    return [r.name for r in targets]
