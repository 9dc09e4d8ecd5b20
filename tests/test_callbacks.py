"""helpers.callbacks.PredictionSnapshots: fixed sections' predictions before training and every few epochs.

helpers.callbacks loads Keras (and TensorFlow), so it is imported inside the tests: collecting this file must not
load TensorFlow before the course runner sets its environment (tests/test_course.py, tests/test_notebooks.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.sizing import Sizing


def tiny_model():
    import keras

    from helpers.model import build_unet

    keras.utils.set_random_seed(0)
    model = build_unet(32, base_filters=2, depth=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    return model


@pytest.mark.slow
@pytest.mark.parametrize(("epochs", "every", "patience", "expected"),
                         [(5, 2, None, [0, 2, 4, 5]), (3, 1, None, [0, 1, 2, 3]), (6, 4, 0, [0, 2])])
def test_snapshots_start_before_training_and_end_at_the_last_epoch_run(epochs, every, patience, expected):
    import keras

    from helpers.callbacks import PredictionSnapshots

    rng = np.random.default_rng(0)
    images = rng.random((8, 32, 32, 1)).astype(np.float32)
    masks = (images > 0.5).astype(np.float32)
    sizing = Sizing(mode="resize", size=32)
    snapshots = PredictionSnapshots(images[:3], sizing.to_native(masks[:3, ..., 0]), sizing, every=every)
    callbacks = [snapshots]
    if patience is not None:  # stops after epoch 2: no later loss falls by a million below the first
        callbacks.append(keras.callbacks.EarlyStopping(monitor="loss", min_delta=1e6, patience=patience))
    model = tiny_model()
    model.fit(images, masks, epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks)
    assert sorted(snapshots.snapshots) == expected
    for probabilities in snapshots.snapshots.values():
        assert probabilities.shape == (3, 101, 101) and probabilities.dtype == np.float32
        assert 0.0 <= probabilities.min() and probabilities.max() <= 1.0
    final = sizing.to_native(model.predict(images[:3], verbose=0)[..., 0])
    np.testing.assert_allclose(snapshots.snapshots[expected[-1]], final, atol=1e-6)
    assert not np.allclose(snapshots.snapshots[0], final)  # training changed the predictions


def test_snapshots_refuse_a_bad_interval_or_unpaired_masks():
    from helpers.callbacks import PredictionSnapshots

    sizing = Sizing(mode="resize", size=32)
    with pytest.raises(ValueError, match="every"):
        PredictionSnapshots(np.zeros((2, 32, 32, 1)), np.zeros((2, 101, 101)), sizing, every=0)
    with pytest.raises(ValueError, match="2 images but 3 masks"):
        PredictionSnapshots(np.zeros((2, 32, 32, 1)), np.zeros((3, 101, 101)), sizing)
