"""Launcher edge cases on real server processes: deadlines, interrupted starts, stale records
whose pid now belongs to another program, and the typed results the magic renders."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from server_process import wait_for

from tfserve_magic.lifecycle import launcher, registry
from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.pids import pid_alive
from tfserve_magic.status import VersionState


def _processes_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line mentions ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if text.encode() in cmdline and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def test_handshake_deadline_gives_timed_out_and_no_process(runtime_dir: Path,
                                                           half_plus_two: Path) -> None:
    result = launcher.launch(launcher.ServerSpec(model_dir=str(half_plus_two)), timeout=0.001)
    assert isinstance(result, launcher.TimedOut), result
    assert result.name == "half_plus_two"
    assert registry.read_records() == []
    assert _processes_mentioning(str(runtime_dir)) == []


def test_start_timeout_is_rendered_by_the_magic(ip, capsys, half_plus_two: Path) -> None:
    ip.run_line_magic("tfserve", f"start {half_plus_two} --timeout 0.001")
    err = capsys.readouterr().err
    assert "Server half_plus_two was not ready within 0 s (raise --timeout" in err
    assert "Traceback" not in err


_INTERRUPTIBLE_START = """
import sys
from tfserve_magic.lifecycle import launcher
spec = launcher.ServerSpec(model_dir=sys.argv[1], detach=True, extra_flags=(
    "--max_num_load_retries=5", "--load_retry_interval_micros=600000000"))
try:
    result = launcher.launch(spec, timeout=300)
except KeyboardInterrupt:
    print("interrupted", flush=True)
else:
    print("returned", result, flush=True)
"""


def test_interrupted_start_leaves_nothing_behind(runtime_dir: Path,
                                                 unloadable_model: Path) -> None:
    # The start runs in a child of its own, so the interrupt can only ever reach that child.
    # Its model fails to load and is retried only after 10 minutes: the launcher is certainly
    # still waiting for readiness when the interrupt comes, as a user's interrupted cell would be.
    # The server is detached (it does not exit with the child): only the launcher's own
    # clean-up can stop it.
    child = subprocess.Popen([sys.executable, "-c", _INTERRUPTIBLE_START, str(unloadable_model)],
                             stdout=subprocess.PIPE, text=True)
    pid = None
    try:
        record = wait_for(lambda: registry.find_record("unloadable"), 120, interval=0.01,
                          what="the record")
        pid = record.pid
        wait_for(lambda: "cannot be initialised" in Path(record.log_file).read_text(), 120,
                 what="the first failed load")
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=60)
        assert out.strip() == "interrupted"
        assert not pid_alive(pid)
        assert registry.read_records() == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def unrelated_process():
    """A live process that is not a model server (it waits on its stdin)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    yield proc
    proc.stdin.close()
    proc.wait(30)


def _stale_record(name: str, pid: int, port: int) -> ServerRecord:
    # ``port`` refuses connections: the record points at a pid that is alive but no server.
    return ServerRecord(name=name, pid=pid, host="127.0.0.1", rest_api_port=port,
                        url=f"http://127.0.0.1:{port}", models=(name,))


def test_stale_record_with_a_reused_pid_is_replaced_without_killing_it(
        runtime_dir: Path, half_plus_two: Path, unrelated_process: subprocess.Popen,
        closed_port: int) -> None:
    registry.write_record(_stale_record("half_plus_two", unrelated_process.pid, closed_port))
    result = launcher.launch(launcher.ServerSpec(model_dir=str(half_plus_two)), timeout=120)
    assert isinstance(result, launcher.Launched), result
    assert result.handle.record.pid != unrelated_process.pid
    assert unrelated_process.poll() is None  # the other program was not signalled
    launcher.stop("half_plus_two")


def test_stop_of_a_stale_record_only_forgets_it(runtime_dir: Path,
                                                unrelated_process: subprocess.Popen,
                                                closed_port: int) -> None:
    registry.write_record(_stale_record("ghost", unrelated_process.pid, closed_port))
    [info] = launcher.list_servers()
    assert info.record.name == "ghost" and not info.alive
    assert launcher.stop("ghost") == ["ghost"]
    assert registry.read_records() == []
    assert unrelated_process.poll() is None


def test_logs_and_stop_name_what_is_missing(ip, capsys) -> None:
    ip.run_line_magic("tfserve", "logs nope")
    assert "%tfserve logs: no server named nope" in capsys.readouterr().err
    ip.run_line_magic("tfserve", "stop nope")
    assert "%tfserve stop: no server named nope" in capsys.readouterr().err
    ip.run_line_magic("tfserve", "stop")
    assert "none is running" in capsys.readouterr().err
    ip.run_line_magic("tfserve", "list")
    assert "No servers" in capsys.readouterr().out


