"""Device detection and the precision / XLA / strategy choices."""

from __future__ import annotations

import pytest

from helpers.device import (
    choose_jit,
    choose_precision,
    cpu_flags,
    cpu_has_fast_bfloat16,
    make_strategy,
    setup_device,
)


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
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    flags = cpu_flags(cpuinfo)
    assert {"avx2", "avx512_bf16"} <= flags and cpu_has_fast_bfloat16(flags)
    assert not cpu_has_fast_bfloat16({"avx2", "fma"})
    assert cpu_flags(tmp_path / "missing") == set()


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="DISTRIBUTE"):
        make_strategy("tpu")


def test_setup_on_this_machine_describes_itself():
    import keras

    try:
        setup = setup_device(mixed_precision="off")
        assert setup.precision_policy == "float32" and setup.replicas == 1
        assert setup.kind in ("cpu", "gpu") and setup.description in setup.summary()
    finally:
        keras.mixed_precision.set_global_policy("float32")
