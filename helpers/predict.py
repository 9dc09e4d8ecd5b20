"""Predicting salt at the native 101x101, flip test-time augmentation, and the submission CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from helpers import NATIVE_SIZE
from helpers.competition_csv import read_rle_rows
from helpers.errors import DataError
from helpers.files import replaced_atomically
from helpers.rle import rle_decode, rle_encode
from helpers.sizing import Sizing


def predict_network(model: Any, batch: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Probabilities (N, S, S) for a batch already at the network's size."""
    probabilities = model.predict(batch[..., None].astype(np.float32), batch_size=batch_size, verbose=0)
    return np.asarray(probabilities, dtype=np.float32)[..., 0]


def predict_probabilities(model: Any, images: np.ndarray, sizing: Sizing, batch_size: int = 32,
                          tta: bool = False) -> np.ndarray:
    """Salt probabilities (N, 101, 101) for native images; tta averages with the horizontally flipped view."""
    if images.ndim != 3 or images.shape[1:] != (NATIVE_SIZE, NATIVE_SIZE):
        raise ValueError(f"images must have shape (N, {NATIVE_SIZE}, {NATIVE_SIZE}), got {images.shape}")
    probabilities = sizing.to_native(predict_network(model, sizing.to_network(images), batch_size))
    if tta:
        # Flip at the native size: padding 101 to an even side is asymmetric, so flipping the padded
        # input would shift the mirrored prediction by a pixel.
        mirrored = sizing.to_native(predict_network(model, sizing.to_network(images[:, :, ::-1]), batch_size))
        probabilities = (probabilities + mirrored[:, :, ::-1]) / 2
    return np.clip(probabilities, 0.0, 1.0).astype(np.float32)


def threshold_masks(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Binary masks (float32 0/1) from probabilities."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"THRESHOLD must lie strictly between 0 and 1, got {threshold}")
    return (probabilities > threshold).astype(np.float32)


def available_path(path: str | Path) -> Path:
    """path itself if it is free, else the first free 'name-2.ext', 'name-3.ext', ... beside it."""
    path = Path(path)
    candidate, number = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        number += 1
    return candidate


def write_submission(ids: list[str], masks: np.ndarray, path: str | Path) -> Path:
    """Write a competition submission (id,rle_mask; one row per image); refuses to overwrite a file."""
    path = Path(path)
    if len(ids) != len(masks):
        raise ValueError(f"{len(ids)} ids but {len(masks)} masks")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")
    if path.exists():
        raise FileExistsError(f"{path} exists; choose another SUBMISSION_CSV (submissions are never overwritten)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "rle_mask"])
        for image_id, mask in zip(ids, masks):
            writer.writerow([image_id, rle_encode(mask)])
    return path


def read_submission(path: str | Path, shape: tuple[int, int] = (NATIVE_SIZE, NATIVE_SIZE)) -> dict[str, np.ndarray]:
    """Decode a submission CSV back into masks by id (read as train.csv is; DataError naming the line)."""
    masks = {}
    for line_number, id_, rle in read_rle_rows(path):
        try:
            masks[id_] = rle_decode(rle, shape)
        except ValueError as error:
            raise DataError(f"{path}, line {line_number}: rle_mask of id {id_!r} is malformed: {error}") from None
    return masks
