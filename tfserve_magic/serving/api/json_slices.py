"""A large JSON body parsed in bounded slices, so that the event loop keeps its turns.

orjson holds the GIL for a whole ``loads``: on a 40 MB body that is long enough to stall every
other client's small request. The bodies that are that large are one big array inside the
top-level object (``{"instances": [...]}``, ``{"inputs": [...]}``) or one level further down
(named inputs, ``{"inputs": {"x": [...]}}``): :func:`loads_in_slices` finds that array's
elements with vectorised scans over 1 MiB blocks, parses about 1 MiB of elements per
``orjson.loads``, and puts the document back together. What does not fit that
shape (escapes in strings, no single dominant array) or does not parse is left to the caller's
one ``orjson.loads``, which also gives the exact error. Pure: numpy and orjson only.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import orjson

__all__ = ["SLICE_BYTES", "loads_in_slices"]

SLICE_BYTES = 1 << 20
_MAX_ARRAYS = 16  # arrays at one depth worth tracking (more: none of them dominates)
_PLACED = "\u0000tfserve_magic.slices"
_PLACEHOLDER = b'"\\u0000tfserve_magic.slices"'
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def loads_in_slices(body: bytes | bytearray) -> Any | None:
    """The document of ``body``, or None to parse it whole (see the module doc)."""
    if len(body) < 4 * SLICE_BYTES or body.find(b"\\") >= 0 or body[:64].lstrip()[:1] != b"{":
        return None
    # Arrays in the top-level object, then one level down (named inputs).
    span = _largest_array(body, 2) or _largest_array(body, 3)
    if span is None:
        return None
    start, end, cuts = span
    try:
        doc = orjson.loads(bytes(body[:start]) + _PLACEHOLDER + bytes(body[end + 1:]))
        place = _find_placeholder(doc)
        if place is None:
            return None
        values: list[Any] = []
        bounds = [start, *cuts, end]
        for left, right in itertools.pairwise(bounds):
            # Wrapped twice: each element is as deep as in the whole document.
            values.extend(orjson.loads(b"[[" + bytes(body[left + 1:right]) + b"]]")[0])
    except orjson.JSONDecodeError:
        return None
    container, key = place
    container[key] = values
    return doc


def _find_placeholder(doc: Any) -> tuple[Any, Any] | None:
    """(container, key) of the placeholder in the top-level object or one level down."""
    if not isinstance(doc, dict):
        return None
    for key, value in doc.items():
        if value == _PLACED:
            return doc, key
    for value in doc.values():
        inner = value.items() if isinstance(value, dict) else \
            enumerate(value) if isinstance(value, list) else ()
        for key, item in inner:
            if item == _PLACED:
                return value, key
    return None


def _largest_array(body: bytes | bytearray, level: int) -> tuple[int, int, list[int]] | None:
    """(position of its ``[``, of its ``]``, commas between its elements about every
    ``SLICE_BYTES``) of the largest array opening at depth ``level`` (2: directly in the
    top-level object), when it is at least half the body."""
    data = np.frombuffer(body, np.uint8)
    depth, quoted = 0, 0
    opened: list[int] = []
    closed: list[int] = []
    commas: list[int] = []
    for offset in range(0, len(data), SLICE_BYTES):
        block = data[offset:offset + SLICE_BYTES]
        quotes = np.cumsum(block == _QUOTE, dtype=np.int32)
        outside = ((quotes + quoted) & 1) == 0
        quoted = (quoted + int(quotes[-1])) & 1
        step = np.where(outside, _OPEN[block], 0)
        levels = np.cumsum(step, dtype=np.int32) + depth
        depth = int(levels[-1])
        starts = np.flatnonzero((levels == level) & (step == 1) & (block == ord("[")))
        ends = np.flatnonzero((levels == level - 1) & (step == -1) & (block == ord("]")))
        opened += (starts + offset).tolist()
        closed += (ends + offset).tolist()
        if len(opened) > _MAX_ARRAYS:
            return None
        inner = np.flatnonzero((levels == level) & outside & (block == ord(",")))
        if inner.size:
            commas.append(int(inner[-1]) + offset)  # one cut per block is enough
    if depth != 0 or quoted or len(opened) != len(closed) or not opened:
        return None
    start, end = max(zip(opened, closed, strict=True), key=lambda pair: pair[1] - pair[0])
    if end - start < len(body) // 2:
        return None
    # Commas at this depth inside the chosen array only (not in a sibling at the same depth).
    return start, end, [cut for cut in commas if start < cut < end]
