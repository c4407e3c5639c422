"""``%tfserve connect`` against a second server started separately, as a remote would be: it is
listed as remote, status, signatures, %%predict and the dashboard work against it, ``stop``
refuses it (it keeps serving) and ``disconnect`` forgets it; every refusal says why."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from server_process import RunningServer, start_server, write_server_config

from tfserve_magic.lifecycle import launcher, registry
from tfserve_magic.lifecycle.refusals import ConnectError
from tfserve_magic.lifecycle.remote import connect, disconnect


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory,
           plus_version_builds: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("remote")
    base = root / "plus"
    for version in (1, 2):
        shutil.copytree(plus_version_builds / str(version), base / str(version))
    config, monitoring = write_server_config(root, {"plus": (base, "model_version_policy { all {} }")})
    server = start_server(f"--model_config_file={config}",
                          f"--monitoring_config_file={monitoring}", log_dir=root)
    try:
        server.wait_state("plus", 1)
        server.wait_state("plus", 2)
        yield server
    finally:
        server.stop()


def run(ip, capsys, line: str) -> tuple[str, str]:
    ip.run_line_magic("tfserve", line)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_connected_server_works_like_a_local_one_until_disconnected(
        ip, capsys, tmp_path: Path, remote: RunningServer) -> None:
    out, err = run(ip, capsys, f"connect {remote.url}/ --name prod")
    assert out.strip() == (f"Connected prod: {remote.url}, serving plus. It is not ours to stop; "
                           "%tfserve disconnect prod forgets it."), err
    record = registry.find_record("prod")
    assert record is not None and record.remote and record.proxy_allowed and record.pid == 0

    out, _ = run(ip, capsys, "list")
    row = next(line for line in out.splitlines() if line.startswith("prod"))
    assert row.split()[1:3] == ["-", str(remote.port)]
    assert "alive" in row and row.endswith(f"remote {remote.url}")

    out, _ = run(ip, capsys, "status prod")
    assert out.startswith(f"prod at {remote.url}\nplus  (all {{}};")
    assert "2        AVAILABLE" in out and "1        AVAILABLE" in out
    out, _ = run(ip, capsys, "signatures plus")
    assert "in  x: float32" in out and "out y: float32" in out

    ip.run_cell_magic("predict", "plus --version 1 -o p1", "[1.0, 2.0]")
    ip.run_cell_magic("predict", "plus --server prod -o p2", "[1.0, 2.0]")
    capsys.readouterr()
    assert np.allclose(ip.user_ns["p1"], [2.0, 3.0]) and np.allclose(ip.user_ns["p2"], [3.0, 4.0])

    from tfserve_magic.notebook.widgets import Dashboard

    dash = Dashboard(launcher.find("prod"), autostart=False)
    try:
        versions = dash.panels["plus"].versions.value
        assert "data-version='2'" in versions and "AVAILABLE" in versions
        assert ">x</td>" in dash.panels["plus"].signatures.value
    finally:
        dash.close()

    _, err = run(ip, capsys, "stop prod")
    assert err.strip() == (f"%tfserve stop: prod is a remote server ({remote.url}, connected "
                           "with %tfserve connect): it is not ours to stop. %tfserve disconnect "
                           "prod forgets it.")
    out, _ = run(ip, capsys, "stop --all")
    assert out.strip() == "Stopped nothing (no servers)."
    assert remote.states("plus") == {1: "AVAILABLE", 2: "AVAILABLE"}
    assert registry.find_record("prod") is not None
    _, err = run(ip, capsys, "logs prod")
    assert f"prod is a remote server ({remote.url}): its log is where it runs" in err
    _, err = run(ip, capsys, f"start {tmp_path} --name prod")
    assert err.strip() == (f"Could not start server prod: prod names the remote server "
                           f"{remote.url} (%tfserve connect); choose another --name")

    out, _ = run(ip, capsys, "disconnect prod")
    assert out.strip() == f"Disconnected prod ({remote.url}); it keeps serving there."
    assert registry.find_record("prod") is None
    assert remote.states("plus") == {1: "AVAILABLE", 2: "AVAILABLE"}
    out, _ = run(ip, capsys, "list")
    assert out.strip() == "No servers. Start one with %tfserve start MODEL_DIR."


def test_connect_and_disconnect_refusals(ip, capsys, runtime_dir: Path,
                                         remote: RunningServer) -> None:
    cases = {
        "connect ftp://host:21 --name x":
            "%tfserve connect: 'ftp://host:21' is not a server address such as http://host:8501",
        "connect http://127.0.0.1:1 --name x": "%tfserve connect: cannot connect to "
                                               "http://127.0.0.1:1: cannot reach",
        f"connect {remote.url} --name x --grpc nohost":
            "%tfserve connect: --grpc 'nohost' must be HOST:PORT",
        f"connect {remote.url} --name .x": "%tfserve connect: invalid server name '.x'",
        "disconnect nosuch": "%tfserve disconnect: no server named nosuch (see %tfserve list)",
    }
    for line, message in cases.items():
        _, err = run(ip, capsys, line)
        assert err.startswith(message), (line, err)
    assert registry.read_records() == []

    registry.write_record(registry.ServerRecord(  # a server this user started here
        name="local", pid=remote.pid, host="127.0.0.1", rest_api_port=remote.port,
        url=remote.url, models=("plus",), started_at=time.time()))
    _, err = run(ip, capsys, f"connect {remote.url} --name local")
    assert err.strip() == (f"%tfserve connect: local names a server started here ({remote.url}); "
                           "choose another --name")
    _, err = run(ip, capsys, "disconnect local")
    assert err.strip() == ("%tfserve disconnect: local was started here, not connected: stop it "
                           "with %tfserve stop local")
    registry.remove_record("local")


def test_python_api_connection_is_not_proxied_and_reconnects(runtime_dir: Path,
                                                             remote: RunningServer) -> None:
    record = connect(remote.url, "api", grpc="127.0.0.1:8500")
    assert not record.proxy_allowed and record.grpc_target == "127.0.0.1:8500"
    again = connect(remote.url, "api", from_kernel=True)
    assert again.proxy_allowed and again.grpc_target is None
    assert [r.name for r in registry.read_records()] == ["api"]
    assert disconnect("api") == remote.url


def test_over_grpc_predict_and_a_label_moved_by_the_reload_rpc(ip, capsys,
                                                               remote: RunningServer) -> None:
    from tfserve_magic.client import Client
    from tfserve_magic.notebook.widgets import Dashboard
    from tfserve_magic.operations.labels import LabelError, move_label

    out, err = run(ip, capsys, f"connect {remote.url} --grpc {remote.grpc_target} --name prod "
                               f"--secret {remote.secret}")
    assert f"Connected prod: {remote.url} (gRPC {remote.grpc_target}), serving plus." in out, err
    out, _ = run(ip, capsys, "list")
    assert f"{remote.port}  {remote.grpc_target}  plus" in out

    ip.run_cell_magic("predict", "plus --server prod --grpc --version 2 -o p", "[1.0, 2.0]")
    out = capsys.readouterr().out
    assert "gRPC" in out and np.allclose(ip.user_ns["p"], [3.0, 4.0])

    handle = launcher.find("prod")
    config_file = handle.client.server_info().model_config_file
    with open(config_file, encoding="utf-8") as on_disk:
        before = on_disk.read()
    dash = Dashboard(handle, autostart=False)
    try:
        panel = dash.panels["plus"]
        panel.label_name.value, panel.label_version.value = "stable", 2
        panel.move.click()  # the dashboard's "Move label" button
        assert "plus: label 'stable' now points to version 2." in str(dash.output.outputs)
    finally:
        dash.close()
    answer = Client(remote.url).predict("plus", np.array([1.0], np.float32), label="stable")
    assert np.allclose(answer, [3.0])  # version 2: x + 2
    with open(config_file, encoding="utf-8") as on_disk:
        assert on_disk.read() == before  # moved by HandleReloadConfigRequest, not a file edit

    assert move_label(handle.client, "plus", "canary", 1, grpc=handle.grpc_target) == {
        "stable": 2, "canary": 1}
    with pytest.raises(LabelError) as refused:
        move_label(handle.client, "plus", "stable", 7, grpc=handle.grpc_target)
    assert str(refused.value) == ("Request to assign label to version 7 of model plus, which is "
                                  "not currently available for inference")
    run(ip, capsys, "disconnect prod")


def test_an_answer_that_is_not_a_description_is_refused_with_the_reason(runtime_dir: Path) -> None:
    import http.server
    import threading

    class NotAModelServer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"ok": true}'  # JSON, but no models: some other service on that port
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotAModelServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(ConnectError, match=re.escape(
                f"cannot connect to {url}: not a tfserve_magic server description")):
            connect(url, "other")
        assert registry.read_records() == []
    finally:
        server.shutdown()
        server.server_close()
