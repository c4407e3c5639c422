"""The launcher's gRPC port: %tfserve start/list/status/url report it, ServerHandle exposes it,
and %%predict --grpc uses it; in a real IPython shell against a real server."""

from __future__ import annotations

import grpc
import numpy as np
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from tfserve_magic.lifecycle import launcher, registry


def _run(ip, capsys, line: str) -> tuple[str, str]:
    ip.run_line_magic("tfserve", line)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_launcher_reports_the_grpc_port_and_predict_uses_it(ip, capsys, half_plus_two) -> None:
    out, err = _run(ip, capsys, f"start {half_plus_two}")
    assert err == ""
    record = registry.find_record("half_plus_two")
    assert record is not None and record.grpc_port and "--port=0" in record.argv
    target = f"127.0.0.1:{record.grpc_port}"
    assert f"(gRPC {target})" in out
    handle = launcher.find("half_plus_two")
    assert handle.grpc_target == target and handle.grpc_port == record.grpc_port

    # The official stub answers on the announced port.
    with grpc.insecure_channel(target) as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "half_plus_two"
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request,
                                                                                 timeout=60)
        assert [(s.version, s.state) for s in status.model_version_status] == [(1, 30)]

    out, _ = _run(ip, capsys, "list")
    header, row = out.splitlines()[:2]
    assert "GRPC" in header.split() and str(record.grpc_port) in row.split()
    out, _ = _run(ip, capsys, "status half_plus_two")
    assert out.startswith(f"half_plus_two at {record.url} (gRPC {target})")
    out, _ = _run(ip, capsys, "url half_plus_two")
    assert f"gRPC: {target}" in out

    ip.run_cell_magic("predict", "half_plus_two --grpc -o y", "[1.0, 2.0, 5.0]")
    captured = capsys.readouterr()
    assert np.allclose(ip.user_ns["y"], [2.5, 3.0, 4.5]) and ip.user_ns["y"].dtype == np.float32
    assert "(half_plus_two, latest, gRPC, " in captured.out

    ip.run_cell_magic("predict", "half_plus_two --grpc --version 7", "[1.0]")
    assert capsys.readouterr().err.strip() == (
        "%%predict half_plus_two: Servable not found for request: "
        "Specific(half_plus_two, 7) (NOT_FOUND)")



def test_the_readme_grpc_example_runs_as_written(ip, capsys, tmp_path, monkeypatch) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### gRPC API"):]
    section = section[:section.index("\n### ", 5)]
    cells = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(cells) == 2
    monkeypatch.chdir(tmp_path)
    for cell in cells:
        result = ip.run_cell(cell)
        assert result.success, result.error_in_exec or result.error_before_exec
    assert "[2.5 3.  4.5]" in capsys.readouterr().out
