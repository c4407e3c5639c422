"""How long a start takes and how much memory servers hold: the targets of issue 27 that are not
about requests, printed with their ratios.

* ``%tfserve start`` to AVAILABLE for a tiny model: the first start in a kernel (a new process
  imports TensorFlow's runtime) and a later one (it adopts the warm spare), through the launcher
  the magic uses, with the server's CPU time beside the wall time (this machine is shared);
  four more first starts give a median (this virtual machine's speed drifts by a fifth).
* An idle server with a tiny model: resident (RSS), its own (anonymous pages) and its
  proportional share (PSS: TensorFlow's library pages are shared by every process that maps
  them, so RSS counts them once per process while the machine, and a Binder pod's memory cgroup,
  hold them once).
* Every teaching notebook run top to bottom by nbclient, the kernel and every process it started
  sampled four times a second, against Binder's 2 GB: the peak of their own memory summed plus
  the largest file-backed share once (TensorFlow's library, mapped by all of them, is held once
  by the machine and by a pod's memory cgroup: the figure that counts), beside the summed PSS
  (lower here, where other jobs' processes share the library too) and the summed RSS (which
  counts the library once per process).
* Floors, from bare processes: the CPU of an interpreter that only imports TensorFlow's runtime
  as the server's loader does, and the memory of one that only loads TensorFlow's native
  library.

    python benchmarks/startup.py [--no-notebooks]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BINDER_MB = 2048.0
_TICK = threading.Event()  # never set: wait(interval) paces the sampling loops


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    own_mb: float  # anonymous pages: held by this process alone
    pss_mb: float


def memory(pid: int) -> Memory:
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                fields[parts[0].rstrip(":")] = int(parts[1])
    return Memory(fields.get("Rss", 0) / 1024, fields.get("Anonymous", 0) / 1024,
                  fields.get("Pss", 0) / 1024)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settled(pid: int, deadline: float = 120.0) -> None:
    """Until the process stops using CPU (a spare done importing), with a deadline."""
    last, until = -1.0, time.monotonic() + deadline
    while time.monotonic() < until:
        used = cpu_seconds(pid)
        if used == last:
            return
        last = used
        _TICK.wait(1.0)


@dataclass(frozen=True)
class Starts:
    cold_s: list[float]  # first starts (a new process each), the first in a kernel first
    cold_cpu_s: list[float]
    warm_s: float
    idle: Memory
    spare: Memory


@dataclass(frozen=True)
class Floors:
    """What no server built on TensorFlow's runtime can go under, measured in bare processes:
    the CPU of an interpreter that only imports that runtime (as the server's loader does), and
    the memory of one that only loads TensorFlow's native library (no Python of TensorFlow's)."""

    import_cpu_s: float
    library: Memory


_FLOOR_SCRIPT = """
import ctypes, importlib.util, os, sys, time
if sys.argv[1] == "import":
    from tfserve_magic.serving.models import loader
    print(time.process_time())
else:
    folder = importlib.util.find_spec("tensorflow").submodule_search_locations[0]
    ctypes.CDLL(os.path.join(folder, "python", "lib_pywrap_tensorflow_common.so"),
                mode=os.RTLD_NOW | os.RTLD_GLOBAL)
    print(os.getpid())
    sys.stdout.flush()
    sys.stdin.readline()
