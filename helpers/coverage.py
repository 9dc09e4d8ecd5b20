"""Salt coverage of masks, its classes, and the train/validation split stratified by them.

Coverage is the fraction of a mask's pixels that are salt; its class, ceil(10 * coverage), puts
sections with no salt in class 0 and the others in tenths. Splitting within each class keeps the
validation set's mix of empty, small and large salt bodies like the training set's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.errors import DataError


def salt_coverage(masks: np.ndarray) -> np.ndarray:
    """Fraction of salt pixels in each mask of a (N, H, W) or (N, H, W, 1) batch, as float32 (N,)."""
    masks = np.asarray(masks)
    if masks.ndim not in (3, 4):
        raise ValueError(f"salt_coverage needs masks of shape (N, H, W) or (N, H, W, 1), got {masks.shape}")
    return (masks > 0.5).reshape(len(masks), -1).mean(axis=1).astype(np.float32)


def coverage_class(coverage: np.ndarray) -> np.ndarray:
    """Coverage bucket ceil(10 * coverage): 0 for no salt, 1..10 for tenths of the image."""
    coverage = np.asarray(coverage, dtype=np.float64)
    if np.any(~np.isfinite(coverage)) or np.any((coverage < 0) | (coverage > 1)):
        raise ValueError("coverage_class needs coverage values in [0, 1]")
    # Rounding first keeps exact tenths (0.3 * 10 = 3.0000000000000004) in their own class.
    return np.ceil(np.round(coverage * 10, 9)).astype(np.int64)


def stratified_split(
    coverage: np.ndarray, val_fraction: float = 0.1, seed: int = 0, source: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation index split with every coverage class represented in both parts.

    A class needs two images to give one to each part, so a set in which no class has two (one or two
    images, say) cannot be split: that is a DataError naming N_IMAGES and, when given, the source folder.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    classes = coverage_class(np.asarray(coverage).reshape(-1))
    rng = np.random.default_rng(seed)
    val_parts = []
    for label in np.unique(classes):
        members = rng.permutation(np.flatnonzero(classes == label))
        # A class with >= 2 members gives at least one to validation and keeps at least one for training.
        n_val = min(max(round(len(members) * val_fraction), 1), len(members) - 1)
        val_parts.append(members[:n_val])
    if not any(len(part) for part in val_parts):
        where = f" from {source}" if source is not None else ""
        raise DataError(
            f"cannot split {len(classes)} labelled image(s){where} into training and validation: the validation set "
            "needs a coverage class with at least two images (one for each side) and none has; use more images "
            "(raise N_IMAGES, 0 loads them all) or a data folder with more labelled sections"
        )
    val_idx = np.sort(np.concatenate(val_parts))
    train_idx = np.setdiff1d(np.arange(len(classes)), val_idx)
    return train_idx.astype(np.int64), val_idx.astype(np.int64)
