"""Giving a large request's memory back to the operating system once it has been answered.

CPython frees the objects of a parsed request, but glibc keeps the freed heap for reuse, so
after one large request the process would stay that much larger. ``malloc_trim`` returns the
free pages. Elsewhere (not glibc) this does nothing. No TensorFlow, no Tornado.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

__all__ = ["release_memory"]


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Return freed heap pages to the OS (glibc only)."""
    if _TRIM is not None:
        _TRIM(0)
