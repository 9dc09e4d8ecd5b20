"""The fit seam: compiling the course's U-Net and the batch sizes that every replica can share."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_config

from helpers.config import TrainConfig
from helpers.fitting import replica_batch_size


def test_replica_batch_size_gives_every_replica_a_share_of_every_batch():
    assert replica_batch_size(2879, 32, 1, "training") == 32  # one device: the global batch, always
    assert replica_batch_size(2879, 64, 2, "training") == 64  # last batch 63: both replicas get images
    assert replica_batch_size(321, 64, 2, "validation") == 62  # 64 would leave a last batch of 1
    assert replica_batch_size(9, 16, 2, "validation") == 6  # 6 + 3; 8 + 1 would leave a replica empty
    assert replica_batch_size(12, 16, 4, "validation") == 12
    for n_images, replicas in [(321, 2), (9, 2), (50, 4), (1001, 8)]:
        batch = replica_batch_size(n_images, 64, replicas, "validation")
        assert batch % replicas == 0 and (n_images % batch == 0 or n_images % batch >= replicas)
    with pytest.raises(ValueError, match="validation set has 3 image.*2 replicas.*N_IMAGES"):
        replica_batch_size(3, 16, 2, "validation")


def test_the_fused_batch_norm_is_the_default_and_keras_own_layer_can_be_chosen(synthetic_data_dir):
    import keras

    from helpers.device import setup_device
    from helpers.fitting import build_and_compile
    from helpers.model import FusedBatchNormalization

    assert TrainConfig().fused_batch_norm is True
    setup = setup_device("off", "off", "none")
    for fused, expected in ((True, FusedBatchNormalization), (False, keras.layers.BatchNormalization)):
        model = build_and_compile(tiny_config(synthetic_data_dir, fused_batch_norm=fused), setup)
        norms = {type(layer) for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
        assert norms == {expected}


@pytest.mark.slow
def test_a_plain_compile_and_fit_with_the_recipe_repeats_the_runs_first_epochs(synthetic_data_dir, tmp_path):
    # Notebook 04 shows the recipe as Keras' own compile and fit through this seam, then trains the course's run:
    # on a CPU, with the same seed, the run's epochs are those of the plain fit, number for number.
    import keras

    from helpers.callbacks import ValidationScore
    from helpers.device import setup_device
    from helpers.fitting import fit, learning_rate_of, steps_per_epoch
    from helpers.losses import bce
    from helpers.metrics import KerasIoU
    from helpers.model import build_unet
    from helpers.prepared_data import prepare_data
    from helpers.training import train

    # float32: the comparison is about the same steps, not about a precision's rounding
    config = tiny_config(synthetic_data_dir, epochs=2, mixed_precision="off")
    assert config.lr_schedule == "cosine"  # the course's recipe: warm-up, then cosine decay, as in notebook 04
    data = prepare_data(config, progress=False)
    keras.utils.set_random_seed(config.seed)
    setup = setup_device(config.mixed_precision, config.jit_compile, "none")
    model = build_unet(config.img_size, base_filters=config.base_filters, depth=config.depth, fused_batch_norm=True,
                       batch_norm_momentum=config.batch_norm_momentum)
    rate = learning_rate_of(config, setup, steps_per_epoch(config, data, setup))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=rate), loss=bce,
                  metrics=[KerasIoU()], jit_compile=setup.jit_compile)
    callbacks = [ValidationScore(data.x_val, data.val_masks_native, data.sizing, config.batch_size),
                 keras.callbacks.EarlyStopping(monitor="val_loss", patience=10)]
    plain = fit(model, config, data, setup, callbacks).history
    run = train(config, run_root=tmp_path, data=data)
    for key in ("loss", "val_loss", "val_score"):
        assert [row[key] for row in run.history] == pytest.approx(plain[key], rel=1e-4), key


def test_the_cosine_schedule_warms_up_then_decays_to_zero_at_the_last_step():
    from helpers.device import setup_device
    from helpers.fitting import learning_rate_of, warmup_steps_of

    setup = setup_device("off", "off", "none")
    config = TrainConfig(epochs=4, learning_rate=3e-3, lr_schedule="cosine", warmup_epochs=1.0)
    schedule = learning_rate_of(config, setup, steps_per_epoch=10)
    rates = np.array([float(schedule(step)) for step in range(40)])
    assert rates[0] == pytest.approx(3e-5) and rates[10] == pytest.approx(3e-3)  # from 1 % of the peak, 1 epoch
    assert np.all(np.diff(rates[:11]) > 0) and np.all(np.diff(rates[10:]) < 0)
    assert float(schedule(40)) == pytest.approx(0.0, abs=1e-12)
    # A run shorter than its warm-up warms up over half of it, then decays.
    assert warmup_steps_of(TrainConfig(epochs=1, warmup_epochs=1.0), 10) == 5
    assert warmup_steps_of(config, 10) == 10
    assert learning_rate_of(TrainConfig(lr_schedule="plateau", learning_rate=1e-3), setup, 10) == 1e-3
