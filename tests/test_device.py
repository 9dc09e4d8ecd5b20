"""Device detection and the precision / XLA / strategy choices."""

from __future__ import annotations

import pytest

from helpers.cpu import cpu_flags, cpu_has_fast_bfloat16, cpu_model
from helpers.device import choose_jit, choose_precision, make_strategy, setup_device


def test_precision_follows_the_hardware():
    assert choose_precision("auto", on_gpu=True, cpu_bf16=False) == "mixed_float16"
    assert choose_precision("auto", on_gpu=False, cpu_bf16=True) == "mixed_bfloat16"
    assert choose_precision("auto", on_gpu=False, cpu_bf16=False) == "float32"
    assert choose_precision("off", on_gpu=True, cpu_bf16=True) == "float32"
    assert choose_precision("on", on_gpu=False, cpu_bf16=False) == "mixed_bfloat16"
    with pytest.raises(ValueError, match="MIXED_PRECISION"):
        choose_precision("maybe", on_gpu=False, cpu_bf16=False)


def test_xla_is_on_for_gpus_only_unless_asked():
    assert choose_jit("auto", on_gpu=True) and not choose_jit("auto", on_gpu=False)
    assert choose_jit("on", on_gpu=False) and not choose_jit("off", on_gpu=True)
    with pytest.raises(ValueError, match="JIT_COMPILE"):
        choose_jit("yes", on_gpu=False)


def test_bfloat16_detection_reads_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU @ 2.5GHz\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n"
                       "processor\t: 1\nmodel name\t: Other\n")
    flags = cpu_flags(cpuinfo)
    assert {"avx2", "avx512_bf16"} <= flags and cpu_has_fast_bfloat16(flags)
    assert not cpu_has_fast_bfloat16({"avx2", "fma"})
    assert cpu_flags(tmp_path / "missing") == set()
    assert cpu_model(cpuinfo) == "Test CPU @ 2.5GHz" and cpu_model(tmp_path / "missing") == "unknown"


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="DISTRIBUTE"):
        make_strategy("tpu")


def test_setup_applies_the_precision_it_reports_on_this_machine():
    import keras

    try:
        setup = setup_device(mixed_precision="off")
        assert setup.precision_policy == keras.mixed_precision.global_policy().name == "float32"
        assert setup.replicas == 1 and setup.kind in ("cpu", "gpu")
        forced = setup_device(mixed_precision="on")
        expected = "mixed_float16" if forced.kind == "gpu" else "mixed_bfloat16"
        assert forced.precision_policy == keras.mixed_precision.global_policy().name == expected
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_summary_names_device_precision_xla_and_replicas():
    from helpers.device import DeviceSetup

    one = DeviceSetup("cpu", "CPU (2 cores, AVX-512+BF16)", "mixed_bfloat16", False, strategy=None, replicas=1)
    assert one.summary() == "CPU (2 cores, AVX-512+BF16) | mixed_bfloat16 | XLA off"
    two = DeviceSetup("gpu", "GPU x2 (H200)", "mixed_float16", True, strategy=None, replicas=2)
    assert two.summary() == "GPU x2 (H200) | mixed_float16 | XLA on, 2 replicas"
