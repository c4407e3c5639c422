"""The ``tfserve-server`` console script as a user runs it: ``--version``, usage errors, serving
on every interface (reached here through 127.0.0.1 only), and TF Serving flags it accepts but
ignores, said in its log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from server_process import start_server

from tfserve_magic import __version__

SCRIPT = Path(sys.executable).parent / "tfserve-server"


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (IPv4, from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_console_script_version_and_usage_error() -> None:
    version = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True,
                             timeout=120, check=False)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith(f"TensorFlow ModelServer: tfserve_magic-{__version__}\n")
    bad = subprocess.run([str(SCRIPT), "--model_base_path=/m", "--no_such_flag=1"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1 and bad.stdout == ""
    assert "tfserve-server: error: unrecognized arguments: --no_such_flag=1" in bad.stderr
    assert "Run 'tfserve-server --help' for the flags." in bad.stderr


def test_console_script_serves_on_every_interface_and_logs_ignored_flags(
        tmp_path: Path, half_plus_two: Path) -> None:
    server = start_server("--rest_api_host=0.0.0.0", "--model_name=h",
                          f"--model_base_path={half_plus_two}",
                          "--xla_cpu_compilation_enabled=true", "--num_load_threads=4",
                          log_dir=tmp_path, program=(str(SCRIPT),))
    try:
        server.wait_state("h", 1)  # through http://127.0.0.1:PORT
        assert _listening_addresses(server.port) == {"0.0.0.0"}
        assert server.post("/v1/models/h:predict", {"instances": [1.0]}).json() == \
            {"predictions": [2.5]}
        log = server.log()
        for flag in ("xla_cpu_compilation_enabled", "num_load_threads"):
            assert f"Flag --{flag} is accepted for compatibility and ignored" in log
    finally:
        server.stop()


def test_loopback_by_default(shared_server) -> None:
    assert _listening_addresses(shared_server.port) == {"127.0.0.1"}
