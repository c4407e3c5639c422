"""Handlers of the server extension: the servers API and the authenticated REST proxy.

Every handler is a jupyter_server ``APIHandler`` behind ``tornado.web.authenticated``: token
(header or query) for scripts, cookie plus XSRF for browser pages, otherwise a 403 whose message
says how to authenticate. The proxy forwards only to servers in this user's registry; hop-by-hop
headers are dropped, status codes and bodies pass through unchanged, and an unreachable upstream
is a 502 with a JSON error. ``tfserve/<server>/`` is the model server's own page, which a browser
opens (an unauthenticated browser is sent to Jupyter's login first).
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError

from tfserve_magic.client import Client, ServingError
from tfserve_magic.files import tail_lines
from tfserve_magic.lifecycle import registry
from tfserve_magic.lifecycle.refusals import NotOurServer, OwnedElsewhere, UnknownServer
from tfserve_magic.pids import pid_alive
from tfserve_magic.server_extension.examples import curl_predict
from tfserve_magic.server_extension.panel import server_view
from tfserve_magic.server_extension.proxy_config import TFServeProxy
from tfserve_magic.status import DEFAULT_PROMETHEUS_PATH, SECRET_HEADER, reason_phrase

__all__ = ["setup_handlers"]

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
# Credentials for Jupyter are never passed on to a model server.
# Host: the model server's own (a loopback server refuses others); the management secret never
# passes (the proxy forwards TF Serving's API only).
_NOT_FORWARDED = _HOP_BY_HOP | {"authorization", "cookie", "x-xsrftoken", "origin", "referer",
                                "host", SECRET_HEADER.lower()}
_MAX_ANSWER = 1024 * 1024 * 1024
_SERVER = r"(?P<server>[A-Za-z0-9_.\-]+)"
AUTH_HELP = ("Not authenticated with this Jupyter server. Send your Jupyter token in a header "
             "('Authorization: token <token>') or in the URL (?token=<token>); `jupyter server "
             "list` shows it. Browser pages use the login cookie.")


def _json_error(handler: APIHandler, status: int, message: str) -> None:
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json")
    handler.finish({"error": message})


class _Base(APIHandler):
    @property
    def proxy_config(self) -> TFServeProxy:
        return self.settings["tfserve_proxy_config"]  # type: ignore[no-any-return]

    def proxy_url(self, record: registry.ServerRecord) -> str:
        return url_path_join(self.base_url, "tfserve", record.name) + "/"

    async def in_thread(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    def get_login_url(self) -> str:
        raise tornado.web.HTTPError(403, AUTH_HELP)  # a script gets no login page: say how

    def check_xsrf_cookie(self) -> None:
        # Jupyter checks XSRF before authentication and would answer "'_xsrf' argument missing"
        # to a script that simply forgot its token.
        if hasattr(self, "_jupyter_current_user") and self.current_user is None:
            raise tornado.web.HTTPError(403, AUTH_HELP)
        super().check_xsrf_cookie()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # TF Serving's error shape, so its clients (and curl users) read the reason.
        error = kwargs.get("exc_info", (None, None, None))[1]
        message = error.log_message if isinstance(error, tornado.web.HTTPError) and \
            error.log_message else reason_phrase(status_code)
        self.set_header("Content-Type", "application/json")
        self.finish({"error": message})

    def record_or_404(self, server: str) -> registry.ServerRecord | None:
        record = registry.find_record(server)
        if record is None:
            _json_error(self, 404, f"No recorded model server named {server}")
        return record


class ServersHandler(_Base):
    """GET tfserve/api/servers: every recorded server, whether it answers, and its models."""

    @tornado.web.authenticated
    async def get(self) -> None:
        origin = f"{self.request.protocol}://{self.request.host}"
        token = getattr(self.identity_provider, "token", "") or ""

        def describe() -> list[dict[str, Any]]:
            rows = []
            for record in registry.read_records():
                status = registry.probe(record)
                proxy = self.proxy_url(record)
                curls = {}
                # Only models with a version to describe: asking a loading one for metadata
                # is a 404 (and a warning in the server's log) at every refresh.
                for model in (m.name for m in status.models if m.available) if status else ():
                    metadata = _metadata(record, model)
                    if metadata is not None:
                        curls[model] = curl_predict(origin + proxy, model, metadata, token)
                rows.append(server_view(record, status, proxy, curls, token))
            return rows

        self.finish({"servers": await self.in_thread(describe)})


def _metadata(record: registry.ServerRecord, model: str) -> dict[str, Any] | None:
    try:
        return Client(record.url, timeout=5).metadata(model)
    except (ServingError, ValueError):
        return None  # no version loaded yet: no example


class StopHandler(_Base):
    """POST tfserve/api/servers/<server>/stop[?force=1]: a server another notebook's kernel
    owns stops only with force (the panel asks the person first)."""

    @tornado.web.authenticated
    async def post(self, server: str) -> None:
        record = self.record_or_404(server)
        if record is None:
            return
        from tfserve_magic.lifecycle.launcher import stop

        force = self.get_query_argument("force", "") in ("1", "true")
        try:
            stopped = await self.in_thread(lambda: stop(record.name, force=force))
        except UnknownServer as gone:  # stopped by someone else since it was looked up
            return _json_error(self, 404, str(gone))
        except (NotOurServer, OwnedElsewhere) as refused:  # remote, or a notebook's unforced
            return _json_error(self, 409, str(refused))
        self.finish({"stopped": stopped})


class DisconnectHandler(_Base):
    """POST tfserve/api/servers/<server>/disconnect: forget a connected remote server."""

    @tornado.web.authenticated
    async def post(self, server: str) -> None:
        record = self.record_or_404(server)
        if record is None:
            return
        from tfserve_magic.lifecycle.remote import disconnect

        try:
            url = await self.in_thread(lambda: disconnect(record.name))
        except UnknownServer as gone:  # disconnected by someone else since it was looked up
            return _json_error(self, 404, str(gone))
        except NotOurServer as refused:  # started here: stop it instead
            return _json_error(self, 409, str(refused))
        self.finish({"disconnected": record.name, "url": url})


class LogHandler(_Base):
    """GET tfserve/api/servers/<server>/log?n=200."""

    @tornado.web.authenticated
    async def get(self, server: str) -> None:
        record = self.record_or_404(server)
        if record is None:
            return
        try:
            count = max(1, min(10_000, int(self.get_query_argument("n", "200"))))
        except ValueError:
            return _json_error(self, 400, "n must be a whole number")

        if record.remote:  # nothing of it runs here: say what it is instead of an empty log
            owner = f", connected from {record.owner}" if record.owner else ""
            self.finish({"name": record.name, "lines": [], "note": (
                f"{record.name} is a remote server at {record.url}{owner} with %tfserve connect. "
                "Its log is on the machine where it runs; Disconnect forgets it here and leaves "
                "it serving there.")})
            return
        lines = await self.in_thread(lambda: tail_lines(record.log_file, count))
        self.finish({"name": record.name, "lines": lines})


class ProxyHandler(_Base):
    """tfserve/<server>/<path>: TF Serving's REST API of a recorded server, unchanged."""

    @tornado.web.authenticated
    async def get(self, server: str, path: str) -> None:
        await self._forward(server, path)

    @tornado.web.authenticated
    async def post(self, server: str, path: str) -> None:
        await self._forward(server, path)

    @tornado.web.authenticated
    async def put(self, server: str, path: str) -> None:
        await self._forward(server, path)  # TF Serving answers "Malformed request"

    @tornado.web.authenticated
    async def delete(self, server: str, path: str) -> None:
        await self._forward(server, path)

    def _client(self) -> AsyncHTTPClient:
        # Our own client instance: the shared one caps answers at 100 MiB.
        client = self.settings.get("tfserve_http_client")
        if client is None:
            client = AsyncHTTPClient(force_instance=True, max_body_size=_MAX_ANSWER,
                                     max_buffer_size=_MAX_ANSWER)
            self.settings["tfserve_http_client"] = client
        return client

    async def _forward(self, server: str, path: str) -> None:
        record = registry.find_record(server)
        if record is not None and record.remote and not record.proxy_allowed:
            # Only a user's own %tfserve connect makes this proxy reach another machine.
            return _json_error(self, 403, f"Model server {record.name} is remote and was not "
                                          "connected from your kernel (%tfserve connect); the "
                                          "proxy does not forward to it")
        if record is None or not (record.remote or pid_alive(record.pid)):
            return _json_error(self, 404, f"No running model server named or on port {server} "
                                          "(see %tfserve list)")
        body = self.request.body
        limit = self.proxy_config.max_body_size
        if len(body) > limit:
            return _json_error(self, 413, f"Request body of {len(body)} bytes is larger than "
                                          f"the proxy limit of {limit} bytes "
                                          "(TFServeProxy.max_body_size)")
        # Tornado hands the path over percent-decoded; re-encode all but TF Serving's own
        # separators so names reach the model server as a client would send them.
        target = f"{record.url}/{urllib.parse.quote(path, safe='/:')}"
        if self.request.query:
            target += "?" + self.request.query
        headers = {k: v for k, v in self.request.headers.get_all()
                   if k.lower() not in _NOT_FORWARDED}
        if "X-Consumed-Content-Encoding" in self.request.headers:  # Tornado gunzipped the body
            headers.pop("X-Consumed-Content-Encoding", None)
        request = HTTPRequest(
            target, method=self.request.method, headers=headers,
            body=body if self.request.method in ("POST", "PUT", "PATCH") else None,
            allow_nonstandard_methods=True, follow_redirects=False, decompress_response=False,
            connect_timeout=self.proxy_config.connect_timeout,
            request_timeout=self.proxy_config.request_timeout)
        try:
            # raise_error=False keeps the upstream's own error answers; Tornado still raises
            # for a timeout or a failed connection (its 599s).
            response = await self._client().fetch(request, raise_error=False)
        except HTTPTimeoutError as error:
            status = 502 if "connecting" in error.message else 504
            return _json_error(self, status, f"Model server {record.name} at {record.url} did "
                                             f"not answer: {error.message}")
        except (OSError, HTTPClientError) as error:
            return _json_error(self, 502, f"Model server {record.name} at {record.url} is not "
                                          f"reachable: {error}")
        self.set_status(response.code, reason_phrase(response.code))
        self.clear_header("Content-Type")
        for name, value in response.headers.get_all():
            if name.lower() not in _HOP_BY_HOP and name.lower() not in ("server", "date",
                                                                        "content-type"):
                self.add_header(name, value)
        # APIHandler.finish would call every answer JSON (the page is HTML, metrics are text).
        self.finish(response.body or b"",
                    set_content_type=response.headers.get("Content-Type", "application/json"))


