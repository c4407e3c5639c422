"""What a batch costs, on a real SavedModel behind the batching servable: a request that fills a
batch reaches the model as the caller's own arrays, on the caller's thread when a batch thread
is free (and through the queue when none is); a batch of one reaches it uncopied through the
queue; only a batch of several is concatenated. The model is wrapped at the servable seam
(``manager.Servable``) by a recorder that passes every call through to TensorFlow."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfserve_magic.serving.batching.parameters import BatchingConfig
from tfserve_magic.serving.batching.scheduler import BatchScheduler
from tfserve_magic.serving.batching.servable import BatchingServable
from tfserve_magic.serving.models.manager import Servable

WAIT = 60.0
FULL = 4  # max_batch_size of these tests


class Recorder:
    """Passes calls to the real servable; remembers what each call received, on which thread,
    and what it returned, and how many calls ever ran at once."""

    def __init__(self, inner: Servable) -> None:
        self._inner = inner
        self.inputs = inner.inputs
        self.outputs = inner.outputs
        self.method_names = inner.method_names
        self.calls: list[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]] = []
        self.gate: threading.Event | None = None  # when set: calls wait for it
        self.entered = threading.Event()
        self.most_at_once = 0
        self._running = 0
        self._lock = threading.Lock()

    def signature_metadata(self) -> dict[str, Any]:
        return self._inner.signature_metadata()

    def serialize_examples(self, context: Any, examples: Any) -> np.ndarray:
        return self._inner.serialize_examples(context, examples)

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        try:
            self.entered.set()
            if self.gate is not None:
                assert self.gate.wait(WAIT)
            outputs = self._inner.run(signature, inputs)
        finally:
            with self._lock:
                self._running -= 1
        self.calls.append((threading.current_thread().name, dict(inputs), outputs))
        return outputs


@pytest.fixture(scope="module")
def pixels(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from models import build_pixels

    from tfserve_magic.serving.models.loader import SavedModelServable

    base = tmp_path_factory.mktemp("models") / "pixels"
    build_pixels(str(base))
    return SavedModelServable(str(Path(base) / "1"), ["serve"])


@pytest.fixture
def batching(pixels: Any) -> Iterator[tuple[Recorder, BatchingServable]]:
    recorder = Recorder(pixels)
    scheduler = BatchScheduler(1)
    # Batches wait a minute for more rows unless full: which requests share a call is known.
    config = BatchingConfig(max_batch_size=FULL, batch_timeout_micros=60_000_000,
                            num_batch_threads=1)
    yield recorder, BatchingServable(recorder, config, scheduler, "pixels", 1)
    if recorder.gate is not None:
        recorder.gate.set()
    scheduler.stop()


def _rows(count: int, start: float = 0.0) -> dict[str, np.ndarray]:
    return {"pixels": np.arange(start, start + 4 * count, dtype=np.float32).reshape(count, 4)}


def test_a_full_batch_reaches_the_model_uncopied_on_the_callers_thread(batching, pixels) -> None:
    recorder, servable = batching
    sent = _rows(FULL)
    answer = servable.run("serving_default", sent)
    [(thread, received, returned)] = recorder.calls
    assert thread == threading.current_thread().name  # no batch thread was woken
    assert received["pixels"] is sent["pixels"]  # the caller's own buffer, no concatenation
    assert answer["scores"] is returned["scores"]  # and the model's own output, no split
    np.testing.assert_array_equal(answer["scores"], pixels.run("serving_default", sent)["scores"])


def test_a_full_batch_queues_when_no_batch_thread_is_free(batching) -> None:
    recorder, servable = batching
    recorder.gate = threading.Event()
    with ThreadPoolExecutor(2, thread_name_prefix="caller") as callers:
        # The first takes the one batch thread's slot and holds it until the gate opens.
        busy = callers.submit(servable.run, "serving_default", _rows(FULL))
        assert recorder.entered.wait(WAIT)
        sent = _rows(FULL, 100.0)
        queued = callers.submit(servable.run, "serving_default", sent)
        recorder.gate.set()
        for future in (busy, queued):
            future.result(WAIT)
    [first, second] = recorder.calls
    assert first[0].startswith("caller")
    assert second[0].startswith("tfserve-batch")  # queued, then run by the batch thread
    assert recorder.most_at_once == 1  # num_batch_threads=1 held, the caller's call counted
    assert second[1]["pixels"] is sent["pixels"]  # a batch of one: still uncopied


def test_a_batch_of_one_goes_through_the_queue_uncopied(batching) -> None:
    recorder, servable = batching
    sent = _rows(1)
    future = servable.submit("serving_default", sent)
    servable.close()  # no more waiting for company: the batch of one runs now
    answer = future.result(WAIT)
    [(thread, received, returned)] = recorder.calls
    assert thread.startswith("tfserve-batch")
    assert received["pixels"] is sent["pixels"]
    assert answer["scores"] is returned["scores"]


def test_only_a_batch_of_several_is_concatenated(batching) -> None:
    recorder, servable = batching
    first, second = _rows(1), _rows(FULL - 1, 50.0)
    futures = [servable.submit("serving_default", first),
               servable.submit("serving_default", second)]
    answers = [f.result(WAIT) for f in futures]
    [(_, received, _)] = recorder.calls
    merged = received["pixels"]
    assert not np.shares_memory(merged, first["pixels"])
    assert not np.shares_memory(merged, second["pixels"])
    np.testing.assert_array_equal(merged, np.concatenate([first["pixels"], second["pixels"]]))
    assert [len(a["scores"]) for a in answers] == [1, FULL - 1]
