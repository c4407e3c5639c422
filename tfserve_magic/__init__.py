"""tfserve_magic: serve TensorFlow models from a notebook, speaking TensorFlow Serving's REST and
gRPC APIs.

This module holds entry points only: the IPython extension hook, the Jupyter server extension
points and the JupyterLab extension paths, plus lazy access to the public Python API (the names in
``__all__``, documented in the README; a test holds the two equal). It does no work at import
time and never imports TensorFlow (``%load_ext tfserve_magic`` must stay fast).

To add a public name: one line in ``_LAZY`` (name -> module, attribute), the name in ``__all__``,
the import under ``TYPE_CHECKING`` (for type checkers and editors) and the README's list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ExportResult",
    "LabelError",
    "LaunchError",
    "ServerHandle",
    "ServingError",
    "TFServeError",
    "VersionPolicy",
    "VersionState",
    "__version__",
    "dashboard",
    "deploy",
    "export_version",
    "find",
    "load_ipython_extension",
    "move_label",
    "remove_label",
    "set_version_policy",
    "start",
    "stop",
    "wait_for_versions",
    "warmup_from_log",
]

if TYPE_CHECKING:  # pragma: no cover
    from tfserve_magic.client import Client, ServingError
    from tfserve_magic.errors import TFServeError
    from tfserve_magic.lifecycle.launcher import LaunchError, ServerHandle, find, start, stop
    from tfserve_magic.notebook.widgets import dashboard
    from tfserve_magic.operations.deploy import deploy
    from tfserve_magic.operations.export import ExportResult, export_version
    from tfserve_magic.operations.labels import LabelError, move_label, remove_label
    from tfserve_magic.operations.versions import set_version_policy, wait_for_versions
    from tfserve_magic.operations.warmup import warmup_from_log
    from tfserve_magic.serving.models.policy import VersionPolicy
    from tfserve_magic.status import VersionState

# Public name -> (module under tfserve_magic, attribute), imported on first use.
_LAZY = {
    "Client": ("client.client", "Client"),
    "ServingError": ("client.transport", "ServingError"),
    "TFServeError": ("errors", "TFServeError"),
    "LaunchError": ("lifecycle.launcher", "LaunchError"),
    "ServerHandle": ("lifecycle.launcher", "ServerHandle"),
    "start": ("lifecycle.launcher", "start"),
    "stop": ("lifecycle.launcher", "stop"),
    "find": ("lifecycle.launcher", "find"),
    "dashboard": ("notebook.widgets", "dashboard"),
    "deploy": ("operations.deploy", "deploy"),
    "export_version": ("operations.export", "export_version"),
    "ExportResult": ("operations.export", "ExportResult"),
    "LabelError": ("operations.labels", "LabelError"),
    "move_label": ("operations.labels", "move_label"),
    "remove_label": ("operations.labels", "remove_label"),
    "set_version_policy": ("operations.versions", "set_version_policy"),
    "wait_for_versions": ("operations.versions", "wait_for_versions"),
    "warmup_from_log": ("operations.warmup", "warmup_from_log"),
    "VersionPolicy": ("serving.models.policy", "VersionPolicy"),
    "VersionState": ("status", "VersionState"),
}


def __getattr__(name: str) -> Any:
    # Lazy so that `import tfserve_magic` (and %load_ext) stays cheap.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'tfserve_magic' has no attribute {name!r}")


def __dir__() -> list[str]:
    # What completion offers: the public API, not the module's plumbing.
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext tfserve_magic``: register ``%tfserve`` and ``%%predict``, and keep
    TensorFlow's native start-up lines out of the cells of a Jupyter kernel."""
    from tfserve_magic.notebook.magics import register
    from tfserve_magic.notebook.native_noise import filter_native_noise

    register(ipython)
    filter_native_noise(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "tfserve_magic.server_extension"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "tfserve-magic"}]
