"""On-disk records of the model servers this user started, shared by every kernel and the
Jupyter server extension.

One JSON file per server under ``<jupyter runtime dir>/tfserve_magic/servers/`` (override with
``TFSERVE_MAGIC_RUNTIME_DIR``), written atomically. A record is evidence, not truth: callers use
:func:`probe` (process alive *and* the REST port answers with the same pid) before trusting one.

A server belongs to the process (kernel) that started or connected it, and to that kernel's
notebook (``JPY_SESSION_NAME``, which Jupyter gives each kernel): :func:`resolve` finds a name
among this process's own servers first, so the same name in two notebooks means each one's own.
A connected remote is forgotten with its kernel. Must not import TensorFlow, IPython or
jupyter_server.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from tfserve_magic.client import Client, RequestError, ServingError
from tfserve_magic.files import write_atomically
from tfserve_magic.lifecycle.describe import describe_remote
from tfserve_magic.lifecycle.record import ServerRecord
from tfserve_magic.pids import pid_alive
from tfserve_magic.serving.status_errors import ConfigError
from tfserve_magic.status import ProtocolError, ServerDescription

__all__ = [
    "ServerRecord",
    "check_name",
    "find_record",
    "owned_elsewhere",
    "probe",
    "read_records",
    "registry_dir",
    "remove_record",
    "resolve",
    "this_notebook",
    "write_record",
]

_ENV = "TFSERVE_MAGIC_RUNTIME_DIR"


def registry_dir() -> Path:
    """The folder holding the records (created on demand)."""
    root = os.environ.get(_ENV)
    if not root:
        from jupyter_core.paths import jupyter_runtime_dir

        root = os.path.join(jupyter_runtime_dir(), "tfserve_magic")
    path = Path(root) / "servers"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_name(name: str) -> str:
    """``name`` if it can name a server (it becomes a file name); ConfigError otherwise."""
    if not name or "/" in name or name.startswith(".") or "\\" in name or "\0" in name:
        raise ConfigError(f"invalid server name {name!r}: it names a file, so it may not be "
                         "empty, start with '.' or contain '/' (choose one with --name)")
    return name


def _record_path(name: str) -> Path:
    return registry_dir() / f"{check_name(name)}.json"


def write_record(record: ServerRecord) -> Path:
    path = _record_path(record.name)
    write_atomically(path, json.dumps(record.to_json(), indent=1))
    return path


def remove_record(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _record_path(name).unlink()


def read_records() -> list[ServerRecord]:
    """Every record on disk, by name; unreadable files are skipped. A record whose server and
    whose kernel are both gone (a kernel killed with SIGKILL never cleans up; its server then
    stops on its own) is deleted here: nothing is left to stop or show."""
    records = []
    for path in sorted(registry_dir().glob("*.json")):
        try:
            record = ServerRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if _orphaned(record):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        records.append(record)
    return records


def _orphaned(record: ServerRecord) -> bool:
    if record.remote:  # a connection ends with the kernel that made it
        return record.owner_pid > 0 and not pid_alive(record.owner_pid)
    return record.owner_pid > 0 and not pid_alive(record.pid) and not pid_alive(record.owner_pid)


def this_notebook() -> str:
    """The notebook of this kernel ("" elsewhere), as a person names it: Jupyter gives its
    path, absolute in recent versions, and the kernel runs in the notebook's folder."""
    path = os.environ.get("JPY_SESSION_NAME", "")
    if os.path.isabs(path):
        relative = os.path.relpath(path, os.getcwd())
        return relative if not relative.startswith("..") else os.path.basename(path)
    return path


def owned_elsewhere(record: ServerRecord) -> bool:
    """Whether ``record`` belongs to another live process (kernel) than this one: stopping it
    takes that notebook's server away (a detached server belongs to no one)."""
    return (not record.detached and record.owner_pid not in (0, os.getpid())
            and pid_alive(record.owner_pid))


def find_record(name_or_port: str | int) -> ServerRecord | None:
    """The record named ``name_or_port``, or whose REST port it is; None otherwise."""
    key = str(name_or_port)
    for record in read_records():
        if record.name == key or str(record.rest_api_port) == key:
            return record
    return None


def resolve(name_or_port: str | int) -> ServerRecord | None:
    """The record ``name_or_port`` means here: this process's own server of that name (or
    asked for under that name) first, else any record of that name or REST port."""
    key = str(name_or_port)
    records = read_records()
    mine = [r for r in records if r.owner_pid == os.getpid()]
    for record in [r for r in mine if r.name == key] + [r for r in mine if r.requested_name == key]:
        return record
    return next((r for r in records if key in (r.name, str(r.rest_api_port))), None)


def probe(record: ServerRecord, timeout: float = 2.0) -> ServerDescription | None:
    """The server's own description (``GET /tfserve_magic/v1/server``) if ``record`` is alive
    and answering with the same pid; None otherwise. A remote server is alive when it answers."""
    if record.remote:
        return describe_remote(record, timeout)
    if not pid_alive(record.pid):
        return None
    try:
        data = Client(record.url, timeout=timeout, headers=record.auth_headers,
                      tls=record.client_tls).server_info()
    except (ServingError, ProtocolError, RequestError, ValueError):  # (ValueError: not JSON)
        return None
    return data if data is not None and data.pid == record.pid else None
