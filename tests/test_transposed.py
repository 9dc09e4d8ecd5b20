"""The NumPy convolution / transposed convolution equal Keras' layers, by hand and on random cases."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers.transposed import (
    checkerboard_strength,
    conv2d,
    conv_matrix,
    conv_output_size,
    conv_transpose2d,
    conv_transpose_output_size,
    keras_conv2d,
    keras_conv2d_input_gradient,
    keras_conv_transpose2d,
    overlap_counts,
    overlap_is_even,
    same_padding_amounts,
)

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
RANDOM_CASES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def transpose_cases(draw: st.DrawFn) -> dict:
    """A random transposed-convolution configuration that Keras accepts, with float32 data."""
    stride = draw(st.integers(1, 3))
    kernel_size = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = draw(st.sampled_from(["valid", "same"]))
    output_padding = draw(st.one_of(st.none(), st.integers(0, stride - 1)))
    if output_padding is not None and padding == "same":
        assume(all(1 <= k % 2 + output_padding <= stride for k in kernel_size))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 3)))
    out_channels = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return {
        "x": rng.normal(size=shape).astype(np.float32),
        "kernel": rng.normal(size=(*kernel_size, out_channels, shape[3])).astype(np.float32),
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
    }


# ----------------------------------------------------------------------------- hand cases


def test_conv2d_of_a_4x4_ramp_with_a_ones_kernel_sums_each_3x3_window() -> None:
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(conv2d(x, np.ones((3, 3))), [[45, 54], [81, 90]])


def test_conv2d_is_cross_correlation_not_flipped() -> None:
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    kernel = np.zeros((3, 3))
    kernel[0, 0] = 1  # a flipped (true) convolution would pick x[2:, 2:] instead
    np.testing.assert_array_equal(conv2d(x, kernel), x[:2, :2])


def test_conv2d_same_with_stride_two_pads_the_extra_zero_after() -> None:
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 4)
    # length 4, kernel 4, stride 2: 2 outputs, 2 padding zeros, one each side: [0 1 2 3 | 4 0]
    np.testing.assert_array_equal(conv2d(x, np.ones((1, 4)), stride=2, padding="same"), [[6, 9]])
    # kernel 3: one zero needed, it goes after: windows [1 2 3] and [3 4 0]
    np.testing.assert_array_equal(conv2d(x, np.ones((1, 3)), stride=2, padding="same"), [[6, 7]])


def test_conv_transpose2d_matches_the_worked_example_of_d2l() -> None:
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    kernel = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(conv_transpose2d(x, kernel), [[0, 0, 1], [0, 4, 6], [4, 12, 9]])


def test_conv_transpose2d_with_a_2x2_ones_kernel_and_stride_2_repeats_each_pixel() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = np.kron(x, np.ones((2, 2)))
    np.testing.assert_array_equal(conv_transpose2d(x, np.ones((2, 2)), stride=2), expected)


def test_conv_transpose2d_same_crops_the_extra_row_at_the_end() -> None:
    one = np.ones((1, 1))
    # along the columns, kernel 4, stride 2: the scatter [1 2 3 4] is cropped to 2 values, one from each side
    np.testing.assert_array_equal(conv_transpose2d(one, np.array([[1.0, 2, 3, 4]]), (1, 2), "same"), [[2, 3]])
    # kernel 3, stride 2: one value too many, and it is cut from the end
    np.testing.assert_array_equal(conv_transpose2d(one, np.array([[1.0, 2, 3]]), (1, 2), "same"), [[1, 2]])


def test_conv_transpose2d_valid_with_kernel_smaller_than_stride_pads_zeros_after() -> None:
    x = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(conv_transpose2d(x, np.array([[5.0]]), stride=(1, 3)), [[5, 0, 0, 10, 0, 0]])


def test_output_padding_adds_rows_at_the_end() -> None:
    x = np.ones((2, 2))
    out = conv_transpose2d(x, np.ones((3, 3)), stride=2, output_padding=1)
    assert out.shape == (6, 6)
    np.testing.assert_array_equal(out[-1], 0)
    np.testing.assert_array_equal(out[:5, :5], conv_transpose2d(x, np.ones((3, 3)), stride=2))


def test_rectangular_strides_and_output_padding_are_accepted_as_pairs() -> None:
    x = np.random.default_rng(0).normal(size=(1, 3, 2, 2)).astype(np.float32)
    kernel = np.random.default_rng(1).normal(size=(3, 2, 1, 2)).astype(np.float32)
    args = ((2, 3), "valid", (1, 0))
    expected = keras_conv_transpose2d(x, kernel, *args)
    np.testing.assert_allclose(conv_transpose2d(x, kernel, *args), expected, **TOLERANCE)


def test_shapes_and_dtypes_follow_the_input() -> None:
    kernel = np.ones((3, 3, 2, 4), dtype=np.float32)
    assert conv2d(np.ones((5, 5, 2), dtype=np.float32), kernel).shape == (3, 3, 4)
    assert conv2d(np.ones((5, 5, 2), dtype=np.float32), kernel).dtype == np.float32
    assert conv2d(np.ones((5, 5), dtype=np.float64), np.ones((3, 3))).dtype == np.float64
    assert conv_transpose2d(np.ones((2, 3, 3, 4)), kernel, 2).shape == (2, 7, 7, 2)
    assert conv_transpose2d(np.ones((3, 3), dtype=np.int64), np.ones((2, 2), dtype=np.int64)).dtype == np.float64


# ----------------------------------------------------------------------------- output sizes


def test_output_size_formulas_on_known_rows() -> None:
    assert conv_output_size(4, 3) == 2
    assert conv_output_size(5, 3, 2) == conv_output_size(6, 3, 2) == 2
    assert conv_output_size(5, 3, 2, "same") == 3
    assert conv_transpose_output_size(2, 3, 2) == 5
    assert conv_transpose_output_size(2, 3, 2, output_padding=1) == 6
    assert conv_transpose_output_size(8, 3, 2, "same") == 16
    assert conv_transpose_output_size(4, 1, 3) == 12  # kernel smaller than stride: n * s
    assert same_padding_amounts(4, 3, 2) == (0, 1)
    assert same_padding_amounts(4, 4, 2) == (1, 1)
    assert same_padding_amounts(5, 5, 1) == (2, 2)


def test_output_size_formulas_match_keras_layer_shapes() -> None:
    import keras

    for n, k, s, padding in itertools.product(range(1, 6), range(1, 6), range(1, 4), ["valid", "same"]):
        if padding == "same" or n >= k:
            layer = keras.layers.Conv2D(1, k, strides=s, padding=padding)
            assert layer.compute_output_shape((1, n, n, 1))[1] == conv_output_size(n, k, s, padding)
        for output_padding in [None, *range(s)]:
            try:
                ours = conv_transpose_output_size(n, k, s, padding, output_padding)
            except ValueError:
                continue  # rejected combinations: see the next test
            layer = keras.layers.Conv2DTranspose(1, k, strides=s, padding=padding, output_padding=output_padding)
            assert layer.compute_output_shape((1, n, n, 1))[1] == ours, (n, k, s, padding, output_padding)


def test_output_paddings_we_reject_are_rejected_by_keras_too() -> None:
    import keras

    rejected = 0
    for k, s in itertools.product(range(1, 6), range(1, 4)):
        for output_padding in range(s):
            try:
                conv_transpose_output_size(3, k, s, "same", output_padding)
            except ValueError:
                rejected += 1
                layer = keras.layers.Conv2DTranspose(1, k, strides=s, padding="same", output_padding=output_padding)
                with pytest.raises(Exception):  # TensorFlow's own error, whatever its class
                    layer(np.zeros((1, 3, 3, 1), dtype=np.float32))
    assert rejected > 0


# ----------------------------------------------------------------------------- random cases against Keras


@RANDOM_CASES
@given(case=transpose_cases())
def test_conv_transpose2d_equals_keras_conv2d_transpose(case: dict) -> None:
    expected = keras_conv_transpose2d(**case)
    np.testing.assert_allclose(conv_transpose2d(**case), expected, **TOLERANCE)


@RANDOM_CASES
@given(case=transpose_cases())
def test_conv_transpose2d_equals_the_input_gradient_of_keras_conv2d(case: dict) -> None:
    expected = keras_conv2d_input_gradient(**case)
    np.testing.assert_allclose(conv_transpose2d(**case), expected, **TOLERANCE)


@RANDOM_CASES
@given(case=transpose_cases())
def test_conv_transpose2d_is_the_transpose_of_the_convolution_matrix(case: dict) -> None:
    x, kernel = case["x"][0, :, :, 0], case["kernel"][:, :, 0, 0]
    upsampled = conv_transpose2d(x, kernel, case["stride"], case["padding"], case["output_padding"])
    matrix = conv_matrix(upsampled.shape, kernel, case["stride"], case["padding"])
    np.testing.assert_allclose(matrix.T @ x.ravel(), upsampled.ravel(), **TOLERANCE)
    convolved = conv2d(upsampled, kernel, case["stride"], case["padding"])
    np.testing.assert_allclose(matrix @ upsampled.ravel(), convolved.ravel(), **TOLERANCE)


@RANDOM_CASES
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7), st.integers(1, 3)),
    kernel_size=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    out_channels=st.integers(1, 3),
    stride=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_equals_keras_conv2d(
    shape: tuple[int, int, int, int],
    kernel_size: tuple[int, int],
    out_channels: int,
    stride: int,
    padding: str,
    seed: int,
) -> None:
    if padding == "valid":
        assume(shape[1] >= kernel_size[0] and shape[2] >= kernel_size[1])
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float32)
    kernel = rng.normal(size=(*kernel_size, shape[3], out_channels)).astype(np.float32)
    expected = keras_conv2d(x, kernel, stride, padding)
    np.testing.assert_allclose(conv2d(x, kernel, stride, padding), expected, **TOLERANCE)


def test_keras_wrappers_keep_the_input_layout() -> None:
    x = np.arange(9, dtype=np.float32).reshape(3, 3)
    kernel = np.arange(4, dtype=np.float32).reshape(2, 2)
    np.testing.assert_allclose(keras_conv2d(x, kernel), conv2d(x, kernel), **TOLERANCE)
    np.testing.assert_allclose(keras_conv_transpose2d(x, kernel, 2), conv_transpose2d(x, kernel, 2), **TOLERANCE)
    image = np.ones((3, 3, 2), dtype=np.float32)
    kernel4 = np.ones((2, 2, 1, 2), dtype=np.float32)
    assert keras_conv2d_input_gradient(image, kernel4, 2, "same").shape == (6, 6, 1)


# A 1 x 1 kernel with stride 3 and "valid": the Conv2D goes from Conv2DTranspose's 15 x 15 output back to 5 x 5, and
# rows/columns 13-14 lie past its last window. TensorFlow 2.21's oneDNN kernel for the *kernel's* gradient of that
# Conv2D corrupts the heap (issue 18), so the helper must never run it: oneDNN's log must show no backward_weights.
ONEDNN_PROBE = """
import numpy as np
import helpers
from helpers.transposed import conv_transpose2d, keras_conv2d_input_gradient
x, kernel = np.ones((1, 5, 5, 1), np.float32), np.ones((1, 1, 1, 1), np.float32)
for _ in range(3):
    assert np.allclose(keras_conv2d_input_gradient(x, kernel, 3), conv_transpose2d(x, kernel, 3))
