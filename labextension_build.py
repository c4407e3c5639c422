"""The JupyterLab extension's build step, run by hatch-jupyter-builder when a wheel is built.

Node.js is needed only when there is something to build. From a checkout with npm on ``PATH``,
hatch-jupyter-builder's ``npm_builder`` builds ``tfserve_magic/labextension`` (again only when a
source is newer than the bundle). Without npm, an already built extension (the sdist carries one)
is used as it is; without npm and without a built extension (a git URL on a machine with no Node.js)
everything but the JupyterLab side panel installs, and this says how to get the panel. Not part of
the installed package: it runs in pip's build environment, from the source tree.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = ["BUILT", "NO_PANEL", "build"]

# What a built extension has: its metadata, its style entry and (checked below) a remoteEntry bundle.
BUILT = ("tfserve_magic/labextension/package.json", "tfserve_magic/labextension/static/style.js")

NO_PANEL = (
    "tfserve_magic: Node.js (npm) was not found and no built JupyterLab extension is present, so "
    "this install has everything but the JupyterLab side panel. To get the panel, install a wheel "
    "or sdist (they carry the built extension), or install Node.js 20.19 or newer and reinstall."
)


def _built() -> bool:
    return all(Path(path).is_file() for path in BUILT) and any(
        Path("tfserve_magic/labextension/static").glob("remoteEntry.*.js"))


def build(target_name: str, version: str, **kwargs: Any) -> None:
    """hatch-jupyter-builder's ``build-function``: npm when present, else what is already built."""
    npm = kwargs.get("npm") or ["npm"]
    if shutil.which(npm[0] if isinstance(npm, list) else npm):
        from hatch_jupyter_builder import npm_builder

        npm_builder(target_name, version, **kwargs)
        if not _built():
            raise RuntimeError(f"npm ran, but the JupyterLab extension lacks one of {BUILT}")
    elif _built():
        print("tfserve_magic: npm not found; using the JupyterLab extension already built",
              file=sys.stderr)
    else:
        print(NO_PANEL, file=sys.stderr)
        return
    # Installed beside the extension, so that it is listed (and shipped) only with it.
    shutil.copyfile("install.json", "tfserve_magic/labextension/install.json")
