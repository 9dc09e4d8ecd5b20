"""The tf.data input pipeline: cached, seeded shuffling, image+mask augmentation, batching, prefetch.

Randomness is stateless: every element gets its own seed pair from ``tf.data.Dataset.random``, so the
same ``seed`` gives the same batches in every run, and each epoch still sees new shuffles and flips.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from helpers.config import is_count

BRIGHTNESS_DELTA = 0.05  # largest brightness shift added to an image, in [0, 1] units
CONTRAST_RANGE = (0.9, 1.1)  # factor range for stretching an image around its mean


def augment_pair(image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Flip image and mask left-right together (p = 0.5) and jitter the image's brightness and contrast.

    image and mask are (H, W, C); seed is a shape-[2] integer tensor. Only label-preserving changes:
    a mirrored section is still a plausible section, but an upside-down one is not (depth matters).
    """
    flip_seed, brightness_seed, contrast_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    flip = tf.random.stateless_uniform([], flip_seed) < 0.5
    image = tf.where(flip, tf.reverse(image, axis=[1]), image)
    mask = tf.where(flip, tf.reverse(mask, axis=[1]), mask)
    image = tf.image.stateless_random_brightness(image, BRIGHTNESS_DELTA, brightness_seed)
    image = tf.image.stateless_random_contrast(image, *CONTRAST_RANGE, seed=contrast_seed)
    return tf.clip_by_value(image, 0.0, 1.0), mask


def make_dataset(
    images: np.ndarray,
    masks: np.ndarray,
    batch_size: int,
    *,
    training: bool,
    seed: int = 0,
    augment: bool = True,
    cache: bool = True,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of float32 (image, mask), each (B, S, S, 1); training shuffles and augments per epoch."""
    images, masks = _as_batches(images, masks)
    if not is_count(batch_size, 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    dataset = tf.data.Dataset.from_tensor_slices((images, masks))
    if cache:
        dataset = dataset.cache()  # before any random op, so each epoch draws fresh randomness
    if training:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        if augment:
            dataset = _augmented(dataset, seed)
    return dataset.batch(int(batch_size), drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _augmented(dataset: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """Apply augment_pair with a fresh stateless seed pair per element and per epoch."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((dataset, seeds)).map(
        lambda pair, element_seed: augment_pair(pair[0], pair[1], element_seed),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _as_batches(images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 (N, S, S, 1) copies of images and masks, checking that their shapes agree."""
    arrays = []
    for name, array in (("images", images), ("masks", masks)):
        array = np.asarray(array, dtype=np.float32)
        if array.ndim == 3:
            array = array[..., np.newaxis]
        if array.ndim != 4 or array.shape[-1] != 1:
            raise ValueError(f"make_dataset {name} must be (N, S, S) or (N, S, S, 1), got {np.shape(array)}")
        arrays.append(array)
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(f"make_dataset images {arrays[0].shape} and masks {arrays[1].shape} differ in shape")
    if len(arrays[0]) == 0:
        raise ValueError("make_dataset got no images (N = 0)")
    return arrays[0], arrays[1]
