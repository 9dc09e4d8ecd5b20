"""Multi-device training: MirroredStrategy on two logical CPUs against one device with the same global batch.

Everything runs in one fresh Python process: logical devices can only be configured before TensorFlow
initialises. The single-device runs there use the default strategy, i.e. the first logical CPU.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The synthetic set's first 40 images split into 31 + 9: two replicas cannot share 9 images evenly
# (train() picks validation batches of 6 + 3 rather than 8 + 1, which would leave one replica empty).
UNEVEN_N_IMAGES = 40
HANG_SECONDS = 900  # generous on purpose: the CPUs running the suite may be shared
LOCKSTEP_SGD_RATE = 0.1  # large enough that two epochs of 6 steps move the weights well past rounding

SCRIPT = r"""
import dataclasses, faulthandler, json, sys
faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)  # a hang ends with the stacks, not a silent timeout
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
# Each replica's input iterator blocks an inter-op thread; the default pool (one thread per core)
# deadlocks on a 2-core machine. Real multi-device machines have far more cores than devices.
tf.config.threading.set_inter_op_parallelism_threads(8)
import keras
from helpers.config import TrainConfig
from helpers.device import setup_device
from helpers.fitting import build_and_compile, fit
from helpers.losses import get_loss
from helpers.prepared_data import prepare_data
from helpers.training import train

base, uneven_n_images, run_root = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
single = dict(distribute="none", batch_size=16, learning_rate=2e-3)
mirrored = dict(distribute="mirrored", batch_size=8, learning_rate=1e-3)  # x 2 replicas = 2e-3
out = {"logical_cpus": len(tf.config.list_logical_devices("CPU"))}


def lockstep(overrides):
    # The fit seam that train() calls, fed unshuffled batches so both strategies see the same ones:
    # under a strategy, Keras draws one batch before the first epoch to build the model, which uses up
    # one reshuffle, so shuffled epochs come in a different order than on one device.
    # Plain SGD instead of the recipe's Adam: Adam divides each gradient by its own running size, so a weight
    # whose gradient is near zero moves by the full learning rate in a direction that float rounding decides,
    # and how far the strategies then drift apart depends on the CPU's kernels. With SGD a weight moves in
    # proportion to its gradient, so any difference beyond rounding is a real aggregation error.
    config = TrainConfig(**{**base, **overrides})
    keras.utils.set_random_seed(config.seed)
    setup = setup_device(config.mixed_precision, config.jit_compile, config.distribute)
    data = prepare_data(config, progress=False)
    model = build_and_compile(config, setup)
    initial = [w.numpy() for w in model.weights]
    with setup.strategy.scope():
        model.compile(optimizer=keras.optimizers.SGD(LOCKSTEP_SGD_RATE), loss=get_loss(config.loss))
    history = fit(model, dataclasses.replace(config, epochs=2), data, setup, shuffle=False).history
    weights = [w.numpy() for w in model.weights]
    return {"loss": history["loss"], "val_loss": history["val_loss"], "policy": setup.precision_policy,
            "max_weight_change": max(float(abs(a - b).max()) for a, b in zip(initial, weights))}, weights


(out["lockstep_single"], single_weights), (out["lockstep_mirrored"], mirrored_weights) = (
    lockstep(single), lockstep(mirrored))
out["max_weight_difference"] = max(float(abs(a - b).max()) for a, b in zip(single_weights, mirrored_weights))

result = train(TrainConfig(**{**base, **mirrored}), run_root=run_root)
out["train"] = {"loss": [row["loss"] for row in result.history],
                "learning_rate": [row["learning_rate"] for row in result.history],
                "device": result.metrics["device"]}

uneven = TrainConfig(**{**base, **mirrored, "n_images": uneven_n_images, "epochs": 1})
out["uneven"] = {"n_val": len(prepare_data(uneven, progress=False).val_idx)}
try:
    train(uneven, run_root=run_root)
    out["uneven"]["error"] = None
except Exception as error:  # reported to the test, which names it
    out["uneven"]["error"] = f"{type(error).__name__}: {str(error)[-1500:]}"
print("RESULT " + json.dumps(out))
""".replace("HANG_SECONDS", str(HANG_SECONDS)).replace("LOCKSTEP_SGD_RATE", str(LOCKSTEP_SGD_RATE))


def tiny_deterministic_config(data_dir: Path) -> dict:
    """A tiny config whose only randomness is the seeded shuffle and initial weights."""
    return dict(data_dir=str(data_dir), n_images=96, img_size=32, sizing="resize", depth=2, base_filters=4,
                batch_norm=False, dropout=0.0, augment=False, epochs=3, seed=0, mixed_precision="off",
                jit_compile="off", scale_learning_rate=True, progress=False)


@pytest.fixture(scope="module")
def runs(synthetic_data_dir, tmp_path_factory) -> dict:
    """Lockstep single/mirrored fits, a mirrored train() run, and a mirrored run with 9 validation images."""
    config = tiny_deterministic_config(synthetic_data_dir)
    run_root = tmp_path_factory.mktemp("distribute")
    # oneDNN as helpers switches it on: its kernels are the ones that fail on a replica's empty share.
    # Strict float32 arithmetic in oneDNN too (its default, pinned: on CPUs with AVX512-BF16 or AMX it may
    # otherwise be allowed to multiply float32 in bfloat16), since the comparison's tolerance is float32's.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1",
           "ONEDNN_DEFAULT_FPMATH_MODE": "STRICT"}
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(config), str(UNEVEN_N_IMAGES), str(run_root)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=HANG_SECONDS + 60,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_mirrored_run_uses_both_logical_devices_and_scales_the_learning_rate(runs):
    assert runs["logical_cpus"] == 2
    assert "2 replicas" in runs["train"]["device"]
    # 1e-3 per replica x 2 replicas = 2e-3, the single-device rate for the same global batch of 16.
    assert runs["train"]["learning_rate"][0] == pytest.approx(2e-3)


def test_mirrored_run_learns(runs):
    losses = runs["train"]["loss"]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]


def test_lockstep_runs_compare_float32_arithmetic(runs):
    # The tolerances below are float32's; mixed_precision="off" must hold on every CPU, bfloat16 ones included.
    assert runs["lockstep_single"]["policy"] == runs["lockstep_mirrored"]["policy"] == "float32"


def test_mirrored_steps_update_the_weights_like_single_device_steps(runs):
    # Same initial weights, same batches, plain SGD: the strategies differ only in the order of floating-point
    # sums, so the weights agree to float32 rounding (measured 6e-8) after moving far more than that.
    assert runs["lockstep_single"]["max_weight_change"] > 1e-2
    assert runs["max_weight_difference"] < 1e-5, f"weights differ by up to {runs['max_weight_difference']:.2g}"


def test_mirrored_losses_equal_single_device_losses(runs):
    single, mirrored = runs["lockstep_single"], runs["lockstep_mirrored"]
    for key in ("loss", "val_loss"):
        ratios = [m / s for m, s in zip(mirrored[key], single[key])]
        assert mirrored[key] == pytest.approx(single[key], rel=1e-4), f"{key}: mirrored / single = {ratios}"


def test_the_uneven_case_really_splits_unevenly(runs):
    assert runs["uneven"]["n_val"] % 2 == 1


def test_mirrored_run_accepts_a_validation_set_two_replicas_cannot_share_evenly(runs):
    assert runs["uneven"]["error"] is None, runs["uneven"]["error"]
