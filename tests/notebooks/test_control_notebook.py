"""The notebook-control layer as a user meets it: notebooks executed by nbclient in a real kernel.

One notebook walks the whole path (load the extension, start a server, push a second version,
predict against each version and a label, list, stop); the others check that servers follow
their kernel: gone after a shutdown or a killed kernel, still there when detached.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook
from server_process import wait_for

from tfserve_magic.lifecycle import launcher, registry
from tfserve_magic.pids import pid_alive

pytestmark = pytest.mark.notebook


@pytest.fixture
def runtime_dir(isolated_runtime: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own registry (kernels inherit the variable); leftovers stopped afterwards."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    return isolated_runtime


def _client(tmp_path: Path, *sources: str) -> NotebookClient:
    nb = new_notebook(cells=[new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return NotebookClient(nb, kernel_name="python3", timeout=300, startup_timeout=120,
                          resources={"metadata": {"path": str(tmp_path)}})


def _streams(cell: Any, name: str) -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == name)


def _value(cell: Any) -> Any:
    """The JSON a cell printed as its last stdout line."""
    return json.loads(_streams(cell, "stdout").strip().splitlines()[-1])


def _run(client: NotebookClient, index: int) -> Any:
    cell = client.nb.cells[index]
    client.execute_cell(cell, index)
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"cell {index} raised: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    return cell


PUSH_CELL = """\
import tensorflow as tf

