"""Unit tests of the batcher's pure tensor work: size checks, keys, merge, pad, split."""

from __future__ import annotations

import numpy as np
import pytest

from tfserve_magic.serving.batching.merge import merge_inputs, split_outputs, task_key, task_size
from tfserve_magic.serving.status_errors import FailedPrecondition, InvalidArgument


def test_task_size_is_the_common_first_dimension() -> None:
    assert task_size({"a": np.zeros((3, 2)), "b": np.zeros(3)}) == 3


@pytest.mark.parametrize("inputs, message", [
    ({"a": np.float32(1.0) * np.ones(())}, "Batching Run() input tensors must have at least one dimension"),
    ({"a": np.zeros(2), "b": np.zeros(3)}, "Batching Run() input tensors must have equal 0th-dimension size"),
])
def test_unbatchable_tasks_are_refused_with_tf_serving_messages(inputs, message) -> None:
    with pytest.raises(InvalidArgument) as raised:
        task_size(inputs)
    assert raised.value.message == message


def test_keys_separate_shapes_and_dtypes_unless_padding() -> None:
    a, b = {"x": np.zeros((1, 3), np.float32)}, {"x": np.zeros((2, 4), np.float32)}
    assert task_key(a, False) != task_key(b, False)
    assert task_key(a, True) == task_key(b, True)
    assert task_key(a, False) != task_key({"x": np.zeros((1, 3), np.float64)}, False)
    assert task_key(a, False) == task_key({"x": np.ones((5, 3), np.float32)}, False)


def test_merge_concatenates_and_pads_to_the_allowed_size_with_the_last_tasks_first_row() -> None:
    tasks = [{"x": np.array([1.0, 2.0])}, {"x": np.array([3.0])}]
    merged = merge_inputs(tasks, 4, pad_variable_length=False)
    assert merged["x"].tolist() == [1.0, 2.0, 3.0, 3.0]


def test_a_batch_of_one_without_padding_is_the_tasks_own_arrays() -> None:
    task = {"x": np.zeros((2, 3), np.float32), "y": np.ones(2, np.int32)}
    for pad_variable_length in (False, True):
        merged = merge_inputs([task], 2, pad_variable_length)
        assert all(merged[name] is task[name] for name in task)
    padded = merge_inputs([task], 4, False)  # padding rows still make a new array
    assert padded["x"].shape == (4, 3) and not np.shares_memory(padded["x"], task["x"])


def test_merge_pads_variable_length_inputs_with_each_tensors_first_element() -> None:
    tasks = [{"t": np.array([[7, 8, 9]])}, {"t": np.array([[5], [6]])}]
    merged = merge_inputs(tasks, 3, pad_variable_length=True)
    assert merged["t"].tolist() == [[7, 8, 9], [5, 5, 5], [6, 5, 5]]


def test_merge_without_padding_refuses_different_shapes_with_tf_serving_message() -> None:
    tasks = [{"t": np.zeros((1, 3))}, {"t": np.zeros((1, 2))}]
    with pytest.raises(FailedPrecondition, match="Tensors with name 't' from different tasks "
                       "have different shapes and padding is turned off"):
        merge_inputs(tasks, 2, pad_variable_length=False)


def test_split_gives_each_task_its_rows_and_drops_padding() -> None:
    outputs = {"y": np.arange(8).reshape(4, 2), "z": np.arange(4)}
    parts = split_outputs(outputs, [1, 2], 4)
    assert [p["y"].tolist() for p in parts] == [[[0, 1]], [[2, 3], [4, 5]]]
    assert [p["z"].tolist() for p in parts] == [[0], [1, 2]]


def test_split_refuses_outputs_that_lost_the_batch_dimension() -> None:
    with pytest.raises(FailedPrecondition, match="0th dimension does not equal the sum"):
        split_outputs({"y": np.zeros(3)}, [1, 1], 2)
    with pytest.raises(FailedPrecondition, match="Batched output tensor has 0 dimensions"):
        split_outputs({"y": np.zeros(())}, [1], 1)
