"""tfserve_magic: serve TensorFlow models from a notebook, speaking TensorFlow Serving's REST API.

This module holds entry points only: the IPython extension hook, the Jupyter server extension
points and the JupyterLab extension paths, plus lazy access to the public Python API. It does no
work at import time and never imports TensorFlow (``%load_ext tfserve_magic`` must stay fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ServerHandle",
    "__version__",
    "dashboard",
    "deploy",
    "load_ipython_extension",
    "start",
]

if TYPE_CHECKING:  # pragma: no cover
    from tfserve_magic.client.rest import Client
    from tfserve_magic.lifecycle.launcher import ServerHandle, start
    from tfserve_magic.notebook.widgets import dashboard
    from tfserve_magic.operations.deploy import deploy

_LAZY = {
    "Client": ("client.rest", "Client"),
    "ServerHandle": ("lifecycle.launcher", "ServerHandle"),
    "start": ("lifecycle.launcher", "start"),
    "dashboard": ("notebook.widgets", "dashboard"),
    "deploy": ("operations.deploy", "deploy"),
}


def __getattr__(name: str) -> Any:
    # Lazy so that `import tfserve_magic` (and %load_ext) stays cheap.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'tfserve_magic' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext tfserve_magic``: register ``%tfserve`` and ``%%predict``."""
    from tfserve_magic.notebook.magics import TFServeMagics

    ipython.register_magics(TFServeMagics)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "tfserve_magic.server_extension"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "tfserve-magic"}]
