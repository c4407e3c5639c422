"""Captured traffic -> the next version's warmup file, in one call.

A server with ``logging_config`` writes sampled calls as ``PredictionLog`` records to
``<filename_prefix>.*.tfrecord`` files (``serving.api.request_log``); TF Serving replays the same
records from a version's ``assets.extra/tf_serving_warmup_requests`` before serving it.
:func:`warmup_from_log` copies the newest logged requests of a model (at most TF Serving's 1000),
responses dropped, into a version folder's warmup file, written whole or not at all. TensorFlow
is imported when it is called (its TFRecord reader and writer), never at import.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tfserve_magic.errors import TFServeError

__all__ = ["WarmupError", "WarmupFile", "log_files", "warmup_from_log"]

MAX_RECORDS = 1000  # TF Serving's WarmupConsts::kMaxNumRecords
_WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_KINDS = ("predict_log", "classify_log", "regress_log", "multi_inference_log")


class WarmupError(TFServeError):
    """No warmup file was written; the message says why."""


@dataclass(frozen=True)
class WarmupFile:
    """What :func:`warmup_from_log` wrote."""

    path: str  # the version's assets.extra/tf_serving_warmup_requests
    records: int  # requests written
    read: int  # records read from the logs (of every model)
    files: tuple[str, ...]  # the log files read, oldest first


def log_files(filename_prefix: str) -> list[str]:
    """The request log files of a ``filename_prefix``, oldest first."""
    paths = glob.glob(glob.escape(filename_prefix) + ".*.tfrecord")
    return sorted(paths, key=lambda path: (os.path.getmtime(path), path))


def warmup_from_log(logs: str | Sequence[str], version_dir: str | os.PathLike[str], *,
                    model: str | None = None, max_records: int = MAX_RECORDS) -> WarmupFile:
    """Write ``version_dir/assets.extra/tf_serving_warmup_requests`` from logged requests.

    ``logs``: a ``filename_prefix`` of a model's ``logging_config``, or log file paths.
    ``model``: keep only that model's records (all by default). The newest ``max_records``
    (at most 1000, TF Serving's limit) are kept, in the order they were logged. Raises
    :class:`WarmupError` when there is nothing to write or the folder is not a SavedModel.
    """
    if not 1 <= max_records <= MAX_RECORDS:
        raise WarmupError(f"max_records must be between 1 and {MAX_RECORDS}, got {max_records}")
    folder = os.fspath(version_dir)
    if not os.path.isfile(os.path.join(folder, "saved_model.pb")):
        raise WarmupError(f"{folder} is not a SavedModel version folder (no saved_model.pb)")
    paths = log_files(logs) if isinstance(logs, str) else list(logs)
    if not paths:
        raise WarmupError(f"no request log files {logs}.*.tfrecord (is logging_config set for "
                          "the model, and has it answered a request since?)")
    kept: list[bytes] = []
    read = 0
    for entry in _entries(paths):
        read += 1
        if model is not None and entry.log_metadata.model_spec.name != model:
            continue
        kind = entry.WhichOneof("log_type")
        if kind not in _KINDS:
            continue
        getattr(entry, kind).ClearField("response")  # warmup replays requests only
        entry.ClearField("log_metadata")
        kept.append(entry.SerializeToString())
    kept = kept[-max_records:]
    if not kept:
        raise WarmupError(f"the {read} records in {len(paths)} log file(s) hold no request "
                          + (f"to model {model}" if model else "to replay"))
    target = os.path.join(folder, _WARMUP_FILE)
    _write(target, kept)
    return WarmupFile(target, len(kept), read, tuple(paths))


def _entries(paths: Sequence[str]) -> list[Any]:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    entries = []
    for path in paths:
        try:
            for record in tf.data.TFRecordDataset(path):
                entry = prediction_log_pb2.PredictionLog()
                entry.ParseFromString(record.numpy())
                entries.append(entry)
        except tf.errors.DataLossError:
            continue  # a file still being written ends in a partial record: keep what was read
        except tf.errors.NotFoundError:
            raise WarmupError(f"no request log file {path}") from None
    return entries


def _write(target: str, records: Sequence[bytes]) -> None:
    import tensorflow as tf

    os.makedirs(os.path.dirname(target), exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".warmup-")
    os.close(handle)
    try:
        with tf.io.TFRecordWriter(temporary) as writer:
            for record in records:
                writer.write(record)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
