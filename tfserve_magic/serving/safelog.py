"""A server log that requests cannot forge or flood.

Whatever a request puts into a log line (a path, a header, a model name, an exception message)
has its control characters escaped by :class:`OneLineFormatter`, so one record is one line and
no client can write a line of its own; a traceback's lines are indented under the record they
belong to. :class:`Throttle` keeps repeated causes (the same 500, accept() failing on a full
descriptor table, connections shed) to one line per cause and interval, with a count of what it
held back. Pure standard library: no Tornado, no TensorFlow.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["OneLineFormatter", "Throttle", "clean"]

# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
                 0x2028: "\\u2028", 0x2029: "\\u2029"})


def clean(text: str) -> str:
    """``text`` on one line: control characters and lone surrogates escaped."""
    text = text.translate(_ESCAPES)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class OneLineFormatter(logging.Formatter):
    """A formatter whose records cannot contain a line the server did not write."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = clean(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        extra = [record.exc_text or "", self.formatStack(record.stack_info)
                 if record.stack_info else ""]
        for block in filter(None, extra):
            # Indented: an exception message quoting a request cannot start a line of its own.
            text += "".join("\n    | " + clean(line) for line in block.splitlines())
        return text


class Throttle:
    """Says whether a cause should be logged now: the first time, then at most once per
    ``interval`` seconds, remembering at most ``max_causes`` causes (oldest forgotten first).
    ``clock`` gives the time in seconds (``time.monotonic``; a declared seam for tests)."""

    def __init__(self, interval: float = 60.0, max_causes: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._max = max_causes
        self._causes: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()

    def allow(self, cause: Hashable) -> tuple[bool, int]:
        """(log it now, how many of this cause were held back since it was last logged)."""
        now = self._clock()
        last = self._causes.get(cause)
        if last is not None and now - last[0] < self._interval:
            self._causes[cause] = (last[0], last[1] + 1)
            return False, 0
        self._causes[cause] = (now, 0)
        self._causes.move_to_end(cause)
        while len(self._causes) > self._max:
            self._causes.popitem(last=False)
        return True, last[1] if last else 0

    def seen(self, cause: Hashable) -> bool:
        return cause in self._causes
