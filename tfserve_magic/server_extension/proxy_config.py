"""The extension's settings, as traitlets (``--TFServeProxy.request_timeout=600`` or
``c.TFServeProxy.max_body_size = ...`` in jupyter_server_config.py)."""

from __future__ import annotations

from traitlets import Float, Int
from traitlets.config import Configurable

__all__ = ["TFServeProxy"]


class TFServeProxy(Configurable):
    """How requests to served models are forwarded."""

    max_body_size = Int(
        256 * 1024 * 1024,
        help="Largest request body forwarded to a model server, in bytes (a batch of images "
             "fits). Larger requests get 413. Jupyter's own ServerApp.max_body_size also applies.",
    ).tag(config=True)

    request_timeout = Float(
        300.0,
        help="Seconds to wait for a model server's answer before giving up with 504 (slow "
             "models and large batches need a long time).",
    ).tag(config=True)

    connect_timeout = Float(
        10.0,
        help="Seconds to wait for a connection to a model server before answering 502.",
    ).tag(config=True)
