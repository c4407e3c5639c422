"""The tensor types the serving core's layers share: a signature's :class:`TensorSpec` and a
classify / regress :data:`Example`.

Models describe their signatures with them, batching merges by them, and the surfaces parse
requests into them; so they live below all three. Pure: imports nothing from the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Example", "Feature", "TensorSpec"]


@dataclass(frozen=True)
class TensorSpec:
    """An input or output of a signature: TF dtype name (``DT_FLOAT``) and shape (None = unknown)."""

    dtype: str
    shape: tuple[int, ...] | None = None


Feature = tuple[str, list[Any]]  # ("bytes" | "float" | "int64", values)
Example = dict[str, Feature]
