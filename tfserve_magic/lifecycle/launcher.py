"""Starting, finding, reusing and stopping model servers from a notebook or a script.

The launcher owns process supervision so that magics only format results: a start returns a typed
:class:`Launched`, :class:`Reused`, :class:`Failed` or :class:`TimedOut`. A child runs in its own
session (interrupting a cell does not kill it), writes its log to a file per server, announces
itself with one handshake line that we read with a deadline, and is recorded in the registry. A
record is reused only when its process is alive *and* answers with the same pid; a failed start
leaves no process behind. Servers stop with the kernel (atexit, and ``--exit_with_parent_pid`` for
a kernel that is killed) unless detached. No TensorFlow import.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import math
import os
import secrets
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tfserve_magic.client.rest import Client, Prediction, ServingError, VersionStatus
from tfserve_magic.errors import TFServeError
from tfserve_magic.files import tail_lines, write_atomically
from tfserve_magic.lifecycle import processes, registry
from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.pids import pid_alive
from tfserve_magic.serving.errors import ConfigError
from tfserve_magic.serving.models.config import (
    ModelConfig,
    load_model_config_file,
    write_model_config_file,
)
from tfserve_magic.serving.models.repository import RepositoryError, scan_versions
from tfserve_magic.status import SECRET_ENV, ServerDescription, VersionState
from tfserve_magic.waits import Deadline, wait_until

__all__ = [
    "Failed",
    "LaunchError",
    "Launched",
    "Reused",
    "ServerHandle",
    "ServerInfo",
    "ServerSpec",
    "StartResult",
    "TimedOut",
    "batching_file",
    "find",
    "find_serving",
    "launch",
    "list_servers",
    "log_section",
    "logs",
    "start",
    "stop",
]

_owned: set[str] = set()
_lock = threading.Lock()


@dataclass(frozen=True)
class ServerSpec:
    """What to serve and how; one spec, whether it came from a magic or from Python."""

    model_dir: str | None = None
    config: str | None = None
    name: str | None = None
    port: int = 0
    host: str = "127.0.0.1"
    gpu: str | None = None
    gpu_memory_fraction: float | None = None
    poll: float | None = None  # seconds between rescans; None: 1 s, 0: never (reload only)
    detach: bool = False
    extra_flags: tuple[str, ...] = ()
    batching: bool = False  # TF Serving's batching, parameters file written beside models.config
    grpc_port: int = 0  # TF Serving's --port; 0 picks a free one
    verbose: bool = False  # log every request and TensorFlow's native start-up messages

    @property
    def server_name(self) -> str:
        if self.name:
            return self.name
        source = self.model_dir or self.config or "model"
        stem = os.path.basename(os.path.normpath(source))
        return os.path.splitext(stem)[0] if self.config and not self.model_dir else stem


class ServerHandle:
    """A running server: its URL, a client, and shortcuts. Usable as a context manager."""

    def __init__(self, record: ServerRecord) -> None:
        self.record = record
        self.client = Client(record.url, headers=record.auth_headers)
        self._grpc_client: Client | None = None

    def grpc_client(self) -> Client:
        """A client whose model calls go over gRPC (imports TF Serving's protos on first use)."""
        if self._grpc_client is None:
            if self.grpc_target is None:
                raise ServingError(0, f"server {self.name} announced no gRPC port")
            self._grpc_client = Client(self.record.url, grpc=self.grpc_target,
                                       headers=self.record.auth_headers)
        return self._grpc_client

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def url(self) -> str:
        return self.record.url

    @property
    def models(self) -> tuple[str, ...]:
        return self.record.models

    @property
    def grpc_port(self) -> int | None:
        return self.record.grpc_port

    @property
    def grpc_target(self) -> str | None:
        """``host:port`` for ``grpc.insecure_channel`` (TF Serving's PredictionService)."""
        if self.record.remote:
            return self.record.grpc_target
        if self.record.grpc_port is None:
            return None
        return f"{_reachable_host(self.record.host)}:{self.record.grpc_port}"

    def predict(self, model: str | None, data: Any, **kwargs: Any) -> Prediction:
        return self.client.predict(model or self._only_model(), data, **kwargs)

    def status(self, model: str | None = None) -> list[VersionStatus]:
        return self.client.status(model or self._only_model())

    def stop(self) -> None:
        stop(self.name)

    def _only_model(self) -> str:
        if len(self.models) != 1:
            raise ValueError(f"server {self.name} serves {list(self.models)}: name the model")
        return self.models[0]

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        grpc = f", gRPC {self.grpc_target}" if self.grpc_target else ""
        return f"<ServerHandle {self.name} at {self.url}{grpc} serving {', '.join(self.models)}>"


def _reachable_host(host: str) -> str:
    """Where a local client reaches a server bound to ``host`` (all addresses: loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@dataclass(frozen=True)
class Launched:
    handle: ServerHandle
    seconds: float
    notes: tuple[str, ...] = ()  # what a person should know, e.g. a model with nothing to serve


@dataclass(frozen=True)
class Reused:
    handle: ServerHandle
    borrowed: bool = False  # another running process (kernel) owns it: it stops with that one


@dataclass(frozen=True)
class Failed:
    name: str
    message: str
    log_tail: str = ""
    log_file: str = ""  # the whole log, kept after a failed start


@dataclass(frozen=True)
class TimedOut:
    name: str
    seconds: float
    log_tail: str = ""
    log_file: str = ""


StartResult = Launched | Reused | Failed | TimedOut


class LaunchError(TFServeError):
    """``start()`` could not bring a server up; the message includes the server's own words."""

    def __init__(self, result: Failed | TimedOut) -> None:
        if isinstance(result, Failed):
            text = result.message
        else:
            text = f"server {result.name} was not ready within {result.seconds:.0f} s"
        super().__init__(text + log_section(result))
        self.result = result


@dataclass(frozen=True)
class ServerInfo:
    record: ServerRecord
    alive: bool
    uptime: float
    models: tuple[str, ...] = ()
    description: ServerDescription | None = field(default=None, compare=False)


# --------------------------------------------------------------------------- starting


def _model_configs(spec: ServerSpec) -> tuple[list[ModelConfig], str]:
    """The model list and the config file the server will run from."""
    name = spec.server_name
    if spec.config:
        path = os.path.abspath(os.path.expanduser(spec.config))
        return load_model_config_file(path), path
    assert spec.model_dir is not None
    base = os.path.abspath(os.path.expanduser(spec.model_dir))
    if not os.path.isdir(base):
        raise ConfigError(f"{spec.model_dir} does not exist or is not a folder")
    if os.path.exists(os.path.join(base, "saved_model.pb")):
        raise ConfigError(
            f"{spec.model_dir} is a version folder (it holds saved_model.pb). Give the base "
            f"path that holds numeric version folders instead: {os.path.dirname(base)}")
    path = str(registry.registry_dir() / f"{name}.models.config")
    wanted = ModelConfig(name=spec.name or os.path.basename(os.path.normpath(base)),
                         base_path=base)
    try:
        kept = load_model_config_file(path) if os.path.exists(path) else []
    except ConfigError:
        kept = []
    if len(kept) == 1 and (kept[0].name, kept[0].base_path) == (wanted.name, wanted.base_path):
        return kept, path  # labels and policy edited since the last start survive a restart
    return [wanted], path


def _check_base_paths(models: Sequence[ModelConfig]) -> None:
    for model in models:
        try:
            scan_versions(model.base_path)
        except RepositoryError as exc:
            raise ConfigError(f"Model {model.name}: {exc}") from None


def log_section(result: Failed | TimedOut) -> str:
    """The server's last log lines and where its whole log is, shown after a failed start."""
    if not result.log_tail:
        return ""
    where = f" of {result.log_file}" if result.log_file else ""
    return f"\n--- server log (last lines{where}) ---\n{result.log_tail}"


def _nothing_to_serve(models: Sequence[ModelConfig]) -> tuple[str, ...]:
    """A note per model whose base path holds no version folder yet (it serves nothing)."""
    notes = []
    for model in models:
        try:
            if scan_versions(model.base_path):
                continue
            found = sorted(os.listdir(model.base_path))
        except (RepositoryError, OSError):
            continue
        shown = ", ".join(f"{n}/" if os.path.isdir(os.path.join(model.base_path, n)) else n
                          for n in found[:5]) + (", ..." if len(found) > 5 else "")
        notes.append(
            f"Nothing to serve yet for {model.name}: {model.base_path} holds no version folder "
            f"({'it holds ' + shown if found else 'it is empty'}). Expected numeric folders such "
            f"as {os.path.join(model.base_path, '1')}/ each holding a saved_model.pb; "
            f"%tfserve push adds one.")
    return tuple(notes)


def _poll_seconds(poll: float | None) -> int:
    """TF Serving's whole seconds: never round a short period down to 0, which means 'never'."""
    if poll is None:
        return 1
    return 0 if poll <= 0 else max(1, math.ceil(poll))


def _argv(spec: ServerSpec, config_path: str) -> list[str]:
    argv = [sys.executable, "-m", "tfserve_magic.serving",
            f"--rest_api_port={spec.port}", f"--rest_api_host={spec.host}",
            f"--port={spec.grpc_port}",
            f"--model_config_file={config_path}",
            f"--model_config_file_poll_wait_seconds={_poll_seconds(spec.poll)}",
            f"--file_system_poll_wait_seconds={_poll_seconds(spec.poll)}",
            "--allow_version_labels_for_unavailable_models"]
    user_flags = " ".join(spec.extra_flags)
    if "--max_num_load_retries" not in user_flags:
        argv.append("--max_num_load_retries=0")  # a notebook wants the error now, not in 5 min
    if "--monitoring_config_file" not in user_flags:
        argv.append(f"--monitoring_config_file={_monitoring_config()}")  # the dashboard's traffic
    if spec.verbose and "--verbose" not in user_flags:
        argv.append("--verbose")
    if spec.batching and "--enable_batching" not in user_flags:
        argv.append("--enable_batching")
        if "--batching_parameters_file" not in user_flags:
            argv.append(f"--batching_parameters_file={batching_file(config_path)}")
    if spec.gpu is not None:
        argv.append(f"--gpu_devices={spec.gpu}")
    if spec.gpu_memory_fraction is not None:
        argv.append(f"--per_process_gpu_memory_fraction={spec.gpu_memory_fraction}")
    if not spec.detach:
        argv.append(f"--exit_with_parent_pid={os.getpid()}")
    return argv + list(spec.extra_flags)


def batching_file(config_path: str) -> str:
    """``<models config stem>.batching_parameters.txt`` beside the models.config, written with
    notebook defaults unless it exists (edits survive restarts); TF Serving reads it unchanged."""
    stem = os.path.splitext(config_path)[0]
    path = f"{stem}.batching_parameters.txt"
    if not os.path.exists(path):
        from tfserve_magic.serving.batching.parameters import NOTEBOOK_DEFAULTS

        write_atomically(path, NOTEBOOK_DEFAULTS.to_text())
    return path


def _monitoring_config() -> str:
    """A MonitoringConfig enabling Prometheus at TF Serving's default path."""
    path = registry.registry_dir() / "monitoring.config"
    if not path.exists():  # another kernel may be starting a server that reads it
        write_atomically(path, "prometheus_config { enable: true }\n")
    return str(path)


def _tail(path: str | None, lines: int = 25) -> str:
    return "\n".join(tail_lines(path, lines))


def _read_handshake(proc: subprocess.Popen[bytes], deadline: float) -> dict[str, Any] | None:
    """The handshake, or None at the deadline; EOFError when the server closed its stdout
    (it is exiting), ValueError when the line is not JSON."""
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
    return json.loads(line)  # type: ignore[no-any-return]


def _ready(client: Client, models: Sequence[ModelConfig]) -> tuple[bool, str | None]:
    """(ready, error): every model has a version AVAILABLE and none still on its first load, has
    nothing to load, or failed. A version that is retrying after an error does not hold a start."""
    info = client.server_info() or ServerDescription()
    for model in models:
        described = info.model(model.name)
        versions = described.versions if described else ()
        first_load = [v for v in versions
                      if v.state in (VersionState.START, VersionState.LOADING) and not v.error]
        if described and described.available and not first_load:
            continue
        try:
            on_disk = scan_versions(model.base_path)
        except RepositoryError:
            on_disk = {}
        if not on_disk:
            continue  # an empty base path is ready to receive a pushed version
        if versions and all(v.state is VersionState.END for v in versions):
            errors = [f"version {v.version}: {v.error}" for v in versions if v.error]
            return False, f"Model {model.name} failed to load: " + "; ".join(errors)
        return False, None
    return True, None


def launch(spec: ServerSpec, timeout: float = 120.0) -> StartResult:
    """Start (or reuse) the server described by ``spec``."""
    name = spec.server_name
    try:
        registry.check_name(name)
        models, config_path = _model_configs(spec)
        _check_base_paths(models)
    except (ConfigError, ValueError) as exc:
        return Failed(name, str(exc))
    with _starting(name, time.monotonic() + timeout) as ours:
        if not ours:
            return Failed(name, f"another process was still starting {name} after "
                                f"{timeout:g} s (see %tfserve list)")
        return _launch(spec, models, config_path, timeout)


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


def _launch(spec: ServerSpec, models: list[ModelConfig], config_path: str,
            timeout: float) -> StartResult:
    name = spec.server_name
    existing = registry.find_record(name)
    if existing is not None and existing.remote:
        return Failed(name, f"{name} names the remote server {existing.url} (%tfserve connect); "
                            "choose another --name")
    if existing is not None:
        if registry.probe(existing) is not None:
            same = existing.extra.get("spec") == _spec_key(spec, config_path)
            if same:
                borrowed = (not existing.detached and existing.owner_pid != os.getpid()
                            and pid_alive(existing.owner_pid))
                return Reused(ServerHandle(existing), borrowed)
            return Failed(name, f"A server named {name} is already running (pid {existing.pid}, "
                                f"{existing.url}) with other settings. Stop it first "
                                f"(%tfserve stop {name}) or choose another --name.")
        processes.terminate(existing.pid)  # dead or not answering: never reuse it
        registry.remove_record(name)

    before = set(os.listdir(registry.registry_dir()))
    if not spec.config:
        write_model_config_file(config_path, models)
    log_path = str(registry.registry_dir() / f"{name}.log")
    if os.path.exists(log_path):
        os.replace(log_path, log_path + ".1")  # keep the previous run's log for a post-mortem
    started = time.monotonic()
    secret = secrets.token_urlsafe(32)  # in the environment, not argv: ps shows argv to all
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(_argv(spec, config_path), stdout=subprocess.PIPE, stderr=log_file,
                                stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                                env={**os.environ, SECRET_ENV: secret})
    with _lock:
        processes.track(proc)
    try:
        result = _await_ready(spec, proc, models, config_path, log_path, started, timeout, secret)
    except BaseException:
        # An interrupted cell (KeyboardInterrupt) or an unexpected error must not leave a
        # half-started server behind: the user never got a handle to stop it.
        processes.terminate(proc.pid)
        registry.remove_record(name)
        _owned.discard(name)
        raise
    if isinstance(result, (Failed, TimedOut)):
        _remove_start_files(name, before)
        return dataclasses.replace(result, log_file=log_path)
    return result


def _remove_start_files(name: str, before: set[str]) -> None:
    """A failed start leaves only its log behind: the files it wrote for the server go (those
    that were there before, with a previous run's edits, stay)."""
    folder = registry.registry_dir()
    for entry in set(os.listdir(folder)) - before:
        if entry.startswith(f"{name}.") and not entry.startswith(f"{name}.log"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / entry)


def _await_ready(spec: ServerSpec, proc: subprocess.Popen[bytes], models: Sequence[ModelConfig],
                 config_path: str, log_path: str, started: float, timeout: float,
                 secret: str) -> StartResult:
    """Handshake, record, then readiness of every model, all within one deadline."""
    deadline = started + timeout
    announced = _await_handshake(spec.server_name, proc, deadline, log_path, timeout)
    if not isinstance(announced, dict):
        return announced
    record = _record(spec, announced, models, config_path, log_path, secret)
    registry.write_record(record)
    if not spec.detach:
        _own(record.name)
    return _await_models(record, proc, models, started,
                         Deadline(deadline, f"the models of server {record.name} to load"))


def _await_handshake(name: str, proc: subprocess.Popen[bytes], deadline: float, log_path: str,
                     timeout: float) -> dict[str, Any] | Failed | TimedOut:
    """The server's handshake line, or why there is none (it exited, it is not our server, or
    it said nothing in time); a server that will not serve is stopped here."""
    try:
        handshake = _read_handshake(proc, deadline)
    except EOFError:  # stdout closed: the server is exiting, typically after a usage error
        try:
            proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            processes.terminate(proc.pid)
        processes.forget(proc.pid)
        return Failed(name, f"The model server exited (code {proc.returncode}) before it "
                            "started.", _tail(log_path))
    except ValueError:  # not JSON: something other than our server wrote to stdout
        handshake = {}
    if handshake is None:
        processes.terminate(proc.pid)
        return TimedOut(name, timeout, _tail(log_path))
    if handshake.get("tfserve_magic") != "handshake":
        processes.terminate(proc.pid)
        return Failed(name, "The model server did not announce itself (no handshake line on "
                            "its stdout).", _tail(log_path))
    return handshake


def _record(spec: ServerSpec, handshake: dict[str, Any], models: Sequence[ModelConfig],
            config_path: str, log_path: str, secret: str) -> ServerRecord:
    """What the registry keeps about a server that has announced itself."""
    host = _reachable_host(spec.host)
    return ServerRecord(
        name=spec.server_name, pid=handshake["pid"], host=spec.host,
        rest_api_port=handshake["rest_api_port"], grpc_port=handshake.get("grpc_port"),
        url=f"http://{host}:{handshake['rest_api_port']}",
        models=tuple(m.name for m in models), model_config_file=config_path,
        log_file=log_path, argv=tuple(_argv(spec, config_path)), started_at=time.time(),
        owner_pid=os.getpid(), detached=spec.detach, version=handshake.get("version", ""),
        secret=secret,
        extra={"spec": _spec_key(spec, config_path)})


def _await_models(record: ServerRecord, proc: subprocess.Popen[bytes],
                  models: Sequence[ModelConfig], started: float,
                  deadline: Deadline) -> StartResult:
    """Launched once every model is ready; Failed when the server exits or a model cannot
    load; TimedOut at the deadline. A server that will not serve is stopped here."""
    name, log_path = record.name, record.log_file
    client = Client(record.url, timeout=10, headers=record.auth_headers)

    def outcome() -> StartResult | None:
        if proc.poll() is not None:
            registry.remove_record(name)
            _owned.discard(name)
            return Failed(name, f"The model server exited (code {proc.returncode}).",
                          _tail(log_path))
        try:
            ready, error = _ready(client, models)
        except ServingError:
            return None  # checked again next round; a dead process is seen above
        if error:
            stop(name)
            return Failed(name, error, _tail(log_path))
        if ready:
            return Launched(ServerHandle(record), time.monotonic() - started,
                            _nothing_to_serve(models))
        return None

    result = wait_until(outcome, deadline, interval=0.1)
    if result is not None:
        return result
    stop(name)
    return TimedOut(name, deadline.at - started, _tail(log_path))


def _spec_key(spec: ServerSpec, config_path: str) -> str:
    return json.dumps([spec.model_dir and os.path.abspath(os.path.expanduser(spec.model_dir)), config_path,
                       spec.port, spec.host, spec.gpu, spec.gpu_memory_fraction,
                       list(spec.extra_flags), spec.batching, spec.grpc_port])


def start(model_dir: str | None = None, *, name: str | None = None, config: str | None = None,
          port: int = 0, host: str = "127.0.0.1", gpu: str | None = None,
          gpu_memory_fraction: float | None = None, poll: float | None = None,
          timeout: float = 120.0, detach: bool = False, extra_flags: Sequence[str] = (),
          batching: bool = False, grpc_port: int = 0,
          verbose: bool = False) -> ServerHandle:
    """Serve ``model_dir`` (a base path of version folders) or a models.config; returns a handle.

    ``batching=True`` turns on TF Serving's batching with notebook defaults (see
    :func:`batching_file`); ``verbose=True`` logs every request and TensorFlow's native
    start-up messages. Reuses a live server started the same way; raises
    :class:`LaunchError` with the server's own message when it cannot start."""
    if (model_dir is None) == (config is None):
        raise ValueError("give either model_dir or config")
    result = launch(ServerSpec(model_dir, config, name, port, host, gpu, gpu_memory_fraction,
                               poll, detach, tuple(extra_flags), batching, grpc_port,
                               verbose), timeout)
    if isinstance(result, (Failed, TimedOut)):
        raise LaunchError(result)
    return result.handle


# --------------------------------------------------------------------------- stopping


def _own(name: str) -> None:
    with _lock:
        atexit.unregister(_stop_owned)  # registered once, however many servers start
        atexit.register(_stop_owned)
        _owned.add(name)


def _stop_owned() -> None:
    """At exit: stop the servers this process started and that are still the recorded ones (a
    name may have been stopped, or taken over by another kernel's server, since)."""
    for name in list(_owned):
        _owned.discard(name)
        record = registry.find_record(name)
        if record is not None and record.owner_pid == os.getpid():
            processes.terminate(record.pid)
            registry.remove_record(name)


def stop(name: str | None = None, *, all: bool = False) -> list[str]:
    """Stop one server by name (or port), or every recorded one; returns the names stopped."""
    if all:
        targets = registry.read_records()
    else:
        if name is None:
            records = registry.read_records()
            if len(records) != 1:
                raise ValueError("name the server to stop (or use all=True): "
                                 f"{[r.name for r in records] or 'none is running'}")
            targets = records
        else:
            record = registry.find_record(name)
            if record is None:
                raise ValueError(f"no server named {name}")
            targets = [record]
    if all:
        targets = [r for r in targets if not r.remote]  # not ours: they keep serving
    for record in targets:
        if record.remote:
            raise ValueError(f"{record.name} is a remote server ({record.url}, connected with "
                             "%tfserve connect): it is not ours to stop. %tfserve disconnect "
                             f"{record.name} forgets it.")
    for record in targets:
        processes.terminate(record.pid)
        registry.remove_record(record.name)
        _owned.discard(record.name)
    return [r.name for r in targets]


# --------------------------------------------------------------------------- looking


def list_servers() -> list[ServerInfo]:
    """Every server this user started, from any kernel, alive or not."""
    infos = []
    for record in registry.read_records():
        description = registry.probe(record)
        models = description.model_names if description else record.models
        infos.append(ServerInfo(record, description is not None,
                                max(0.0, time.time() - record.started_at), models, description))
    return infos


def find(name: str | None = None) -> ServerHandle:
    """The live server ``name`` (or the only live one)."""
    live = [i for i in list_servers() if i.alive]
    if name is not None:
        live = [i for i in live if name in (i.record.name, str(i.record.rest_api_port))]
        if not live:
            raise ValueError(f"no running server named {name} (see %tfserve list)")
    elif len(live) != 1:
        raise ValueError("name the server: " + (", ".join(i.record.name for i in live)
                                                or "none is running (%tfserve start ...)"))
    return ServerHandle(live[0].record)


def find_serving(model: str, server: str | None = None) -> ServerHandle:
    """The live server that serves ``model`` (a server name is accepted too); ``server`` names
    it when several do. Never picks one of several silently."""
    if server is not None:
        handle = find(server)
        if model not in handle.models and model != handle.name:
            raise ValueError(f"server {handle.name} does not serve a model named {model} "
                             f"(it serves {', '.join(handle.models) or 'nothing'})")
        return handle
    live = [i for i in list_servers() if i.alive]
    matches = [i for i in live if model in i.models] or [i for i in live if i.record.name == model]
    if not matches:
        raise ValueError(f"no running server serves a model named {model} (see %tfserve list)")
    if len(matches) > 1:
        names = ", ".join(f"{i.record.name} ({i.record.url})" for i in matches)
        raise ValueError(f"{len(matches)} running servers serve a model named {model}: {names}. "
                         "Say which one with --server NAME (server=NAME in Python).")
    return ServerHandle(matches[0].record)


def logs(name: str, lines: int = 50) -> str:
    record = registry.find_record(name)
    if record is None:
        raise ValueError(f"no server named {name}")
    if record.remote:
        raise ValueError(f"{name} is a remote server ({record.url}): its log is where it runs")
    return _tail(record.log_file, lines)

