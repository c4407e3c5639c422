"""`make dist`'s content check of dist/: one sdist and one wheel, carrying what an install needs.

The wheel: the package, the built JupyterLab extension with its install.json (shared data, so pip
puts it where JupyterLab looks), the server extension's enabling config, and the dependencies of
pyproject.toml as its Requires-Dist. The sdist: the built extension as well (so that installing it
never needs Node.js), the extension's sources and build step, and no node_modules or local envs.
Exits non-zero with what is missing.
"""

from __future__ import annotations

import email.parser
import sys
import tarfile
import zipfile
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LAB = "share/jupyter/labextensions/tfserve-magic"


def _key(requirement: str) -> str:
    parsed = Requirement(requirement)
    return f"{canonicalize_name(parsed.name)}{parsed.specifier};{parsed.marker}"


def wheel_problems(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(archive.read(metadata).decode())
    data = next(n.split("/")[0] for n in names if n.endswith(".data/data/" + LAB + "/package.json")) \
        if any(n.endswith(LAB + "/package.json") for n in names) else None
    problems = []
    if data is None:
        return [f"{wheel.name}: no {LAB}/package.json"]
    for needed in (f"{data}/data/{LAB}/install.json", f"{data}/data/{LAB}/static/style.js",
                   f"{data}/data/etc/jupyter/jupyter_server_config.d/tfserve_magic.json",
                   "tfserve_magic/__init__.py", "tfserve_magic/serving/process/grpc_health.py"):
        if needed not in names:
            problems.append(f"{wheel.name}: no {needed}")
    if not any(n.startswith(f"{data}/data/{LAB}/static/remoteEntry.") for n in names):
        problems.append(f"{wheel.name}: no remoteEntry bundle")
    if any(n.startswith(("tests/", "labextension/")) for n in names):
        problems.append(f"{wheel.name}: carries tests/ or the extension's sources")
    declared = {_key(r) for r in tomllib.loads(
        (ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    shipped = {_key(r) for r in meta.get_all("Requires-Dist", []) if "extra ==" not in r}
    if shipped != declared:
        problems.append(f"{wheel.name}: Requires-Dist {sorted(shipped ^ declared)} differ from pyproject")
    return problems


def sdist_problems(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    problems = [f"{sdist.name}: no {needed}" for needed in (
        "tfserve_magic/labextension/package.json", "tfserve_magic/labextension/static/style.js",
        "tfserve_magic/labextension/install.json", "labextension_build.py", "install.json",
        "labextension/package.json", "jupyter-config/server-config/tfserve_magic.json",
        "pyproject.toml", "README.md") if needed not in names]
    if any(n.startswith(("labextension/node_modules/", ".envs/", ".venv/", "dist/")) for n in names):
        problems.append(f"{sdist.name}: carries node_modules, a venv or dist/")
    return problems


def main(dist: Path) -> int:
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist in {dist}, found {wheels + sdists}")
        return 1
    problems = wheel_problems(wheels[0]) + sdist_problems(sdists[0])
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{wheels[0].name} and {sdists[0].name}: contents and metadata as declared")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "dist")))
