"""What /proc/cpuinfo says about this machine's CPU (no TensorFlow: the benchmarks' parent reads it too)."""

from __future__ import annotations

import os
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpu_fields(cpuinfo: Path = CPUINFO) -> dict[str, str]:
    """The first processor's `name: value` lines (empty where /proc/cpuinfo is absent)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor's block ends here
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The CPU feature flags Linux reports (empty where /proc/cpuinfo is absent)."""
    return set(cpu_fields(cpuinfo).get("flags", "").split())


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name ("unknown" where /proc/cpuinfo does not say)."""
    return cpu_fields(cpuinfo).get("model name", "unknown")


def cpu_has_fast_bfloat16(flags: set[str] | None = None) -> bool:
    """True when the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), so mixed_bfloat16 pays."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def cpu_description() -> str:
    """A short description of this machine's CPU, e.g. 'CPU (2 cores, AVX2)'."""
    flags = cpu_flags()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    if cpu_has_fast_bfloat16(flags):
        vector += "+BF16"
    return f"CPU ({os.cpu_count()} cores, {vector})"
