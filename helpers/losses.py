"""Segmentation losses for a sigmoid U-Net: `(y_true, y_pred) -> (N,)`, one loss per image.

y_pred are probabilities; masks come as (N, H, W) or (N, H, W, 1). Returning per-image values
(not a batch mean) lets Keras do the averaging: `model.fit` takes their mean, and under a
`tf.distribute` strategy it divides by the global batch, so every replica count gives the same
loss and gradients. Average them yourself (`tf.reduce_mean`) when calling a loss by hand. Every
loss is registered with Keras, so a model compiled with one reloads without `custom_objects`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

DICE_SMOOTH = 1.0
# Keras' own epsilon: keeps log(p / (1 - p)) finite for saturated sigmoids (|logit| <= ~16).
PROBABILITY_EPSILON = 1e-7
LossFunction = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _flatten_per_image(y_true: tf.Tensor, y_pred: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Both masks as float32 (N, pixels), whichever of (N, H, W) or (N, H, W, 1) they came in."""
    y_pred = tf.convert_to_tensor(y_pred)
    batch = tf.shape(y_pred)[0]
    flat_pred = tf.reshape(tf.cast(y_pred, tf.float32), (batch, -1))
    flat_true = tf.reshape(tf.cast(y_true, tf.float32), (batch, -1))
    return flat_true, flat_pred


@keras.saving.register_keras_serializable(package="helpers")
def bce(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy of each image, averaged over its pixels (the original tutorial's loss)."""
    flat_true, flat_pred = _flatten_per_image(y_true, y_pred)
    return keras.losses.binary_crossentropy(flat_true, flat_pred)


@keras.saving.register_keras_serializable(package="helpers")
def dice_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Soft dice loss of each image, 1 - (2|A.B| + 1) / (|A| + |B| + 1)."""
    flat_true, flat_pred = _flatten_per_image(y_true, y_pred)
    # smooth=1 makes an empty truth predicted empty score 0 loss instead of 0/0.
    overlap = tf.reduce_sum(flat_true * flat_pred, axis=-1)
    total = tf.reduce_sum(flat_true, axis=-1) + tf.reduce_sum(flat_pred, axis=-1)
    return 1.0 - (2.0 * overlap + DICE_SMOOTH) / (total + DICE_SMOOTH)


@keras.saving.register_keras_serializable(package="helpers")
def bce_dice_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy plus soft dice loss, per image."""
    return bce(y_true, y_pred) + dice_loss(y_true, y_pred)


def probabilities_to_logits(y_pred: tf.Tensor) -> tf.Tensor:
    """Invert the sigmoid, clipping probabilities to [eps, 1 - eps] so the logits stay finite."""
    clipped = tf.clip_by_value(tf.cast(y_pred, tf.float32), PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON)
    return tf.math.log(clipped) - tf.math.log1p(-clipped)


def lovasz_jaccard_gradient(sorted_truth: tf.Tensor) -> tf.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss, for truths (N, P) sorted by falling error.

    Entry i is Delta(first i pixels wrong) - Delta(first i-1 pixels wrong), where Delta of a set M of
    mispredicted pixels is the Jaccard loss |M| / |truth U M|; cumulative sums give all prefixes at once.
    """
    salt_pixels = tf.reduce_sum(sorted_truth, axis=-1, keepdims=True)
    intersection = salt_pixels - tf.cumsum(sorted_truth, axis=-1)
    union = salt_pixels + tf.cumsum(1.0 - sorted_truth, axis=-1)  # >= 1, so no division by zero
    jaccard_loss = 1.0 - intersection / union
    return tf.concat([jaccard_loss[:, :1], jaccard_loss[:, 1:] - jaccard_loss[:, :-1]], axis=-1)


def lovasz_hinge_per_image(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Lovasz hinge of each image (N,) from flat binary labels and logits, both (N, P)."""
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    sorted_errors, order = tf.math.top_k(errors, k=tf.shape(errors)[-1])
    sorted_labels = tf.gather(labels, order, batch_dims=1)
    # The gradient weights depend on the ordering only; they are constants for backpropagation.
    weights = tf.stop_gradient(lovasz_jaccard_gradient(sorted_labels))
    return tf.reduce_sum(tf.nn.relu(sorted_errors) * weights, axis=-1)


@keras.saving.register_keras_serializable(package="helpers")
def lovasz_hinge_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Lovasz hinge loss (Berman et al., 2018) of each image, on logits recovered from y_pred.

    A direct surrogate of the IoU. It is normally used to fine-tune a model already trained with
    BCE: from scratch its sparse, ordering-based gradient learns slowly. An image without salt is
    handled like any other (the standard per-image form): its loss is the hinge error of its
    most confidently wrong pixel, so it pushes every pixel towards "no salt".
    """
    flat_true, flat_pred = _flatten_per_image(y_true, y_pred)
    return lovasz_hinge_per_image(flat_true, probabilities_to_logits(flat_pred))


@keras.saving.register_keras_serializable(package="helpers")
def symmetric_lovasz_hinge_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """The Lovasz hinge averaged over the mask and its complement (salt and no salt swapped, logits negated).

    On a section without salt the plain Lovasz hinge pushes one pixel only, its most confidently wrong one
    (the Jaccard loss of an empty truth is 1 from the first mistake on). The complement of an empty mask is all
    salt, so its half of the average pushes every pixel that is not yet confidently "no salt" (logit > -1).
    Taught in notebook 04; not one of the LOSS choices.
    """
    flat_true, flat_pred = _flatten_per_image(y_true, y_pred)
    logits = probabilities_to_logits(flat_pred)
    return 0.5 * (lovasz_hinge_per_image(flat_true, logits) + lovasz_hinge_per_image(1.0 - flat_true, -logits))


LOSSES: dict[str, LossFunction] = {
    "bce": bce,
    "dice": dice_loss,
    "bce_dice": bce_dice_loss,
    "lovasz": lovasz_hinge_loss,
}


def get_loss(name: str) -> LossFunction:
    """The loss function called `name`: one of "bce", "dice", "bce_dice", "lovasz"."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss name {name!r}; valid names: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]
