"""Tests for helpers.losses: hand values, a brute-force Lovasz reference, gradients and a training smoke test."""

from __future__ import annotations

import itertools
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.losses import (
    LOSSES,
    bce,
    bce_dice_loss,
    dice_loss,
    get_loss,
    lovasz_hinge_loss,
    lovasz_hinge_per_image,
    lovasz_jaccard_gradient,
    probabilities_to_logits,
)
from helpers.model import build_unet


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def jaccard_loss_of_mistakes(truth: np.ndarray, wrong: np.ndarray) -> float:
    """Delta_J(M) = |M| / |truth U M| for the set M of mispredicted pixels (0 when both are empty)."""
    union = np.count_nonzero(truth | wrong)
    return 0.0 if union == 0 else np.count_nonzero(wrong) / union


def lovasz_hinge_brute_force(labels: np.ndarray, logits: np.ndarray) -> float:
    """Lovasz extension of Delta_J at the hinge errors, as the max over ALL orderings (no sorting).

    Delta_J is submodular, so its Lovasz extension is the largest value of
    sum_i m_pi(i) * (Delta(first i of pi) - Delta(first i-1 of pi)) over permutations pi.
    """
    truth = labels.astype(bool)
    errors = np.maximum(1.0 - logits * (2.0 * labels - 1.0), 0.0)
    best = -np.inf
    for order in itertools.permutations(range(labels.size)):
        wrong = np.zeros(labels.size, dtype=bool)
        value, previous = 0.0, 0.0
        for pixel in order:
            wrong[pixel] = True
            current = jaccard_loss_of_mistakes(truth, wrong)
            value += errors[pixel] * (current - previous)
            previous = current
        best = max(best, value)
    return best


