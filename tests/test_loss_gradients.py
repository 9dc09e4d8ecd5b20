"""helpers.loss_gradients and the symmetric Lovasz hinge: which pixels each loss pushes, checked by hand.

helpers.losses loads TensorFlow, so it is imported inside the tests: collecting this file must not load it
before the course runner sets TensorFlow's environment (tests/test_course.py, tests/test_notebooks.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.loss_gradients import logit_gradients, pushed_pixels


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def test_the_bce_gradient_is_the_probability_minus_the_truth_over_the_pixels():
    from helpers.losses import bce

    rng = np.random.default_rng(0)
    truth = (rng.random((6, 5)) < 0.4).astype(np.float32)
    logits = rng.normal(0.0, 2.0, (6, 5)).astype(np.float32)
    expected = (sigmoid(logits) - truth) / truth.size
    np.testing.assert_allclose(logit_gradients(bce, truth, logits), expected, atol=1e-6)
    assert pushed_pixels(logit_gradients(bce, truth, logits)) == truth.size


def test_a_batch_gradient_is_each_sections_own_divided_by_the_batch():
    from helpers.losses import dice_loss

    rng = np.random.default_rng(1)
    truth = (rng.random((3, 4, 4)) < 0.5).astype(np.float32)
    logits = rng.normal(0.0, 1.5, (3, 4, 4)).astype(np.float32)
    batch = logit_gradients(dice_loss, truth, logits)
    for index in range(3):
        np.testing.assert_allclose(batch[index] * 3, logit_gradients(dice_loss, truth[index], logits[index]),
                                   atol=1e-6)


def test_on_an_empty_section_the_lovasz_hinge_pushes_its_worst_pixel_only_and_the_symmetric_one_more():
    from helpers.losses import lovasz_hinge_loss, symmetric_lovasz_hinge_loss

    rng = np.random.default_rng(2)
    logits = rng.uniform(-3.0, 0.5, (8, 8)).astype(np.float32)
    empty = np.zeros_like(logits)
    plain = logit_gradients(lovasz_hinge_loss, empty, logits)
    assert pushed_pixels(plain) == 1
    assert np.unravel_index(np.argmax(plain), plain.shape) == np.unravel_index(np.argmax(logits), logits.shape)
    assert plain.max() == pytest.approx(1.0, abs=1e-5)  # the hinge's slope, times the Jaccard weight 1
    symmetric = logit_gradients(symmetric_lovasz_hinge_loss, empty, logits)
    # The complement is all salt: each pixel whose logit is above -1 has a positive hinge error there, weight 1/P.
    assert pushed_pixels(symmetric) == np.count_nonzero(logits > -1)
    expected = 0.5 * plain + 0.5 * (logits > -1) / logits.size
    np.testing.assert_allclose(symmetric, expected, atol=1e-6)


def test_the_lovasz_hinge_pushes_only_pixels_with_a_positive_hinge_error():
    from helpers.losses import lovasz_hinge_loss

    rng = np.random.default_rng(3)
    truth = np.zeros((10, 10), np.float32)
    truth[3:7, 2:8] = 1.0
    logits = (4.0 * (2.0 * truth - 1.0) + rng.normal(0.0, 2.5, truth.shape)).astype(np.float32)
    gradient = logit_gradients(lovasz_hinge_loss, truth, logits)
    errors = 1.0 - logits * (2.0 * truth - 1.0)
    assert np.all(gradient[errors <= 0] == 0) and 0 < pushed_pixels(gradient) <= np.count_nonzero(errors > 0)
    # Where it pushes, it pushes the right way: salt pixels up (negative gradient), the others down.
    assert np.all(gradient[(truth == 1) & (gradient != 0)] < 0) and np.all(gradient[(truth == 0) & (gradient != 0)] > 0)


def test_the_symmetric_lovasz_hinge_averages_the_mask_and_its_complement():
    from helpers.losses import lovasz_hinge_loss, symmetric_lovasz_hinge_loss

    rng = np.random.default_rng(4)
    truth = (rng.random((2, 6, 6)) < 0.3).astype(np.float32)
    probabilities = rng.uniform(0.05, 0.95, truth.shape).astype(np.float32)
    plain = np.asarray(lovasz_hinge_loss(truth, probabilities))
    complement = np.asarray(lovasz_hinge_loss(1.0 - truth, 1.0 - probabilities))
    np.testing.assert_allclose(symmetric_lovasz_hinge_loss(truth, probabilities), (plain + complement) / 2,
                               rtol=1e-4)


def test_logit_gradients_refuses_shapes_that_differ():
    from helpers.losses import bce

    with pytest.raises(ValueError, match="one shape"):
        logit_gradients(bce, np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="one shape"):
        logit_gradients(bce, np.zeros(4), np.zeros(4))
