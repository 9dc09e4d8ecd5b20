"""Run-length encoding: hand-computed cases, round trips, bad strings, and every real train.csv row."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from helpers.rle import rle_decode, rle_encode


def test_encode_empty_mask_is_empty_string() -> None:
    assert rle_encode(np.zeros((101, 101), np.float32)) == ""


def test_encode_full_mask_is_one_run() -> None:
    assert rle_encode(np.ones((101, 101), np.float32)) == "1 10201"


def test_encode_is_column_major_and_one_based() -> None:
    # 3x3 mask; Fortran-order pixel numbers are
    #   1 4 7
    #   2 5 8
    #   3 6 9
    mask = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 1]], np.float32)
    assert rle_encode(mask) == "1 2 8 2"


def test_encode_run_wrapping_columns() -> None:
    mask = np.array([[0, 1], [1, 0]], np.float32)  # pixels 2 (row 1, col 0) and 3 (row 0, col 1)
    assert rle_encode(mask) == "2 2"


def test_encode_thresholds_at_half() -> None:
    assert rle_encode(np.array([[0.2, 0.7]])) == "2 1"


def test_encode_rejects_non_2d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        rle_encode(np.zeros((1, 3, 3)))


def test_decode_hand_computed() -> None:
    expected = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 1]], np.float32)
    decoded = rle_decode("1 2 8 2", shape=(3, 3))
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, expected)


def test_decode_empty_string_is_empty_mask() -> None:
    decoded = rle_decode("")
    assert decoded.shape == (101, 101) and not decoded.any()


def test_decode_accepts_touching_runs() -> None:
    np.testing.assert_array_equal(rle_decode("1 1 2 1", shape=(1, 3)), [[1, 1, 0]])


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ("1 2 5", "odd number"),
        ("1 x", "not a non-negative integer"),
        ("1.5 2", "not a non-negative integer"),
        ("-1 2", "not a non-negative integer"),
        ("0 2", "start below 1"),
        ("1 0", "length 0"),
        ("8 3", "outside the image"),
        ("10 1", "outside the image"),
        ("1 3 2 1", "overlap"),
        ("5 1 1 1", "overlap or are not in increasing order"),
    ],
)
def test_decode_rejects_malformed(rle: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rle_decode(rle, shape=(3, 3))


def test_decode_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        rle_decode(float("nan"))  # type: ignore[arg-type]


def test_decode_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        rle_decode("", shape=(0, 3))


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_round_trip_random_masks(mask: np.ndarray) -> None:
    decoded = rle_decode(rle_encode(mask), shape=mask.shape)
    np.testing.assert_array_equal(decoded, mask.astype(np.float32))


def test_every_real_mask_matches_train_csv(real_data_dir: Path) -> None:
    with open(real_data_dir / "train.csv", newline="") as handle:
        rows = {row["id"]: row["rle_mask"] for row in csv.DictReader(handle)}
    mask_files = sorted((real_data_dir / "train" / "masks").glob("*.png"))
    assert len(mask_files) == len(rows) > 0
    for path in mask_files:
        with Image.open(path) as image:
            mask = np.asarray(image) > 0
        expected = rows[path.stem]
        assert rle_encode(mask) == expected, path.name
        np.testing.assert_array_equal(rle_decode(expected), mask, err_msg=path.name)
