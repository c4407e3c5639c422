"""A servable whose ``run`` goes through the batcher, and the factory that wraps loaded versions.

:class:`BatchingServable` is what the manager hands out when batching is on, so every surface
(REST, gRPC, warm-up excepted) shares one batcher per model version: ``run()`` blocks the calling
thread until its batch ran; ``submit()`` returns a future for callers on an event loop. A batch
never costs a copy it does not need: a batch of one task reaches the model with the task's own
arrays (no concatenation, no split), and a request that fills a batch by itself
(``max_batch_size`` rows) that comes through ``run()`` (a worker thread: large REST bodies,
gRPC) while a batch thread is free and nothing is queued runs on the caller's thread in that
thread's place (``BatchScheduler.reserve``): nothing could join it, so instead of waking a batch
thread and blocking until it is done, the call goes straight through, counted against
``num_batch_threads`` as any batch. One bad
request never fails the others: when a merged call fails, its tasks are run again one by one and
each gets its own answer. ``close()`` (on unload) lets queued work run at once; nothing queued is
dropped. :class:`Batching` picks each version's parameters (one file for all, or
``batching_params.pbtxt`` in the version folder) and owns the schedulers. No TensorFlow import.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import numpy as np

from tfserve_magic.serving.batching.merge import (
    TaskKey,
    check_shapes,
    merge_inputs,
    split_outputs,
    task_key,
    task_size,
)
from tfserve_magic.serving.batching.parameters import PER_MODEL_FILE, BatchingConfig, load_batching_file
from tfserve_magic.serving.batching.scheduler import BatchQueue, BatchScheduler, Task
from tfserve_magic.serving.models.manager import Servable
from tfserve_magic.serving.status_errors import Code, ConfigError, StatusError
from tfserve_magic.serving.tensor_types import Example, TensorSpec

__all__ = ["BatchObserver", "Batching", "BatchingServable"]

log = logging.getLogger(__name__)

# observer(model, version, rows, padded_rows, queue_delays_seconds)
BatchObserver = Callable[[str, int, int, int, list[float]], None]


class BatchingServable:
    """Wraps one loaded version; see the module doc."""

    def __init__(self, inner: Servable, config: BatchingConfig, scheduler: BatchScheduler,
                 model: str, version: int, observe: BatchObserver | None = None) -> None:
        self._inner = inner
        self._config = config
        self._scheduler = scheduler
        self._model = model
        self._version = version
        self._observe = observe
        self._queues: dict[tuple[str, TaskKey], BatchQueue] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def inputs(self) -> Mapping[str, Mapping[str, TensorSpec]]:
        return self._inner.inputs

    @property
    def outputs(self) -> Mapping[str, Mapping[str, TensorSpec]]:
        return self._inner.outputs

    @property
    def method_names(self) -> Mapping[str, str]:
        return self._inner.method_names

    @property
    def config(self) -> BatchingConfig:
        return self._config

    def signature_metadata(self) -> dict[str, Any]:
        return self._inner.signature_metadata()

    def serialize_examples(self, context: Example | None, examples: list[Example]) -> np.ndarray:
        return self._inner.serialize_examples(context, examples)

    def submit(self, signature: str, inputs: Mapping[str, np.ndarray]) -> Future[dict[str, np.ndarray]]:
        """Queue one request; errors known before queueing are raised here."""
        specs = self._inner.inputs.get(signature)
        if specs is None:
            self._inner.run(signature, inputs)  # raises the unbatched "signature not found" error
        else:
            check_shapes(inputs, specs)
        task = Task(dict(inputs), task_size(inputs))
        self._queue(signature, task_key(inputs, self._config.pad_variable_length_inputs)
                    ).schedule(task)
        return task.future

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Blocking form of :meth:`submit` for callers on worker threads; a request that fills a
        batch runs right here (see the module doc), with the same checks and metrics."""
        specs = self._inner.inputs.get(signature)
        if specs is not None:
            check_shapes(inputs, specs)
            size = task_size(inputs)
            if (size == self._config.max_batch_size == self._config.padded_size(size)
                    and self._scheduler.reserve()):
                try:
                    outputs = split_outputs(self._call(signature, inputs), [size], size)[0]
                finally:
                    self._scheduler.release()
                if self._observe is not None:
                    self._observe(self._model, self._version, size, size, [0.0])
                return outputs
        return self.submit(signature, inputs).result()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            queues = list(self._queues.values())
        for queue in queues:
            queue.close()

    def _queue(self, signature: str, key: TaskKey) -> BatchQueue:
        with self._lock:
            queue = self._queues.get((signature, key))
            if queue is None:
                queue = self._scheduler.add_queue(
                    self._config, lambda tasks: self._process(signature, tasks))
                self._queues[(signature, key)] = queue
            if self._closed:
                queue.close()
            return queue

    def _process(self, signature: str, tasks: list[Task]) -> None:
        started = time.monotonic()
        sizes = [t.size for t in tasks]
        rows = sum(sizes)
        padded = self._config.padded_size(rows)
        try:
            merged = merge_inputs([t.inputs for t in tasks], padded,
                                  self._config.pad_variable_length_inputs)
            parts = split_outputs(self._call(signature, merged), sizes, padded)
        except Exception as exc:
            if len(tasks) > 1:
                log.info("A batch of %d requests to %s version %d failed (%s); running them "
                         "one by one", len(tasks), self._model, self._version, exc)
                for task in tasks:
                    self._process(signature, [task])
                return
            tasks[0].future.set_exception(
                exc if isinstance(exc, StatusError) else StatusError(str(exc), Code.INTERNAL))
            return
        if self._observe is not None:
            self._observe(self._model, self._version, rows, padded,
                          [started - t.enqueued for t in tasks])
        for task, part in zip(tasks, parts, strict=True):
            task.future.set_result(part)

    def _call(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model call of one batch; anything but a StatusError becomes an INTERNAL one."""
        try:
            return self._inner.run(signature, inputs)
        except StatusError:
            raise
        except Exception as exc:
            raise StatusError(str(exc), Code.INTERNAL) from exc


class Batching:
    """Server-wide batching: which parameters each version gets, and the shared threads."""

    def __init__(self, common: BatchingConfig, per_model: bool,
                 observe: BatchObserver | None = None) -> None:
        self._common = common
        self._per_model = per_model
        self._observe = observe
        self._shared: BatchScheduler | None = None
        self._per_model_schedulers: dict[str, BatchScheduler] = {}
        self._lock = threading.Lock()

    def wrap(self, model: str, version: int, path: str, servable: Servable) -> Servable:
        """The manager's hook after a load: a batching servable, or the servable unchanged
        (per-model mode and no ``batching_params.pbtxt`` in the version folder)."""
        if self._per_model:
            file = os.path.join(path, PER_MODEL_FILE)
            if not os.path.exists(file):
                return servable
            try:
                config = load_batching_file(file)
            except ConfigError as exc:
                raise StatusError(str(exc), Code.INVALID_ARGUMENT) from None
            with self._lock:  # one per model, kept across its versions (no threads leak on swaps)
                scheduler = self._per_model_schedulers.get(model)
                if scheduler is None:
                    scheduler = BatchScheduler(config.threads, f"tfserve-batch-{model}")
                    self._per_model_schedulers[model] = scheduler
        else:
            config = self._common
            with self._lock:
                if self._shared is None:
                    self._shared = BatchScheduler(config.threads)
                scheduler = self._shared
        log.info("Wrapping servable %s version %d to perform batch processing "
                 "(max_batch_size=%d, batch_timeout_micros=%d, max_enqueued_batches=%d, "
                 "num_batch_threads=%d)", model, version, config.max_batch_size,
                 config.batch_timeout_micros, config.max_enqueued_batches, config.threads)
        return BatchingServable(servable, config, scheduler, model, version, self._observe)

    def stop(self) -> None:
        with self._lock:
            schedulers = ([self._shared] if self._shared else []) + list(
                self._per_model_schedulers.values())
        for scheduler in schedulers:
            scheduler.stop()
