"""BatchingParameters text protos: TF Serving's format, defaults and start-up checks."""

from __future__ import annotations

import pytest

from tfserve_magic.serving.batching.parameters import BatchingConfig, parse_batching_text
from tfserve_magic.serving.status_errors import ConfigError

FULL = ("max_batch_size { value: 32 } batch_timeout_micros { value: 1000 } "
        "max_enqueued_batches { value: 100 } num_batch_threads { value: 4 } "
        "allowed_batch_sizes: 8 allowed_batch_sizes: 16 allowed_batch_sizes: 32 "
        "pad_variable_length_inputs: true thread_pool_name { value: 'pool' }")


def test_tf_serving_example_parses_field_for_field() -> None:
    config = parse_batching_text(FULL, "f")
    assert config == BatchingConfig(32, 1000, 100, 4, (8, 16, 32), True, "pool")
    assert [config.padded_size(n) for n in (1, 8, 9, 17, 32)] == [8, 8, 16, 32, 32]


def test_absent_fields_take_tensorflows_scheduler_defaults() -> None:
    config = parse_batching_text("", "f")
    assert (config.max_batch_size, config.batch_timeout_micros, config.max_enqueued_batches,
            config.allowed_batch_sizes) == (1000, 0, 10, ())
    assert config.threads >= 1 and config.padded_size(7) == 7


def test_written_text_reads_back_the_same() -> None:
    config = BatchingConfig(16, 500, 4, 2, (4, 16), True)
    assert parse_batching_text(config.to_text(), "f") == config


@pytest.mark.parametrize("text, message", [
    ("max_batch_size: 8", "Invalid protobuf file: 'p.txt': 1:17 : 'max_batch_size: 8': Expected \"{\"."),
    ("max_batchsize { value: 8 }", ("Invalid protobuf file: 'p.txt': 1:1 : Message type "
     "\"tensorflow.serving.BatchingParameters\" has no field named \"max_batchsize\".")),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 4", ("p.txt: Last entry in "
     "allowed_batch_sizes must match max_batch_size; last entry was 4; expected 8")),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 8 allowed_batch_sizes: 8",
     "p.txt: allowed_batch_sizes entries must be positive and monotonically increasing, got [8, 8]"),
    ("max_batch_size { value: 0 }", "p.txt: max_batch_size must be positive, got 0"),
    ("max_enqueued_batches { value: -1 }", "p.txt: max_enqueued_batches must be positive, got -1"),
    ("num_batch_threads { value: 0 }", "p.txt: num_batch_threads must be >= 1, got 0"),
    ("batch_timeout_micros { value: -5 }", "p.txt: batch_timeout_micros must not be negative, got -5"),
    ("enable_large_batch_splitting { value: true }", ("p.txt: enable_large_batch_splitting is not "
     "supported by this server; remove it (requests larger than max_batch_size are refused)")),
])
def test_bad_files_are_refused_with_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_batching_text(text, "p.txt")
    assert str(raised.value) == message