print("probe done")
"""


@pytest.mark.slow
def test_input_gradient_never_runs_the_kernel_gradient_that_corrupts_the_heap() -> None:
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", ONEDNN_PROBE], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "probe done" in result.stdout
    executed = [line for line in result.stdout.splitlines() if ",primitive,exec," in line]
    assert any(",backward_data," in line for line in executed), "oneDNN's log is empty: is oneDNN on?"
    assert not any(",backward_weights," in line for line in executed)


# ----------------------------------------------------------------------------- matrix view, overlaps, checkerboards


def test_conv_matrix_of_a_4x4_input_and_3x3_kernel_is_4_by_16() -> None:
    kernel = np.arange(1, 10, dtype=np.float64).reshape(3, 3)
    matrix = conv_matrix((4, 4), kernel)
    assert matrix.shape == (4, 16)
    # The first row is the kernel laid over the top-left corner of the flattened 4x4 input.
    np.testing.assert_array_equal(matrix[0].reshape(4, 4), np.pad(kernel, ((0, 1), (0, 1))))
    x = np.random.default_rng(0).normal(size=(4, 4))
    np.testing.assert_allclose(matrix @ x.ravel(), conv2d(x, kernel).ravel())


def test_overlap_counts_for_kernel_3_stride_2_alternate_one_and_two() -> None:
    counts_1d = np.array([1, 1, 2, 1, 1])
    np.testing.assert_array_equal(overlap_counts(2, 3, 2), np.outer(counts_1d, counts_1d))
    assert overlap_counts(4, 3, 2, padding="same").shape == (8, 8)


@pytest.mark.parametrize(("k", "s"), list(itertools.product(range(1, 7), range(1, 4))))
def test_overlap_is_even_exactly_when_the_stride_divides_the_kernel(k: int, s: int) -> None:
    assert overlap_is_even(k, s) == (k % s == 0)


def test_checkerboard_strength_measures_the_period_two_pattern() -> None:
    rows, cols = np.mgrid[0:8, 0:8]
    assert checkerboard_strength(np.full((8, 8), 3.0)) == 0.0
    assert checkerboard_strength((-1.0) ** (rows + cols)) == pytest.approx(2.0)
    assert checkerboard_strength(np.where(rows % 2 == 0, 1.0, 0.0)) == pytest.approx(1.0)
    assert checkerboard_strength(np.zeros((3, 8, 8, 1))) == 0.0
    batch = np.stack([(-1.0) ** (rows + cols), -((-1.0) ** (rows + cols))])
    assert checkerboard_strength(batch) == pytest.approx(0.0)  # opposite patterns cancel in the mean


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: conv2d(np.ones((4, 4)), np.ones((3, 3)), padding="SAME"), "padding must be one of"),
        (lambda: conv2d(np.ones((4, 4)), np.ones((3, 3)), stride=0), "stride must be an integer >= 1"),
        (lambda: conv2d(np.ones((4, 4)), np.ones((3, 3)), stride=True), "stride must be an integer >= 1"),
        (lambda: conv2d(np.ones((4, 4)), np.ones((3, 3)), stride=(1, 2, 3)), "stride must be"),
        (lambda: conv2d(np.ones((2, 2)), np.ones((3, 3))), "at least the kernel size 3"),
        (lambda: conv2d(np.ones((4, 4, 2)), np.ones((3, 3))), "4-D kernel"),
        (lambda: conv2d(np.ones(4), np.ones(3)), "conv2d takes x"),
        (lambda: conv2d(np.ones((4, 4, 2)), np.ones((3, 3, 1, 1))), "x has 2 channels"),
        (lambda: conv2d(np.ones((4, 0)), np.ones((1, 1))), "empty axis"),
        (lambda: conv_transpose2d(np.ones((4, 4, 2)), np.ones((3, 3, 2, 1))), "x has 2 channels"),
        (lambda: conv_transpose2d(np.ones((2, 2)), np.ones((3, 3)), 2, output_padding=2), "0..1"),
        (lambda: conv_transpose2d(np.ones((2, 2)), np.ones((3, 3)), 2, output_padding=-1), "output_padding"),
        (lambda: conv_transpose2d(np.ones((2, 2)), np.ones((4, 4)), 2, "same", 0), "allowed values: [1]"),
        (lambda: conv_transpose2d(np.ones((2, 2)), np.ones((3, 3)), 1, "same", 0.5), "output_padding"),
        (lambda: conv_output_size(0, 3), "n must be a positive integer"),
        (lambda: conv_output_size(4, 3, 1.5), "s must be a positive integer"),
        (lambda: conv_transpose_output_size(4, 0), "k must be a positive integer"),
        (lambda: conv_transpose_output_size(4, 3, 2, "full"), "padding must be one of"),
        (lambda: conv_transpose_output_size(4, 3, 2, output_padding=True), "output_padding must be an integer"),
        (lambda: conv_matrix((4, 4), np.ones((3, 3, 1, 1))), "2-D kernel"),
        (lambda: conv_matrix((4,), np.ones((3, 3))), "input_shape"),
        (lambda: checkerboard_strength(np.ones(8)), "checkerboard_strength needs"),
        (lambda: checkerboard_strength(np.ones((1, 8))), "H, W >= 2"),
        (lambda: keras_conv_transpose2d(np.ones((2, 2)), np.ones((4, 4)), 2, "same", 0), "allowed values"),
        (lambda: keras_conv2d(np.ones((4, 4)), np.ones((3, 3)), padding="full"), "padding must be one of"),
        (lambda: keras_conv2d_input_gradient(np.ones((4, 4)), np.ones((3, 3)), 0), "stride"),
    ],
)
def test_bad_arguments_raise_clear_errors(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
