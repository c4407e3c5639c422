"""Flow control of one connection, both ways (uvicorn's ``flow_control`` in our terms): reading
is paused while parsed requests wait for their turn (or a delegate's future), and writers wait
while the transport's buffer is over its high-water mark (``pause_writing`` /
``resume_writing`` from asyncio). Pure asyncio: no Tornado, no TensorFlow.
"""

from __future__ import annotations

import asyncio

__all__ = ["FlowControl"]


class FlowControl:
    """Pausing and resuming one transport, and the writers waiting for it to drain."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self.closed = False
        self._drained: list[asyncio.Future[None]] = []

    def pause_reading(self) -> None:
        if not self.read_paused and not self.closed:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.closed:
            self.read_paused = False
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiters, self._drained = self._drained, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def drain(self) -> asyncio.Future[None] | None:
        """A future that resolves once writing may go on; None when it may now."""
        if not self.write_paused or self.closed:
            return None
        waiter = asyncio.get_running_loop().create_future()
        self._drained.append(waiter)
        return waiter

    def close(self) -> None:
        """The connection is gone: nothing more is paused or resumed, nobody waits."""
        self.closed = True
        self.resume_writing()
