"""Tests for helpers.metrics: hand-computed cases, the competition rules, and TF == NumPy."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from helpers import NATIVE_SIZE
from helpers.losses import lovasz_hinge_loss
from helpers.metrics import (
    IOU_THRESHOLDS,
    KerasIoU,
    best_threshold,
    competition_score,
    competition_score_per_image,
    dice_per_image,
    iou_per_image,
    mean_dice,
    mean_iou,
    pixel_accuracy,
    tf_iou_per_image,
)
from helpers.model import build_unet


def masks_with_overlap(truth_pixels: int, predicted_pixels: int, shared_pixels: int, side: int = 10) -> tuple:
    """One (1, side, side) truth and prediction with the given areas and intersection."""
    truth = np.zeros(side * side, np.float32)
    prediction = np.zeros(side * side, np.float32)
    truth[:truth_pixels] = 1.0
    start = truth_pixels - shared_pixels
    prediction[start : start + predicted_pixels] = 1.0
    return truth.reshape(1, side, side), prediction.reshape(1, side, side)


def rectangle_masks(rng: np.random.Generator, count: int, size: int = NATIVE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Truth rectangles (a fifth of them empty) and predictions: shifted, some empty, some spurious."""
    truth = np.zeros((count, size, size), np.float32)
    prediction = np.zeros_like(truth)
    for index in range(count):
        top, left = rng.integers(0, size - 10, size=2)
        height, width = rng.integers(5, size - max(top, left), size=2)
        shift_y, shift_x = rng.integers(-8, 9, size=2)
        if rng.random() > 0.2:
            truth[index, top : top + height, left : left + width] = 1.0
        if rng.random() > 0.1:
            rows = slice(max(top + shift_y, 0), top + shift_y + height)
            columns = slice(max(left + shift_x, 0), left + shift_x + width)
            prediction[index, rows, columns] = 1.0
    return truth, prediction


def test_pixel_accuracy_iou_and_dice_of_small_known_masks() -> None:
    truth = np.zeros((1, 4, 4), np.float32)
    truth[0, :2, :2] = 1.0  # 4 pixels
    prediction = np.zeros((1, 4, 4), np.float32)
    prediction[0, :2, :3] = 1.0  # 6 pixels, 4 of them shared
    assert pixel_accuracy(truth, prediction) == pytest.approx(14 / 16)
    np.testing.assert_allclose(iou_per_image(truth, prediction), [4 / 6])
    np.testing.assert_allclose(dice_per_image(truth, prediction), [8 / 10])
    assert mean_iou(truth, prediction) == pytest.approx(4 / 6)
    assert mean_dice(truth, prediction) == pytest.approx(0.8)


def test_empty_truth_and_prediction_count_as_perfect() -> None:
    empty = np.zeros((2, 5, 5, 1), np.float32)
    np.testing.assert_array_equal(iou_per_image(empty, empty), [1.0, 1.0])
    np.testing.assert_array_equal(dice_per_image(empty, empty), [1.0, 1.0])
    assert competition_score(empty, empty) == 1.0


def test_mean_is_over_images() -> None:
    truth = np.zeros((2, 4, 4), np.float32)
    truth[0, :2, :2] = 1.0
    prediction = truth.copy()
    prediction[1, 0, 0] = 1.0  # image 2: no salt, one pixel predicted -> IoU 0
    assert mean_iou(truth, prediction) == pytest.approx(0.5)
    assert competition_score(truth, prediction) == pytest.approx(0.5)


def test_threshold_applies_to_probabilities() -> None:
    truth = np.array([[[1.0, 1.0, 0.0, 0.0]]], np.float32)
    probabilities = np.array([[[0.9, 0.6, 0.4, 0.1]]], np.float32)
    assert mean_iou(truth, probabilities) == 1.0
    assert mean_iou(truth, probabilities, threshold=0.7) == pytest.approx(0.5)
    assert pixel_accuracy(truth, probabilities, threshold=0.3) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("areas", "iou", "expected"),
    [
        ((8, 4, 4), 0.5, 0.0),  # 0.5 > 0.5 is False: no threshold passes
        ((50, 31, 31), 0.62, 0.3),  # passes 0.50, 0.55, 0.60
        ((5, 3, 3), 0.6, 0.2),  # exactly 0.6 does not pass 0.60: only 0.50, 0.55
        ((20, 19, 19), 0.95, 0.9),  # exactly 0.95 fails only the last threshold
        ((25, 24, 24), 0.96, 1.0),
        ((10, 10, 10), 1.0, 1.0),
        ((20, 11, 11), 0.55, 0.1),
    ],
)
def test_competition_score_of_known_ious(areas: tuple, iou: float, expected: float) -> None:
    truth, prediction = masks_with_overlap(*areas)
    np.testing.assert_allclose(iou_per_image(truth, prediction), [iou])
    np.testing.assert_allclose(competition_score_per_image(truth, prediction), [expected])


