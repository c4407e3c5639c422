"""What a start needs before a process is spawned: the models and the config file they are
served from, the server's command line, and the files that command line names.

The user's own flags (``ServerSpec.extra_flags``) come last and win; a default this module would
add is left out when the user gave that flag, matched by its name (``--name`` or ``--name=...``),
never by a substring. :func:`server_argv` writes the monitoring and batching files it names when
they are missing, so it runs once per start. No TensorFlow import.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence

from tfserve_magic.files import write_atomically
from tfserve_magic.lifecycle import registry
from tfserve_magic.lifecycle.handle import ServerSpec
from tfserve_magic.serving.models.config import ModelConfig, load_model_config_file
from tfserve_magic.serving.models.repository import RepositoryError, scan_versions
from tfserve_magic.serving.status_errors import ConfigError

__all__ = ["batching_file", "check_base_paths", "flag_names", "model_configs",
           "nothing_to_serve", "server_argv", "spec_key"]


def model_configs(spec: ServerSpec, name: str | None = None) -> tuple[list[ModelConfig], str]:
    """The model list and the config file the server will run from; ``name``: the server's
    recorded name, when not the one asked for (another notebook's server has that one)."""
    name = name or spec.server_name
    if spec.config:
        path = os.path.abspath(os.path.expanduser(spec.config))
        return load_model_config_file(path), path
    assert spec.model_dir is not None
    base = os.path.abspath(os.path.expanduser(spec.model_dir))
    if not os.path.isdir(base):
        raise ConfigError(f"{spec.model_dir} does not exist or is not a folder")
    if os.path.exists(os.path.join(base, "saved_model.pb")):
        raise ConfigError(
            f"{spec.model_dir} is a version folder (it holds saved_model.pb). Give the base "
            f"path that holds numeric version folders instead: {os.path.dirname(base)}")
    path = str(registry.registry_dir() / f"{name}.models.config")
    wanted = ModelConfig(name=spec.name or os.path.basename(os.path.normpath(base)),
                         base_path=base)
    try:
        kept = load_model_config_file(path) if os.path.exists(path) else []
    except ConfigError:
        kept = []
    if len(kept) == 1 and (kept[0].name, kept[0].base_path) == (wanted.name, wanted.base_path):
        return kept, path  # labels and policy edited since the last start survive a restart
    return [wanted], path


def check_base_paths(models: Sequence[ModelConfig]) -> None:
    """ConfigError naming the model whose base path cannot be read."""
    for model in models:
        try:
            scan_versions(model.base_path)
        except RepositoryError as exc:
            raise ConfigError(f"Model {model.name}: {exc}") from None


def nothing_to_serve(models: Sequence[ModelConfig]) -> tuple[str, ...]:
    """A note per model whose base path holds no version folder yet (it serves nothing)."""
    notes = []
    for model in models:
        try:
            if scan_versions(model.base_path):
                continue
            found = sorted(os.listdir(model.base_path))
        except (RepositoryError, OSError):
            continue
        shown = ", ".join(f"{n}/" if os.path.isdir(os.path.join(model.base_path, n)) else n
                          for n in found[:5]) + (", ..." if len(found) > 5 else "")
        notes.append(
            f"Nothing to serve yet for {model.name}: {model.base_path} holds no version folder "
            f"({'it holds ' + shown if found else 'it is empty'}). Expected numeric folders such "
            f"as {os.path.join(model.base_path, '1')}/ each holding a saved_model.pb; "
            f"%tfserve push adds one.")
    return tuple(notes)


def _poll_seconds(poll: float | None) -> int:
    """TF Serving's whole seconds: never round a short period down to 0, which means 'never'."""
    if poll is None:
        return 1
    return 0 if poll <= 0 else max(1, math.ceil(poll))


def flag_names(flags: Sequence[str]) -> frozenset[str]:
    """The names of the flags in ``flags`` (``--name=value`` and ``--name [value]`` both give
    ``name``); values are not names, whatever they contain."""
    return frozenset(flag[2:].partition("=")[0] for flag in flags if flag.startswith("--"))


def server_argv(spec: ServerSpec, config_path: str) -> list[str]:
    """The server's command line: our defaults, then the user's flags (which win)."""
    argv = [sys.executable, "-m", "tfserve_magic.serving",
            f"--rest_api_port={spec.port}", f"--rest_api_host={spec.host}",
            f"--port={spec.grpc_port}",
            f"--model_config_file={config_path}",
            f"--model_config_file_poll_wait_seconds={_poll_seconds(spec.poll)}",
            f"--file_system_poll_wait_seconds={_poll_seconds(spec.poll)}",
            "--allow_version_labels_for_unavailable_models"]
    given = flag_names(spec.extra_flags)
    if "max_num_load_retries" not in given:
        argv.append("--max_num_load_retries=0")  # a notebook wants the error now, not in 5 min
    if "monitoring_config_file" not in given:
        argv.append(f"--monitoring_config_file={_monitoring_config()}")  # the dashboard's traffic
    if spec.verbose and "verbose" not in given:
        argv.append("--verbose")
    if spec.batching and "enable_batching" not in given:
        argv.append("--enable_batching")
        if "batching_parameters_file" not in given:
            argv.append(f"--batching_parameters_file={batching_file(config_path)}")
    if spec.gpu is not None:
        argv.append(f"--gpu_devices={spec.gpu}")
    if spec.gpu_memory_fraction is not None:
        argv.append(f"--per_process_gpu_memory_fraction={spec.gpu_memory_fraction}")
    if not spec.detach:
        argv.append(f"--exit_with_parent_pid={os.getpid()}")
    return argv + list(spec.extra_flags)


def batching_file(config_path: str) -> str:
    """``<models config stem>.batching_parameters.txt`` beside the models.config, written with
    notebook defaults unless it exists (edits survive restarts); TF Serving reads it unchanged."""
    stem = os.path.splitext(config_path)[0]
    path = f"{stem}.batching_parameters.txt"
    if not os.path.exists(path):
        from tfserve_magic.serving.batching.parameters import NOTEBOOK_DEFAULTS

        write_atomically(path, NOTEBOOK_DEFAULTS.to_text())
    return path


def _monitoring_config() -> str:
    """A MonitoringConfig enabling Prometheus at TF Serving's default path."""
    path = registry.registry_dir() / "monitoring.config"
    if not path.exists():  # another kernel may be starting a server that reads it
        write_atomically(path, "prometheus_config { enable: true }\n")
    return str(path)


def spec_key(spec: ServerSpec, config_path: str) -> str:
    """What makes two starts the same server (a start with the same key reuses it)."""
    return json.dumps([spec.model_dir and os.path.abspath(os.path.expanduser(spec.model_dir)),
                       config_path, spec.port, spec.host, spec.gpu, spec.gpu_memory_fraction,
                       list(spec.extra_flags), spec.batching, spec.grpc_port])
