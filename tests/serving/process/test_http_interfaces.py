"""The HTTP/1.1 layer (``serving/process/http1.py``) implements every part of a connection that
the installed Tornado's ``web``, ``httputil`` and ``routing`` use, not only the methods its
``HTTPConnection`` interface declares (``set_close_callback``, ``detach`` and ``stream`` are
used under ``type: ignore`` there). Read from Tornado's own source, so that a Tornado release
within ``tornado>=6.2,<7`` that starts using another one fails here, not on a client."""

from __future__ import annotations

import ast
import inspect

import tornado.httputil
import tornado.routing
import tornado.web

from tfserve_magic.serving.process.http1 import Exchange


def _connection_attributes() -> set[str]:
    """Names read from ``<anything>.connection`` in Tornado's request-handling modules."""
    used: set[str] = set()
    for module in (tornado.web, tornado.httputil, tornado.routing):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "connection":
                used.add(node.attr)
    return used


def test_the_scan_finds_what_tornado_uses() -> None:
    used = _connection_attributes()
    assert {"write_headers", "write", "finish", "set_close_callback"} <= used, used


def test_every_connection_attribute_tornado_uses_is_implemented() -> None:
    missing = sorted(name for name in _connection_attributes() if not hasattr(Exchange, name)
                     and name not in Exchange.__init__.__code__.co_names)
    assert missing == []
    # Implemented here, not inherited from the interface's NotImplementedError stubs.
    for name in ("write_headers", "write", "finish"):
        assert getattr(Exchange, name) is not getattr(tornado.httputil.HTTPConnection, name)
