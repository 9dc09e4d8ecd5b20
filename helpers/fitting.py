"""The fit seam: config + device + prepared data + callbacks -> a trained model and its history.

train() (the notebooks and `python -m helpers.training`), the benchmarks and the distribution test all train
through these few functions, so what is measured and tested is what the course runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from helpers.config import TrainConfig
from helpers.device import DeviceSetup
from helpers.prepared_data import PreparedData


def build_and_compile(config: TrainConfig, setup: DeviceSetup, steps_per_epoch: int = 1) -> Any:
    """A fresh U-Net compiled with Adam, the configured loss and an IoU metric, on the setup's devices.

    steps_per_epoch (optimizer steps in one epoch) sets the length of a cosine schedule's warm-up and decay.
    """
    import keras

    from helpers.losses import get_loss
    from helpers.metrics import KerasIoU
    from helpers.model import build_unet

    with setup.strategy.scope():
        model = build_unet(input_size=config.img_size, base_filters=config.base_filters, depth=config.depth,
                           dropout=config.dropout, batch_norm=config.batch_norm,
                           single_conv_blocks=config.single_conv_blocks,
                           fused_batch_norm=config.fused_batch_norm, batch_norm_momentum=config.batch_norm_momentum,
                           skip_connections=config.skip_connections, upsampling=config.upsampling)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate_of(config, setup, steps_per_epoch)),
                      loss=get_loss(config.loss), metrics=[KerasIoU()], jit_compile=setup.jit_compile)
    return model


def learning_rate_of(config: TrainConfig, setup: DeviceSetup, steps_per_epoch: int) -> Any:
    """The optimizer's learning rate: a number (a plateau schedule changes it) or a warm-up-then-cosine schedule.

    The peak is LEARNING_RATE, times the number of replicas when SCALE_LEARNING_RATE (the global batch grows
    with them). The warm-up climbs linearly from a hundredth of the peak, the decay falls to zero at EPOCHS.
    """
    import keras

    peak = peak_learning_rate(config, setup)
    if config.lr_schedule == "plateau":
        return peak
    warmup_steps = warmup_steps_of(config, steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 100, warmup_target=peak, warmup_steps=warmup_steps,
        decay_steps=max(1, config.epochs * steps_per_epoch - warmup_steps), alpha=0.0)


def peak_learning_rate(config: TrainConfig, setup: DeviceSetup) -> float:
    """LEARNING_RATE, times the number of replicas when SCALE_LEARNING_RATE (the global batch grows with them)."""
    return config.learning_rate * (setup.replicas if config.scale_learning_rate else 1)


def warmup_steps_of(config: TrainConfig, steps_per_epoch: int) -> int:
    """Steps of a cosine schedule's warm-up: WARMUP_EPOCHS of them, but at most half the run's steps.

    A run shorter than its warm-up (a one-epoch fine-tuning stage, say) would otherwise never decay.
    """
    return min(round(config.warmup_epochs * steps_per_epoch), config.epochs * steps_per_epoch // 2)


def steps_per_epoch(config: TrainConfig, data: PreparedData, setup: DeviceSetup) -> int:
    """Optimizer steps in one epoch: training sections over the global batch, the last batch included."""
    train_batch, _ = batch_sizes(config, data, setup)
    return -(-len(data.x_train) // train_batch)


def replica_batch_size(n_images: int, global_batch: int, replicas: int, name: str) -> int:
    """The largest batch size up to global_batch with which no replica ever gets an empty or uneven first share."""
    # Under a tf.distribute strategy Keras builds the model from the replica-mean of the first batch
    # (shapes must agree), and oneDNN kernels fail on a replica's empty share of a small last batch.
    if replicas == 1:
        return global_batch
    for batch in range(min(global_batch, n_images) // replicas * replicas, 0, -replicas):
        if n_images % batch == 0 or n_images % batch >= replicas:
            return batch
    raise ValueError(f"the {name} set has {n_images} image(s), which {replicas} replicas cannot share in batches "
                     "that give each of them at least one image; change N_IMAGES or use fewer devices")


def batch_sizes(config: TrainConfig, data: PreparedData, setup: DeviceSetup) -> tuple[int, int]:
    """The global training and validation batch sizes: BATCH_SIZE per replica, shares no replica left empty."""
    global_batch = config.batch_size * setup.replicas
    return (replica_batch_size(len(data.x_train), global_batch, setup.replicas, "training"),
            replica_batch_size(len(data.x_val), global_batch, setup.replicas, "validation"))


def make_datasets(config: TrainConfig, data: PreparedData, setup: DeviceSetup, shuffle: bool = True) -> tuple:
    """The tf.data pipelines of a run: training shuffled and augmented (as configured), validation as it is.

    shuffle=False feeds the training sections in order without augmentation (to compare two runs step by step).
    """
    from helpers.pipeline import make_dataset

    train_batch, val_batch = batch_sizes(config, data, setup)
    train_ds = make_dataset(data.x_train, data.y_train, train_batch, training=shuffle, seed=config.seed,
                            augment=config.augment and shuffle)
    return train_ds, make_dataset(data.x_val, data.y_val, val_batch, training=False)


def fit(model: Any, config: TrainConfig, data: PreparedData, setup: DeviceSetup, callbacks: Sequence[Any] = (),
        initial_epoch: int = 0, shuffle: bool = True) -> Any:
    """Train model on the prepared data for epochs initial_epoch+1 .. config.epochs; Keras' History."""
    train_ds, val_ds = make_datasets(config, data, setup, shuffle)
    return model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, initial_epoch=initial_epoch,
                     callbacks=list(callbacks), verbose=0, shuffle=False)  # the tf.data pipeline shuffles
