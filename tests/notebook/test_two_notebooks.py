"""Two notebooks, each in its own real kernel, driven through the magics as people do: a server
belongs to the notebook that started it. The same name in both does not collide (each means its
own), ``%tfserve list`` says whose each is, and one notebook stops another's server only with
``--force``. A remote connection ends with its kernel.

Jupyter tells each kernel its notebook in ``JPY_SESSION_NAME``; the kernels here get it the
same way (a JupyterLab run of two notebooks is in tests/browser/test_run_all_notebooks.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

from tfserve_magic.lifecycle import registry
from tfserve_magic.pids import pid_alive


@contextmanager
def _notebook_kernel(notebook: str, runtime: Path) -> Iterator[object]:
    env = {**os.environ, "JPY_SESSION_NAME": notebook, "TFSERVE_MAGIC_RUNTIME_DIR": str(runtime)}
    manager, client = start_new_kernel(kernel_name="python3", startup_timeout=120, env=env)
    try:
        _run(client, "%load_ext tfserve_magic")
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _run(client, code: str) -> tuple[str, str]:
    """What the cell printed: (stdout, stderr); an error output fails the test."""
    streams = {"stdout": "", "stderr": ""}
    errors = []

    def hook(message) -> None:
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            streams[content["name"]] += content["text"]
        elif kind == "error":
            errors.append(f"{content['ename']}: {content['evalue']}")

    client.execute_interactive(code, output_hook=hook, timeout=300)
    assert not errors, errors
    return streams["stdout"], streams["stderr"]


def _rows(listing: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in listing.splitlines()[1:]}


def test_same_name_in_two_notebooks_and_stopping_anothers(tmp_path: Path,
                                                          plus_version_builds: Path) -> None:
    runtime = tmp_path / "runtime"
    first, second = tmp_path / "a" / "digits", tmp_path / "b" / "digits"
    shutil.copytree(plus_version_builds / "1", first / "1")   # y = x + 1
    shutil.copytree(plus_version_builds / "2", second / "2")  # y = x + 2
    # Jupyter Server 2 names the notebook by its absolute path; it is shown as the person
    # knows it, relative to the folder the kernel runs in.
    with _notebook_kernel(str(Path.cwd() / "01_quickstart.ipynb"), runtime) as a, \
            _notebook_kernel("lessons/02_mine.ipynb", runtime) as b:
        out, err = _run(a, f"%tfserve start {first}")
        assert out.startswith("Started server digits "), (out, err)
        # Two folders named digits, two notebooks: no collision, each gets its own server.
        out, err = _run(b, f"%tfserve start {second}")
        assert out.startswith("Started server digits-2 "), (out, err)
        assert ("The name digits belongs to 01_quickstart.ipynb's server, so this one is "
                "digits-2; in this notebook digits means this one.") in out
        out, _ = _run(b, f"%tfserve start {second}")  # run again: this notebook's own, reused
        assert out.startswith("Reusing server digits-2 "), out

        rows = _rows(_run(b, "%tfserve list")[0])
        assert rows["digits"][7:] == ["01_quickstart.ipynb"], rows
        assert rows["digits-2"][7:] == ["this", "notebook"], rows
        assert _rows(_run(a, "%tfserve list")[0])["digits-2"][7:] == ["lessons/02_mine.ipynb"]

        # In each notebook "digits" means its own: predictions and status.
        out, _ = _run(b, "%%predict digits -o y\n[1.0]\n")
        assert out.startswith("[3.]"), out
        out, _ = _run(a, "%%predict digits -o y\n[1.0]\n")
        assert out.startswith("[2.]"), out
        assert _run(b, "%tfserve status digits")[0].startswith("digits-2 at ")

        # b stops its own, then is refused a's without --force, which keeps serving.
        assert _run(b, "%tfserve stop digits")[0] == "Stopped digits-2.\n"
        out, err = _run(b, "%tfserve stop digits")
        owner_pid = registry.find_record("digits").owner_pid
        assert out == "" and err == (
            f"%tfserve stop: digits belongs to 01_quickstart.ipynb (kernel pid {owner_pid}, "
            "still running): stopping it takes that notebook's server away. Stop it there, or "
            "add --force (force=True in Python) to stop it anyway.\n"), err
        out, err = _run(b, "%tfserve stop --all")
        assert out == ("Stopped nothing (no servers).\nKept digits (01_quickstart.ipynb's): "
                       "other notebooks' servers stop with --force.\n"), (out, err)
        out, _ = _run(a, "%%predict digits -o y\n[1.0]\n")
        assert out.startswith("[2.]"), out
        pid = registry.find_record("digits").pid
        assert _run(b, "%tfserve stop digits --force")[0] == "Stopped digits.\n"
        assert not pid_alive(pid)
        assert _run(a, "%tfserve list")[0].startswith("No servers.")


def test_a_remote_connection_ends_with_its_kernel(tmp_path: Path,
                                                  plus_version_builds: Path) -> None:
    runtime = tmp_path / "runtime"
    base = tmp_path / "plus"
    shutil.copytree(plus_version_builds / "1", base / "1")
    with _notebook_kernel("serving.ipynb", runtime) as serving:
        out, err = _run(serving, f"%tfserve start {base}")
        assert out.startswith("Started server plus "), (out, err)
        url = registry.find_record("plus").url
        with _notebook_kernel("03_deploy.ipynb", runtime) as connecting:
            out, err = _run(connecting, f"%tfserve connect {url} --name prod")
            assert out.startswith("Connected prod:"), (out, err)
            rows = _rows(_run(serving, "%tfserve list")[0])
            assert rows["prod"][7:] == ["03_deploy.ipynb", "remote", url], rows
        # Its kernel is gone (a restart, a shutdown): so is the connection.
        listing = _run(serving, "%tfserve list")[0]
        assert "prod" not in _rows(listing), listing
        assert registry.find_record("plus") is not None and registry.find_record("prod") is None
        _, err = _run(serving, "%tfserve disconnect prod")
        assert err == "%tfserve disconnect: no server named prod (see %tfserve list)\n", err


@pytest.fixture(autouse=True)
def _runtime_of_this_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # This process reads the same registry as the kernels.
    monkeypatch.setenv("TFSERVE_MAGIC_RUNTIME_DIR", str(tmp_path / "runtime"))