class PlusTen(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        return {"y": x + 10.0}

better = PlusTen()
%tfserve push better --name plus"""


def test_control_notebook(runtime_dir: Path, tmp_path: Path, plus_version_builds: Path) -> None:
    base = tmp_path / "plus"
    base.mkdir()
    shutil.copytree(plus_version_builds / "1", base / "1")  # y = x + 1
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "plus" base_path: "{base}" '
        'model_platform: "tensorflow" model_version_policy { all {} } '
        'version_labels { key: "stable" value: 1 } } }\n')

    client = _client(
        tmp_path,
        "%load_ext tfserve_magic\nimport json, sys\nprint(json.dumps('tensorflow' in sys.modules))",
        f"%tfserve start --config {config} --name nb",
        PUSH_CELL,
        "%%predict plus --version 1 -o v1\n[0.0, 1.0]",
        "%%predict plus --version 2 -o v2\n[0.0, 1.0]",
        "%%predict plus --label stable -o st\n[0.0, 1.0]",
        "%%predict plus -o latest\nnp_in = __import__('numpy').float32([0.0, 1.0])\n",
        "print(json.dumps({k: [float(x) for x in globals()[k]] for k in "
        "('v1', 'v2', 'st', 'latest')}))",
        "%tfserve list",
        "%tfserve stop nb",
        "%tfserve list",
    )
    with client.setup_kernel():
        assert _value(_run(client, 0)) is False  # %load_ext did not import TensorFlow

        started = _run(client, 1)
        assert "Started server nb" in _streams(started, "stdout"), _streams(started, "stderr")
        record = registry.find_record("nb")
        assert record is not None and registry.probe(record) is not None
        assert record.owner_pid != os.getpid() and not record.detached  # the kernel owns it

        pushed = _run(client, 2)
        assert "plus version 2 is AVAILABLE" in _streams(pushed, "stdout"), \
            _streams(pushed, "stderr")
        assert sorted(os.listdir(base)) == ["1", "2"]  # no staging folder left behind

        for index in (3, 4, 5):
            cell = _run(client, index)
            assert _streams(cell, "stderr") == "", _streams(cell, "stderr")
        # A cell body that is a statement, not an expression, is refused with a clear message.
        bad = _run(client, 6)
        assert "%%predict" in _streams(bad, "stderr") and "Traceback" not in _streams(bad, "stderr")

        client.nb.cells[6].source = "%%predict plus -o latest\n[0.0, 1.0]"
        _run(client, 6)
        values = _value(_run(client, 7))
        assert values == {"v1": [1.0, 2.0], "v2": [10.0, 11.0], "st": [1.0, 2.0],
                          "latest": [10.0, 11.0]}

        listed = _streams(_run(client, 8), "stdout")
        assert "nb" in listed and "plus" in listed and str(record.rest_api_port) in listed
        assert "alive" in listed

        assert _streams(_run(client, 9), "stdout").strip() == "Stopped nb."
        assert "No servers" in _streams(_run(client, 10), "stdout")
    assert not pid_alive(record.pid)
    assert registry.read_records() == []


def _start_in_kernel(tmp_path: Path, model: Path, *flags: str) -> NotebookClient:
    return _client(tmp_path, "%load_ext tfserve_magic",
                   f"%tfserve start {model} --name k {' '.join(flags)}".strip())


def test_kernel_shutdown_stops_its_servers(runtime_dir: Path, tmp_path: Path,
                                           half_plus_two: Path) -> None:
    client = _start_in_kernel(tmp_path, half_plus_two)
    with client.setup_kernel():
        _run(client, 0)
        started = _run(client, 1)
        assert "Started server k" in _streams(started, "stdout"), _streams(started, "stderr")
        record = registry.find_record("k")
        assert record is not None and registry.probe(record) is not None
        # Another process (notebook) starting the same name gets its own server: the
        # kernel's stays the kernel's (it was shared, and stopped under the other, before).
        other = launcher.launch(launcher.ServerSpec(model_dir=str(half_plus_two), name="k"))
        assert isinstance(other, launcher.Launched), other
        assert (other.handle.name, other.handle.record.requested_name) == ("k-2", "k")
        assert other.handle.record.pid != record.pid
        other.handle.stop()
        # Jupyter's interrupt is SIGINT to the kernel's whole process group; the server runs in
        # its own session, so interrupting a cell does not touch it.
        run_sync(client.km.interrupt_kernel)()
        client.nb.cells.append(new_code_cell("%tfserve list"))
        listed = _streams(_run(client, 2), "stdout")
        assert "alive" in listed and registry.probe(record) is not None
    # Leaving the block shuts the kernel down (a shutdown_request, as Jupyter does).
    wait_for(lambda: not pid_alive(record.pid), 30, what="the server to stop")
    wait_for(lambda: registry.find_record("k") is None, 10, what="the record to go")


def test_killed_kernel_takes_its_servers_along(runtime_dir: Path, tmp_path: Path,
                                               half_plus_two: Path) -> None:
    client = _start_in_kernel(tmp_path, half_plus_two)
    with client.setup_kernel():
        _run(client, 0)
        _run(client, 1)
        record = registry.find_record("k")
        assert record is not None and registry.probe(record) is not None
        kernel_pid = client.km.provisioner.pid
        os.kill(kernel_pid, signal.SIGKILL)  # no atexit: only --exit_with_parent_pid can help
        wait_for(lambda: not pid_alive(record.pid), 30,
                 what="the orphaned server to exit")
    # Its server and its kernel are both gone: the record goes too, at the next look.
    assert launcher.list_servers() == []
    assert not (runtime_dir / "servers" / "k.json").exists()


def test_a_kernel_only_stops_the_servers_it_still_owns(runtime_dir: Path, tmp_path: Path,
                                                       half_plus_two: Path) -> None:
    """Kernel A's server dies; kernel B starts a new one under the same name; when A exits it
    must leave B's server alone."""
    first = _start_in_kernel(tmp_path, half_plus_two)
    second = _start_in_kernel(tmp_path, half_plus_two)
    with first.setup_kernel():
        _run(first, 0)
        _run(first, 1)
        old = registry.find_record("k")
        os.kill(old.pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(old.pid), 30, what="A's server to die")
        with second.setup_kernel():
            _run(second, 0)
            started = _run(second, 1)
            assert "Started server k" in _streams(started, "stdout"), _streams(started, "stderr")
            new = registry.find_record("k")
            assert new.pid != old.pid
            # Leaving the outer block after this one would stop B's server with B; so shut A
            # down first, by hand, while B still runs.
            run_sync(first.km.shutdown_kernel)(now=False)
            assert not run_sync(first.km.is_alive)()
            assert registry.probe(new) is not None, "kernel A stopped kernel B's server"
            assert registry.find_record("k") == new
    wait_for(lambda: not pid_alive(new.pid), 30, what="B's server to stop with B")


def test_detached_server_outlives_its_kernel(runtime_dir: Path, tmp_path: Path,
                                             half_plus_two: Path) -> None:
    client = _start_in_kernel(tmp_path, half_plus_two, "--detach")
    with client.setup_kernel():
        _run(client, 0)
        started = _run(client, 1)
        assert "Started server k" in _streams(started, "stdout"), _streams(started, "stderr")
    record = registry.find_record("k")
    assert record is not None and record.detached
    assert registry.probe(record) is not None  # the kernel is gone, the server still answers
    assert launcher.stop("k") == ["k"]
    wait_for(lambda: not pid_alive(record.pid), 30, what="the server to stop")


def test_notebook_file_round_trip(runtime_dir: Path, tmp_path: Path, half_plus_two: Path) -> None:
    """A saved .ipynb executed end to end, as `jupyter nbconvert --execute` would."""
    nb = new_notebook(cells=[
        new_code_cell("%load_ext tfserve_magic"),
        new_code_cell(f"%tfserve start {half_plus_two}"),
        new_code_cell("%%predict half_plus_two -o y\n[1.0, 2.0]"),
        new_code_cell("print(y.tolist())"),
        new_code_cell("%tfserve stop half_plus_two"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "control.ipynb"
    nbformat.write(nb, path)
    executed = NotebookClient(nbformat.read(path, as_version=4), timeout=300,
                              startup_timeout=120,
                              resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert _streams(executed.cells[3], "stdout").strip() == "[2.5, 3.0]"
    assert _streams(executed.cells[4], "stdout").strip() == "Stopped half_plus_two."
    assert registry.read_records() == []
