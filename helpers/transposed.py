"""A NumPy reference for convolution and transposed convolution, written to match Keras exactly.

Conventions follow Keras (TensorFlow backend, ``channels_last``):

- ``conv2d`` is a cross-correlation (the kernel is not flipped); its kernel is laid out
  ``(kh, kw, in_channels, out_channels)`` like ``keras.layers.Conv2D``.
- ``conv_transpose2d`` scatters a scaled copy of the kernel for every input pixel; its kernel is laid
  out ``(kh, kw, out_channels, in_channels)`` like ``keras.layers.Conv2DTranspose``.
- ``padding="same"`` pads (or crops) ``total // 2`` before and the rest after, so an odd extra pixel
  goes to the bottom/right, as TensorFlow does.

Inputs may be one image ``(H, W)`` with a 2-D kernel ``(kh, kw)``, one image ``(H, W, C)`` or a batch
``(N, H, W, C)`` with a 4-D kernel; the result has the same number of axes as the input.
"""

from __future__ import annotations

import functools
import math

import numpy as np

PADDINGS = ("valid", "same")
"""The padding modes Keras' Conv2D and Conv2DTranspose accept."""

Pair = int | tuple[int, int]


def conv_output_size(n: int, k: int, s: int = 1, padding: str = "valid") -> int:
    """Length of a convolution's output along one axis of length n (Keras/TensorFlow rules)."""
    _check_sizes(n=n, k=k, s=s)
    padding = _check_padding(padding)
    if padding == "same":
        return math.ceil(n / s)
    if n < k:
        raise ValueError(f"padding='valid' needs the input (length {n}) to be at least the kernel size {k}")
    return (n - k) // s + 1


def same_padding_amounts(n: int, k: int, s: int = 1) -> tuple[int, int]:
    """Zeros that padding='same' adds before and after an axis of length n (the odd one goes after)."""
    _check_sizes(n=n, k=k, s=s)
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv_transpose_output_size(
    n: int, k: int, s: int = 1, padding: str = "valid", output_padding: int | None = None
) -> int:
    """Length of a transposed convolution's output along one axis (Keras' Conv2DTranspose rules)."""
    _check_sizes(n=n, k=k, s=s)
    padding = _check_padding(padding)
    if output_padding is None:
        return (n - 1) * s + max(k, s) if padding == "valid" else n * s
    _check_output_padding(output_padding, k, s, padding)
    return (n - 1) * s + (k if padding == "valid" else k % 2) + output_padding


