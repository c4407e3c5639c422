"""Google Colab: detection and the browser link to a local port, behind a declared seam.

Colab reaches a port on its VM only through its own helper (``google.colab.kernel.proxyPort``);
everything else in tfserve_magic behaves the same there. Tests replace :data:`bridge` with their
own :class:`ColabBridge`.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Protocol

__all__ = ["ColabBridge", "GoogleColabBridge", "bridge", "colab_url", "in_colab"]


class ColabBridge(Protocol):
    def available(self) -> bool: ...

    def proxy_url(self, port: int) -> str: ...


class GoogleColabBridge:
    """The real thing: only works inside a Colab runtime."""

    def available(self) -> bool:
        if "google.colab" in sys.modules:
            return True
        try:
            return importlib.util.find_spec("google.colab") is not None
        except (ImportError, ValueError):  # no ``google`` package at all
            return False

    def proxy_url(self, port: int) -> str:
        from google.colab.output import eval_js

        return str(eval_js(f"google.colab.kernel.proxyPort({int(port)})"))


bridge: ColabBridge = GoogleColabBridge()


def in_colab() -> bool:
    return bridge.available()


def colab_url(port: int) -> str | None:
    """The URL a browser uses to reach ``port`` through Colab, or None outside Colab."""
    if not bridge.available():
        return None
    try:
        return bridge.proxy_url(port).rstrip("/")
    except Exception:  # the helper is a JS round trip; outside a live frontend it can fail
        return None
