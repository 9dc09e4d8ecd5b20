"""The fit seam: compiling the course's U-Net and the batch sizes that every replica can share."""

from __future__ import annotations

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
