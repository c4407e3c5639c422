"""Kernel side: the Jupyter server this kernel runs under, and model URLs through its proxy.

A kernel started by a Jupyter server is a descendant of that server's process; the server
announces itself in ``jpserver-<pid>.json`` in the Jupyter runtime directory (URL, base URL,
token). With that, ``proxy_url`` gives the address of a model server through the server
extension, correct for any base URL (``/user/<name>/`` on JupyterHub), and ``proxy_headers``
the credentials a script needs there. Imports neither
jupyter_server nor TensorFlow.

The one request it sends (is the extension there?) goes to the Jupyter server's own REST API,
not to a model server, so it does not use :class:`~tfserve_magic.client.Client` (a TF
Serving client whose errors carry TF Serving's messages): a plain ``urllib`` GET whose only
outcome is yes or no. Besides the client, this is the only module that sends HTTP requests
from the kernel (``tests/test_boundaries.py`` holds it so).
"""

from __future__ import annotations

import functools
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tfserve_magic.pids import ancestors

__all__ = ["jupyter_server_info", "proxy_headers", "proxy_path", "proxy_url"]


def jupyter_server_info() -> dict[str, Any] | None:
    """The runtime file of the Jupyter server this process descends from, or None."""
    from jupyter_core.paths import jupyter_runtime_dir

    lineage = ancestors(os.getpid())
    for path in Path(jupyter_runtime_dir()).glob("jpserver-*.json"):
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if info.get("pid") in lineage:
            return info  # type: ignore[no-any-return]
    return None


@functools.lru_cache(maxsize=8)
def _extension_enabled(url: str, token: str) -> bool:
    request = urllib.request.Request(f"{url}tfserve/api/servers",
                                     headers={"Authorization": f"token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def proxy_url(server_name: str) -> str | None:
    """``<jupyter url><base_url>tfserve/<name>/`` when this kernel runs under a Jupyter server
    with the tfserve_magic extension; None otherwise. On JupyterHub the public origin comes
    from ``JUPYTERHUB_PUBLIC_URL`` when the hub sets it."""
    info = jupyter_server_info()
    if info is None:
        return None
    url = str(info.get("url", "")).rstrip("/") + "/"
    if not _extension_enabled(url, str(info.get("token", ""))):
        return None
    public = os.environ.get("JUPYTERHUB_PUBLIC_URL")
    if public:
        url = public.rstrip("/") + str(info.get("base_url", "/"))
    return f"{url}tfserve/{server_name}/"


def proxy_path(server_name: str) -> str | None:
    """``<base url>tfserve/<name>/``, the address of a model server through the Jupyter server
    this kernel runs under, without a host: a link in a notebook's output resolves it against
    the host the browser uses for Jupyter. None without a Jupyter server or the extension."""
    info = jupyter_server_info()
    if info is None or proxy_url(server_name) is None:
        return None
    return f"{str(info.get('base_url') or '/').rstrip('/')}/tfserve/{server_name}/"


def proxy_headers() -> dict[str, str]:
    """``{"Authorization": "token ..."}`` for requests through the proxy of the Jupyter server
    this kernel runs under; empty when there is none or it has no token (password login)."""
    info = jupyter_server_info()
    token = str((info or {}).get("token", ""))
    return {"Authorization": f"token {token}"} if token else {}
