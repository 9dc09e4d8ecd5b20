"""What the training runs on: device detection, precision, XLA and distribution strategy."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from helpers.config import SETTINGS, STRATEGIES
from helpers.cpu import cpu_description, cpu_has_fast_bfloat16


@dataclass(frozen=True)
class DeviceSetup:
    """The hardware and numerics one training run uses."""

    kind: str
    description: str
    precision_policy: str
    jit_compile: bool
    strategy: tf.distribute.Strategy
    replicas: int

    def summary(self) -> str:
        """One line for logs: device, precision, XLA and replicas."""
        xla = "XLA on" if self.jit_compile else "XLA off"
        replicas = f", {self.replicas} replicas" if self.replicas > 1 else ""
        return f"{self.description} | {self.precision_policy} | {xla}{replicas}"


def gpu_names() -> list[str]:
    """Names of the GPUs TensorFlow can see (empty on a CPU-only machine)."""
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(str(details.get("device_name", gpu.name)))
    return names


def _setting(value: str, name: str) -> str:
    if value not in SETTINGS:
        raise ValueError(f"{name} must be one of {SETTINGS}, got {value!r}")
    return value


def choose_precision(mixed_precision: str, on_gpu: bool, cpu_bf16: bool) -> str:
    """Keras precision policy: float16 mixed on GPUs, bfloat16 mixed on CPUs that have it, else float32."""
    setting = _setting(mixed_precision, "MIXED_PRECISION")
    if setting == "off" or (setting == "auto" and not (on_gpu or cpu_bf16)):
        return "float32"
    return "mixed_float16" if on_gpu else "mixed_bfloat16"


def choose_jit(jit_compile: str, on_gpu: bool) -> bool:
    """XLA on GPUs by default; off on CPUs, where it measured slower for this U-Net."""
    setting = _setting(jit_compile, "JIT_COMPILE")
    return setting == "on" or (setting == "auto" and on_gpu)


def make_strategy(distribute: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy named by DISTRIBUTE: none, mirrored (one machine) or multiworker."""
    if distribute == "none":
        return tf.distribute.get_strategy()
    if distribute == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if distribute == "multiworker":
        # Reads the cluster from the TF_CONFIG environment variable, as every worker must.
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"DISTRIBUTE must be one of {STRATEGIES}, got {distribute!r}")


def setup_device(mixed_precision: str = "auto", jit_compile: str = "auto", distribute: str = "none") -> DeviceSetup:
    """Detect the hardware, set the global precision policy and pick the distribution strategy."""
    import keras

    gpus = gpu_names()
    on_gpu = bool(gpus)
    policy = choose_precision(mixed_precision, on_gpu, cpu_has_fast_bfloat16())
    jit = choose_jit(jit_compile, on_gpu)
    strategy = make_strategy(distribute)
    keras.mixed_precision.set_global_policy(policy)
    description = f"GPU x{len(gpus)} ({gpus[0]})" if on_gpu else cpu_description()
    return DeviceSetup(
        kind="gpu" if on_gpu else "cpu",
        description=description,
        precision_policy=policy,
        jit_compile=jit,
        strategy=strategy,
        replicas=strategy.num_replicas_in_sync,
    )
