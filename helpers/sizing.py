"""Going between the native 101x101 TGS size and the network's input size, and back.

A U-Net with four 2x poolings needs a side divisible by 16, and 101 is not. Two ways out:

- ``pad``: mirror the borders out to e.g. 128 and crop the prediction back (pixels stay untouched);
- ``resize``: interpolate to any multiple of 16 and interpolate the prediction back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.transform import resize

from helpers import NATIVE_SIZE
from helpers.config import is_count, is_int

MODES = ("pad", "resize")
DIVISOR = 16  # 2 ** number of poolings in the course's U-Net


def pad_to(batch: np.ndarray, size: int, mode: str = "reflect") -> np.ndarray:
    """Pad a (N, H, W[, C]) batch to (N, size, size[, C]); the extra is split (size - H) // 2 before."""
    batch = _check_batch(batch, "pad_to")
    height, width = batch.shape[1:3]
    if size < height or size < width:
        raise ValueError(f"pad_to size {size} is smaller than the batch's {height}x{width}; use crop_to")
    widths = [(0, 0), _split(size - height), _split(size - width)] + [(0, 0)] * (batch.ndim - 3)
    return np.pad(batch, widths, mode=mode)


def crop_to(batch: np.ndarray, size: int = NATIVE_SIZE) -> np.ndarray:
    """Cut the centre size x size out of a (N, H, W[, C]) batch: the exact inverse of pad_to."""
    batch = _check_batch(batch, "crop_to")
    height, width = batch.shape[1:3]
    if size > height or size > width:
        raise ValueError(f"crop_to size {size} is larger than the batch's {height}x{width}; use pad_to")
    top, left = (height - size) // 2, (width - size) // 2
    return batch[:, top : top + size, left : left + size]


def resize_to(batch: np.ndarray, size: int, order: int = 1) -> np.ndarray:
    """Interpolate a (N, H, W[, C]) batch to (N, size, size[, C]) float32; threshold masks afterwards."""
    batch = _check_batch(batch, "resize_to").astype(np.float32, copy=False)  # bool masks -> 0/1
    if size < 1:
        raise ValueError(f"resize_to size must be positive, got {size}")
    shrinking = size < min(batch.shape[1:3])
    # One call for the whole batch: the batch and channel axes keep their length, so they are not mixed.
    out_shape = (batch.shape[0], size, size) + batch.shape[3:]
    resized = resize(batch, out_shape, order=order, anti_aliasing=shrinking, preserve_range=True)
    return resized.astype(np.float32)


@dataclass(frozen=True)
class Sizing:
    """How batches go from native size to the network's input size (to_network) and back (to_native)."""

    mode: str = "pad"
    size: int = 128
    native: int = NATIVE_SIZE

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Sizing mode must be one of {MODES}, got {self.mode!r}")
        if not is_count(self.native, 1):
            raise ValueError(f"Sizing native must be a positive integer, got {self.native!r}")
        if not is_int(self.size):
            raise ValueError(f"IMG_SIZE (Sizing size) must be an integer, got {self.size!r}")
        minimum = self.native if self.mode == "pad" else DIVISOR
        if self.size % DIVISOR or self.size < minimum:
            nearest = " or ".join(str(s) for s in _nearest_valid(self.size, minimum))
            raise ValueError(
                f"IMG_SIZE (Sizing size) = {self.size} does not work with mode {self.mode!r}: it must be a "
                f"multiple of {DIVISOR} (the U-Net halves it four times)"
                + (f" and at least {self.native} to pad to" if self.mode == "pad" else "")
                + f"; nearest valid: {nearest}"
            )

    def to_network(self, batch: np.ndarray) -> np.ndarray:
        """Native (N, 101, 101[, C]) batch -> network (N, size, size[, C])."""
        self._check_side(batch, self.native, "to_network")
        return pad_to(batch, self.size) if self.mode == "pad" else resize_to(batch, self.size)

    def to_native(self, batch: np.ndarray) -> np.ndarray:
        """Network-size batch (e.g. predicted probabilities) -> native (N, 101, 101[, C])."""
        self._check_side(batch, self.size, "to_native")
        return crop_to(batch, self.native) if self.mode == "pad" else resize_to(batch, self.native)

    @staticmethod
    def _check_side(batch: np.ndarray, side: int, method: str) -> None:
        """Require a square (N, side, side[, C]) batch."""
        shape = np.shape(batch)
        if len(shape) not in (3, 4) or shape[1:3] != (side, side):
            raise ValueError(f"Sizing.{method} needs a batch of shape (N, {side}, {side}[, C]), got {shape}")


def _check_batch(batch: np.ndarray, caller: str) -> np.ndarray:
    """A (N, H, W) or (N, H, W, C) array, else a ValueError naming the caller."""
    batch = np.asarray(batch)
    if batch.ndim not in (3, 4):
        raise ValueError(f"{caller} needs a batch of shape (N, H, W) or (N, H, W, C), got {batch.shape}")
    return batch


def _split(extra: int) -> tuple[int, int]:
    """Padding before and after: before gets the smaller half."""
    return extra // 2, extra - extra // 2


def _nearest_valid(size: int, minimum: int) -> list[int]:
    """The valid sizes (multiples of DIVISOR, at least minimum) just below and above size."""
    smallest = -(-minimum // DIVISOR) * DIVISOR
    below = size // DIVISOR * DIVISOR
    candidates = [s for s in (below, below + DIVISOR) if s >= smallest and s != size]
    return candidates or [smallest]
