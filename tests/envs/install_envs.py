"""`make test-envs`: the install matrix, each case in a venv of its own under .envs/.

``installs``: with no Node.js on ``PATH``, the wheel and then the sdist install and enable both
extensions (``jupyter server extension list`` / ``jupyter labextension list``), and a git URL of
this repository (a source tree with no built extension) installs everything but the side panel,
says how to get it in the build log and again when the Jupyter server loads the extension.

``colab``: an environment of Google Colab's published package set (``colab-pip-freeze.txt``
beside this file, as constraints, ``name @ URL`` lines left out) holding what our package and the
tests need, with Colab's pip, on Python 3.13 as on Colab when this machine has it. ``pip install
--dry-run --report`` of the wheel, the sdist and the git URL, without constraints as a user types
it, must change none of Colab's packages; the wheel is installed, every runtime dependency must
then sit exactly on its declared floor (so this is also the lowest-versions environment), and the
core, notebook and kernel tests run against the installed wheel.

``newest``: the kernel test in the main venv (the newest versions, constraints.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from email.parser import Parser
from pathlib import Path
from zipfile import ZipFile

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
ENVS = ROOT / ".envs"
DIST = ROOT / "dist"
CONSTRAINTS = ROOT / "constraints.txt"
# Google Colab's own published package list of its default CPU runtime (googlecolab/backend-info,
# commit a72407924822, 2026-08-19; Python 3.13 there), as it is.
COLAB_FREEZE = ROOT / "tests" / "envs" / "colab-pip-freeze.txt"
GIT_URL = f"tfserve_magic @ git+file://{ROOT}"

# What the tests need beside the package; Colab's versions where Colab has them.
TEST_TOOLS = ["pytest", "pytest-timeout", "pytest-asyncio", "pytest-xdist", "pytest-jupyter[server]",
              "nbclient", "nbformat", "ipykernel", "scikit-learn", "grpcio-health-checking"]
# On the floors: the kernel run, the magics and the dashboard in a real IPython shell, the Colab
# seam, the core's REST and gRPC APIs and health service on a real server, the clients, and the
# server extension in a real Jupyter server (jupyter_server's floor). The rest of the suite runs
# on the newest versions in `make test`; this subset keeps the job near 10 minutes on 2 cores.
COLAB_TESTS = [
    "tests/envs/test_in_a_kernel.py",
    "tests/notebook/test_magics.py", "tests/notebook/test_dashboard.py",
    "tests/notebook/test_colab.py",
    "tests/serving/api/test_rest_api.py", "tests/serving/api/test_grpc_api.py",
    "tests/serving/process/test_grpc_health.py",
    # Private APIs of TensorFlow and Tornado the server relies on (the loader's flat call, the
    # lean TensorFlow import, the interfaces http1 implements): held on the floors as well.
    "tests/serving/models/test_loader.py", "tests/serving/models/test_tensorflow_import.py",
    "tests/serving/process/test_http_interfaces.py",
    "tests/client", "tests/server_extension/test_proxy.py",
]


def run(cmd: list[str | Path], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        capture: bool = False) -> str:
    """Run a command; its output is returned when captured (and shown if it fails)."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    done = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.STDOUT if capture else None, check=False)
    if done.returncode:
        if capture:
            print(done.stdout[-6000:])
        raise SystemExit(f"failed ({done.returncode}): {' '.join(str(c) for c in cmd)}")
    return done.stdout if capture else ""


def fresh_venv(path: Path, python: str) -> Path:
    """A venv at ``path`` made by ``python`` (kept between runs: pip's cache does the rest)."""
    if not (path / "bin" / "python").exists():
        run([python, "-m", "venv", path])
    return path / "bin" / "python"


def clean_env(bin_dir: Path) -> dict[str, str]:
    """The environment of a user's shell with this venv active and no Node.js on ``PATH``."""
    shims = ENVS / "no-node-bin"
    shims.mkdir(parents=True, exist_ok=True)
    git = shutil.which("git")
    if git and not (shims / "git").exists():
        (shims / "git").symlink_to(git)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{shims}"
    for tool in ("node", "npm"):
        if shutil.which(tool, path=env["PATH"]):
            raise SystemExit(f"{tool} is still on PATH: {env['PATH']}")
    return env


