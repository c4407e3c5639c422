"""A real ``tfserve-server`` subprocess for tests: handshake with a deadline, HTTP helpers,
waiting on version states with a deadline, and a clean stop."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfserve_magic.status import SECRET_ENV, SECRET_HEADER

_TICK = threading.Event()  # never set: wait(interval) paces the polling loops below


class ServerExited(RuntimeError):
    pass


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05,
             what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        _TICK.wait(interval)  # the polling interval of a deadline-bounded condition wait


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port that provably refuses connections while the block runs: bound by us, never
    listening, so no other process can take it (unlike port 1 or a stopped server's port)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | str | None = None,
         headers: dict[str, str] | None = None, timeout: float = 60.0) -> Response:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Response(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Response(error.code, error.read(), dict(error.headers))


@dataclass
class RunningServer:
    proc: subprocess.Popen[bytes]
    handshake: dict[str, Any]
    log_path: Path
    secret: str = ""  # opens /tfserve_magic/... (see ``manage``)

    @property
    def pid(self) -> int:
        return int(self.handshake["pid"])

    @property
    def port(self) -> int:
        return int(self.handshake["rest_api_port"])

    @property
    def grpc_port(self) -> int:
        return int(self.handshake["grpc_port"])

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **kwargs: Any) -> Response:
        return http("GET", self.url + path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        return http("POST", self.url + path, body, **kwargs)

    def manage(self, method: str, path: str, **kwargs: Any) -> Response:
        """A request to our management API, with this server's secret."""
        headers = {SECRET_HEADER: self.secret, **kwargs.pop("headers", {})}
        return http(method, self.url + path, b"" if method == "POST" else None,
                    headers=headers, **kwargs)

    def states(self, model: str) -> dict[int, str]:
        response = self.get(f"/v1/models/{model}")
        if response.status != 200:
            return {}
        return {int(v["version"]): v["state"] for v in response.json()["model_version_status"]}

    def wait_state(self, model: str, version: int | None = None, state: str = "AVAILABLE",
                   timeout: float = 120.0) -> dict[int, str]:
        def reached() -> dict[int, str] | None:
            if self.proc.poll() is not None:
                raise ServerExited(f"server exited with {self.proc.returncode}:\n{self.log()}")
            current = self.states(model)
            if version is None:
                return current if state in current.values() else None
            return current if current.get(version) == state else None

        return wait_for(reached, timeout, what=f"{model} v{version} {state}")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode



# The "versioned" model of the shared test servers: every version, two labels.
VERSIONED_CONFIG = ('model_version_policy { all {} } '
                    'version_labels { key: "stable" value: 1 } '
                    'version_labels { key: "canary" value: 3 }')


def write_server_config(root: Path, models: Mapping[str, tuple[Path, str]]) -> tuple[Path, Path]:
    """``root/models.config`` (name -> (base path, extra ModelConfig text)) and a
    ``root/monitoring.config`` with Prometheus on; returns both paths."""
    config = root / "models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow" {extra} }}\n'
        for name, (path, extra) in models.items()) + "}\n")
    monitoring = root / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }\n")
    return config, monitoring

def start_server(*flags: str, log_dir: Path, timeout: float = 120.0,
                 env: dict[str, str] | None = None,
                 max_open_files: int | None = None,
                 program: Sequence[str] = (sys.executable, "-m", "tfserve_magic.serving"),
                 ) -> RunningServer:
    """Start ``python -m tfserve_magic.serving --rest_api_port=0 --port=0 FLAGS`` (or
    ``program``) and read its handshake (a ``--port`` among FLAGS wins: never TF Serving's
    fixed 8500 in tests).

    ``max_open_files`` sets the server's file-descriptor limit (soft and hard)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{time.monotonic_ns()}.log"
    secret = secrets.token_urlsafe(16)

    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [*program, "--rest_api_port=0", *_free_grpc_port(flags), *flags],
            stdout=subprocess.PIPE, stderr=log_file,
            env={**os.environ, SECRET_ENV: secret, **(env or {})})
    if max_open_files is not None:  # before it has opened more than a few: it reads it later
        resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (max_open_files, max_open_files))
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        proc.kill()
        raise TimeoutError(f"no handshake within {timeout}s:\n{log_path.read_text()}")
    line = proc.stdout.readline()
    proc.stdout.close()
    if not line:
        proc.wait(timeout)
        raise ServerExited(f"server exited with {proc.returncode} before its handshake:\n"
                           f"{log_path.read_text()}")
    return RunningServer(proc, json.loads(line), log_path, secret)


def _free_grpc_port(flags: tuple[str, ...]) -> list[str]:
    return [] if any(f == "--port" or f.startswith("--port=") for f in flags) else ["--port=0"]


def run_server_expecting_failure(*flags: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfserve_magic.serving",
                           *_free_grpc_port(flags), *flags],
                          capture_output=True, text=True, timeout=timeout, check=False)
