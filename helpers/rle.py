"""Run-length encoding of salt masks in the TGS competition's convention.

The competition numbers pixels column by column (Fortran order: down the first column, then the
second, ...), starting at 1, and writes ``"start length start length ..."``; an empty string means
no salt at all.
"""

from __future__ import annotations

import numpy as np

from helpers import NATIVE_SIZE


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (pixels > 0.5 are salt) as a competition run-length string."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode needs a 2-D mask (H, W), got shape {mask.shape}")
    # Zero padding on both ends makes every run start and end with a detectable change.
    pixels = np.concatenate([[False], mask.flatten(order="F") > 0.5, [False]])
    changes = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
    changes[1::2] -= changes[::2]
    return " ".join(map(str, changes.tolist()))


def rle_decode(rle: str, shape: tuple[int, int] = (NATIVE_SIZE, NATIVE_SIZE)) -> np.ndarray:
    """Decode a competition run-length string into a float32 mask in {0, 1} of the given shape."""
    height, width = _check_shape(shape)
    starts, lengths = _parse_runs(rle, height * width)
    flat = np.zeros(height * width + 1, dtype=np.int32)
    np.add.at(flat, starts - 1, 1)
    np.add.at(flat, starts - 1 + lengths, -1)
    return (np.cumsum(flat[:-1]) > 0).astype(np.float32).reshape((height, width), order="F")


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """Validate a (height, width) pair of positive integers."""
    if len(shape) != 2 or not all(isinstance(side, (int, np.integer)) and side > 0 for side in shape):
        raise ValueError(f"rle_decode shape must be two positive integers (H, W), got {shape!r}")
    return int(shape[0]), int(shape[1])


def _parse_runs(rle: str, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a run-length string into start and length arrays, rejecting malformed runs."""
    if not isinstance(rle, str):
        raise ValueError(f"run-length mask must be a string, got {type(rle).__name__}: {rle!r}")
    tokens = rle.split()
    if len(tokens) % 2:
        raise ValueError(f"run-length mask has an odd number of numbers ({len(tokens)}); expected start/length pairs")
    bad = [token for token in tokens if not (token.isascii() and token.isdigit())]
    if bad:
        raise ValueError(f"run-length mask has a token that is not a non-negative integer: {bad[0]!r}")
    runs = np.array(tokens, dtype=np.int64).reshape(-1, 2)
    starts, lengths = runs[:, 0], runs[:, 1]
    _check_runs(starts, lengths, n_pixels)
    return starts, lengths


def _check_runs(starts: np.ndarray, lengths: np.ndarray, n_pixels: int) -> None:
    """Reject runs that are empty, fall outside the image, or overlap or go backwards."""
    if np.any(starts < 1):
        raise ValueError(f"run-length mask has a start below 1 (starts are 1-based): {int(starts.min())}")
    if np.any(lengths < 1):
        raise ValueError(f"run-length mask has a run of length {int(lengths.min())}; lengths must be >= 1")
    ends = starts + lengths - 1
    if np.any(ends > n_pixels):
        worst = int(np.argmax(ends))
        raise ValueError(
            f"run-length mask has a run ({int(starts[worst])} {int(lengths[worst])}) ending at pixel "
            f"{int(ends[worst])}, outside the image of {n_pixels} pixels"
        )
    if np.any(starts[1:] <= ends[:-1]):
        raise ValueError("run-length mask has runs that overlap or are not in increasing order")
