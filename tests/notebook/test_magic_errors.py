"""What each family of the package's errors looks like from a real IPython shell: one line on
stderr, ``%tfserve COMMAND: message``, never a traceback. Every family is caught by the magics
through the one root, ``TFServeError``; the messages are the user's, checked word for word."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tfserve_magic.lifecycle import registry
from tfserve_magic.lifecycle.registry import ServerRecord


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _error_of(ip, capsys, line: str) -> str:
    ip.run_line_magic("tfserve", line)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out == "", (out, err)
    return err.strip()


@pytest.fixture
def far_and_here(runtime_dir):
    """A remote record (nothing answers at its port) and a record of a server started here."""
    port = _closed_port()
    registry.write_record(ServerRecord(
        name="far", pid=0, host="127.0.0.1", rest_api_port=port, url=f"http://127.0.0.1:{port}",
        models=("m",), started_at=time.time(), owner_pid=os.getpid(), remote=True))
    # Our own pid keeps the record from being tidied away as orphaned; nothing here stops it
    # (and a pid that is not a model server is never signalled).
    registry.write_record(ServerRecord(
        name="here", pid=os.getpid(), host="127.0.0.1", rest_api_port=port + 1,
        url=f"http://127.0.0.1:{port + 1}", started_at=time.time(), owner_pid=os.getpid()))
    return f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"


def test_unknown_server(ip, capsys) -> None:  # lifecycle.refusals.UnknownServer
    assert _error_of(ip, capsys, "status nope") == (
        "%tfserve status: no running server named nope (see %tfserve list)")
    assert _error_of(ip, capsys, "disconnect nope") == (
        "%tfserve disconnect: no server named nope (see %tfserve list)")
    assert _error_of(ip, capsys, "signatures nope") == (
        "%tfserve signatures: no running server serves a model named nope (see %tfserve list)")
    ip.run_cell_magic("predict", "nope", "[1.0]")
    out, err = capsys.readouterr()
    assert err.strip() == ("%%predict: no running server serves a model named nope "
                           "(see %tfserve list)") and out == ""


def test_ambiguous_name(ip, capsys) -> None:  # lifecycle.refusals.AmbiguousName
    assert _error_of(ip, capsys, "status") == (
        "%tfserve status: name the server: none is running (%tfserve start ...)")
    assert _error_of(ip, capsys, "stop") == (
        "%tfserve stop: name the server to stop (or use all=True): none is running")


def test_not_our_server(ip, capsys, far_and_here) -> None:  # lifecycle.refusals.NotOurServer
    far, here = far_and_here
    assert _error_of(ip, capsys, "stop far") == (
        f"%tfserve stop: far is a remote server ({far}, connected with %tfserve connect): it is "
        "not ours to stop. %tfserve disconnect far forgets it.")
    assert _error_of(ip, capsys, "logs far") == (
        f"%tfserve logs: far is a remote server ({far}): its log is where it runs")
    assert _error_of(ip, capsys, "disconnect here") == (
        "%tfserve disconnect: here was started here, not connected: stop it with "
        "%tfserve stop here")
    assert _error_of(ip, capsys, f"connect {far} --name here") == (
        f"%tfserve connect: here names a server started here ({here}); choose another --name")
    assert {r.name for r in registry.read_records()} == {"far", "here"}  # both untouched


def test_connect_error(ip, capsys, runtime_dir) -> None:  # lifecycle.refusals.ConnectError
    assert _error_of(ip, capsys, "connect ftp://x --name a") == (
        "%tfserve connect: 'ftp://x' is not a server address such as http://host:8501")
    assert _error_of(ip, capsys, "connect http://127.0.0.1:8501 --name a --grpc nope") == (
        "%tfserve connect: --grpc 'nope' must be HOST:PORT, such as prod.example:8500")
    port = _closed_port()
    refused = _error_of(ip, capsys, f"connect http://127.0.0.1:{port} --name a")
    assert refused.startswith(f"%tfserve connect: cannot connect to http://127.0.0.1:{port}: "
                              f"cannot reach http://127.0.0.1:{port}: "), refused
    assert registry.read_records() == []


def test_config_error_of_a_name(ip, capsys, runtime_dir) -> None:  # serving.status_errors.ConfigError
    assert _error_of(ip, capsys, "connect http://127.0.0.1:8501 --name .hidden") == (
        "%tfserve connect: invalid server name '.hidden': it names a file, so it may not be "
        "empty, start with '.' or contain '/' (choose one with --name)")