def artefacts() -> tuple[Path, Path]:
    wheels, sdists = sorted(DIST.glob("*.whl")), sorted(DIST.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise SystemExit("run `make dist` first: dist/ needs one wheel and one sdist")
    return wheels[0], sdists[0]


def requirements(wheel: Path) -> list[Requirement]:
    with ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(archive.read(name).decode())
    return [Requirement(r) for r in meta.get_all("Requires-Dist", []) if "extra ==" not in r]


def installed(python: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    listing = run([python, "-m", "pip", "list", "--format=json"], env=env, capture=True)
    return {canonicalize_name(p["name"]): p["version"]
            for p in json.loads(listing[listing.index("["):])}


# ------------------------------------------------------------------ installs without Node.js


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # the listings colour "enabled" and "OK"


def check_listed(bin_dir: Path, env: dict[str, str], *, lab: bool) -> None:
    servers = _plain(run([bin_dir / "jupyter", "server", "extension", "list"], env=env, capture=True))
    if not re.search(r"tfserve_magic\s+enabled", servers) or "tfserve_magic 0" not in servers:
        raise SystemExit(f"the server extension is not enabled:\n{servers}")
    labs = _plain(run([bin_dir / "jupyter", "labextension", "list"], env=env, capture=True))
    listed = re.search(r"tfserve-magic v[\d.]+ enabled\s+OK", labs) is not None
    if listed != lab:
        raise SystemExit(f"the lab extension is {'not ' if lab else ''}listed enabled:\n{labs}")
    print(f"  server extension enabled; lab extension {'enabled' if lab else 'absent, as expected'}")


def server_says(bin_dir: Path, env: dict[str, str], text: str, deadline: float = 300) -> None:
    """Start a real Jupyter server and wait until it has loaded its extensions; ``text`` in its log."""
    proc = subprocess.Popen([bin_dir / "jupyter", "server", "--no-browser", "--ServerApp.port=0",
                             "--ServerApp.token=", f"--ServerApp.root_dir={ENVS}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    log: list[str] = []
    end = time.monotonic() + deadline
    try:
        for line in proc.stderr:  # ends when the server exits; the deadline is checked per line
            log.append(line)
            if "is running at" in line or time.monotonic() > end:
                break
    finally:
        proc.terminate()
        proc.wait(30)
    if not any(text in line for line in log):
        raise SystemExit(f"the Jupyter server did not say {text!r}:\n{''.join(log)[-4000:]}")
    print("  the Jupyter server says how to get the side panel")


def installs(python: str) -> None:
    sys.path.insert(0, str(ROOT))
    from labextension_build import NO_PANEL
    from tfserve_magic.server_extension import NO_LAB_EXTENSION

    wheel, sdist = artefacts()
    py = fresh_venv(ENVS / "installs", python)
    env = clean_env(py.parent)
    pip = [py, "-m", "pip"]
    run([*pip, "install", "-q", "--upgrade", "pip"], env=env)  # as `make install` does
    run([*pip, "uninstall", "-q", "-y", "tfserve_magic"], env=env)
    run([*pip, "install", "-q", "-c", CONSTRAINTS, wheel, "jupyterlab"], env=env)
    print(f"{wheel.name} installed with no Node.js on PATH")
    check_listed(py.parent, env, lab=True)
    run([*pip, "uninstall", "-q", "-y", "tfserve_magic"], env=env)
    run([*pip, "install", "-q", "--no-cache-dir", "-c", CONSTRAINTS, sdist], env=env)
    print(f"{sdist.name} installed with no Node.js on PATH")
    check_listed(py.parent, env, lab=True)
    run([*pip, "uninstall", "-q", "-y", "tfserve_magic"], env=env)
    out = run([*pip, "install", "-v", "--no-cache-dir", "-c", CONSTRAINTS, GIT_URL], env=env,
              capture=True)
    if NO_PANEL not in " ".join(out.split()):
        raise SystemExit(f"the build did not say how to get the side panel:\n{out[-4000:]}")
    print("a git URL installed with no Node.js on PATH; the build says how to get the side panel")
    check_listed(py.parent, env, lab=False)
    server_says(py.parent, env, NO_LAB_EXTENSION)
    run([*pip, "uninstall", "-q", "-y", "tfserve_magic"], env=env)


# ------------------------------------------------------------------ Colab's package set


def colab_packages() -> dict[str, str]:
    if not COLAB_FREEZE.is_file():
        raise SystemExit(f"Colab's package list is not at {COLAB_FREEZE}")
    pins = {}
    for line in COLAB_FREEZE.read_text().splitlines():
        if "==" in line and " @ " not in line:
            name, version = line.strip().split("==")
            pins[canonicalize_name(name)] = version
    return pins


def dry_run_changes(pip: list[str | Path], target: str | Path, colab: dict[str, str],
                    env: dict[str, str]) -> tuple[list[str], list[str]]:
    """What ``pip install <target>`` would add, and which of Colab's packages it would change."""
    report = ENVS / "colab-dry-run.json"
    run([*pip, "install", "--dry-run", "-q", "--report", report, target], env=env)
    items = [(canonicalize_name(i["metadata"]["name"]), i["metadata"]["version"])
             for i in json.loads(report.read_text())["install"]]
    changes = [f"{n} {colab[n]} -> {v}" for n, v in items if n in colab and v != colab[n]]
    added = [f"{n} {v}" for n, v in items if n not in colab]
    return added, changes


def colab(python: str) -> None:
    wheel, sdist = artefacts()
    pins = colab_packages()
    constraints = ENVS / "colab-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in pins.items()))
    py = fresh_venv(ENVS / "colab", python)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{py.parent}{os.pathsep}{env['PATH']}"
    pip: list[str | Path] = [py, "-m", "pip"]
    run([*pip, "install", "-q", f"pip=={pins['pip']}"], env=env)  # Colab's own pip resolves
    run([*pip, "uninstall", "-q", "-y", "tfserve_magic", "tensorflow-serving-api"], env=env)
    ours = [r for r in requirements(wheel) if canonicalize_name(r.name) in pins]
    run([*pip, "install", "-q", "-c", constraints, *map(str, ours), *TEST_TOOLS], env=env)
    before = installed(py, env)
    drift = {n: v for n, v in before.items() if n in pins and v != pins[n]}
    if drift:
        raise SystemExit(f"the environment is not Colab's: {drift}")
    version = run([py, "-c", "import sys; print(sys.version.split()[0])"], capture=True).strip()
    print(f"Colab's package set on Python {version}: {len(before)} packages, "
          f"{sum(n in pins for n in before)} of them Colab's, at Colab's versions")

    for label, target in (("wheel", wheel), ("sdist", sdist), ("git URL", GIT_URL)):
        added, changes = dry_run_changes(pip, target, pins, env)
        if changes:
            raise SystemExit(f"pip install of the {label} would change Colab's {changes}")
        print(f"  pip install <{label}> adds {', '.join(added)}; changes none of Colab's packages")

    run([*pip, "install", "-q", wheel], env=env)
    after = installed(py, env)
    changed = {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v}
    if changed:
        raise SystemExit(f"installing the wheel changed {changed}")
    off_floor = []
    for requirement in requirements(wheel):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        floor = next(s.version for s in requirement.specifier if s.operator == ">=")
        have = after[canonicalize_name(requirement.name)]
        if Version(have) != Version(floor):
            off_floor.append(f"{requirement.name} {have} (floor {floor})")
    if off_floor:
        raise SystemExit(f"not the lowest versions: {off_floor}")
    print(f"  installed; all {len(requirements(wheel))} runtime dependencies on their floors")

    workdir = ENVS / "run"
    workdir.mkdir(exist_ok=True)
    where = run([py, "-P", "-c", "import tfserve_magic; print(tfserve_magic.__file__)"],
                env=env, cwd=workdir, capture=True)
    if not where.strip().startswith(str(ENVS / "colab")):
        raise SystemExit(f"tests would not use the installed wheel: {where}")
    # -P and a neutral working directory: the installed wheel is tested, not this checkout.
    run([py, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
         "--no-loadscope-reorder", "-c", ROOT / "pyproject.toml", "--rootdir", ROOT,
         *(ROOT / t for t in COLAB_TESTS)], env=env, cwd=workdir)


def newest() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run([ROOT / ".venv" / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
         ROOT / "tests" / "envs" / "test_in_a_kernel.py"], env=env, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="Python for the install checks")
    parser.add_argument("--colab-python", default=sys.executable, help="Python for Colab's set")
    parser.add_argument("job", choices=["installs", "colab", "newest", "all"])
    args = parser.parse_args()
    ENVS.mkdir(exist_ok=True)
    jobs = ["installs", "colab", "newest"] if args.job == "all" else [args.job]
    for job in jobs:
        started = time.monotonic()
        print(f"== {job}", flush=True)
        if job == "installs":
            installs(args.python)
        elif job == "colab":
            colab(args.colab_python)
        else:
            newest()
        print(f"== {job}: passed in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