def test_python_start_raises_with_the_servers_words(runtime_dir: Path, tmp_path: Path,
                                                    half_plus_two: Path) -> None:
    from models import corrupt_copy

    base = tmp_path / "broken"
    corrupt_copy(str(half_plus_two / "1"), str(base / "1"))
    with pytest.raises(launcher.LaunchError) as caught:
        launcher.start(str(base))
    assert "Model broken failed to load: version 1" in str(caught.value)
    assert isinstance(caught.value.result, launcher.Failed)
    log = runtime_dir / "servers" / "broken.log"
    assert f"--- server log (last lines of {log}) ---" in str(caught.value)
    assert _processes_mentioning(str(runtime_dir)) == []
    # Only the log stays (and the message says where); not the config written for the start.
    assert sorted(p.name for p in (runtime_dir / "servers").glob("broken*")) == ["broken.log"]


def test_a_killed_server_leaves_no_defunct_child(runtime_dir: Path, half_plus_two: Path) -> None:
    handle = launcher.start(str(half_plus_two))
    pid = handle.record.pid
    os.kill(pid, signal.SIGKILL)  # killed from outside: no stop() of ours reaps it
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 30,
             what="the killed server to be reaped (no <defunct> entry)")
    launcher.stop(handle.name)  # forgets the record; signals nothing (the pid is not ours now)


def test_a_server_that_refuses_its_flags_fails_at_once(ip, capsys, half_plus_two: Path) -> None:
    ip.run_line_magic("tfserve", f"start {half_plus_two} --bogus_flag=1")
    err = capsys.readouterr().err
    assert ("Could not start server half_plus_two: The model server exited (code 1) before it "
            "started.") in err
    assert "unrecognized arguments: --bogus_flag=1" in err  # the server's own words
    assert registry.read_records() == []


@pytest.mark.parametrize(("config_text", "message"), [
    ('model_config_list { config { name: "a" base_path: "/no/such/a" } }',
     "Could not start server cfg: Model a: Could not find base path /no/such/a"),
    ('model_config_list { config { name: "a" base_pat: "/x" } }',
     "Error parsing text-format tensorflow.serving.ModelServerConfig"),
    ('model_config_list { config { name: "a" base_path: "relative/a" } }',
     "Expected model a to have an absolute path or URI"),
    (None, "Could not read model config file"),
])
def test_bad_config_files_are_refused_with_tf_servings_words(ip, capsys, tmp_path: Path,
                                                             config_text, message) -> None:
    config = tmp_path / "cfg.config"
    if config_text is not None:
        config.write_text(config_text)
    ip.run_line_magic("tfserve", f"start --config {config}")
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert registry.read_records() == []


def test_a_name_that_cannot_name_a_file_is_refused(ip, capsys, half_plus_two: Path) -> None:
    ip.run_line_magic("tfserve", f"start {half_plus_two} --name a/b")
    err = capsys.readouterr().err
    assert "Could not start server a/b: invalid server name 'a/b'" in err
    assert registry.read_records() == []


def test_label_and_policy_edits_survive_a_restart(ip, capsys, tmp_path: Path,
                                                  plus_version_builds: Path) -> None:
    import shutil

    from tfserve_magic.serving.models.config import load_model_config_file, write_model_config_file
    from tfserve_magic.serving.models.policy import VersionPolicy

    base = tmp_path / "plus"
    for version in ("1", "2"):
        shutil.copytree(plus_version_builds / version, base / version)
    ip.run_line_magic("tfserve", f"start {base}")
    record = registry.find_record("plus")
    [entry] = load_model_config_file(record.model_config_file)
    assert entry.labels == {} and entry.policy == VersionPolicy.latest(1)
    # A label move is an edit of the file the server runs from (what the dashboard does).
    write_model_config_file(record.model_config_file, [
        dataclasses.replace(entry, policy=VersionPolicy.all(), labels={"stable": 1})])
    ip.run_line_magic("tfserve", "reload plus")
    ip.run_line_magic("tfserve", "stop plus")
    capsys.readouterr()

    ip.run_line_magic("tfserve", f"start {base}")
    out, err = capsys.readouterr()
    assert "Started server plus" in out, err
    # Both versions are loaded when start returns: the label names version 1, not the first
    # version to become AVAILABLE.
    for name in ("y", "z"):
        ip.user_ns.pop(name, None)  # a failed request leaves them alone: never read old values
    ip.run_cell_magic("predict", "plus --label stable -o y", "[0.0]")
    ip.run_cell_magic("predict", "plus --version 2 -o z", "[0.0]")
    err = capsys.readouterr().err
    assert err == "", err
    assert (ip.user_ns["y"].tolist(), ip.user_ns["z"].tolist()) == ([1.0], [2.0])

    # Another folder under the same name is a new model: its config starts afresh.
    other = tmp_path / "other" / "plus"
    shutil.copytree(plus_version_builds / "3", other / "3")
    ip.run_line_magic("tfserve", "stop plus")
    ip.run_line_magic("tfserve", f"start {other}")
    [fresh] = load_model_config_file(registry.find_record("plus").model_config_file)
    assert fresh.base_path == str(other) and fresh.labels == {}


