"""For the pytest-benchmark files (bench_kernels, bench_losses, bench_optim,
bench_tbptt_pooled, bench_train_step): what the measurement ran on, in pytest's header and
in the machine_info of `--benchmark-json` / `--benchmark-autosave` files.

These files time in the pytest process itself, so OpenBLAS runs the kernel its
environment selects: the header shows OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as this
process sees them (`recurrent bench` unsets them in its measuring process instead).
"""
import pytest

from recurrent_plugins.bench import blas_text, machine


def pytest_report_header(config):
    info = machine()
    env = ", ".join(f"{k}={v}" for k, v in info["env"].items() if v is not None) or "unset"
    return [f"recurrent {info['recurrent']}: CPU {info['cpu']}, {info['cores']} cores, "
            f"vector code {info['vector_code']}, torch {info['torch'] or '-'}",
            f"BLAS kernels: {blas_text(info)}; OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: {env}"]


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-benchmark's
def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["recurrent"] = machine()
