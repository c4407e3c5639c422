"""TF Serving's ``BatchingParameters`` text proto -> one frozen :class:`BatchingConfig`.

The file format is ``tensorflow.serving.BatchingParameters`` of
``servables/tensorflow/session_bundle_config.proto`` (``max_batch_size { value: 32 }`` ...).
``tensorflow-serving-api`` 2.21 ships only ``apis/`` and ``config/``, not that proto, so the
message is declared here once, field for field (same package, names, numbers and wrapper types),
in a private descriptor pool, and parsed with protobuf's own text-format parser: a file TF
Serving accepts parses here unchanged, and a typo fails the same way. Defaults when a field is
absent are those of TensorFlow's ``SharedBatchScheduler::QueueOptions`` and ``Options``.

No TensorFlow import here (checked at start-up, before the handshake).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

from google.protobuf import text_format

from tfserve_magic.serving.proto_schemas import message_classes
from tfserve_magic.serving.status_errors import ConfigError

__all__ = ["NOTEBOOK_DEFAULTS", "PER_MODEL_FILE", "BatchingConfig", "load_batching_file",
           "parse_batching_text"]

PER_MODEL_FILE = "batching_params.pbtxt"  # TF Serving's kBatchingParamsFilename

# TensorFlow's SharedBatchScheduler defaults.
_DEFAULT_MAX_BATCH_SIZE = 1000
_DEFAULT_TIMEOUT_MICROS = 0
_DEFAULT_MAX_ENQUEUED_BATCHES = 10

# session_bundle_config.proto's BatchingParameters, field for field.
_BatchingParameters = message_classes("tfserve_magic/batching_parameters.proto", {
    "BatchingParameters": [
        ("max_batch_size", 1, "google.protobuf.Int64Value"),
        ("batch_timeout_micros", 2, "google.protobuf.Int64Value"),
        ("max_enqueued_batches", 3, "google.protobuf.Int64Value"),
        ("num_batch_threads", 4, "google.protobuf.Int64Value"),
        ("thread_pool_name", 5, "google.protobuf.StringValue"),
        ("allowed_batch_sizes", 6, "repeated int64"),
        ("pad_variable_length_inputs", 7, "bool"),
        ("enable_large_batch_splitting", 8, "google.protobuf.BoolValue"),
        ("max_execution_batch_size", 9, "google.protobuf.Int64Value"),
    ]})["BatchingParameters"]


@dataclass(frozen=True)
class BatchingConfig:
    """What one batcher runs with (TF Serving's names; defaults filled in)."""

    max_batch_size: int = _DEFAULT_MAX_BATCH_SIZE
    batch_timeout_micros: int = _DEFAULT_TIMEOUT_MICROS
    max_enqueued_batches: int = _DEFAULT_MAX_ENQUEUED_BATCHES
    num_batch_threads: int = 0  # 0: one per core (TensorFlow's port::MaxParallelism)
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    thread_pool_name: str = "model_server_batch_threads"

    @property
    def threads(self) -> int:
        return self.num_batch_threads or (os.cpu_count() or 1)

    def padded_size(self, rows: int) -> int:
        """``RoundToLowestAllowedBatchSize``: the smallest allowed size >= rows."""
        for allowed in self.allowed_batch_sizes:
            if allowed >= rows:
                return allowed
        return rows

    def to_text(self) -> str:
        """The same settings as a ``BatchingParameters`` text proto TF Serving reads."""
        lines = [f"max_batch_size {{ value: {self.max_batch_size} }}",
                 f"batch_timeout_micros {{ value: {self.batch_timeout_micros} }}",
                 f"max_enqueued_batches {{ value: {self.max_enqueued_batches} }}"]
        if self.num_batch_threads:
            lines.append(f"num_batch_threads {{ value: {self.num_batch_threads} }}")
        lines += [f"allowed_batch_sizes: {size}" for size in self.allowed_batch_sizes]
        if self.pad_variable_length_inputs:
            lines.append("pad_variable_length_inputs: true")
        return "\n".join(lines) + "\n"


# ``%tfserve start --batching``: many small concurrent requests on a laptop or a notebook VM.
# No timeout (batches form while a call runs, so a lone request never waits) and room for many
# waiting clients, as TF Serving's performance guide starts online serving. One thread, not one
# per core as in C++: a second Python batch thread only competes for the GIL with the event loop
# and the first (TF already spreads one call over the cores), so batches get smaller and each
# costs a full call. Measured (server on one core, 16 clients, batch-1 requests, 2026-11-25):
# MLP 784-256-10 mean batch 2.2 rows and 1083-1276 req/s with one thread against 1.5 rows and
# 705-929 req/s with two; the tiny model 6.8-12.1 rows, 1491-1589 req/s against 5.0 rows,
# 1369-1406 req/s. A timeout (300 or 1000 us) moved neither more than the noise.
NOTEBOOK_DEFAULTS = BatchingConfig(max_batch_size=32, batch_timeout_micros=0,
                                   max_enqueued_batches=64, num_batch_threads=1)


def parse_batching_text(text: str, source: str) -> BatchingConfig:
    """Parse and check one ``BatchingParameters`` text proto; ConfigError says what is wrong."""
    message = _BatchingParameters()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ConfigError(f"Invalid protobuf file: '{source}': {exc}") from None

    def value(name: str, default: Any) -> Any:
        return getattr(message, name).value if message.HasField(name) else default

    if message.HasField("num_batch_threads") and message.num_batch_threads.value < 1:
        raise ConfigError(f"{source}: num_batch_threads must be >= 1, got "
                          f"{message.num_batch_threads.value}")
    if value("enable_large_batch_splitting", False):
        raise ConfigError(f"{source}: enable_large_batch_splitting is not supported by this "
                          "server; remove it (requests larger than max_batch_size are refused)")
    config = BatchingConfig(
        max_batch_size=value("max_batch_size", _DEFAULT_MAX_BATCH_SIZE),
        batch_timeout_micros=value("batch_timeout_micros", _DEFAULT_TIMEOUT_MICROS),
        max_enqueued_batches=value("max_enqueued_batches", _DEFAULT_MAX_ENQUEUED_BATCHES),
        num_batch_threads=value("num_batch_threads", 0),
        allowed_batch_sizes=tuple(message.allowed_batch_sizes),
        pad_variable_length_inputs=message.pad_variable_length_inputs,
        thread_pool_name=value("thread_pool_name", "model_server_batch_threads"))
    _check(config, source)
    return config


def _check(config: BatchingConfig, source: str) -> None:
    for name in ("max_batch_size", "max_enqueued_batches"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{source}: {name} must be positive, got {getattr(config, name)}")
    if config.batch_timeout_micros < 0:
        raise ConfigError(f"{source}: batch_timeout_micros must not be negative, got "
                          f"{config.batch_timeout_micros}")
    sizes = config.allowed_batch_sizes
    if sizes:
        if any(b <= a for a, b in itertools.pairwise(sizes)) or sizes[0] <= 0:
            raise ConfigError(f"{source}: allowed_batch_sizes entries must be positive and "
                              f"monotonically increasing, got {list(sizes)}")
        if sizes[-1] != config.max_batch_size:
            raise ConfigError(
                f"{source}: Last entry in allowed_batch_sizes must match max_batch_size; last "
                f"entry was {sizes[-1]}; expected {config.max_batch_size}")


def load_batching_file(path: str) -> BatchingConfig:
    """Read ``--batching_parameters_file`` (or a version folder's ``batching_params.pbtxt``)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"Cannot read batching parameters file {path}: "
                          f"{exc.strerror or exc}") from None
    return parse_batching_text(text, path)
