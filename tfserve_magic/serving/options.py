"""ServerOptions: the one frozen description of how a server runs.

Built only by ``flags.parse_flags`` (the CLI) or directly by tests; everything downstream reads
this object and nothing else. Defaults are tensorflow_model_server's (``model_servers/server.h``)
except where a field is marked as ours.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ServerOptions", "tf_serving_flag_names"]


def _ours(default: Any) -> Any:
    """A field of ours: a flag tensorflow_model_server does not know."""
    return field(default=default, metadata={"ours": True})


@dataclass(frozen=True)
class ServerOptions:
    # --- TF Serving flags (same names, defaults and meanings) ---
    port: int = 8500
    rest_api_port: int = 0  # ours: 0 means "pick a free port" (REST is what we serve)
    rest_api_timeout_in_ms: int = 30000
    rest_api_enable_cors_support: bool = False
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    allow_version_labels_for_unavailable_models: bool = False
    enable_batching: bool = False
    batching_parameters_file: str = ""
    enable_per_model_batching_parameters: bool = False
    monitoring_config_file: str = ""
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    saved_model_tags: str = "serve"
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    enable_signature_method_name_check: bool = False
    per_process_gpu_memory_fraction: float = 0.0
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    grpc_max_threads: int = 0  # 0: TF Serving's 4 x CPUs
    grpc_channel_arguments: str = ""
    grpc_socket_path: str = ""
    enable_grpc_healthcheck_service: bool = False
    enable_serialization_as_tensor_content: bool = False
    ssl_config_file: str = ""
    use_alts_credentials: bool = False  # refused: ALTS cannot be served here (flags.py)
    # --- ours (never passed to tensorflow_model_server: see tf_serving_flag_names) ---
    rest_api_host: str = _ours("127.0.0.1")
    rest_api_ssl: bool = _ours(False)  # REST over HTTPS with --ssl_config_file's key and cert
    grpc_host: str = _ours("")  # "" = rest_api_host
    gpu_devices: str = _ours("")  # "" = every visible GPU, "none" = CPU only, "0,1" = those GPUs
    gpu_memory_growth: bool = _ours(True)
    # A request peaks at up to ~14x its body (JSON -> Python objects -> arrays): 64 MiB -> <1 GB.
    max_request_bytes: int = _ours(64 * 1024 * 1024)
    max_buffered_request_bytes: int = _ours(0)  # all bodies held at once; 0: memory / 16
    http_header_timeout_seconds: float = _ours(30.0)
    http_body_timeout_seconds: float = _ours(120.0)
    max_connections: int = _ours(0)  # 0: what the file-descriptor limit allows
    allowed_hosts: str = _ours("")  # more Host names a loopback-bound server answers; "*": any
    require_secret: bool = _ours(False)  # every route needs the secret, for shared hosts
    exit_with_parent_pid: int = _ours(0)
    request_log_file_bytes: int = _ours(64 * 1024 * 1024)  # logging_config: rotate past this
    request_log_max_files: int = _ours(10)  # logging_config: files kept per filename_prefix
    shutdown_grace_seconds: float = _ours(20.0)  # SIGTERM: how long requests in flight get
    verbose: bool = _ours(False)  # every request and TensorFlow's native start-up lines in the log
    event_loop: str = _ours("uvloop")  # "uvloop" (when installed) or "asyncio"
    ignored_flags: tuple[str, ...] = _ours(())

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.saved_model_tags.split(",") if t.strip())

    @property
    def load_retry_interval_seconds(self) -> float:
        return self.load_retry_interval_micros / 1e6

    @property
    def rest_timeout_seconds(self) -> float | None:
        return self.rest_api_timeout_in_ms / 1000 if self.rest_api_timeout_in_ms > 0 else None

    def replace(self, **changes: object) -> ServerOptions:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def tf_serving_flag_names() -> tuple[str, ...]:
    """The options that are tensorflow_model_server's own flags, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(ServerOptions) if not f.metadata.get("ours"))
