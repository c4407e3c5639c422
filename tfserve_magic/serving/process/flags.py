"""The command line: tensorflow_model_server's flags -> :class:`ServerOptions`.

This is the only argv parser of the server. Flags keep TF Serving's names, defaults and syntax
(``--name=value``, ``--name value``, booleans as ``--flag`` or ``--flag=true|false``). Flags that TF
Serving has but this server does not implement are accepted and reported as ignored, so a
deployment's command line runs unchanged; a flag neither knows is an error.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import NoReturn

from tfserve_magic.serving.options import ServerOptions
from tfserve_magic.serving.status_errors import ConfigError

__all__ = ["build_parser", "parse_channel_arguments", "parse_flags"]

# tensorflow_model_server flags that are accepted and ignored here (TFLite, TPU, ...). A flag
# whose absence would weaken security (--use_alts_credentials) is refused instead.
_IGNORED_TF_FLAGS = (
    "rest_api_num_threads", "platform_config_file", "tensorflow_session_parallelism",
    "tensorflow_session_config_file", "flush_filesystem_caches", "prefer_tflite_model",
    "num_tflite_pools", "num_tflite_interpreters_per_pool", "enable_profiler", "mixed_precision",
    "xla_cpu_compilation_enabled", "xla_gpu_compilation_enabled", "thread_pool_factory_config_file",
    "remove_unused_fields_from_bundle_metagraph", "num_load_threads", "num_unload_threads",
    "skip_initialize_tpu", "use_tflite_model",
    "model_config_file_poll_wait_seconds_for_batch", "enable_model_warmup_for_batch",
)

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


_HELP = {
    "port": "gRPC port (TF Serving's PredictionService and ModelService); 0 picks a free port, "
            "announced on stdout.",
    "grpc_host": "Address to bind gRPC to (ours). Default: the REST host (127.0.0.1).",
    "grpc_max_threads": "Threads that run gRPC requests; 0 means 4 x CPUs, as TF Serving.",
    "grpc_channel_arguments": "Comma-separated key=value gRPC server arguments, e.g. "
                              "grpc.max_receive_message_length=67108864.",
    "grpc_socket_path": "Also serve gRPC on this Unix socket.",
    "enable_grpc_healthcheck_service": "Serve the standard grpc.health.v1 Health service.",
    "enable_serialization_as_tensor_content": "Predict outputs in tensor_content instead of "
                                              "the typed *_val fields.",
    "rest_api_port": "REST port; 0 picks a free port, announced on stdout.",
    "rest_api_host": "Address to bind REST to (ours). Default 127.0.0.1; 0.0.0.0 for all.",
    "ssl_config_file": "SSLConfig text proto (server_key, server_cert, custom_ca: PEM text; "
                       "client_verify): gRPC over TLS, mutual TLS with client_verify.",
    "use_alts_credentials": "Refused: ALTS is not available here (use --ssl_config_file).",
    "rest_api_ssl": "Serve REST over HTTPS too, with --ssl_config_file's key, certificate and "
                    "client_verify (ours; TF Serving has no REST TLS).",
    "num_request_iterations_for_warmup": "How many times each warmup record is replayed.",
    "model_name": "Model name in single-model mode.",
    "model_base_path": "Folder holding numeric version folders (single-model mode).",
    "model_config_file": "ModelServerConfig text proto (models.config); overrides the two above.",
    "gpu_devices": "GPUs to use (ours): '' all visible, 'none' CPU only, '0,1' those indices.",
    "gpu_memory_growth": "Grow GPU memory on demand instead of taking it all (ours).",
    "max_request_bytes": "Largest request body accepted (ours).",
    "max_buffered_request_bytes": "Most bytes of request bodies held at once across all "
                                  "connections; past it a new body over 64 KiB gets 503. 0: a "
                                  "sixteenth of the machine's memory (ours).",
    "enable_batching": "Batch concurrent requests to a model into one call (TF Serving's).",
    "batching_parameters_file": "BatchingParameters text proto (max_batch_size, "
                                "batch_timeout_micros, ...); needs --enable_batching.",
    "enable_per_model_batching_parameters": "Read batching_params.pbtxt from each version "
                                            "folder instead (needs --enable_batching).",
    "http_header_timeout_seconds": "Close a connection that has not sent a request's headers "
                                   "within this many seconds, idle keep-alive ones too (ours).",
    "http_body_timeout_seconds": "Close a connection whose request body has not fully arrived "
                                 "within this many seconds (ours).",
    "allowed_hosts": "Comma-separated Host names a server bound to a loopback address also "
                     "answers ('*': any); by default only localhost names, against DNS "
                     "rebinding (ours).",
    "require_secret": "Every route needs the server's secret (X-Tfserve-Magic-Secret header, "
                      "x-tfserve-magic-secret gRPC metadata), TF Serving's /v1 API and gRPC "
                      "predict too: for hosts shared by several users (ours).",
    "max_connections": "Most connections held at once; at the limit, those that have not "
                       "finished sending a request are closed first. 0: what the "
                       "file-descriptor limit allows (ours).",
    "event_loop": "Event loop (ours): uvloop (default; asyncio's own when uvloop is missing) "
                  "or asyncio.",
    "request_log_file_bytes": "A request log file (logging_config in models.config) is closed "
                              "and the next one begun once it holds this many bytes (ours).",
    "request_log_max_files": "Request log files kept per filename_prefix, the newest; older "
                             "ones are deleted (ours).",
    "shutdown_grace_seconds": "On SIGTERM: stop accepting, report not ready, and give the "
                              "requests in flight this long to finish before exiting (ours; "
                              "the deploy manifests' terminationGracePeriodSeconds is larger).",
    "exit_with_parent_pid": "Stop when this process is gone (ours; used by the notebook launcher).",
    "verbose": "Log every request, and TensorFlow's native start-up messages (ours; by default "
               "only failed or slow requests are logged and the start-up noise is dropped).",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfserve-server",
        description="A TensorFlow-Serving-compatible model server, REST and gRPC (tfserve_magic).",
        allow_abbrev=False,
    )
    for field in dataclasses.fields(ServerOptions):
        if field.name == "ignored_flags":
            continue
        flag = f"--{field.name}"
        help_text = _HELP.get(field.name, "As in tensorflow_model_server.")
        help_text += f" (default: {field.default!r})"
        if field.type in ("bool", bool):
            parser.add_argument(flag, type=_bool, nargs="?", const=True, default=None,
                                metavar="BOOL", help=help_text)
        elif field.type in ("int", int):
            parser.add_argument(flag, type=_int, default=None, help=help_text)
        elif field.type in ("float", float):
            parser.add_argument(flag, type=_float, default=None, help=help_text)
        else:
            parser.add_argument(flag, type=str, default=None, help=help_text)
    for name in _IGNORED_TF_FLAGS:
        parser.add_argument(f"--{name}", default=None, nargs="?", const="true",
                            help=argparse.SUPPRESS)
    parser.add_argument("--version", action="store_true",
                        help="Print the version and exit.")
    return parser


def parse_flags(argv: Sequence[str]) -> tuple[ServerOptions, bool]:
    """Parse argv into options. Returns (options, version_requested).

    Raises :class:`ConfigError` with a one-line message for bad flags.
    """
    parser = build_parser()

    def fail(message: str) -> NoReturn:  # argparse would print usage and exit 2; we raise instead
        raise ConfigError(message)

    parser.error = fail  # type: ignore[method-assign]  # replacing a method on purpose
    namespace = parser.parse_args(list(argv))
    values = vars(namespace)
    if values.pop("version"):
        return ServerOptions(), True
    ignored = tuple(sorted(n for n in _IGNORED_TF_FLAGS if values.pop(n) is not None))
    kwargs = {k: v for k, v in values.items() if v is not None}
    options = ServerOptions(**kwargs, ignored_flags=ignored)
    _validate(options)
    return options, False


def parse_channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """``--grpc_channel_arguments=key=value,...``; integer values are passed as ints."""
    arguments: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--grpc_channel_arguments: expected key=value, got {item!r}")
        try:
            arguments.append((key, int(value)))
        except ValueError:
            arguments.append((key, value))
    return arguments


def _validate(options: ServerOptions) -> None:
    if not options.model_base_path and not options.model_config_file:
        raise ConfigError("Both server_options.model_base_path and "
                          "server_options.model_config_file are empty!")
    if not 0 <= options.rest_api_port <= 65535:
        raise ConfigError(f"--rest_api_port must be between 0 and 65535, got {options.rest_api_port}")
    if not 0 <= options.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {options.port}")
    if options.port and options.port == options.rest_api_port:
        raise ConfigError(f"--port and --rest_api_port must differ, both are {options.port}")
    if options.grpc_max_threads < 0:
        raise ConfigError("--grpc_max_threads must not be negative")
    parse_channel_arguments(options.grpc_channel_arguments)  # a bad one is an error at start
    if options.batching_parameters_file and not options.enable_batching:
        raise ConfigError("batching_parameters_file is set without setting enable_batching")
    if options.enable_per_model_batching_parameters and not options.enable_batching:
        raise ConfigError("enable_per_model_batching_parameters is set without setting "
                          "enable_batching")
    if not 0.0 <= options.per_process_gpu_memory_fraction <= 1.0:
        raise ConfigError("--per_process_gpu_memory_fraction must be between 0 and 1, got "
                          f"{options.per_process_gpu_memory_fraction}")
    if options.max_num_load_retries < 0:
        raise ConfigError("--max_num_load_retries must not be negative")
    if options.event_loop not in ("uvloop", "asyncio"):
        raise ConfigError(f"--event_loop must be uvloop or asyncio, got {options.event_loop!r}")
    if options.use_alts_credentials:
        raise ConfigError("--use_alts_credentials is not supported by this server: ALTS needs "
                          "Google Cloud's handshaker service. Refusing to start rather than "
                          "serve gRPC without the credentials asked for; use --ssl_config_file "
                          "for TLS.")
    if options.rest_api_ssl and not options.ssl_config_file:
        raise ConfigError("--rest_api_ssl needs --ssl_config_file (its key and certificate)")
    if options.num_request_iterations_for_warmup < 0:
        raise ConfigError("--num_request_iterations_for_warmup must not be negative")
    if options.max_request_bytes <= 0:
        raise ConfigError("--max_request_bytes must be positive")
    if options.max_buffered_request_bytes < 0:
        raise ConfigError("--max_buffered_request_bytes must not be negative (0: sized to the "
                          "machine)")
    for flag in ("http_header_timeout_seconds", "http_body_timeout_seconds"):
        if not getattr(options, flag) > 0:
            raise ConfigError(f"--{flag} must be positive")
    if options.request_log_file_bytes <= 0 or options.request_log_max_files < 1:
        raise ConfigError("--request_log_file_bytes must be positive and "
                          "--request_log_max_files at least 1")
    if not options.shutdown_grace_seconds >= 0:
        raise ConfigError("--shutdown_grace_seconds must not be negative")
    if options.max_connections < 0:
        raise ConfigError("--max_connections must not be negative (0: from the descriptor limit)")
    if not options.tags:
        raise ConfigError("--saved_model_tags must name at least one tag")
