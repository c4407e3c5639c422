"""The batch scheduler: queues of tasks, batches formed by size and timeout, a pool of threads.

Behaves as TensorFlow's ``SharedBatchScheduler`` (``core/kernels/batching_util``): each queue is a
deque of batches whose last one is open; a task joins the open batch if it fits, else the open
batch is closed and a new one opened, unless the queue already holds ``max_enqueued_batches``
batches (then UNAVAILABLE with TF's message). A batch is handed to a thread when it is closed,
full, older than ``batch_timeout_micros``, or its queue is closing. The threads serve every
queue of the scheduler round-robin; batches being processed no longer count against the queue.

A call may also run on its caller's thread in a batch thread's place (:meth:`BatchScheduler.
reserve`, for a request that fills a batch by itself): it takes a free thread's slot, so no more
than ``num_batch_threads`` batches ever run at once, and only when nothing is queued, so it never
overtakes a waiting batch.

A closed queue (its model version was unloaded) still takes tasks and runs every one of them, so
a version swap never drops a request that already chose that version; the queue is forgotten
once closed and empty. One lock guards all queues of a scheduler. No TensorFlow import.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue

import numpy as np

from tfserve_magic.serving.batching.parameters import BatchingConfig
from tfserve_magic.serving.status_errors import InvalidArgument, Unavailable

__all__ = ["BatchQueue", "BatchScheduler", "Task"]

log = logging.getLogger(__name__)

Outputs = dict[str, np.ndarray]


@dataclass(eq=False)
class Task:
    """One request's inputs and where its outputs go."""

    inputs: dict[str, np.ndarray]
    size: int
    future: Future[Outputs] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _Batch:
    opened: float
    tasks: list[Task] = field(default_factory=list)
    size: int = 0
    closed: bool = False


class BatchQueue:
    """Tasks of one kind (one servable, signature and input key); see the module doc."""

    def __init__(self, scheduler: BatchScheduler, config: BatchingConfig,
                 process: Callable[[list[Task]], None]) -> None:
        self._scheduler = scheduler
        self.config = config
        self.process = process
        self.batches: collections.deque[_Batch] = collections.deque()
        self.closed = False
        self.in_flight = 0
        self.registered = True  # False once the scheduler forgot it (closed and empty)

    def schedule(self, task: Task) -> None:
        """Enqueue or refuse (INVALID_ARGUMENT too large, UNAVAILABLE queue full)."""
        limit = self.config.max_batch_size
        if task.size > limit:
            raise InvalidArgument(f"Task size {task.size} is larger than maximum input batch "
                                  f"size {limit}")
        with self._scheduler.lock:
            batches = self.batches
            tail = batches[-1] if batches else None  # the open batch; None stands for an empty one
            if tail is not None and tail.size + task.size > limit:
                if len(batches) >= self.config.max_enqueued_batches:
                    raise Unavailable(
                        "The batch scheduling queue to which this task was submitted is full; "
                        f"currently {len(batches)} batches enqueued and max_enqueued_batches "
                        f"is {self.config.max_enqueued_batches}")
                tail.closed = True
                tail = None
            if tail is None:
                tail = _Batch(task.enqueued)
                batches.append(tail)
            tail.tasks.append(task)
            tail.size += task.size
            if not self.registered:  # a late request to an unloaded version still runs
                self._scheduler.register(self)
            self._scheduler.wake()

    def close(self) -> None:
        """No more waiting for stragglers: everything queued runs as soon as a thread is free."""
        with self._scheduler.lock:
            self.closed = True
            self._scheduler.wake()

    def ready_batch(self, now: float) -> _Batch | None:
        """Pop the front batch if it may run now (caller holds the lock)."""
        if not self.batches:
            return None
        front = self.batches[0]
        if (front.closed or len(self.batches) > 1 or self.closed
                or front.size >= self.config.max_batch_size
                or now >= front.opened + self.config.batch_timeout_micros / 1e6):
            return self.batches.popleft()
        return None

    def deadline(self) -> float | None:
        """When the open batch times out, if it is the only thing waiting (lock held)."""
        if len(self.batches) == 1:
            return self.batches[0].opened + self.config.batch_timeout_micros / 1e6
        return None

    @property
    def idle(self) -> bool:
        return not self.batches and not self.in_flight


