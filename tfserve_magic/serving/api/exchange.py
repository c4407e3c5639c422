"""What the REST API needs of one request on a connection to claim and answer it itself: the
request line, the header fields and the host it names, and one write for the whole answer.

The HTTP/1.1 layer's ``process.http1.Exchange`` has this shape; the API layer names only this
protocol, so it never imports the process layer that imports it (layers point down).
"""

from __future__ import annotations

from typing import Protocol

import tornado.httputil

__all__ = ["Exchange"]


class Exchange(Protocol):
    """One request as the connection layer hands it to a claim."""

    start_line: tornado.httputil.RequestStartLine
    fields: dict[str, str]  # lower-case names; the last of a repeated one
    repeated_fields: bool  # a field came more than once (the full handlers take those)
    host: str  # what the request names as its host ("" for none)

    def answer(self, head: bytes, body: bytes) -> None:
        """The whole answer in one write: ``head`` is the status line and headers."""
