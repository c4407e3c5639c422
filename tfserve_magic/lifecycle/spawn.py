"""Spawning a server and reading its handshake: one start, from a claim on the name to a
typed result.

A start claims the name across processes (two kernels starting one name get one server), reuses
a live record started the same way, spawns the child in its own session with its log in a file
and its secret in the environment (or adopts the kernel's warm spare, :mod:`.spare`), reads the
child's :class:`~tfserve_magic.status.Handshake` with a deadline, records it, and hands over
to :mod:`~tfserve_magic.lifecycle.readiness`. A failed or interrupted start leaves no process
and no files behind but its log. No TensorFlow import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import selectors
import subprocess
import time
from collections.abc import Iterator, Sequence

from tfserve_magic.lifecycle import processes, registry, spare, stopping
from tfserve_magic.lifecycle.command import (
    check_base_paths,
    model_configs,
    server_argv,
    spec_key,
)
from tfserve_magic.lifecycle.handle import (
    Failed,
    Launched,
    Reused,
    ServerHandle,
    ServerSpec,
    StartResult,
    TimedOut,
    log_tail,
    reachable_host,
)
from tfserve_magic.lifecycle.readiness import await_models
from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.serving.models.config import ModelConfig, write_model_config_file
from tfserve_magic.serving.status_errors import ConfigError
from tfserve_magic.status import SECRET_ENV, Handshake, ProtocolError
from tfserve_magic.waits import Deadline, wait_until

__all__ = ["launch"]


def launch(spec: ServerSpec, timeout: float = 120.0) -> StartResult:
    """Start (or reuse) the server described by ``spec``. A name that another notebook's
    (live kernel's) server has is not taken from it: this one is recorded as ``name-2`` (or the
    next free), and in this kernel the name means this kernel's own server."""
    asked = spec.server_name
    try:
        registry.check_name(asked)
    except ConfigError as exc:
        return Failed(asked, str(exc))
    with _starting(asked, time.monotonic() + timeout) as ours:
        if not ours:
            return Failed(asked, f"another process was still starting {asked} after "
                                 f"{timeout:g} s (see %tfserve list)")
        name = _name_here(asked)
        try:
            models, config_path = model_configs(spec, name)
            check_base_paths(models)
        except (ConfigError, ValueError) as exc:
            return Failed(asked, str(exc))
        return _launch(spec, name, models, config_path, timeout)


def _name_here(asked: str) -> str:
    """``asked``, unless a running server of another live kernel has it: then this kernel's
    own ``asked-N`` from an earlier start, or the first free one. (A dead server's name is
    free: its record is replaced.)"""
    name, number = asked, 1
    while True:
        record = registry.find_record(name)
        if record is None or not registry.owned_elsewhere(record) or \
                registry.probe(record) is None:
            return name
        number += 1  # taken by another notebook: try the next
        name = f"{asked}-{number}"


