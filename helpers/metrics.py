"""Segmentation metrics: NumPy functions for evaluation and a Keras IoU metric for training logs.

Masks come as batches (N, H, W) or (N, H, W, 1) of binary values or probabilities; a pixel is
salt when its value is strictly greater than `threshold` (0.5 by default; truths are binarised
at 0.5). Conventions: an image with no salt in the truth and none predicted has IoU = dice = 1.

The competition score is defined on the native 101x101 masks: crop padded network outputs (or
resize them back) to 101x101 before calling `competition_score` (see `helpers.sizing`), otherwise
the padding pixels count too.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

DEFAULT_THRESHOLD = 0.5
# The competition's IoU thresholds 0.50, 0.55, ..., 0.95 as k / 20: comparing 20 * intersection
# with k * union on integer counts is exact, so an IoU of exactly 0.6 never passes 0.6 by rounding.
IOU_THRESHOLD_TWENTIETHS = np.arange(10, 20)
IOU_THRESHOLDS = IOU_THRESHOLD_TWENTIETHS / 20.0
DEFAULT_THRESHOLD_GRID = np.linspace(0.2, 0.8, 25)


def _as_binary_batch(masks: np.ndarray, threshold: float, name: str) -> np.ndarray:
    """`masks > threshold` as a boolean (N, H, W) array; a clear error for any other shape."""
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3:
        raise ValueError(f"{name} must be a batch of shape (N, H, W) or (N, H, W, 1), got shape {masks.shape}")
    return masks > threshold


def _binary_pair(y_true: np.ndarray, y_pred: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Truth (at 0.5) and prediction (at `threshold`) as boolean (N, H, W) arrays of the same shape."""
    truth = _as_binary_batch(y_true, DEFAULT_THRESHOLD, "y_true")
    prediction = _as_binary_batch(y_pred, threshold, "y_pred")
    if truth.shape != prediction.shape:
        raise ValueError(f"y_true and y_pred shapes differ: {truth.shape} vs {prediction.shape}")
    return truth, prediction


def _overlap_counts(truth: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image pixel counts (intersection, |truth|, |prediction|) as int64 arrays of shape (N,)."""
    intersection = np.count_nonzero(truth & prediction, axis=(1, 2))
    return intersection, np.count_nonzero(truth, axis=(1, 2)), np.count_nonzero(prediction, axis=(1, 2))


def pixel_accuracy(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Fraction of all pixels whose predicted class equals the truth."""
    truth, prediction = _binary_pair(y_true, y_pred, threshold)
    return float(np.mean(truth == prediction))


def iou_per_image(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Intersection over union of each image, shape (N,); empty truth and prediction give 1."""
    intersection, truth_area, predicted_area = _overlap_counts(*_binary_pair(y_true, y_pred, threshold))
    union = truth_area + predicted_area - intersection
    return np.where(union == 0, 1.0, intersection / np.maximum(union, 1))


def mean_iou(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Mean over images of the per-image IoU."""
    return float(np.mean(iou_per_image(y_true, y_pred, threshold)))


def dice_per_image(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Dice coefficient 2|A.B| / (|A| + |B|) of each image, shape (N,); empty truth and prediction give 1."""
    intersection, truth_area, predicted_area = _overlap_counts(*_binary_pair(y_true, y_pred, threshold))
    total = truth_area + predicted_area
    return np.where(total == 0, 1.0, 2 * intersection / np.maximum(total, 1))


def mean_dice(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Mean over images of the per-image dice coefficient."""
    return float(np.mean(dice_per_image(y_true, y_pred, threshold)))


def competition_score_per_image(
    y_true: np.ndarray, y_pred: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """TGS score of each image (N,): the fraction of IoU thresholds 0.50..0.95 that its IoU exceeds.

    An image without salt scores 1 if nothing is predicted, else 0; an image with salt and an
    empty prediction scores 0. Call it on 101x101 masks (crop network-size outputs first).
    """
    return _score_binary_masks(*_binary_pair(y_true, y_pred, threshold))


def _score_binary_masks(truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Per-image competition score (N,) of boolean (N, H, W) truth and prediction."""
    intersection, truth_area, predicted_area = _overlap_counts(truth, prediction)
    union = truth_area + predicted_area - intersection
    passes = 20 * intersection[:, None] > IOU_THRESHOLD_TWENTIETHS[None, :] * union[:, None]
    # Empty truth and empty prediction: 0 > 0 fails every threshold, but the competition counts it as perfect.
    passes[union == 0] = True
    return passes.mean(axis=1)


def competition_score(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> float:
    """TGS Salt competition score: the mean over images of `competition_score_per_image`."""
    return float(np.mean(competition_score_per_image(y_true, y_pred, threshold)))


def best_threshold(
    y_true: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray = DEFAULT_THRESHOLD_GRID
) -> tuple[float, np.ndarray]:
    """The probability threshold with the highest competition score, and the score at every threshold."""
    thresholds = np.asarray(thresholds, dtype=float)
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(f"thresholds must be a non-empty 1-D array, got shape {thresholds.shape}")
    truth = _as_binary_batch(y_true, DEFAULT_THRESHOLD, "y_true")
    scores = np.array(
        [np.mean(_score_binary_masks(*_binary_pair(truth, probabilities, threshold))) for threshold in thresholds]
    )
    # argmax takes the first of equal scores: the lowest threshold among ties.
    return float(thresholds[int(np.argmax(scores))]), scores


def _tf_overlap_counts(y_true: tf.Tensor, y_pred: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-image (intersection, union) pixel counts, float32 (N,), both masks thresholded at 0.5."""
    batch = tf.shape(y_pred)[0]
    truth = tf.reshape(tf.cast(y_true, tf.float32) > DEFAULT_THRESHOLD, (batch, -1))
    prediction = tf.reshape(tf.cast(y_pred, tf.float32) > DEFAULT_THRESHOLD, (batch, -1))
    # float32 counts are exact integers up to 2**24 pixels, far more than a mask holds.
    intersection = tf.reduce_sum(tf.cast(truth & prediction, tf.float32), axis=-1)
    union = tf.reduce_sum(tf.cast(truth | prediction, tf.float32), axis=-1)
    return intersection, union


def tf_iou_per_image(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """TensorFlow per-image IoU at threshold 0.5, shape (N,); empty truth and prediction give 1."""
    intersection, union = _tf_overlap_counts(y_true, y_pred)
    return tf.where(union == 0.0, 1.0, intersection / tf.maximum(union, 1.0))


@keras.saving.register_keras_serializable(package="helpers")
class KerasIoU(keras.metrics.MeanMetricWrapper):
    """Keras metric "iou": per-image IoU at 0.5, averaged over every image of the epoch."""

    def __init__(self, name: str = "iou", dtype: str | None = None) -> None:
        super().__init__(fn=tf_iou_per_image, name=name, dtype=dtype)

    def get_config(self) -> dict:
        """Only the name and dtype: the function is fixed by the class."""
        return {"name": self.name, "dtype": self.dtype}
