"""Device planning: which GPUs the server uses and how it shares their memory.

Pure (no TensorFlow): :func:`plan_devices` turns options plus the GPUs TensorFlow reports into a
:class:`DevicePlan`; ``loader.configure_tensorflow`` applies it. Sharing one GPU politely with the
notebook's own TensorFlow means memory growth by default, or a hard per-process limit taken from
``--per_process_gpu_memory_fraction`` (TensorFlow allows one or the other, not both).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from tfserve_magic.serving.options import ServerOptions
from tfserve_magic.serving.status_errors import ConfigError

__all__ = ["DevicePlan", "GpuPlan", "gpu_total_memory_mb", "plan_devices"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuPlan:
    index: int
    memory_growth: bool
    memory_limit_mb: int | None


@dataclass(frozen=True)
class DevicePlan:
    gpus: tuple[GpuPlan, ...]
    intra_op_threads: int
    inter_op_threads: int

    @property
    def cpu_only(self) -> bool:
        return not self.gpus


def _parse_indices(text: str, available: int) -> list[int]:
    indices = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        try:
            index = int(part)
        except ValueError:
            raise ConfigError(f"--gpu_devices takes GPU indices like '0,1' or 'none', got {text!r}") from None
        if not 0 <= index < available:
            raise ConfigError(f"--gpu_devices names GPU {index}, but TensorFlow sees "
                              f"{available} GPU(s)")
        indices.append(index)
    return sorted(set(indices))


def plan_devices(options: ServerOptions, gpu_count: int,
                 total_memory_mb: Sequence[int | None] = ()) -> DevicePlan:
    """Decide visible GPUs, memory growth and memory limits."""
    choice = options.gpu_devices.strip().lower()
    if choice in ("none", "cpu", "-1"):
        selected: list[int] = []
    elif choice in ("", "all"):
        selected = list(range(gpu_count))
    else:
        selected = _parse_indices(choice, gpu_count)
    fraction = options.per_process_gpu_memory_fraction
    plans = []
    for index in selected:
        total = total_memory_mb[index] if index < len(total_memory_mb) else None
        if fraction > 0 and total:
            plans.append(GpuPlan(index, memory_growth=False,
                                 memory_limit_mb=max(1, int(total * fraction))))
        else:
            if fraction > 0:
                log.warning("GPU %d: total memory unknown, so --per_process_gpu_memory_fraction "
                            "cannot be applied; using memory growth instead", index)
            plans.append(GpuPlan(index, memory_growth=options.gpu_memory_growth,
                                 memory_limit_mb=None))
    return DevicePlan(tuple(plans), options.tensorflow_intra_op_parallelism,
                      options.tensorflow_inter_op_parallelism)


def gpu_total_memory_mb() -> list[int | None]:
    """Total memory per GPU from nvidia-smi (TensorFlow does not report it before init)."""
    tool = shutil.which("nvidia-smi")
    if not tool:
        return []
    try:
        out = subprocess.run([tool, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    totals: list[int | None] = []
    for line in out.splitlines():
        try:
            totals.append(int(float(line.strip())))
        except ValueError:
            totals.append(None)
    return totals