@contextlib.contextmanager
def _starting(name: str, deadline: float) -> Iterator[bool]:
    """An exclusive, cross-process claim on starting ``name``: two kernels running the same
    start at once get one server (the second reuses it). Yields False at the deadline."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): a race costs at worst a duplicate start
        yield True
        return
    with open(registry.registry_dir() / f".{name}.lock", "w") as handle:

        def claimed() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another kernel is starting it
            return True

        if not wait_until(claimed, Deadline(deadline, f"the claim on starting {name}"),
                          interval=0.05):
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _launch(spec: ServerSpec, name: str, models: list[ModelConfig], config_path: str,
            timeout: float) -> StartResult:
    existing = registry.find_record(name)
    if existing is not None and existing.remote:
        return Failed(name, f"{name} names the remote server {existing.url} (%tfserve connect); "
                            "choose another --name")
    if existing is not None:
        if registry.probe(existing) is not None:
            same = existing.extra.get("spec") == spec_key(spec, config_path)
            if same:  # ours, detached (shared on purpose), or its kernel is gone
                return Reused(ServerHandle(existing))
            return Failed(name, f"A server named {name} is already running (pid {existing.pid}, "
                                f"{existing.url}) with other settings. Stop it first "
                                f"(%tfserve stop {name}) or choose another --name.")
        processes.terminate(existing.pid)  # dead or not answering: never reuse it
        registry.remove_record(name)

    before = set(os.listdir(registry.registry_dir()))
    if not spec.config:
        write_model_config_file(config_path, models)
    argv = server_argv(spec, config_path)  # after `before`: a failed start removes its files
    log_path = str(registry.registry_dir() / f"{name}.log")
    if os.path.exists(log_path):
        os.replace(log_path, log_path + ".1")  # keep the previous run's log for a post-mortem
    started = time.monotonic()
    secret = secrets.token_urlsafe(32)  # in the environment, not argv: ps shows argv to all
    proc = spare.take(argv, secret, log_path) if spec.spare and not spec.verbose else None
    if proc is None:
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log_file,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    close_fds=True, env={**os.environ, SECRET_ENV: secret})
        processes.track(proc)
    try:
        result = _await_ready(spec, name, argv, proc, models, config_path, log_path, started,
                              timeout, secret)
    except BaseException:
        # An interrupted cell (KeyboardInterrupt) or an unexpected error must not leave a
        # half-started server behind: the user never got a handle to stop it.
        processes.terminate(proc.pid)
        registry.remove_record(name)
        stopping.disown(name)
        raise
    if isinstance(result, (Failed, TimedOut)):
        _remove_start_files(name, before)
        return dataclasses.replace(result, log_file=log_path)
    if isinstance(result, Launched) and name != spec.server_name:
        taken = registry.find_record(spec.server_name)
        whose = f"{taken.owner}'s server" if taken and taken.owner else "another server"
        note = (f"The name {spec.server_name} belongs to {whose}, so this one is {name}; in "
                f"this notebook {spec.server_name} means this one.")
        result = dataclasses.replace(result, notes=(note, *result.notes))
    if spec.spare:  # the next start in this kernel adopts it
        spare.ensure()
    return result


def _remove_start_files(name: str, before: set[str]) -> None:
    """A failed start leaves only its log behind: the files it wrote for the server go (those
    that were there before, with a previous run's edits, stay)."""
    folder = registry.registry_dir()
    for entry in set(os.listdir(folder)) - before:
        if entry.startswith(f"{name}.") and not entry.startswith(f"{name}.log"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / entry)


def _await_ready(spec: ServerSpec, name: str, argv: Sequence[str],
                 proc: subprocess.Popen[bytes], models: Sequence[ModelConfig], config_path: str,
                 log_path: str, started: float, timeout: float, secret: str) -> StartResult:
    """Handshake, record, then readiness of every model, all within one deadline."""
    deadline = started + timeout
    announced = _await_handshake(name, proc, deadline, log_path, timeout)
    if not isinstance(announced, Handshake):
        return announced
    record = _record(spec, name, announced, argv, models, config_path, log_path, secret)
    registry.write_record(record)
    if not spec.detach:
        stopping.own(record.name)
    return await_models(record, proc, models, started,
                        Deadline(deadline, f"the models of server {record.name} to load"))


def _read_handshake(proc: subprocess.Popen[bytes], deadline: float) -> Handshake | None:
    """The handshake, or None at the deadline; EOFError when the server closed its stdout
    (it is exiting), ValueError (JSON) or ProtocolError when the line is not a handshake."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not selector.select(max(0.0, deadline - time.monotonic())):
            return None
        line = proc.stdout.readline()
    finally:
        selector.close()
        proc.stdout.close()
    if not line:
        raise EOFError
    return Handshake.from_json(json.loads(line))


def _await_handshake(name: str, proc: subprocess.Popen[bytes], deadline: float, log_path: str,
                     timeout: float) -> Handshake | Failed | TimedOut:
    """The server's handshake, or why there is none (it exited, it is not our server, or it
    said nothing in time); a server that will not serve is stopped here."""
    try:
        handshake = _read_handshake(proc, deadline)
    except EOFError:  # stdout closed: the server is exiting, typically after a usage error
        try:
            proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            processes.terminate(proc.pid)
        processes.forget(proc.pid)
        return Failed(name, f"The model server exited (code {proc.returncode}) before it "
                            "started.", log_tail(log_path))
    except (ValueError, ProtocolError):  # not our handshake: something else wrote to stdout
        processes.terminate(proc.pid)
        return Failed(name, "The model server did not announce itself (no handshake line on "
                            "its stdout).", log_tail(log_path))
    if handshake is None:
        processes.terminate(proc.pid)
        return TimedOut(name, timeout, log_tail(log_path))
    return handshake


def _record(spec: ServerSpec, name: str, handshake: Handshake, argv: Sequence[str],
            models: Sequence[ModelConfig], config_path: str, log_path: str,
            secret: str) -> ServerRecord:
    """What the registry keeps about a server that has announced itself, and whose it is."""
    host = reachable_host(spec.host)
    return ServerRecord(
        name=name, pid=handshake.pid, host=spec.host,
        rest_api_port=handshake.rest_api_port, grpc_port=handshake.grpc_port,
        url=f"{handshake.rest_scheme}://{host}:{handshake.rest_api_port}",
        models=tuple(m.name for m in models), model_config_file=config_path,
        log_file=log_path, argv=tuple(argv), started_at=time.time(),
        owner_pid=os.getpid(), detached=spec.detach, version=handshake.version,
        secret=secret, tls=spec.tls.to_json() if spec.tls else {},
        owner_notebook=registry.this_notebook(),
        requested_name=spec.server_name if name != spec.server_name else "",
        extra={"spec": spec_key(spec, config_path)})
