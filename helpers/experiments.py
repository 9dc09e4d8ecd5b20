"""Train one variant of the U-Net with several seeds, cheaply: what notebook 07's comparisons run on.

A comparison trains every variant with several seeds, and each `helpers.training.train` call pays for a run
folder, per-epoch validation, checkpoints and, above all, TensorFlow tracing the training step anew (seconds
per model on a CPU, more than a short run's training). `SeedTrainer` compiles a variant once and, for each seed,
puts the model back exactly where a fresh run with that seed would start: the initial weights and dropout
random states drawn with that seed (or given weights, for a second stage), the optimizer's state zeroed, the
data pipeline shuffled and augmented with that seed. So seed s of a variant trains as `train(config with seed
s)` would, without retracing (tests/test_experiments.py checks it against a freshly built model). Nothing is
written to disk; each run returns its per-section validation scores and its trained weights.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from helpers.config import SCORE_THRESHOLD, TrainConfig
from helpers.prepared_data import PreparedData


@dataclass
class SeedRun:
    """One seed's result: each validation section's competition score, the trained weights, the seconds."""

    seed: int
    section_scores: np.ndarray
    weights: list[np.ndarray]
    seconds: float


def _seed_generator_states(model: Any) -> list[Any]:
    """The state variables of the model's random layers (dropout), in layer order."""
    return [layer.seed_generator.state for layer in model.layers if getattr(layer, "seed_generator", None)]


class SeedTrainer:
    """One compiled model of `config`'s variant, trained again for each seed from a fresh start."""

    def __init__(self, config: TrainConfig, data: PreparedData, setup: Any):
        import keras

        from helpers.fitting import build_and_compile, steps_per_epoch

        config.validate()
        self.config, self.data, self.setup = config, data, setup
        self.steps = steps_per_epoch(config, data, setup)
        keras.utils.set_random_seed(config.seed)
        self.model = build_and_compile(config, setup, self.steps)
        with setup.strategy.scope():
            self.model.optimizer.build(self.model.trainable_variables)
        # Adam's starting state: step 0 and zero moments (and the rate, for a plateau schedule).
        self._optimizer_start = [np.array(variable) for variable in self.model.optimizer.variables]

    def _fresh_start(self, seed: int, weights: list[np.ndarray] | None) -> None:
        """Weights and dropout states as a new run with this seed draws them (or the given weights)."""
        import keras

        from helpers.fitting import build_and_compile

        keras.utils.set_random_seed(seed)
        fresh = build_and_compile(dataclasses.replace(self.config, seed=seed), self.setup, self.steps)
        self.model.set_weights(weights if weights is not None else fresh.get_weights())
        for mine, theirs in zip(_seed_generator_states(self.model), _seed_generator_states(fresh), strict=True):
            mine.assign(theirs)
        for variable, start in zip(self.model.optimizer.variables, self._optimizer_start, strict=True):
            variable.assign(start)

    def run(self, seed: int, weights: list[np.ndarray] | None = None) -> SeedRun:
        """Train config.epochs epochs with this seed (from `weights` if given); score every validation section."""
        from helpers.fitting import make_datasets
        from helpers.metrics import competition_score_per_image
        from helpers.predict import predict_probabilities

        started = time.perf_counter()
        self._fresh_start(seed, weights)
        train_batches, _ = make_datasets(dataclasses.replace(self.config, seed=seed), self.data, self.setup)
        self.model.fit(train_batches, epochs=self.config.epochs, verbose=0, shuffle=False)  # the pipeline shuffles
        probabilities = predict_probabilities(self.model, self.data.val_images_native, self.data.sizing,
                                              batch_size=self.config.batch_size)
        scores = competition_score_per_image(self.data.val_masks_native, probabilities > SCORE_THRESHOLD)
        return SeedRun(seed=seed, section_scores=np.asarray(scores, dtype=float), weights=self.model.get_weights(),
                       seconds=time.perf_counter() - started)
