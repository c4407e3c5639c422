"""Jupyter server extension: reach served models through the Jupyter server's own URL and auth.

On JupyterHub, Binder and remote servers the model server's port is private; the Jupyter
server's URL is not. This extension adds, under the server's ``base_url``:

* ``tfserve/api/servers`` (list, with liveness), ``.../<server>/stop`` and ``.../<server>/log``;
* ``tfserve/<server>/v1/...``: TF Serving's REST API of that recorded server, forwarded unchanged.

Only servers in this user's registry are reachable, by name or port; nothing else is a target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfserve_magic.server_extension.handlers import setup_handlers
from tfserve_magic.server_extension.proxy_config import TFServeProxy

__all__ = ["TFServeProxy", "setup_handlers"]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    config = TFServeProxy(parent=serverapp)
    setup_handlers(serverapp.web_app, config)
    base_url = serverapp.web_app.settings.get("base_url", "/")
    serverapp.log.info("tfserve_magic: model servers reachable at %stfserve/", base_url)
    if not _lab_extension_installed():
        serverapp.log.warning(NO_LAB_EXTENSION)


# Said when the package was built from source without Node.js (pip shows build output only with -v).
NO_LAB_EXTENSION = (
    "tfserve_magic: the JupyterLab side panel is not installed (this copy was built from source "
    "without Node.js); the magics, dashboard and this proxy work. To get the panel: pip install a "
    "wheel or sdist of tfserve_magic, or install Node.js 20.19 or newer and reinstall from source.")


def _lab_extension_installed() -> bool:
    from jupyter_core.paths import jupyter_path

    return any(Path(root, "tfserve-magic", "package.json").is_file()
               for root in jupyter_path("labextensions"))
