"""The scheduler on its own: batches formed while the thread is busy, size and timeout rules,
TF Serving's refusals, and closing a queue (a version unload) runs what is queued at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from tfserve_magic.serving.batching.parameters import BatchingConfig
from tfserve_magic.serving.batching.scheduler import BatchScheduler, Task
from tfserve_magic.serving.status_errors import InvalidArgument, Unavailable

WAIT = 30.0  # generous deadline for any future in these tests


class Recorder:
    """The process callback: records each batch's task sizes; the first batch can be held."""

    def __init__(self, hold_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self._hold = hold_first

    def __call__(self, tasks: list[Task]) -> None:
        self.started.set()
        if self._hold:
            self._hold = False
            assert self.release.wait(WAIT)
        self.batches.append([t.size for t in tasks])
        for task in tasks:
            task.future.set_result({"y": task.inputs["x"] * 2})


def _task(rows: int) -> Task:
    return Task({"x": np.arange(rows, dtype=np.float32)}, rows)


@pytest.fixture
def scheduler() -> Iterator[BatchScheduler]:
    scheduler = BatchScheduler(1)
    yield scheduler
    scheduler.stop()


def test_tasks_arriving_while_the_thread_is_busy_run_as_one_batch(scheduler) -> None:
    recorder = Recorder(hold_first=True)
    queue = scheduler.add_queue(BatchingConfig(max_batch_size=8), recorder)
    first = _task(1)
    queue.schedule(first)
    assert recorder.started.wait(WAIT)
    waiting = [_task(n) for n in (1, 2, 3)]
    for task in waiting:
        queue.schedule(task)
    recorder.release.set()
    for task in [first, *waiting]:
        assert task.future.result(WAIT)["y"].tolist() == (task.inputs["x"] * 2).tolist()
    assert recorder.batches == [[1], [1, 2, 3]]


def test_a_task_that_does_not_fit_opens_the_next_batch(scheduler) -> None:
    recorder = Recorder(hold_first=True)
    queue = scheduler.add_queue(BatchingConfig(max_batch_size=4), recorder)
    queue.schedule(_task(1))
    assert recorder.started.wait(WAIT)
    tasks = [_task(3), _task(2), _task(2)]
    for task in tasks:
        queue.schedule(task)
    recorder.release.set()
    for task in tasks:
        task.future.result(WAIT)
    assert recorder.batches == [[1], [3], [2, 2]]


def test_oversize_task_is_refused_with_tf_serving_message(scheduler) -> None:
    queue = scheduler.add_queue(BatchingConfig(max_batch_size=4), Recorder())
    with pytest.raises(InvalidArgument) as raised:
        queue.schedule(_task(5))
    assert raised.value.message == "Task size 5 is larger than maximum input batch size 4"


def test_full_queue_is_refused_unavailable_with_tf_serving_message(scheduler) -> None:
    recorder = Recorder(hold_first=True)
    queue = scheduler.add_queue(BatchingConfig(max_batch_size=1, max_enqueued_batches=2), recorder)
    running = _task(1)
    queue.schedule(running)
    assert recorder.started.wait(WAIT)
    queued = [_task(1), _task(1)]
    for task in queued:
        queue.schedule(task)
    with pytest.raises(Unavailable) as raised:
        queue.schedule(_task(1))
    assert raised.value.message == ("The batch scheduling queue to which this task was submitted "
                                    "is full; currently 2 batches enqueued and "
                                    "max_enqueued_batches is 2")
    recorder.release.set()
    for task in [running, *queued]:
        task.future.result(WAIT)


def test_open_batch_waits_for_its_timeout_unless_full_or_closed(scheduler) -> None:
    recorder = Recorder()
    config = BatchingConfig(max_batch_size=3, batch_timeout_micros=600_000_000)
    queue = scheduler.add_queue(config, recorder)
    full = [_task(1), _task(2)]
    for task in full:
        queue.schedule(task)
    for task in full:
        task.future.result(WAIT)  # a full batch does not wait out the ten-minute timeout
    lonely = _task(1)
    queue.schedule(lonely)
    assert not lonely.future.done()
    queue.close()  # the version was unloaded: run what is queued now
    lonely.future.result(WAIT)
    late = _task(2)  # a request that chose this version before the unload still runs
    queue.schedule(late)
    late.future.result(WAIT)
    assert recorder.batches == [[1, 2], [1], [2]]
