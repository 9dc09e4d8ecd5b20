"""The tf.data pipeline: shapes, seeded determinism, per-epoch randomness, mask/image alignment."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from helpers.pipeline import augment_pair, make_dataset

SIDE = 16


def asymmetric_batch(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images with values 0.1 / 0.9 only (so image > 0.5 survives jitter) whose left half is brighter."""
    rng = np.random.default_rng(seed)
    bright = rng.random((n, SIDE, SIDE)) < 0.3
    bright[:, :, : SIDE // 2] |= rng.random((n, SIDE, SIDE // 2)) < 0.8
    images = np.where(bright, 0.9, 0.1).astype(np.float32)
    return images, (images > 0.5).astype(np.float32)


def epochs(dataset: tf.data.Dataset, n_epochs: int = 2) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """All batches of several passes over a dataset, as NumPy."""
    return [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(n_epochs)]


def flat(batches: list[list[tuple[np.ndarray, np.ndarray]]]) -> np.ndarray:
    """Every image of every epoch stacked."""
    return np.concatenate([x for epoch in batches for x, _ in epoch])


def left_is_brighter(images: np.ndarray) -> np.ndarray:
    """Per image: is the left half brighter than the right (i.e. not flipped)?"""
    return images[:, :, : SIDE // 2].mean(axis=(1, 2, 3)) > images[:, :, SIDE // 2 :].mean(axis=(1, 2, 3))


# ----------------------------------------------------------------------------- augment_pair


def test_augment_pair_flips_both_or_neither() -> None:
    images, masks = asymmetric_batch(1)
    image, mask = images[0, ..., None], masks[0, ..., None]
    flipped = 0
    for i in range(40):
        out_image, out_mask = augment_pair(tf.constant(image), tf.constant(mask), tf.constant([i, 7], tf.int64))
        out_image, out_mask = out_image.numpy(), out_mask.numpy()
        assert out_image.shape == image.shape and out_image.dtype == np.float32
        assert 0 <= out_image.min() and out_image.max() <= 1
        is_flipped = np.array_equal(out_mask, mask[:, ::-1])
        assert is_flipped or np.array_equal(out_mask, mask)
        np.testing.assert_array_equal(out_image > 0.5, out_mask > 0.5)
        flipped += is_flipped
    assert 8 <= flipped <= 32


def test_augment_pair_is_a_function_of_its_seed() -> None:
    images, masks = asymmetric_batch(1)
    image, mask = tf.constant(images[0, ..., None]), tf.constant(masks[0, ..., None])
    seed = tf.constant([3, 4], tf.int64)
    first, second = augment_pair(image, mask, seed), augment_pair(image, mask, seed)
    np.testing.assert_array_equal(first[0].numpy(), second[0].numpy())
    np.testing.assert_array_equal(first[1].numpy(), second[1].numpy())


def test_augment_pair_jitter_is_small_and_leaves_mask_values() -> None:
    image = tf.fill([SIDE, SIDE, 1], 0.5)
    mask = tf.ones([SIDE, SIDE, 1])
    for i in range(10):
        out_image, out_mask = augment_pair(image, mask, tf.constant([i, 0], tf.int64))
        assert abs(float(out_image.numpy().mean()) - 0.5) <= 0.05 + 1e-6
        np.testing.assert_array_equal(out_mask.numpy(), 1.0)


# ----------------------------------------------------------------------------- make_dataset


def test_eval_dataset_keeps_order_and_adds_channel() -> None:
    images, masks = asymmetric_batch(10)
    batches = epochs(make_dataset(images, masks, 4, training=False), n_epochs=1)[0]
    assert [x.shape for x, _ in batches] == [(4, SIDE, SIDE, 1), (4, SIDE, SIDE, 1), (2, SIDE, SIDE, 1)]
    assert all(x.dtype == np.float32 and y.dtype == np.float32 for x, y in batches)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches])[..., 0], images)
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches])[..., 0], masks)


def test_drop_remainder() -> None:
    images, masks = asymmetric_batch(10)
    batches = epochs(make_dataset(images[..., None], masks[..., None], 4, training=True, drop_remainder=True), 1)
    assert [x.shape[0] for x, _ in batches[0]] == [4, 4]


def test_training_shuffles_without_augmentation() -> None:
    images, masks = asymmetric_batch(12)
    seen = flat(epochs(make_dataset(images, masks, 5, training=True, augment=False, cache=False), 1))[..., 0]
    assert not np.array_equal(seen, images)
    np.testing.assert_array_equal(np.sort(seen.reshape(12, -1), axis=0), np.sort(images.reshape(12, -1), axis=0))


def test_same_seed_same_batches_for_two_epochs() -> None:
    images, masks = asymmetric_batch(12)
    first = epochs(make_dataset(images, masks, 5, training=True, seed=11))
    second = epochs(make_dataset(images, masks, 5, training=True, seed=11))
    for epoch_a, epoch_b in zip(first, second):
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_different_seeds_and_epochs_differ() -> None:
    images, masks = asymmetric_batch(12)
    seed_0 = epochs(make_dataset(images, masks, 12, training=True, seed=0))
    seed_1 = epochs(make_dataset(images, masks, 12, training=True, seed=1))
    assert not np.array_equal(flat(seed_0), flat(seed_1))
    assert not np.array_equal(seed_0[0][0][0], seed_0[1][0][0])  # a new epoch reshuffles and re-augments


def test_flips_change_between_epochs() -> None:
    images, masks = asymmetric_batch(1)
    dataset = make_dataset(images, masks, 1, training=True, seed=2)
    unflipped = left_is_brighter(flat(epochs(dataset, n_epochs=30)))
    assert 5 <= unflipped.sum() <= 25  # one image, so only per-epoch augmentation can vary it


def test_masks_stay_aligned_with_images_and_flips_happen() -> None:
    images, masks = asymmetric_batch(64)
    assert left_is_brighter(images[..., None]).all()
    batches = epochs(make_dataset(images, masks, 16, training=True, seed=5))
    for epoch in batches:
        for x, y in epoch:
            np.testing.assert_array_equal(x > 0.5, y > 0.5)
            assert set(np.unique(y).tolist()) <= {0.0, 1.0}
    unflipped = left_is_brighter(flat(batches))
    assert 0.3 < unflipped.mean() < 0.7


@pytest.mark.parametrize(
    ("images", "masks", "batch_size", "message"),
    [
        (np.zeros((4, 8, 8)), np.zeros((4, 8, 8)), 0, "batch_size"),
        (np.zeros((4, 8, 8)), np.zeros((4, 8, 8)), 2.5, "batch_size"),
        (np.zeros((4, 8, 8)), np.zeros((3, 8, 8)), 2, "differ in shape"),
        (np.zeros((4, 8, 8, 3)), np.zeros((4, 8, 8, 3)), 2, r"images must be \(N, S, S\)"),
        (np.zeros((4, 8)), np.zeros((4, 8)), 2, r"images must be"),
        (np.zeros((0, 8, 8)), np.zeros((0, 8, 8)), 2, "no images"),
    ],
)
def test_make_dataset_rejects_bad_input(images: np.ndarray, masks: np.ndarray, batch_size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_dataset(images, masks, batch_size, training=True)
