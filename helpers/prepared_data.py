"""The data a training run uses: loaded, split by salt coverage and sized for the network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from helpers.config import TrainConfig
from helpers.coverage import salt_coverage, stratified_split
from helpers.data import SaltDataset, load_train, resolve_data_dir
from helpers.sizing import Sizing


@dataclass(frozen=True)
class PreparedData:
    """A data set split into training and validation sections, with the network's inputs and targets.

    x_* and y_* are (N, IMG_SIZE, IMG_SIZE, 1) float32; val_masks_native are the validation masks at 101x101,
    which the competition score is computed on.
    """

    data_dir: Path
    dataset: SaltDataset
    train_idx: np.ndarray
    val_idx: np.ndarray
    sizing: Sizing
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def val_masks_native(self) -> np.ndarray:
        """The validation masks at their native 101x101."""
        return self.dataset.masks[self.val_idx]

    @property
    def val_images_native(self) -> np.ndarray:
        """The validation sections at their native 101x101."""
        return self.dataset.images[self.val_idx]

    def split(self) -> dict[str, Any]:
        """The split as a run records it (split.json): the data folder and the ids on each side."""
        ids = self.dataset.ids
        return {"data_dir": str(Path(self.data_dir).resolve()), "train_ids": [ids[i] for i in self.train_idx],
                "val_ids": [ids[i] for i in self.val_idx]}


def prepare_data(config: TrainConfig, progress: bool = True) -> PreparedData:
    """Load the labelled images, split them by coverage and size them for the network."""
    data_dir = resolve_data_dir(config.data_dir)
    dataset = load_train(data_dir, n_images=config.n_images, progress=progress)
    train_idx, val_idx = stratified_split(salt_coverage(dataset.masks), config.val_fraction, config.split_seed_used,
                                          source=data_dir)
    sizing = Sizing(mode=config.sizing, size=config.img_size)

    def to_network(array: np.ndarray, is_mask: bool) -> np.ndarray:
        sized = sizing.to_network(array)
        if is_mask and config.sizing == "resize":
            sized = (sized > 0.5).astype(np.float32)  # resizing blurs a mask's edge; the target stays binary
        return sized[..., None].astype(np.float32)

    return PreparedData(
        data_dir=data_dir, dataset=dataset, train_idx=train_idx, val_idx=val_idx, sizing=sizing,
        x_train=to_network(dataset.images[train_idx], False), y_train=to_network(dataset.masks[train_idx], True),
        x_val=to_network(dataset.images[val_idx], False), y_val=to_network(dataset.masks[val_idx], True),
    )
