"""SeedTrainer: one compiled model, trained again per seed, exactly as a freshly built one would train."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(synthetic_data_dir):
    from helpers.device import setup_device
    from helpers.prepared_data import prepare_data

    config = tiny_config(synthetic_data_dir, n_images=48, epochs=2, batch_size=8, mixed_precision="off",
                         split_seed=0)
    return config, prepare_data(config, progress=False), setup_device("off", "off", "none")


def fresh_weights(config, data, setup, seed: int, start: list | None = None) -> list[np.ndarray]:
    """What a new model trained with this seed ends with: the path train() takes, minus the run folder."""
    import keras

    from helpers.fitting import build_and_compile, make_datasets, steps_per_epoch

    config = dataclasses.replace(config, seed=seed)
    keras.utils.set_random_seed(seed)
    model = build_and_compile(config, setup, steps_per_epoch(config, data, setup))
    if start is not None:
        model.set_weights(start)
    model.fit(make_datasets(config, data, setup)[0], epochs=config.epochs, verbose=0, shuffle=False)
    return model.get_weights()


def assert_same_weights(ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-5)


def test_each_seed_trains_as_a_freshly_built_model_would(prepared):
    from helpers.experiments import SeedTrainer

    config, data, setup = prepared
    trainer = SeedTrainer(config, data, setup)
    first, second = trainer.run(0), trainer.run(1)  # the second starts where the first left the model
    assert_same_weights(second.weights, fresh_weights(config, data, setup, 1))
    again = trainer.run(0)
    assert_same_weights(again.weights, first.weights)
    np.testing.assert_array_equal(again.section_scores, first.section_scores)
    assert first.section_scores.shape == (len(data.val_idx),) and np.all((first.section_scores >= 0)
                                                                         & (first.section_scores <= 1))
    assert not all(np.allclose(a, b) for a, b in zip(first.weights, second.weights))  # the seed mattered


def test_a_second_stage_starts_from_the_given_weights(prepared):
    from helpers.experiments import SeedTrainer

    config, data, setup = prepared
    first = SeedTrainer(config, data, setup).run(0)
    tune = dataclasses.replace(config, loss="lovasz", learning_rate=1e-4, epochs=1)
    tuned = SeedTrainer(tune, data, setup).run(0, weights=first.weights)
    assert_same_weights(tuned.weights, fresh_weights(tune, data, setup, 0, start=first.weights))