def test_home_relative_model_dir(ip, capsys, tmp_path: Path, half_plus_two: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(half_plus_two, tmp_path / "hp")
    ip.run_line_magic("tfserve", "start ~/hp")
    out, err = capsys.readouterr()
    assert "Started server hp" in out, err
    [entry] = launcher.list_servers()
    assert entry.alive and entry.description.models[0].base_path == str(tmp_path / "hp")


def test_unresponsive_server_is_replaced(ip, capsys, half_plus_two: Path) -> None:
    ip.run_line_magic("tfserve", f"start {half_plus_two}")
    first = registry.find_record("half_plus_two")
    os.kill(first.pid, signal.SIGSTOP)  # alive, but its port no longer answers
    try:
        assert registry.probe(first, timeout=0.5) is None
        ip.run_line_magic("tfserve", f"start {half_plus_two}")
        out, err = capsys.readouterr()
        assert "Started server half_plus_two" in out, err
        second = registry.find_record("half_plus_two")
        assert second.pid != first.pid and registry.probe(second) is not None
        assert not pid_alive(first.pid)  # the stuck one was stopped, not leaked
    finally:
        if pid_alive(first.pid):
            os.kill(first.pid, signal.SIGKILL)


def test_poll_zero_means_changes_wait_for_reload(ip, capsys, tmp_path: Path,
                                                 plus_version_builds: Path) -> None:
    import shutil

    base = tmp_path / "plus"
    shutil.copytree(plus_version_builds / "1", base / "1")
    ip.run_line_magic("tfserve", f"start {base} --poll 0.4")
    assert "--file_system_poll_wait_seconds=1" in registry.find_record("plus").argv  # not 0
    ip.run_line_magic("tfserve", "stop plus")
    ip.run_line_magic("tfserve", f"start {base} --poll 0")
    handle = launcher.find("plus")
    assert "--file_system_poll_wait_seconds=0" in handle.record.argv
    shutil.copytree(plus_version_builds / "2", base / "2")
    # Three default poll periods pass without a rescan: version 2 is not served yet.
    with pytest.raises(TimeoutError):
        wait_for(lambda: any(s.version == 2 for s in handle.status()), 3,
                 what="version 2 before the reload")
    ip.run_cell_magic("predict", "plus -o y", "[0.0]")
    assert ip.user_ns["y"].tolist() == [1.0]
    ip.run_line_magic("tfserve", "reload plus")
    wait_for(lambda: handle.status()[0].state is VersionState.AVAILABLE and handle.status()[0].version == 2,
             60, what="version 2 after the reload")
    capsys.readouterr()


def test_a_restart_keeps_the_previous_log(ip, capsys, half_plus_two: Path) -> None:
    ip.run_line_magic("tfserve", f"start {half_plus_two}")
    first = registry.find_record("half_plus_two")
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(first.pid), 30, what="the killed server to go")
    ip.run_line_magic("tfserve", f"start {half_plus_two}")
    second = registry.find_record("half_plus_two")
    assert second.log_file == first.log_file
    previous = Path(first.log_file + ".1").read_text()
    assert "Successfully loaded servable version {name: half_plus_two version: 1}" in previous
    capsys.readouterr()


@pytest.mark.parametrize(("options", "message"), [
    ("--gpu-memory-fraction 1.5", "--per_process_gpu_memory_fraction must be between 0 and 1"),
    ("--gpu {n}", "--gpu_devices names GPU {n}, but TensorFlow sees {n} GPU(s)"),
])
def test_gpu_options_reach_the_server_and_its_refusal_is_shown(ip, capsys, runtime_dir: Path,
                                                               half_plus_two: Path, gpu_count: int,
                                                               options, message) -> None:
    # GPU number n (counting from 0) is one more than this machine has, GPU or not.
    options, message = options.format(n=gpu_count), message.format(n=gpu_count)
    ip.run_line_magic("tfserve", f"start {half_plus_two} {options}")
    err = capsys.readouterr().err
    assert "Could not start server half_plus_two" in err and message in err
    assert registry.read_records() == []
    assert _processes_mentioning(str(runtime_dir)) == []


def test_simultaneous_starts_of_one_name_give_one_server(runtime_dir: Path,
                                                         half_plus_two: Path) -> None:
    results: list[launcher.StartResult] = []
    spec = launcher.ServerSpec(model_dir=str(half_plus_two))
    threads = [threading.Thread(target=lambda: results.append(launcher.launch(spec, 120)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(150)
    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["Launched", "Reused"], results
    assert len({r.handle.record.pid for r in results}) == 1
    assert len(_processes_mentioning(str(runtime_dir))) == 1
