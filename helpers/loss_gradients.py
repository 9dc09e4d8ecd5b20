"""Which pixels a loss pushes, and how hard: its gradient with respect to the network's logits, pixel by pixel.

The U-Net ends in a sigmoid: its last layer computes a logit z for every pixel and outputs p = sigmoid(z). The
course's losses (helpers.losses) take p; training moves z. logit_gradients differentiates a loss through the
sigmoid, as backpropagation does, and gives d loss / d z for each pixel: negative where a gradient step raises
the logit (towards salt), positive where it lowers it, zero where the loss does not care.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def logit_gradients(loss: Callable, masks: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """d loss / d logit for every pixel, the shape of logits: one section (H, W) or a batch (N, H, W).

    loss(y_true, y_pred) takes probabilities and returns one value per section; a batch's loss is their mean,
    as Keras takes it.
    """
    import tensorflow as tf

    logits = np.asarray(logits, dtype=np.float32)
    masks = np.asarray(masks, dtype=np.float32)
    if logits.ndim not in (2, 3) or masks.shape != logits.shape:
        raise ValueError(f"masks and logits must share one shape, (H, W) or (N, H, W); got {masks.shape} "
                         f"and {logits.shape}")
    single = logits.ndim == 2
    z = tf.constant(logits[None] if single else logits)
    truth = tf.constant(masks[None] if single else masks)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = tf.reduce_mean(loss(truth, tf.sigmoid(z)))
    gradient = tape.gradient(value, z)
    gradient = np.zeros_like(z.numpy()) if gradient is None else gradient.numpy()
    return gradient[0] if single else gradient


def pushed_pixels(gradient: np.ndarray) -> int:
    """How many pixels a gradient moves at all (non-zero entries)."""
    return int(np.count_nonzero(np.asarray(gradient)))