class BatchScheduler:
    """``num_batch_threads`` threads running the batches of all its queues."""

    def __init__(self, threads: int, name: str = "tfserve-batch") -> None:
        self.lock = threading.Lock()
        # Wake-ups: a token per wake, taken by one waiting thread. A C-level queue, not a
        # threading.Condition, whose wait and notify are Python code (6 us of a request's CPU
        # at one client, where every request wakes a thread).
        self._wakes: SimpleQueue[None] = SimpleQueue()
        self._tokens = 0  # wake tokens put and not yet taken
        self._queues: list[BatchQueue] = []
        self._next = 0
        self._idle = 0  # threads waiting for work: only they need a wake-up
        self._running = 0  # batches running: on the threads, or on callers' threads (reserve)
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def add_queue(self, config: BatchingConfig,
                  process: Callable[[list[Task]], None]) -> BatchQueue:
        queue = BatchQueue(self, config, process)
        with self.lock:
            self.register(queue)
        return queue

    def register(self, queue: BatchQueue) -> None:
        """Serve this queue (lock held)."""
        queue.registered = True
        self._queues.append(queue)

    def wake(self) -> None:
        """Called with the lock held when a batch may have become ready. A busy thread looks
        at the queues anyway when its batch is done; waking nobody saves a thread switch
        per request under load (py-spy: a fifth of the loop thread's time)."""
        if self._idle > self._tokens:
            self._tokens += 1
            self._wakes.put(None)

    def reserve(self) -> bool:
        """Take a free thread's slot for one call the caller runs itself; False (nothing taken)
        when every slot is busy, something is queued, or the scheduler stopped."""
        with self.lock:
            if (self._stopped or self._running >= len(self._threads)
                    or any(queue.batches for queue in self._queues)):
                return False
            self._running += 1
            return True

    def release(self) -> None:
        """Give back a slot :meth:`reserve` took."""
        with self.lock:
            self._running -= 1
            self.wake()

    def stop(self) -> None:
        """Stop the threads after the batches they are running (server shutdown)."""
        with self.lock:
            self._stopped = True
            for _ in self._threads:
                self._tokens += 1
                self._wakes.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def _take(self) -> tuple[BatchQueue, _Batch] | None:
        """Next runnable batch, round-robin over queues, waiting until one is (lock held)."""
        while not self._stopped:
            now = time.monotonic()
            # Every slot taken (callers run full batches): wait for a release.
            count = len(self._queues) if self._running < len(self._threads) else 0
            wait: float | None = None
            for step in range(count):
                queue = self._queues[(self._next + step) % count]
                batch = queue.ready_batch(now)
                if batch is not None:
                    self._next = (self._next + step + 1) % count
                    queue.in_flight += 1
                    self._running += 1
                    if queue.batches:  # more work left: let another thread look too
                        self.wake()
                    return queue, batch
                deadline = queue.deadline()
                if deadline is not None:
                    wait = deadline - now if wait is None else min(wait, deadline - now)
            for queue in [q for q in self._queues if q.closed and q.idle]:
                queue.registered = False
                self._queues.remove(queue)
            self._idle += 1
            woken = False
            self.lock.release()
            try:
                self._wakes.get(timeout=None if wait is None else max(wait, 0.0))
                woken = True
            except Empty:
                pass  # the open batch's timeout
            finally:
                self.lock.acquire()
                self._idle -= 1
                self._tokens -= woken
        return None

    def _work(self) -> None:
        while True:
            with self.lock:
                taken = self._take()
            if taken is None:
                return
            queue, batch = taken
            # A caller that gave up (a REST deadline) cancelled its future: its rows stay out
            # of the call, and nobody can cancel the others once they are running.
            tasks = [task for task in batch.tasks if task.future.set_running_or_notify_cancel()]
            try:
                if tasks:
                    queue.process(tasks)
            except BaseException as exc:  # process() settles its futures; this is a last guard
                log.exception("Batch processing failed")
                _fail(tasks, exc)
            finally:
                with self.lock:
                    queue.in_flight -= 1
                    self._running -= 1


def _fail(tasks: list[Task], exc: BaseException) -> None:
    for task in tasks:
        if not task.future.done():
            task.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
