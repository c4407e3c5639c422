"""Pure tensor work of a batch: check a task, key it, merge tasks along dimension 0, split back.

Semantics and messages of TF Serving's ``batching/batching_session.cc`` and
``batching_util.cc``: every input of a task has at least one dimension and the same first
dimension; tasks are merged only with tasks of the same key (input names, dtypes and every
dimension but the first, or only the rank when ``pad_variable_length_inputs`` is on, in which
case each tensor is padded up to the largest with its own first element); the merged batch is
padded up to the next allowed batch size with copies of the last task's first row; outputs are
split back by each task's row count and padding rows are dropped. numpy only, no threads.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from tfserve_magic.serving.status_errors import FailedPrecondition, InvalidArgument
from tfserve_magic.serving.tensor_types import TensorSpec

__all__ = ["TaskKey", "check_shapes", "merge_inputs", "split_outputs", "task_key", "task_size"]

TaskKey = tuple[tuple[str, str, tuple[int, ...]], ...]


def task_size(inputs: Mapping[str, np.ndarray]) -> int:
    """The task's row count (``ComputeTensorBatchSize``); refuses what cannot be batched."""
    size = -1
    for value in inputs.values():
        if value.ndim == 0:
            raise InvalidArgument("Batching Run() input tensors must have at least one dimension")
        if size == -1:
            size = value.shape[0]
        elif value.shape[0] != size:
            raise InvalidArgument("Batching Run() input tensors must have equal 0th-dimension size")
    return max(size, 0)


def check_shapes(inputs: Mapping[str, np.ndarray], specs: Mapping[str, TensorSpec]) -> None:
    """Refuse a request whose shape contradicts the signature before it can join a batch: once
    merged (and padded) it would change, or fail, the other requests' answers."""
    for name, value in inputs.items():
        spec = specs.get(name)
        if spec is None or spec.shape is None:
            continue
        if value.ndim != len(spec.shape) or any(
                want not in (-1, have) for have, want in zip(value.shape[1:], spec.shape[1:], strict=True)):
            shown = ",".join(str(d) for d in value.shape)
            wanted = ",".join(str(d) for d in spec.shape)
            raise InvalidArgument(f"Input '{name}' has shape [{shown}], which does not match "
                                  f"the signature's shape [{wanted}] (-1: any size)")


def task_key(inputs: Mapping[str, np.ndarray], pad_variable_length: bool) -> TaskKey:
    """Tasks with equal keys can share a batch."""
    return tuple(
        (name, value.dtype.str,
         (value.ndim,) if pad_variable_length else tuple(value.shape[1:]))
        for name, value in sorted(inputs.items()))


def _pad_to(value: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    widths = [(0, 0)] + [(0, want - have) for have, want in zip(value.shape[1:], shape, strict=True)]
    if not any(after for _, after in widths) or value.size == 0:
        return value
    return np.pad(value, widths, mode="constant", constant_values=value.flat[0])


def merge_inputs(tasks: Sequence[Mapping[str, np.ndarray]], padded_rows: int,
                 pad_variable_length: bool) -> dict[str, np.ndarray]:
    """Concatenate each input along dimension 0, padding as described in the module doc. A
    batch of one that needs no padding rows is the task's own arrays, unchecked and uncopied
    (TF Serving's singleton fast path; nothing could differ from it)."""
    if len(tasks) == 1 and task_size(tasks[0]) == padded_rows:
        return dict(tasks[0])
    merged: dict[str, np.ndarray] = {}
    rows = sum(task_size(t) for t in tasks)
    for name in tasks[0]:
        parts = [task[name] for task in tasks]
        if pad_variable_length:
            widest = np.max([p.shape[1:] for p in parts], axis=0) if parts[0].ndim > 1 else ()
            parts = [_pad_to(p, widest) for p in parts]
        elif any(p.shape[1:] != parts[0].shape[1:] for p in parts):
            raise FailedPrecondition(
                f"Tensors with name '{name}' from different tasks have different shapes and "
                "padding is turned off. Set pad_variable_length_inputs to true, or ensure that "
                "all tensors with the same name have equal dimensions starting with the first "
                "dim.")
        if padded_rows > rows:
            last = next((p for p in reversed(parts) if p.shape[0]), parts[-1])
            parts.append(np.repeat(last[:1], padded_rows - rows, axis=0))
        merged[name] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    return merged


def split_outputs(outputs: Mapping[str, np.ndarray], sizes: Sequence[int],
                  padded_rows: int) -> list[dict[str, np.ndarray]]:
    """One output dict per task, in task order; padding rows are left out."""
    for value in outputs.values():
        if value.ndim == 0:
            raise FailedPrecondition("Batched output tensor has 0 dimensions")
        if value.shape[0] != padded_rows:
            raise FailedPrecondition(
                "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                "dimension sizes of the input tensors")
    if len(sizes) == 1 and sizes[0] == padded_rows:
        return [dict(outputs)]
    bounds = np.cumsum([0, *sizes])
    return [{name: value[start:stop] for name, value in outputs.items()}
            for start, stop in itertools.pairwise(bounds)]
