"""The server's own page at ``/``: models, versions, states, labels, signatures, and a form that
sends a predict request and shows the answer.

Plain HTML, CSS and a little JavaScript shipped in the package (``page/``), nothing fetched from
elsewhere. The page reads the models from a JSON block rendered here and uses only TF Serving's
``/v1`` API from the browser, with URLs relative to the page, so it works at the server's own
address and under a proxy prefix (Jupyter's ``tfserve/<server>/``). The inline script and style
are allowed by their hashes in the Content-Security-Policy. No Jupyter imports.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import string
from importlib import resources
from typing import TYPE_CHECKING

import orjson
import tornado.web

if TYPE_CHECKING:  # rest.py imports this module for its route table
    from tfserve_magic.serving.api.context import ServerContext

__all__ = ["PageHandler"]


@functools.lru_cache(maxsize=1)
def _assets() -> tuple[string.Template, str, str, str]:
    """The page template, its script and style, and the CSP that allows exactly those two."""
    folder = resources.files("tfserve_magic.serving.api") / "page"
    template = string.Template((folder / "page.html").read_text(encoding="utf-8"))
    script = (folder / "page.js").read_text(encoding="utf-8")
    style = (folder / "page.css").read_text(encoding="utf-8")

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    policy = (f"default-src 'none'; script-src {digest(script)}; style-src {digest(style)}; "
              "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'self'")
    return template, script, style, policy


def _models(ctx: ServerContext) -> list[dict[str, object]]:
    # What the page shows: the models as told without the secret (no folders of this machine).
    return ctx.describe().to_json(private=False)["models"]  # type: ignore[no-any-return]


class PageHandler(tornado.web.RequestHandler):
    """GET /: the page; everything else outside /v1 stays a 404, as in TF Serving."""

    def get(self) -> None:
        ctx: ServerContext = self.application.settings["tfserve_ctx"]
        template, script, style, policy = _assets()
        models = _models(ctx)
        # Inside <script type="application/json">, "<" must not start a closing tag.
        data = orjson.dumps({"models": models}).decode().replace("<", "\\u003c")
        names = ", ".join(str(m["name"]) for m in models) or "no models"
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", policy)
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(template.substitute(
            title=html.escape(f"{names}: model server"), style=style, script=script, data=data,
            version=html.escape(ctx.version)))