def per_image(loss, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """A loss's values as a NumPy array, one per image."""
    return np.asarray(loss(y_true, y_pred))


def test_bce_by_hand() -> None:
    y_true = np.array([[[1.0, 0.0]], [[1.0, 1.0]]], np.float32)
    y_pred = np.array([[[0.8, 0.3]], [[0.5, 0.5]]], np.float32)
    expected = [-(math.log(0.8) + math.log(0.7)) / 2, -math.log(0.5)]
    np.testing.assert_allclose(per_image(bce, y_true, y_pred), expected, rtol=1e-5)


def test_dice_loss_by_hand_per_image() -> None:
    y_true = np.array([[[1, 1, 0, 0]], [[0, 0, 0, 0]]], np.float32)
    y_pred = np.array([[[1, 0.5, 0.5, 0]], [[0, 0, 0, 0]]], np.float32)
    # image 1: 1 - (2 * 1.5 + 1) / (2 + 2 + 1) = 0.2; image 2 (empty, empty): 1 - 1/1 = 0
    np.testing.assert_allclose(per_image(dice_loss, y_true, y_pred), [0.2, 0.0], atol=1e-6)
    expected_sum = per_image(bce, y_true, y_pred) + [0.2, 0.0]
    np.testing.assert_allclose(per_image(bce_dice_loss, y_true, y_pred), expected_sum, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_gives_one_value_per_image_so_keras_can_average_over_replicas(name: str) -> None:
    rng = np.random.default_rng(2)
    y_true = (rng.random((5, 8, 8, 1)) > 0.5).astype(np.float32)
    y_pred = rng.random((5, 8, 8, 1)).astype(np.float32)
    values = per_image(get_loss(name), y_true, y_pred)
    assert values.shape == (5,)
    # Image by image: an image's loss does not depend on the other images of its batch.
    alone = [float(per_image(get_loss(name), y_true[i:i + 1], y_pred[i:i + 1])[0]) for i in range(5)]
    np.testing.assert_allclose(values, alone, rtol=1e-6)


def test_losses_accept_a_channel_axis_on_either_side() -> None:
    rng = np.random.default_rng(1)
    y_true = (rng.random((2, 8, 8)) > 0.5).astype(np.float32)
    y_pred = rng.random((2, 8, 8)).astype(np.float32)
    for loss in LOSSES.values():
        plain = per_image(loss, y_true, y_pred)
        np.testing.assert_allclose(per_image(loss, y_true[..., None], y_pred[..., None]), plain, rtol=1e-6)
        np.testing.assert_allclose(per_image(loss, y_true, y_pred[..., None]), plain, rtol=1e-6)


def test_lovasz_hinge_by_hand() -> None:
    labels = tf.constant([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    logits = tf.constant([[0.0, 0.0], [2.0, 0.0], [1.0, -3.0]])
    # image 1: both errors 1, Delta(all wrong) = 1 -> 1
    # image 2: only the background pixel is wrong (error 1), Delta({it}) = 1/2 -> 0.5
    # image 3 (no salt): errors 2 and 0 (1 + logit), Delta({first}) = 1 -> 2
    np.testing.assert_allclose(lovasz_hinge_per_image(labels, logits).numpy(), [1.0, 0.5, 2.0], rtol=1e-6)


def test_lovasz_gradient_by_hand() -> None:
    sorted_truth = tf.constant([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    expected = [[1.0, 0.0], [0.5, 0.5], [1.0, 0.0]]
    np.testing.assert_allclose(lovasz_jaccard_gradient(sorted_truth).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_lovasz_hinge_matches_brute_force_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pixels = 6
    labels = (rng.random((1, pixels)) > 0.5).astype(np.float32)
    if seed == 0:
        labels[:] = 0.0  # an image without salt
    logits = rng.normal(0.0, 2.0, size=(1, pixels)).astype(np.float32)
    expected = lovasz_hinge_brute_force(labels[0], logits[0])
    actual = float(lovasz_hinge_per_image(tf.constant(labels), tf.constant(logits))[0])
    assert actual == pytest.approx(expected, rel=1e-5, abs=1e-6)
    via_probabilities = float(per_image(lovasz_hinge_loss, labels, sigmoid(logits).astype(np.float32))[0])
    assert via_probabilities == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_lovasz_hinge_at_binary_errors_is_the_jaccard_loss() -> None:
    # logit 0 -> hinge error 1 (a mistake); logit +-1 on the right side -> error 0
    labels = np.array([[1, 1, 1, 0, 0, 0]], np.float32)
    logits = np.array([[0.0, 1.0, 1.0, 0.0, 0.0, -1.0]], np.float32)
    mistakes = logits[0] == 0.0
    expected = jaccard_loss_of_mistakes(labels[0].astype(bool), mistakes)  # 3 / 5
    assert expected == pytest.approx(0.6)
    assert float(lovasz_hinge_per_image(tf.constant(labels), tf.constant(logits))[0]) == pytest.approx(0.6)


def test_probabilities_to_logits_inverts_the_sigmoid_and_stays_finite() -> None:
    logits = probabilities_to_logits(tf.constant([0.0, 0.5, sigmoid(2.0), 1.0])).numpy()
    assert np.all(np.isfinite(logits))
    np.testing.assert_allclose(logits[1:3], [0.0, 2.0], atol=1e-5)
    assert logits[0] < -15 and logits[3] > 15


def test_perfect_prediction_gives_zero_dice_and_lovasz() -> None:
    y_true = np.zeros((3, 8, 8, 1), np.float32)
    y_true[0, 2:5, 2:6] = 1.0
    y_true[1] = 1.0  # image 2 is all salt, image 3 has none
    np.testing.assert_allclose(per_image(dice_loss, y_true, y_true), 0.0, atol=1e-6)
    np.testing.assert_allclose(per_image(lovasz_hinge_loss, y_true, y_true), 0.0, atol=1e-6)
    np.testing.assert_allclose(per_image(bce, y_true, y_true), 0.0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_are_finite_even_for_saturated_predictions(name: str) -> None:
    y_true = np.zeros((2, 4, 4, 1), np.float32)
    y_true[0, :2] = 1.0  # image 2 has no salt
    values = np.random.default_rng(0).random((2, 4, 4, 1)).astype(np.float32)
    values[0, 0, 0, 0], values[1, 0, 0, 0] = 0.0, 1.0
    y_pred = tf.Variable(values)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(get_loss(name)(y_true, y_pred))
    gradient = tape.gradient(loss, y_pred)
    assert np.isfinite(float(loss))
    assert np.all(np.isfinite(gradient.numpy()))
    assert np.any(gradient.numpy() != 0)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_training_a_tiny_unet_lowers_each_loss(name: str) -> None:
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).random((8, 16, 16, 1)).astype(np.float32)
    masks = (images > 0.5).astype(np.float32)
    model = build_unet(input_size=16, base_filters=4, depth=1, dropout=0.0)
    loss_fn = get_loss(name)
    optimizer = keras.optimizers.Adam(learning_rate=0.01)

    losses = []
    for _ in range(5):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(masks, model(images, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
        losses.append(float(loss))
    assert losses[-1] < 0.9 * losses[0], losses


def test_get_loss_names_and_refusal() -> None:
    assert get_loss("bce") is bce
    assert get_loss("dice") is dice_loss
    assert get_loss("bce_dice") is bce_dice_loss
    assert get_loss("lovasz") is lovasz_hinge_loss
    with pytest.raises(ValueError, match="'focal'.*bce, bce_dice, dice, lovasz"):
        get_loss("focal")