"""


def measure_floors() -> Floors:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", _FLOOR_SCRIPT, "import"], env=env, check=True,
                          capture_output=True, text=True)
    with subprocess.Popen([sys.executable, "-c", _FLOOR_SCRIPT, "library"], env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as bare:
        assert bare.stdin is not None and bare.stdout is not None
        library = memory(int(bare.stdout.readline()))
        bare.stdin.write("\n")
        bare.stdin.flush()
    return Floors(float(done.stdout.split()[-1]), library)


def measure_starts(tiny_model: str, cold_starts: int = 5) -> Starts:
    """A first start and a later one in this process, as a kernel makes them; then more first
    starts (no spare: a new process each), for a median on a machine whose speed drifts."""
    os.environ["TFSERVE_MAGIC_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="tfserve-bench-")
    from tfserve_magic.lifecycle import launcher, spare

    try:
        first = launcher.launch(launcher.ServerSpec(model_dir=tiny_model, name="first",
                                                    spare=True))
        assert isinstance(first, launcher.Launched), first
        cold_cpu = cpu_seconds(first.handle.record.pid)
        warm = spare.current()
        assert warm is not None
        _settled(warm.pid)
        spare_memory = memory(warm.pid)
        later = launcher.launch(launcher.ServerSpec(model_dir=tiny_model, name="later",
                                                    spare=True))
        assert isinstance(later, launcher.Launched), later
        for _ in range(20):
            first.handle.predict(None, [1.0, 2.0])
        _settled(first.handle.record.pid, 10.0)
        idle = memory(first.handle.record.pid)
        launcher.stop(all=True)
        spare.discard()
        colds, cpus = [first.seconds], [cold_cpu]
        for turn in range(cold_starts - 1):
            again = launcher.launch(launcher.ServerSpec(model_dir=tiny_model,
                                                        name=f"cold{turn}", spare=False))
            assert isinstance(again, launcher.Launched), again
            colds.append(again.seconds)
            cpus.append(cpu_seconds(again.handle.record.pid))
            launcher.stop(all=True)
        return Starts(colds, cpus, later.seconds, idle, spare_memory)
    finally:
        launcher.stop(all=True)
        spare.discard()


def _tree(root: int) -> list[int]:
    """``root`` and every process below it (servers run in their own sessions, but they are
    still the kernel's children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass(frozen=True)
class Peak:
    notebook: str
    held_mb: float  # own memory summed, plus the largest file-backed resident set once
    pss_mb: float
    rss_mb: float
    processes: int
    seconds: float
    error: str = ""


def notebook_peak(path: Path) -> Peak:
    """Run one notebook top to bottom in a fresh folder; the peak memory of its process tree."""
    import nbformat
    from nbclient import NotebookClient

    folder = Path(tempfile.mkdtemp(prefix="tfserve-nb-"))
    shutil.copy(path, folder / path.name)
    notebook = nbformat.read(folder / path.name, as_version=4)
    client = NotebookClient(notebook, kernel_name="python3", timeout=900, startup_timeout=180,
                            resources={"metadata": {"path": str(folder)}})
    peak = {"held": 0.0, "pss": 0.0, "rss": 0.0, "count": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            kernel = getattr(getattr(client.km, "provisioner", None), "process", None)
            if kernel is not None:
                own = pss = rss = shared = 0.0
                pids = _tree(kernel.pid)
                for pid in pids:
                    try:
                        used = memory(pid)
                    except OSError:
                        continue
                    own, pss, rss = own + used.own_mb, pss + used.pss_mb, rss + used.rss_mb
                    shared = max(shared, used.rss_mb - used.own_mb)
                if own + shared > peak["held"]:
                    peak.update(held=own + shared, count=len(pids))
                peak["pss"], peak["rss"] = max(peak["pss"], pss), max(peak["rss"], rss)
            done.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    error = ""
    sampler.start()
    try:
        client.execute()
    except Exception as exc:  # a notebook that fails still tells its peak so far
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc) else ''}"
    finally:
        done.set()
        sampler.join()
        shutil.rmtree(folder, ignore_errors=True)
    return Peak(path.name, peak["held"], peak["pss"], peak["rss"], int(peak["count"]),
                time.monotonic() - started, error)


def report(starts: Starts, floors: Floors, peaks: list[Peak]) -> None:
    print(f"Starts and memory (load average {os.getloadavg()[0]:.1f}):")

    def line(name: str, measured: float, goal: float, unit: str) -> None:
        verdict = "met" if measured <= goal else "NOT met"
        print(f"- {name}: {measured:.2f} {unit}, {measured / goal:.2f}x the target "
              f"{goal:g} {unit} -> {verdict}")

    line(f"first start to AVAILABLE (tiny model; median of {len(starts.cold_s)})",
         statistics.median(starts.cold_s), 2.0, "s")
    print(f"  (each: {', '.join(f'{s:.2f}' for s in starts.cold_s)} s; the server's own CPU for "
          f"it: median {statistics.median(starts.cold_cpu_s):.2f} s; floor: an interpreter that "
          f"only imports TensorFlow's runtime as the server does used {floors.import_cpu_s:.2f} s "
          "of CPU)")
    line("later start to AVAILABLE (adopts the warm spare)", starts.warm_s, 0.5, "s")
    line("idle server, tiny model, resident", starts.idle.rss_mb, 350, "MB")
    print(f"  (its own {starts.idle.own_mb:.0f} MB, proportional share {starts.idle.pss_mb:.0f} "
          f"MB; the rest of RSS is TensorFlow's library, shared); warm spare: "
          f"{starts.spare.rss_mb:.0f} MB resident, {starts.spare.own_mb:.0f} MB its own")
    print(f"  (floor: a process that only loads TensorFlow's native library, no Python of "
          f"TensorFlow's, holds {floors.library.rss_mb:.0f} MB resident, "
          f"{floors.library.own_mb:.0f} MB of it its own)")
    for peak in peaks:
        suffix = f" [{peak.error}]" if peak.error else ""
        line(f"{peak.notebook} Run All, kernel + {peak.processes - 1} processes, peak memory "
             "held", peak.held_mb, BINDER_MB, "MB")
        print(f"  (summed PSS peak {peak.pss_mb:.0f} MB, summed RSS peak {peak.rss_mb:.0f} MB; "
              f"{peak.seconds:.0f} s){suffix}")


def build_tiny(root: str) -> str:
    sys.path.insert(0, str(HERE))
    from rest_overhead import build_models

    return build_models(root, False)["tiny"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-notebooks", action="store_true")
    args = parser.parse_args()
    # This checkout, here and in every process started (servers, spares, kernels).
    os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as root:
        starts = measure_starts(build_tiny(root))
    floors = measure_floors()
    peaks = [] if args.no_notebooks else [
        notebook_peak(path) for path in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    report(starts, floors, peaks)


if __name__ == "__main__":
    main()
