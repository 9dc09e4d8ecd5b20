"""Salt coverage, coverage classes and the split stratified by them."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.coverage import coverage_class, salt_coverage, stratified_split
from helpers.errors import DataError


def test_salt_coverage() -> None:
    masks = np.zeros((3, 10, 10), np.float32)
    masks[1, :5] = 1
    masks[2] = 1
    np.testing.assert_allclose(salt_coverage(masks), [0, 0.5, 1])
    np.testing.assert_allclose(salt_coverage(masks[..., None]), [0, 0.5, 1])
    with pytest.raises(ValueError, match="salt_coverage"):
        salt_coverage(np.zeros((10, 10)))


def test_coverage_class() -> None:
    coverage = np.array([0, 1 / 10201, 0.1, 0.1001, 0.3, 0.55, 0.99, 1])
    assert coverage_class(coverage).tolist() == [0, 1, 1, 2, 3, 6, 10, 10]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        coverage_class(np.array([0.5, 1.2]))


def split_coverage() -> np.ndarray:
    """Coverage with a big empty class, mid-sized classes, a pair and a singleton."""
    rng = np.random.default_rng(1)
    return np.concatenate([np.zeros(50), rng.uniform(0.01, 0.5, 60), [0.95, 0.97], [0.65]])


def test_stratified_split_partitions_and_covers_classes() -> None:
    coverage = split_coverage()
    train_idx, val_idx = stratified_split(coverage, val_fraction=0.2, seed=3)
    assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(val_idx) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(len(coverage)))
    classes = coverage_class(coverage)
    counts = np.bincount(classes)
    for label in np.flatnonzero(counts >= 2):
        assert label in classes[val_idx] and label in classes[train_idx]
    assert 7 in classes[train_idx] and 7 not in classes[val_idx]  # the singleton stays in training
    assert abs(len(val_idx) - 0.2 * len(coverage)) <= 5


def test_stratified_split_is_seeded() -> None:
    coverage = split_coverage()
    first, second = stratified_split(coverage, seed=5), stratified_split(coverage, seed=5)
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[1], stratified_split(coverage, seed=6)[1])


@pytest.mark.parametrize("val_fraction", [0, 1, -0.1, 1.5])
def test_stratified_split_rejects_bad_fraction(val_fraction: float) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(split_coverage(), val_fraction=val_fraction)


@pytest.mark.parametrize("coverage", [[], [0.0], [0.0, 0.5], [0.2, 0.5, 1.0]])
def test_stratified_split_of_too_few_images_names_n_images(coverage: list[float]) -> None:
    with pytest.raises(DataError, match=rf"cannot split {len(coverage)} labelled image\(s\) into training and "
                                        r"validation.*raise N_IMAGES"):
        stratified_split(np.array(coverage))
    with pytest.raises(DataError, match=r"image\(s\) from /data/salt into"):
        stratified_split(np.array(coverage), source="/data/salt")


def test_stratified_split_of_two_alike_images_gives_one_to_each_side() -> None:
    train_idx, val_idx = stratified_split(np.array([0.0, 0.0]))
    assert len(train_idx) == len(val_idx) == 1


def test_the_notebooks_import_these_from_helpers_data_too() -> None:
    from helpers import data

    assert (data.salt_coverage, data.coverage_class, data.stratified_split) == (
        salt_coverage, coverage_class, stratified_split)
