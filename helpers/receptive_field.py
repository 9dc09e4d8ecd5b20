"""The effective receptive field: how strongly each input pixel moves one output pixel (Luo et al. 2016).

The theoretical receptive field (``helpers.model.receptive_field``) is every pixel that *can* change a unit.
The effective one weighs them: the gradient of one output pixel with respect to the input, averaged over
images. Luo et al. (https://arxiv.org/abs/1701.04128) found it roughly Gaussian and much narrower than the
theoretical field, since many more paths through the network reach the pixels near the centre.
"""

from __future__ import annotations

import numpy as np


def effective_receptive_field(model, images: np.ndarray, position: tuple[int, int] | None = None) -> np.ndarray:
    """Mean |d output[position] / d input| over `images` (N, H, W, C), summed over channels, normalised to sum 1.

    `position` is the (row, column) of the output pixel, its centre (H // 2, W // 2) by default; every channel
    of the output at that pixel counts. The model runs in inference mode (no dropout, batch norm's moving
    statistics), as it predicts. A last convolution with an activation (the U-Net's sigmoid) is differentiated
    before it: a saturated sigmoid has no gradient, while its argument, the logit, still says which pixels
    move the decision. Returns an (H, W) map of the input's share of the gradient.
    """
    import tensorflow as tf

    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
    height, width = images.shape[1:3]
    row, column = position if position is not None else (height // 2, width // 2)
    if not (0 <= row < height and 0 <= column < width):
        raise ValueError(f"position {(row, column)} is outside the {height} x {width} image")
    inputs = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = _logits(model, inputs)
        if tuple(outputs.shape[1:3]) != (height, width):
            raise ValueError(f"the model's output is {tuple(outputs.shape[1:3])}, not the input's {(height, width)}")
        # Summing over the batch keeps each image's gradient apart: image i's output depends on image i alone.
        chosen = tf.reduce_sum(outputs[:, row, column, :])
    gradient = np.abs(tape.gradient(chosen, inputs).numpy()).mean(axis=0).sum(axis=-1)
    total = gradient.sum()
    if not total > 0:
        raise ValueError("the gradient is zero everywhere: no input pixel moves this output pixel")
    return gradient / total


def _logits(model, inputs):
    """The model's output before the activation of its last layer, when that layer is a convolution."""
    import keras

    head = model.layers[-1]
    if not isinstance(head, keras.layers.Conv2D) or head.activation is keras.activations.linear:
        return model(inputs, training=False)
    features = keras.Model(model.inputs, head.input)(inputs, training=False)
    logits = head.convolution_op(features, head.kernel)
    return logits + head.bias if head.use_bias else logits


def mass_within(field: np.ndarray, radius: int, centre: tuple[int, int] | None = None) -> float:
    """Share of `field` (a 2-D map of non-negative weights) in the square of half-width `radius` around `centre`.

    The square holds (2 * radius + 1) ** 2 pixels, cut at the map's edges; `centre` is the map's middle pixel
    (H // 2, W // 2) by default, where `effective_receptive_field` puts its output pixel.
    """
    field = _check_map(field)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    row, column = centre if centre is not None else (field.shape[0] // 2, field.shape[1] // 2)
    inside = field[max(row - radius, 0) : row + radius + 1, max(column - radius, 0) : column + radius + 1]
    return float(inside.sum() / field.sum())


def radius_holding(field: np.ndarray, fraction: float, centre: tuple[int, int] | None = None) -> int:
    """Smallest half-width of a square around `centre` that holds at least `fraction` of `field`."""
    field = _check_map(field)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    largest = max(field.shape)
    for radius in range(largest + 1):
        # a float sum of all the map can fall a rounding error short of 1: allow for it
        if mass_within(field, radius, centre) >= fraction - 1e-9:
            return radius
    return largest  # pragma: no cover - the whole map always holds everything


def _check_map(field: np.ndarray) -> np.ndarray:
    field = np.asarray(field, dtype=np.float64)
    if field.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {field.shape}")
    if (field < 0).any() or not field.sum() > 0:
        raise ValueError("expected non-negative weights with a positive sum")
    return field
