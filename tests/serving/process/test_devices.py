"""GPU placement and memory sharing: the pure plan, and the real server on this CPU-only machine."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tfserve_magic.serving.errors import ConfigError
from tfserve_magic.serving.process.devices import DevicePlan, GpuPlan, plan_devices
from tfserve_magic.serving.process.options import ServerOptions


def test_default_uses_every_gpu_with_memory_growth() -> None:
    plan = plan_devices(ServerOptions(), gpu_count=2)
    assert plan == DevicePlan((GpuPlan(0, True, None), GpuPlan(1, True, None)), 0, 0)


def test_memory_fraction_becomes_a_hard_limit_instead_of_growth() -> None:
    options = ServerOptions(per_process_gpu_memory_fraction=0.25)
    plan = plan_devices(options, gpu_count=2, total_memory_mb=[16000, 8000])
    assert plan.gpus == (GpuPlan(0, False, 4000), GpuPlan(1, False, 2000))


def test_memory_fraction_without_known_total_falls_back_to_growth() -> None:
    plan = plan_devices(ServerOptions(per_process_gpu_memory_fraction=0.5), gpu_count=1)
    assert plan.gpus == (GpuPlan(0, True, None),)


def test_pinning_to_devices_and_cpu_only() -> None:
    assert [g.index for g in plan_devices(ServerOptions(gpu_devices="1"), 2).gpus] == [1]
    assert plan_devices(ServerOptions(gpu_devices="none"), 2).cpu_only
    growth_off = plan_devices(ServerOptions(gpu_memory_growth=False), 1)
    assert growth_off.gpus == (GpuPlan(0, False, None),)


@pytest.mark.parametrize(("text", "message"), [
    ("3", "names GPU 3, but TensorFlow sees 2 GPU(s)"),
    ("a,b", "takes GPU indices like '0,1' or 'none'"),
])
def test_bad_device_choice_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan_devices(ServerOptions(gpu_devices=text), gpu_count=2)


def test_threading_flags_reach_the_plan() -> None:
    plan = plan_devices(ServerOptions(tensorflow_intra_op_parallelism=2,
                                      tensorflow_inter_op_parallelism=1), 0)
    assert (plan.intra_op_threads, plan.inter_op_threads) == (2, 1)


def test_configure_tensorflow_on_a_cpu_only_machine() -> None:
    code = (
        "from tfserve_magic.serving.models.loader import configure_tensorflow\n"
        "from tfserve_magic.serving.process.options import ServerOptions\n"
        "import tensorflow as tf\n"
        "plan = configure_tensorflow(ServerOptions(per_process_gpu_memory_fraction=0.3,"
        " tensorflow_intra_op_parallelism=1))\n"
        "assert plan.cpu_only, plan\n"
        "assert tf.config.threading.get_intra_op_parallelism_threads() == 1\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_server_refuses_a_gpu_it_does_not_have(tmp_path) -> None:
    (tmp_path / "m").mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "tfserve_magic.serving", "--rest_api_port=0",
         f"--model_base_path={tmp_path / 'm'}", "--gpu_devices=0"],
        capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1
    assert "--gpu_devices names GPU 0, but TensorFlow sees 0 GPU(s)" in out.stderr