class PageHandler(ProxyHandler):
    """tfserve/<server>/: the model server's own page, for a browser."""

    @property
    def content_security_policy(self) -> str:
        # The model server's own policy comes with the page and governs its script; Jupyter's
        # API policy (default-src 'none') would forbid any.
        return "frame-ancestors 'self'"

    def get_login_url(self) -> str:
        return str(JupyterHandler.get_login_url(self))  # a person gets Jupyter's login page

    @tornado.web.authenticated
    async def get(self, server: str) -> None:
        await self._forward(server, "")


class SlashHandler(JupyterHandler):
    """tfserve/<server> -> tfserve/<server>/: the page's relative links need the slash."""

    def get(self, server: str) -> None:
        query = f"?{self.request.query}" if self.request.query else ""
        self.redirect(f"{self.request.path}/{query}")


def setup_handlers(web_app: Any, config: TFServeProxy) -> None:
    base = web_app.settings.get("base_url", "/")
    web_app.settings["tfserve_proxy_config"] = config

    def route(*parts: str) -> str:
        return str(url_path_join(base, "tfserve", *parts))

    web_app.add_handlers(".*$", [
        (route("api", "servers"), ServersHandler),
        (route("api", "servers", _SERVER, "stop"), StopHandler),
        (route("api", "servers", _SERVER, "disconnect"), DisconnectHandler),
        (route("api", "servers", _SERVER, "log"), LogHandler),
        (route(_SERVER, rf"(?P<path>(?:v1/.*|{re.escape(DEFAULT_PROMETHEUS_PATH[1:])}))"), ProxyHandler),
        (route(_SERVER) + "/", PageHandler),
        (route(_SERVER), SlashHandler),
    ])
