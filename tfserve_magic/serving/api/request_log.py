"""Request logging from ``logging_config`` in models.config: sampled calls written as TF
Serving's ``PredictionLog`` records (``apis/prediction_log.proto``) to TFRecord files.

TF Serving's ``core/request_logger.cc`` samples each request of a model with its
``sampling_config.sampling_rate`` and hands the record to the model's log collector. Here every
model with a ``logging_config`` writes TFRecord files named
``<filename_prefix>.<pid>.<start time>.<n>.tfrecord``: a file is closed and the next one opened
once it holds ``--request_log_file_bytes``, and only the newest ``--request_log_max_files`` of a
prefix written by this process are kept, so the disk a log takes is bounded.

The request path never waits for a disk: a sampled call only puts a closure on a bounded queue
(a full queue drops the record and counts it); one writer thread builds the records (tensor
conversion included) and writes them, flushing whenever the queue runs empty. A folder that
cannot be written or a full disk is logged (once per cause and minute) and drops records; it never
fails a request. These files are also warmup files: see ``tfserve_magic.operations.warmup``.
No TensorFlow here: the loader supplies the TFRecord writer.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

from tfserve_magic.serving.models.config import ModelConfig, RequestLogging
from tfserve_magic.serving.safelog import Throttle

__all__ = ["RecordWriter", "RequestLog"]

log = logging.getLogger(__name__)

_RECORD_OVERHEAD = 16  # TFRecord framing: length (8), its CRC (4), the data's CRC (4)


class RecordWriter(Protocol):
    """A TFRecord file being written (TensorFlow's ``TFRecordWriter``)."""

    def write(self, record: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


Build = Callable[[], bytes]  # makes one serialized PredictionLog (on the writer thread)


class _Files:
    """The rotating files of one filename prefix."""

    def __init__(self, prefix: str, stamp: str) -> None:
        self.prefix = prefix
        self.stamp = stamp
        self.writer: RecordWriter | None = None
        self.written = 0  # bytes in the current file
        self.count = 0  # files opened so far
        self.paths: list[str] = []  # this process's files, oldest first

    def next_path(self) -> str:
        self.count += 1
        return f"{self.prefix}.{os.getpid()}.{self.stamp}.{self.count:05d}.tfrecord"


class RequestLog:
    """Sampling on the request path; writing on a thread of its own."""

    def __init__(self, config_of: Callable[[str], ModelConfig | None],
                 open_writer: Callable[[str], RecordWriter], *, max_file_bytes: int,
                 max_files: int, max_queued: int = 4096,
                 sample: Callable[[], float] = random.random) -> None:
        """``config_of(model)``: the model's current config (the manager's); ``sample``: a
        uniform draw in [0, 1) (a declared seam)."""
        self._config_of = config_of
        self._open = open_writer
        self._max_file_bytes = max_file_bytes
        self._max_files = max_files
        self._sample = sample
        self._queue: queue.Queue[tuple[str, Build] | None] = queue.Queue(max_queued)
        self._files: dict[str, _Files] = {}
        self._stamp = time.strftime("%Y%m%d-%H%M%S")
        self._problems = Throttle(interval=60.0, max_causes=64)
        self.dropped = 0  # records lost to a full queue or a failed write
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="tfserve-request-log",
                                        daemon=True)
        self._thread.start()

    def sampled(self, model: str) -> RequestLogging | None:
        """The model's logging settings when this call is to be logged, else None."""
        config = self._config_of(model)
        settings = config.logging if config is not None else None
        if settings is None or not settings.sampling_rate > self._sample():
            return None
        return settings

    def submit(self, settings: RequestLogging, build: Build) -> None:
        """Queue one record; never blocks (a full queue drops it)."""
        try:
            self._queue.put_nowait((settings.filename_prefix, build))
        except queue.Full:
            self.dropped += 1
            self._report("queue", "Request log: %d records dropped so far, the writer cannot "
                         "keep up (queue of %d full)", self.dropped, self._queue.maxsize)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (within ``timeout``), then close the files."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    # ---------------------------------------------------------------- the writer thread

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            prefix, build = item
            try:
                record = build()
            except Exception as exc:  # a bug of ours: the record is lost, the log says why
                self.dropped += 1
                self._report(("build", type(exc).__name__),
                             "Request log: could not make a record: %s: %s",
                             type(exc).__name__, exc)
                continue
            self._write(prefix, record)
            if self._queue.empty():
                self._flush()
        for files in self._files.values():
            self._close(files)

    def _write(self, prefix: str, record: bytes) -> None:
        files = self._files.get(prefix)
        if files is None:
            files = self._files[prefix] = _Files(prefix, self._stamp)
        try:
            if files.writer is not None and files.written >= self._max_file_bytes:
                self._close(files)
                self._prune(files)
            if files.writer is None:
                path = files.next_path()
                files.writer = self._open(path)
                files.paths.append(path)
                files.written = 0
            files.writer.write(record)
            files.written += len(record) + _RECORD_OVERHEAD
            self.written += 1
        except Exception as exc:  # OSError, or TensorFlow's errors for the same causes
            self.dropped += 1
            self._close(files)
            self._report(("write", prefix, type(exc).__name__),
                         "Request log: cannot write %s.*: %s (%d records dropped so far; "
                         "requests are still answered)", prefix, _reason(exc), self.dropped)

    def _flush(self) -> None:
        for files in self._files.values():
            if files.writer is None:
                continue
            try:
                files.writer.flush()
            except Exception as exc:
                self._close(files)
                self._report(("write", files.prefix, type(exc).__name__),
                             "Request log: cannot write %s.*: %s (%d records dropped so "
                             "far; requests are still answered)", files.prefix, _reason(exc),
                             self.dropped)

    def _close(self, files: _Files) -> None:
        writer, files.writer = files.writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as exc:  # what was buffered is lost with the disk
                self._report(("close", files.prefix), "Request log: closing a file of %s "
                             "failed: %s", files.prefix, _reason(exc))

    def _prune(self, files: _Files) -> None:
        while len(files.paths) > self._max_files - 1:  # room for the file about to open
            oldest = files.paths.pop(0)
            try:
                os.remove(oldest)
            except OSError as exc:
                self._report(("prune", files.prefix), "Request log: could not remove %s: %s",
                             oldest, exc.strerror)

    def _report(self, cause: object, message: str, *args: object) -> None:
        allowed, held = self._problems.allow(cause)
        if allowed:
            log.error("%s (%d more like this since the last line)", message % args, held)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0]