def test_competition_rules_for_empty_masks() -> None:
    truth = np.zeros((3, 6, 6, 1), np.float32)
    prediction = np.zeros_like(truth)
    prediction[1, 3, 3] = 1.0  # image 2: no salt in the truth, one salt pixel predicted -> 0
    truth[2, :3, :3] = 1.0  # image 3: salt in the truth, nothing predicted -> 0
    np.testing.assert_array_equal(competition_score_per_image(truth, prediction), [1.0, 0.0, 0.0])


def test_iou_thresholds_are_the_competitions() -> None:
    np.testing.assert_allclose(IOU_THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


def test_bad_shapes_are_refused_by_name() -> None:
    masks = np.zeros((2, 8, 8), np.float32)
    with pytest.raises(ValueError, match="y_pred .*shape"):
        mean_iou(masks, np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="y_true"):
        competition_score(np.zeros((2, 8, 8, 3)), masks)
    with pytest.raises(ValueError, match="differ"):
        pixel_accuracy(masks, np.zeros((2, 9, 9), np.float32))


def test_competition_score_of_a_set_is_the_mean_of_its_sections_scores() -> None:
    # One vectorised pass over the set (its speed is measured by the benchmarks, not asserted here).
    truth, prediction = rectangle_masks(np.random.default_rng(0), 100)
    one_by_one = [competition_score(t[None], p[None]) for t, p in zip(truth, prediction)]
    assert competition_score_per_image(truth, prediction) == pytest.approx(one_by_one)
    tiled = competition_score(np.tile(truth, (32, 1, 1)), np.tile(prediction, (32, 1, 1)))  # 3200 sections
    assert tiled == pytest.approx(np.mean(one_by_one))


def test_best_threshold_finds_the_separating_probability() -> None:
    truth, _ = rectangle_masks(np.random.default_rng(1), 12, size=16)
    probabilities = np.where(truth > 0, 0.61, 0.34).astype(np.float32)
    threshold, scores = best_threshold(truth, probabilities)
    assert scores.shape == (25,)
    assert threshold == pytest.approx(0.35)  # the lowest grid value in [0.34, 0.61)
    assert scores.max() == 1.0
    assert scores[0] < 1.0 and scores[-1] < 1.0  # 0.2 marks everything salt, 0.8 nothing
    with pytest.raises(ValueError, match="thresholds"):
        best_threshold(truth, probabilities, thresholds=np.array([]))


def test_tensorflow_iou_equals_numpy_on_random_masks() -> None:
    rng = np.random.default_rng(2)
    truth, prediction = rectangle_masks(rng, 40)
    noise = rng.normal(0, 0.1, prediction.shape)
    probabilities = np.clip(prediction * 0.5 + 0.25 + noise, 0, 1).astype(np.float32)
    truth, probabilities = truth[..., None], probabilities[..., None]
    expected_iou = iou_per_image(truth, probabilities)
    assert len(set(expected_iou.round(2))) > 4  # the data exercise many overlaps
    np.testing.assert_allclose(tf_iou_per_image(truth, probabilities).numpy(), expected_iou, rtol=1e-6)


def test_stateful_keras_iou_averages_over_all_images() -> None:
    truth, prediction = rectangle_masks(np.random.default_rng(3), 10, size=32)
    iou_metric = KerasIoU()
    for batch in (slice(0, 7), slice(7, 10)):  # unequal batches: the mean is per image, not per batch
        iou_metric.update_state(truth[batch], prediction[batch])
    assert float(iou_metric.result()) == pytest.approx(mean_iou(truth, prediction), rel=1e-6)
    assert iou_metric.name == "iou"


def test_compiled_model_logs_and_reloads_without_custom_objects(tmp_path) -> None:
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).random((4, 16, 16, 1)).astype(np.float32)
    masks = (images > 0.5).astype(np.float32)
    model = build_unet(input_size=16, base_filters=2, depth=1)
    model.compile(optimizer="adam", loss=lovasz_hinge_loss, metrics=[KerasIoU()])  # as helpers.training does
    history = model.fit(images, masks, batch_size=2, epochs=1, verbose=0)
    assert {"loss", "iou"} <= set(history.history)
    path = tmp_path / "compiled.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    results = reloaded.evaluate(images, masks, batch_size=4, verbose=0, return_dict=True)
    assert {"loss", "iou"} <= set(results)
