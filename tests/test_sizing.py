"""Native 101 <-> network size: padding is exactly undone by cropping, resizing keeps shapes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import NATIVE_SIZE
from helpers.sizing import Sizing, crop_to, pad_to, resize_to


def random_batch(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_pad_to_splits_extra_rows_before_and_after() -> None:
    batch = np.ones((1, 3, 3), np.float32)
    padded = pad_to(batch, 6, mode="constant")
    assert padded.shape == (1, 6, 6)
    # extra 3: 1 row/column before, 2 after
    assert padded[0, 1:4, 1:4].all() and padded.sum() == 9
    assert not padded[0, 0].any() and not padded[0, 4:].any()


def test_pad_to_reflects_by_default() -> None:
    row = np.array([[[1, 2, 3]]], np.float32).repeat(3, axis=1)
    padded = pad_to(row, 5)
    np.testing.assert_array_equal(padded[0, 2], [2, 1, 2, 3, 2])


def test_pad_to_128_offsets() -> None:
    padded = pad_to(np.zeros((2, NATIVE_SIZE, NATIVE_SIZE, 1), np.float32), 128, mode="constant")
    assert padded.shape == (2, 128, 128, 1)
    marker = np.zeros((1, NATIVE_SIZE, NATIVE_SIZE), np.float32)
    marker[0, 0, 0] = 1
    assert np.argwhere(pad_to(marker, 128))[0].tolist() == [0, 13, 13]  # before = (128 - 101) // 2


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    extra=st.integers(0, 30),
    channels=st.sampled_from([None, 1, 3]),
    mode=st.sampled_from(["reflect", "constant", "edge", "symmetric"]),
)
def test_crop_undoes_pad(n: int, height: int, width: int, extra: int, channels: int | None, mode: str) -> None:
    shape = (n, height, width) + (() if channels is None else (channels,))
    batch = random_batch(shape, seed=extra)
    size = max(height, width) + extra
    padded = pad_to(batch, size, mode=mode)
    assert padded.shape[1:3] == (size, size)
    # Cropping a non-square batch back needs the original sides; the square case is what the course uses.
    top, left = (size - height) // 2, (size - width) // 2
    np.testing.assert_array_equal(padded[:, top : top + height, left : left + width], batch)
    if height == width:
        np.testing.assert_array_equal(crop_to(padded, height), batch)


def test_pad_and_crop_errors() -> None:
    with pytest.raises(ValueError, match="smaller"):
        pad_to(np.zeros((1, 10, 10)), 8)
    with pytest.raises(ValueError, match="larger"):
        crop_to(np.zeros((1, 10, 10)), 12)
    with pytest.raises(ValueError, match=r"pad_to needs a batch of shape"):
        pad_to(np.zeros((10, 10)), 16)
    with pytest.raises(ValueError, match=r"crop_to needs a batch of shape"):
        crop_to(np.zeros((1, 1, 10, 10, 1)), 5)


@pytest.mark.parametrize("size", [32, 96, 128, 256])
@pytest.mark.parametrize("channels", [(), (1,)])
def test_resize_to_shapes(size: int, channels: tuple[int, ...]) -> None:
    batch = random_batch((3, NATIVE_SIZE, NATIVE_SIZE) + channels)
    resized = resize_to(batch, size)
    assert resized.shape == (3, size, size) + channels and resized.dtype == np.float32
    assert 0 <= resized.min() and resized.max() <= 1


def test_resize_to_treats_images_independently() -> None:
    batch = random_batch((3, NATIVE_SIZE, NATIVE_SIZE))
    together = resize_to(batch, 128)
    alone = np.concatenate([resize_to(batch[i : i + 1], 128) for i in range(3)])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_resize_keeps_constant_images_and_masks_threshold_back() -> None:
    np.testing.assert_allclose(resize_to(np.full((1, 101, 101), 0.3, np.float32), 64), 0.3, atol=1e-6)
    mask = np.zeros((1, NATIVE_SIZE, NATIVE_SIZE), np.float32)
    mask[0, 20:80, 30:70] = 1
    back = resize_to(resize_to(mask, 128) > 0.5, NATIVE_SIZE) > 0.5
    assert np.mean(back != mask) < 0.01


def test_resize_to_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        resize_to(np.zeros((1, 4, 4)), 0)


@pytest.mark.parametrize("channels", [(), (1,)])
def test_sizing_pad_round_trip(channels: tuple[int, ...]) -> None:
    sizing = Sizing("pad", 128)
    batch = random_batch((2, NATIVE_SIZE, NATIVE_SIZE) + channels)
    network = sizing.to_network(batch)
    assert network.shape == (2, 128, 128) + channels
    np.testing.assert_array_equal(sizing.to_native(network), batch)


def test_sizing_resize_round_trip_shapes() -> None:
    sizing = Sizing("resize", 96)
    batch = random_batch((2, NATIVE_SIZE, NATIVE_SIZE, 1))
    network = sizing.to_network(batch)
    assert network.shape == (2, 96, 96, 1)
    native = sizing.to_native(network)
    assert native.shape == batch.shape and native.dtype == np.float32


def test_sizing_defaults_and_frozen() -> None:
    sizing = Sizing()
    assert (sizing.mode, sizing.size, sizing.native) == ("pad", 128, NATIVE_SIZE)
    with pytest.raises(AttributeError):
        sizing.size = 64  # type: ignore[misc]


@pytest.mark.parametrize(
    ("mode", "size", "message"),
    [
        ("pad", 100, r"IMG_SIZE \(Sizing size\) = 100 .* multiple of 16.*nearest valid: 112$"),
        ("pad", 96, r"at least 101 to pad to; nearest valid: 112$"),
        ("resize", 100, r"nearest valid: 96 or 112$"),
        ("resize", 120, r"nearest valid: 112 or 128$"),
        ("resize", 0, r"nearest valid: 16$"),
        ("resize", 8, r"nearest valid: 16$"),
        ("resize", 12.0, r"must be an integer"),
        ("crop", 128, r"mode must be one of"),
    ],
)
def test_sizing_rejects_bad_settings(mode: str, size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sizing(mode, size)


def test_sizing_accepts_valid_sizes() -> None:
    assert Sizing("pad", 112).size == 112
    assert Sizing("resize", 64).size == 64


def test_sizing_rejects_wrong_batch_shape() -> None:
    sizing = Sizing("pad", 128)
    with pytest.raises(ValueError, match=r"to_network needs a batch of shape \(N, 101, 101"):
        sizing.to_network(np.zeros((1, 128, 128)))
    with pytest.raises(ValueError, match=r"to_native needs a batch of shape \(N, 128, 128"):
        sizing.to_native(np.zeros((1, 101, 101)))