def conv2d(x: np.ndarray, kernel: np.ndarray, stride: Pair = 1, padding: str = "valid") -> np.ndarray:
    """Cross-correlate x with kernel (kh, kw[, in, out]) exactly as keras.layers.Conv2D without bias."""
    batch, kernel4 = _as_batch(x, kernel, "conv2d", channel_axis=2)
    (sh, sw), padding = _pair(stride, "stride", minimum=1), _check_padding(padding)
    (height, width), (kh, kw) = batch.shape[1:3], kernel4.shape[:2]
    out_h, out_w = conv_output_size(height, kh, sh, padding), conv_output_size(width, kw, sw, padding)
    pad_h = same_padding_amounts(height, kh, sh) if padding == "same" else (0, 0)
    pad_w = same_padding_amounts(width, kw, sw) if padding == "same" else (0, 0)
    padded = np.pad(batch, ((0, 0), pad_h, pad_w, (0, 0)))
    out = np.zeros((batch.shape[0], out_h, out_w, kernel4.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
            out[:, i, j, :] = np.einsum("nabc,abco->no", window, kernel4)
    return _like_input(out, x, kernel)


def conv_transpose2d(
    x: np.ndarray,
    kernel: np.ndarray,
    stride: Pair = 1,
    padding: str = "valid",
    output_padding: Pair | None = None,
) -> np.ndarray:
    """Scatter a scaled kernel (kh, kw[, out, in]) per input pixel, as keras.layers.Conv2DTranspose."""
    batch, kernel4 = _as_batch(x, kernel, "conv_transpose2d", channel_axis=3)
    (sh, sw), padding = _pair(stride, "stride", minimum=1), _check_padding(padding)
    op_h, op_w = (None, None) if output_padding is None else _pair(output_padding, "output_padding", minimum=0)
    (height, width), (kh, kw) = batch.shape[1:3], kernel4.shape[:2]
    out_h = conv_transpose_output_size(height, kh, sh, padding, op_h)
    out_w = conv_transpose_output_size(width, kw, sw, padding, op_w)
    top = same_padding_amounts(out_h, kh, sh)[0] if padding == "same" else 0
    left = same_padding_amounts(out_w, kw, sw)[0] if padding == "same" else 0
    # The buffer holds every scattered copy; when the kernel is smaller than the stride, Keras' output
    # reaches past the last copy and those rows/columns stay zero.
    rows, cols = max((height - 1) * sh + kh, top + out_h), max((width - 1) * sw + kw, left + out_w)
    full = np.zeros((batch.shape[0], rows, cols, kernel4.shape[2]))
    for i in range(height):
        for j in range(width):
            full[:, i * sh : i * sh + kh, j * sw : j * sw + kw, :] += np.einsum(
                "nc,aboc->nabo", batch[:, i, j, :], kernel4
            )
    return _like_input(full[:, top : top + out_h, left : left + out_w, :], x, kernel)


def conv_matrix(
    input_shape: tuple[int, int], kernel: np.ndarray, stride: Pair = 1, padding: str = "valid"
) -> np.ndarray:
    """The matrix C with C @ x.ravel() == conv2d(x, kernel, stride, padding).ravel() for one 2-D image."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f"conv_matrix needs a 2-D kernel (kh, kw), got shape {kernel.shape}")
    height, width = _pair(tuple(input_shape), "input_shape", minimum=1)
    (sh, sw), padding = _pair(stride, "stride", minimum=1), _check_padding(padding)
    (kh, kw) = kernel.shape
    out_h, out_w = conv_output_size(height, kh, sh, padding), conv_output_size(width, kw, sw, padding)
    top = same_padding_amounts(height, kh, sh)[0] if padding == "same" else 0
    left = same_padding_amounts(width, kw, sw)[0] if padding == "same" else 0
    matrix = np.zeros((out_h * out_w, height * width))
    for i in range(out_h):
        for j in range(out_w):
            for a in range(kh):
                for b in range(kw):
                    row, col = i * sh + a - top, j * sw + b - left
                    if 0 <= row < height and 0 <= col < width:
                        matrix[i * out_w + j, row * width + col] += kernel[a, b]
    return matrix


def overlap_counts(n: int, k: int, s: int, padding: str = "valid") -> np.ndarray:
    """How many kernel copies land on each output pixel when an n x n input is upsampled (k x k, stride s)."""
    counts = conv_transpose2d(np.ones((n, n)), np.ones((k, k)), stride=s, padding=padding)
    return np.rint(counts).astype(np.int64)


def overlap_is_even(k: int, s: int) -> bool:
    """True when every interior output pixel of a k x k, stride-s transposed convolution gets as many copies."""
    n = k + 2  # large enough for the interior to hold a whole period of the pattern
    counts = overlap_counts(n, k, s)
    # Rows k-1 .. (n-1)*s are the ones every neighbouring input pixel can reach; the rest is border.
    interior = counts[k - 1 : (n - 1) * s + 1, k - 1 : (n - 1) * s + 1]
    return bool(interior.min() == interior.max())


def checkerboard_strength(image: np.ndarray) -> float:
    """Spread (max - min) of the means of the four 2x2 pixel-parity classes: 0 without a period-2 pattern."""
    image = np.asarray(image, dtype=np.float64)
    spatial = image.shape if image.ndim == 2 else image.shape[1:3]
    if image.ndim not in (2, 3, 4) or min(spatial) < 2:
        raise ValueError(
            f"checkerboard_strength needs (H, W), (N, H, W) or (N, H, W, C) with H, W >= 2, got shape {image.shape}"
        )
    batch = image[None] if image.ndim == 2 else image
    means = [batch[:, a::2, b::2].mean() for a in (0, 1) for b in (0, 1)]
    return float(max(means) - min(means))


def keras_conv2d(x: np.ndarray, kernel: np.ndarray, stride: Pair = 1, padding: str = "valid") -> np.ndarray:
    """conv2d computed by keras.layers.Conv2D (no bias), for checking the NumPy version."""
    import keras  # imported here so the NumPy reference works without loading TensorFlow

    batch, kernel4 = _as_batch(x, kernel, "keras_conv2d", channel_axis=2)
    conv2d(np.zeros((1, *batch.shape[1:])), kernel4, stride, padding)  # same checks, same messages
    layer = keras.layers.Conv2D(kernel4.shape[3], kernel4.shape[:2], strides=stride, padding=padding, use_bias=False)
    out = keras.ops.convert_to_numpy(_with_kernel(layer, batch.shape, kernel4)(batch.astype(np.float32)))
    return _restore_axes(out, np.ndim(x))


def keras_conv_transpose2d(
    x: np.ndarray,
    kernel: np.ndarray,
    stride: Pair = 1,
    padding: str = "valid",
    output_padding: Pair | None = None,
) -> np.ndarray:
    """conv_transpose2d computed by keras.layers.Conv2DTranspose (no bias), for checking the NumPy version."""
    import keras  # imported here so the NumPy reference works without loading TensorFlow

    batch, kernel4 = _as_batch(x, kernel, "keras_conv_transpose2d", channel_axis=3)
    conv_transpose2d(np.zeros((1, *batch.shape[1:])), kernel4, stride, padding, output_padding)
    layer = keras.layers.Conv2DTranspose(
        kernel4.shape[2],
        kernel4.shape[:2],
        strides=stride,
        padding=padding,
        output_padding=output_padding,
        use_bias=False,
    )
    out = keras.ops.convert_to_numpy(_with_kernel(layer, batch.shape, kernel4)(batch.astype(np.float32)))
    return _restore_axes(out, np.ndim(x))


def keras_conv2d_input_gradient(
    x: np.ndarray,
    kernel: np.ndarray,
    stride: Pair = 1,
    padding: str = "valid",
    output_padding: Pair | None = None,
) -> np.ndarray:
    """conv_transpose2d(x) as the gradient of sum(Conv2D(z) * x) with respect to Conv2D's input z.

    The gradient is taken in a traced function (``_conv2d_input_gradient``), not eagerly; see there why.
    """
    import tensorflow as tf  # imported here so the NumPy reference works without loading TensorFlow

    batch, kernel4 = _as_batch(x, kernel, "keras_conv2d_input_gradient", channel_axis=3)
    out_shape = conv_transpose2d(np.zeros((1, *batch.shape[1:])), kernel4, stride, padding, output_padding).shape
    # Conv2DTranspose's kernel (kh, kw, out, in) is, unchanged, a Conv2D kernel (kh, kw, in', out')
    # going back from the upsampled tensor to x.
    gradient = _conv2d_input_gradient(_pair(stride, "stride", minimum=1), padding)(
        tf.zeros((batch.shape[0], *out_shape[1:])), tf.constant(kernel4, tf.float32), tf.constant(batch, tf.float32)
    )
    return _restore_axes(gradient.numpy(), np.ndim(x))


@functools.cache
def _conv2d_input_gradient(strides: tuple[int, int], padding: str):
    """A traced (concrete) function (z, kernel, x) -> gradient of sum(conv(z, kernel) * x) with respect to z.

    conv is what keras.layers.Conv2D computes (``keras.ops.conv``, no bias). Traced once per stride and
    padding, for any shapes. Why traced: TensorFlow's Conv2D gradient always computes the kernel's gradient
    too, and eagerly it runs; in a traced function the unused kernel gradient is pruned before it runs. With
    oneDNN on (helpers sets TF_ENABLE_ONEDNN_OPTS=1), TensorFlow 2.21's kernel for it (Conv2DBackpropFilter,
    run by oneDNN 3.7.3's jit_1x1 backward-weights code) writes past its buffer for a 1 x 1 kernel with
    stride > 1 and few channels (seen with 1-3 channels on inputs of 10 x 10 and more whose last rows lie past
    the last window, as Conv2DTranspose's outputs do when the kernel is smaller than the stride; oneDNN issue
    6035 describes the same overrun). Run eagerly over notebook 01's grid, the heap corruption killed the
    process now and then (issue 18).
    """
    import keras
    import tensorflow as tf

    spec = tf.TensorSpec([None] * 4, tf.float32)

    @tf.function(input_signature=[spec, spec, spec], autograph=False)
    def input_gradient(z, kernel, x):
        with tf.GradientTape() as tape:
            tape.watch(z)
            total = tf.reduce_sum(keras.ops.conv(z, kernel, strides=strides, padding=padding) * x)
        return tape.gradient(total, z)

    return input_gradient.get_concrete_function()  # traced here, once; calling it never traces again


def _with_kernel(layer, input_shape: tuple[int, ...], kernel4: np.ndarray):
    """Build a bias-free Keras conv layer for inputs shaped like input_shape and give it kernel4."""
    layer.build((None, *input_shape[1:]))
    layer.set_weights([kernel4.astype(np.float32)])
    return layer


def _check_sizes(**sizes: int) -> None:
    """Reject sizes, kernel sizes and strides that are not positive integers."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_padding(padding: str) -> str:
    """Return padding if Keras accepts it, else raise naming the allowed values."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    return padding


def _check_output_padding(output_padding: int, k: int, s: int, padding: str) -> None:
    """Raise unless Keras (TensorFlow backend) accepts this output_padding for kernel k and stride s."""
    if isinstance(output_padding, bool) or not isinstance(output_padding, (int, np.integer)):
        raise ValueError(f"output_padding must be an integer or None, got {output_padding!r}")
    if not 0 <= output_padding < s:
        raise ValueError(f"output_padding must be in 0..stride-1 = 0..{s - 1}, got {output_padding}")
    if padding == "same" and not 1 <= k % 2 + output_padding <= s:
        # The output would not map back onto the input under a 'same' convolution; TensorFlow refuses it.
        allowed = [op for op in range(s) if 1 <= k % 2 + op <= s]
        raise ValueError(
            f"output_padding={output_padding} with kernel size {k}, stride {s} and padding='same' "
            f"is not invertible by the matching convolution; allowed values: {allowed}"
        )


def _pair(value: Pair, name: str, minimum: int) -> tuple[int, int]:
    """Turn an int or a pair of ints into a (rows, columns) pair, each at least minimum."""
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(pair) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum for v in pair
    ):
        raise ValueError(f"{name} must be an integer >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _as_batch(x: np.ndarray, kernel: np.ndarray, caller: str, channel_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Return x as (N, H, W, C) and kernel as 4-D, checking that x's channels match kernel[channel_axis]."""
    x, kernel = np.asarray(x, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    if x.ndim == 2 and kernel.ndim == 2:
        batch, kernel4 = x[None, :, :, None], kernel[:, :, None, None]
    elif x.ndim in (3, 4) and kernel.ndim == 4:
        batch, kernel4 = (x[None] if x.ndim == 3 else x), kernel
    else:
        raise ValueError(
            f"{caller} takes x (H, W) with a 2-D kernel, or x (H, W, C) / (N, H, W, C) with a 4-D kernel; "
            f"got x {x.shape} and kernel {kernel.shape}"
        )
    if min(batch.shape) < 1 or min(kernel4.shape) < 1:
        raise ValueError(f"{caller} got an empty axis: x {x.shape}, kernel {kernel.shape}")
    if batch.shape[3] != kernel4.shape[channel_axis]:
        raise ValueError(
            f"{caller}: x has {batch.shape[3]} channels but the kernel {kernel.shape} expects "
            f"{kernel4.shape[channel_axis]} (kernel axis {channel_axis})"
        )
    return batch, kernel4


def _like_input(out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Drop the axes _as_batch added and use the inputs' float type (at least float32)."""
    dtype = np.result_type(np.asarray(x).dtype, np.asarray(kernel).dtype, np.float32)
    return _restore_axes(out, np.ndim(x)).astype(dtype)


def _restore_axes(out: np.ndarray, ndim: int) -> np.ndarray:
    """Undo _as_batch: (N, H, W, C) back to (H, W), (H, W, C) or (N, H, W, C)."""
    if ndim == 2:
        return out[0, :, :, 0]
    return out[0] if ndim == 3 else out
