"""GPU placement and memory sharing: the pure plan, and TensorFlow configured as this machine
allows (GPU or not: each test asks TensorFlow what the machine has)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tfserve_magic.serving.models.devices import DevicePlan, GpuPlan, plan_devices
from tfserve_magic.serving.options import ServerOptions
from tfserve_magic.serving.status_errors import ConfigError


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


def _configure_in_a_fresh_process(options: str, checks: str) -> None:
    """configure_tensorflow in a new interpreter (TF allows device settings once, before use)."""
    code = (
        "import tensorflow as tf\n"
        "from tfserve_magic.serving.models.loader import configure_tensorflow\n"
        "from tfserve_magic.serving.options import ServerOptions\n"
        "gpus = tf.config.list_physical_devices('GPU')\n"
        f"plan = configure_tensorflow(ServerOptions({options}))\n"
        f"{checks}\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_configure_tensorflow_plans_the_gpus_this_machine_has(gpu_count: int) -> None:
    _configure_in_a_fresh_process(
        "tensorflow_intra_op_parallelism=1",
        f"assert len(gpus) == {gpu_count}, gpus\n"
        "assert [g.index for g in plan.gpus] == list(range(len(gpus))), plan\n"
        "assert plan.cpu_only == (not gpus)\n"
        "assert all(g.memory_growth for g in plan.gpus), plan\n"
        "assert tf.config.threading.get_intra_op_parallelism_threads() == 1")


def test_gpu_branch_sets_visible_devices_growth_and_memory_limit(gpu_count: int) -> None:
    if not gpu_count:
        pytest.skip("the loader's GPU branch needs a GPU (this machine has none)")
    # Growth on GPU 0 only: the other GPUs are hidden.
    _configure_in_a_fresh_process(
        "gpu_devices='0'",
        "assert tf.config.get_visible_devices('GPU') == [gpus[0]]\n"
        "assert tf.config.experimental.get_memory_growth(gpus[0]) is True")
    # A memory fraction becomes a hard limit (when nvidia-smi reports the total) instead.
    _configure_in_a_fresh_process(
        "gpu_devices='0', per_process_gpu_memory_fraction=0.25",
        "from tfserve_magic.serving.models.devices import gpu_total_memory_mb\n"
        "[chosen] = plan.gpus\n"
        "configs = tf.config.get_logical_device_configuration(gpus[0])\n"
        "if gpu_total_memory_mb():\n"
        "    assert chosen.memory_limit_mb and not chosen.memory_growth, chosen\n"
        "    assert [c.memory_limit for c in configs] == [chosen.memory_limit_mb], configs\n"
        "else:\n"
        "    assert chosen.memory_growth and not configs, (chosen, configs)")


def test_server_refuses_a_gpu_it_does_not_have(tmp_path, gpu_count: int) -> None:
    (tmp_path / "m").mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "tfserve_magic.serving", "--rest_api_port=0", "--port=0",
         f"--model_base_path={tmp_path / 'm'}", f"--gpu_devices={gpu_count}"],
        capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1
    assert (f"--gpu_devices names GPU {gpu_count}, but TensorFlow sees {gpu_count} GPU(s)"
            in out.stderr)
