"""A gzip request body inflated for the delegate behind it (``Content-Encoding: gzip``), as
Tornado's own connection does, but in bounded pieces, and strict: a body that is not gzip, is
cut short, or has bytes after its last member is the client's mistake, raised as
``HTTPInputError`` so the connection answers ``400 {"error": ...}`` (and logs it, throttled)
instead of dropping the connection. Inflating stops once the request has been answered (a 413
for a body that inflates past the limit). No TensorFlow, no Jupyter.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.httputil

__all__ = ["Inflating"]

_PIECE = 64 << 10  # the delegate gets the inflated body in pieces no larger than this
_PIECES_PER_TURN = 16  # then the event loop gets a turn (1 MiB inflated)
_GZIP_MAGIC = b"\x1f\x8b"


def _inflater() -> Any:
    return zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16: the gzip container, not raw zlib


class Inflating(tornado.httputil.HTTPMessageDelegate):
    """Inflates for ``delegate`` until ``answered()`` says the answer has begun."""

    def __init__(self, delegate: tornado.httputil.HTTPMessageDelegate,
                 answered: Callable[[], bool]) -> None:
        self._delegate = delegate
        self._answered = answered
        self._inflater = _inflater()
        self._in_member = False  # a gzip member has begun and not ended (RFC 1952 allows
        # several, one after another)

    def headers_received(self, start_line: Any, headers: Any) -> Awaitable[None] | None:
        return self._delegate.headers_received(start_line, headers)

    async def data_received(self, chunk: bytes) -> None:
        pieces = 0
        while chunk and not self._answered():  # answered (a 413): inflate no more
            pieces += 1
            if pieces % _PIECES_PER_TURN == 0:
                await asyncio.sleep(0)  # a small body inflating to 40 MB: others get turns
            self._in_member = True
            try:
                piece = self._inflater.decompress(chunk, _PIECE)
            except zlib.error as exc:
                raise tornado.httputil.HTTPInputError(
                    f"gzip body cannot be inflated ({_reason(exc)})") from None
            if piece:
                pending = self._delegate.data_received(piece)
                if pending is not None:
                    await pending
            chunk = self._next_input()

    def _next_input(self) -> bytes:
        """What is left to inflate: the current member's tail, or the next member."""
        if not self._inflater.eof:
            tail: bytes = self._inflater.unconsumed_tail
            return tail
        rest: bytes = self._inflater.unused_data
        if rest and not _GZIP_MAGIC.startswith(rest[:2]):
            raise tornado.httputil.HTTPInputError("gzip body has data after its end")
        self._in_member = False
        self._inflater = _inflater()
        return rest

    def finish(self) -> None:
        if not self._answered():  # else what is left need not be inflated either
            tail = self._inflater.flush()
            if tail:
                self._delegate.data_received(tail)
            if self._in_member and not self._inflater.eof:
                raise tornado.httputil.HTTPInputError("gzip body is cut short")
        self._delegate.finish()

    def on_connection_close(self) -> None:
        self._delegate.on_connection_close()


def _reason(exc: zlib.error) -> str:
    """zlib's words without its error number ("incorrect header check")."""
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text
