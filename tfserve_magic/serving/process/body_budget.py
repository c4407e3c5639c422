"""The server's budget for request bodies held in memory, across all connections
(``--max_buffered_request_bytes``): a body is counted from its headers (its declared length)
or as it arrives (a chunked one) until its request is answered or abandoned. Past the budget a
new large body is refused with 503 before it is read, while bodies of at most 64 KiB are always
admitted, so good small requests keep being served. When a large body is given back, the freed
heap goes back to the operating system at once (``malloc_trim`` on a thread), not at the next
garbage collection. No TensorFlow, no Tornado.
"""

from __future__ import annotations

import asyncio
import os

from tfserve_magic.serving.memory import release_memory

__all__ = ["BodyBudget", "default_budget"]

_TRIM_AFTER_BYTES = 4 << 20  # giving back at least this much trims the heap


def default_budget(max_request_bytes: int) -> int:
    """A sixteenth of the machine's memory (a parsed body peaks at ~14x its size, so what the
    budget admits stays within about the machine's memory), and never less than one request
    of the largest size."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 8 << 30
    return max(max_request_bytes, memory // 16)


class BodyBudget:
    """Bytes of request bodies held, against ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.refused = 0
        self._trimming = False

    def reserve(self, size: int, small: bool) -> str | None:
        """None when ``size`` more bytes fit (a small body always does), else why not."""
        if not small and self.held + size > self.limit:
            self.refused += 1
            return (f"The server is holding {self.held} bytes of request bodies; {size} more "
                    f"would pass its limit of {self.limit} bytes (--max_buffered_request_bytes)."
                    " Retry later")
        self.held += size
        return None

    def release(self, size: int) -> None:
        self.held -= size
        if size >= _TRIM_AFTER_BYTES and not self._trimming:
            self._trimming = True
            loop = asyncio.get_running_loop()
            loop.run_in_executor(None, release_memory).add_done_callback(self._trimmed)

    def _trimmed(self, _: object) -> None:
        self._trimming = False
