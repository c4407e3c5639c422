"""Who may talk to the server: the Host a request names, the Origin it comes from, the secret
that opens our own management endpoints.

* A server bound to a loopback address answers only requests whose ``Host`` is a loopback name
  (``localhost``, ``127.0.0.1``, ``[::1]``): a web page cannot reach it through DNS rebinding.
  ``--allowed_hosts`` names more hosts, ``*`` any (jupyter_server's ``allow_remote_access`` and
  ``local_hostnames`` follow the same rule). A server bound elsewhere answers any Host.
* ``/tfserve_magic/...`` refuses a browser's cross-origin request. Reloading, and the full
  description (pid, folders), need the per-server secret that the launcher passes in the
  ``TFSERVE_MAGIC_SECRET`` environment variable and keeps in its registry record; clients send
  it as ``X-Tfserve-Magic-Secret``. Without it the description lists models and states only.

TF Serving's own ``/v1`` API keeps TF Serving's behaviour (CORS only behind its flag). Pure: no
Tornado, no TensorFlow.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import urllib.parse
from dataclasses import dataclass

from tfserve_magic.status import SECRET_ENV, SECRET_HEADER

__all__ = ["AccessPolicy", "host_name"]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def host_name(host: str) -> str:
    """The name in a ``Host`` header or an origin's netloc, without port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


@functools.lru_cache(maxsize=1024)  # asked on every request: parse each name once
def _is_loopback(name: str) -> bool:
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AccessPolicy:
    """The rules above for one server: the address it is bound to, ``--allowed_hosts``, and its
    management secret ("" means none was given, so the management endpoints stay shut)."""

    bind_host: str
    allowed_hosts: str = ""
    secret: str = ""

    @functools.cached_property
    def checks_host(self) -> bool:
        return "*" not in self._extra_hosts and (_is_loopback(host_name(self.bind_host))
                                                 or bool(self._extra_hosts))

    @functools.cached_property
    def _extra_hosts(self) -> frozenset[str]:
        return frozenset(host_name(h) for h in self.allowed_hosts.split(",") if h.strip())

    def host_refusal(self, host: str) -> str | None:
        """Why a request naming ``host`` is refused, or None when it may proceed."""
        if not self.checks_host or not host:
            # No Host (HTTP/1.0) or an empty one (RFC 9112 3.2, a target without authority):
            # no browser sends either, so no web page can be behind it.
            return None
        name = host_name(host)
        if _is_loopback(name) or name in self._extra_hosts:
            return None
        return (f"Host '{host}' is not allowed: this server answers requests for localhost "
                "names only, so that web pages cannot reach it through DNS rebinding (start "
                "it with --allowed_hosts=NAME to accept requests for NAME)")

    def origin_refusal(self, host: str, origin: str | None) -> str | None:
        """Why a request to ``/tfserve_magic/...`` from ``origin`` is refused, or None."""
        if origin is not None and not self._same_origin(host, origin):
            return (f"Cross-origin request from '{origin}' refused: the tfserve_magic "
                    "management API only answers its own origin")
        return None

    def secret_refusal(self, secret: str | None, where: str = f"{SECRET_HEADER} header"
                       ) -> str | None:
        """Why a caller presenting ``secret`` (sent in ``where``) may not manage the server, or
        None."""
        if not self.secret:
            return ("The tfserve_magic management API needs the server's secret, and this "
                    "server was started without one (servers started by tfserve_magic get one "
                    f"in {SECRET_ENV})")
        if not secret or not hmac.compare_digest(secret.encode(), self.secret.encode()):
            return (f"The tfserve_magic management API needs the server's secret in the "
                    f"{where} (kept in the server's registry record)")
        return None

    @staticmethod
    def _same_origin(host: str, origin: str) -> bool:
        parsed = urllib.parse.urlsplit(origin)
        return parsed.scheme in ("http", "https") and parsed.netloc.lower() == host.lower()
