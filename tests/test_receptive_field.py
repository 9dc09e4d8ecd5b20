"""The effective receptive field (helpers.receptive_field) on networks whose gradient is known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.receptive_field import effective_receptive_field, mass_within, radius_holding

KERNEL = np.array([[1.0, -2.0, 0.0], [0.5, 3.0, 0.0], [0.0, 1.0, -0.5]], dtype=np.float32)


def one_convolution(size: int = 9, activation: str | None = None, scale: float = 1.0, padding: str = "same"):
    """A single 3 x 3 convolution holding KERNEL * scale, no bias: its gradient is the kernel itself."""
    import keras

    inputs = keras.Input((size, size, 1))
    layer = keras.layers.Conv2D(1, 3, padding=padding, use_bias=False, activation=activation)
    model = keras.Model(inputs, layer(inputs))
    layer.kernel.assign((KERNEL * scale)[:, :, None, None])
    return model


def images(count: int = 3, size: int = 9) -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(count, size, size, 1)).astype(np.float32)


def test_a_convolution_s_field_is_its_kernel_around_the_pixel():
    # Keras convolves without flipping: output[c, c] = sum KERNEL[a, b] * x[c + a - 1, c + b - 1].
    field = effective_receptive_field(one_convolution(), images())
    expected = np.zeros((9, 9))
    expected[3:6, 3:6] = np.abs(KERNEL) / np.abs(KERNEL).sum()
    np.testing.assert_allclose(field, expected, rtol=1e-6, atol=1e-9)


def test_another_position_moves_the_field():
    field = effective_receptive_field(one_convolution(), images(), position=(1, 6))
    np.testing.assert_allclose(field[0:3, 5:8], np.abs(KERNEL) / np.abs(KERNEL).sum(), rtol=1e-6)
    assert field.sum() == pytest.approx(1.0)


def test_a_saturated_sigmoid_is_differentiated_before_it():
    # With these weights the sigmoid is exactly 1.0 in float32 and its gradient 0; the logit's is the kernel.
    saturated = one_convolution(activation="sigmoid", scale=1000.0)
    probability = saturated(images()).numpy()[:, 4, 4, 0]
    assert (probability == 1.0).all()
    np.testing.assert_allclose(effective_receptive_field(saturated, images()),
                               effective_receptive_field(one_convolution(), images()), rtol=1e-5, atol=1e-9)


def test_a_u_net_s_field_piles_up_near_the_pixel():
    import keras

    from helpers.model import build_unet

    keras.utils.set_random_seed(0)
    field = effective_receptive_field(build_unet(32, base_filters=2, depth=2), images(4, 32))
    assert field.shape == (32, 32) and (field >= 0).all() and field.sum() == pytest.approx(1.0)
    assert mass_within(field, 4) > 3 * (9 * 9) / (32 * 32)  # far more than an even spread would put there


@pytest.mark.parametrize(
    "model, inputs, position, message",
    [
        (lambda: one_convolution(), images()[0], None, "(N, H, W, C)"),
        (lambda: one_convolution(), images(), (9, 0), "outside"),
        (lambda: one_convolution(padding="valid"), images(), None, "not the input's"),
        (lambda: one_convolution(scale=0.0), images(), None, "zero everywhere"),
    ],
)
def test_bad_inputs_are_refused(model, inputs, position, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        effective_receptive_field(model(), inputs, position)


def test_mass_within_counts_the_square_cut_at_the_edges():
    even = np.ones((5, 5))
    assert mass_within(even, 0) == pytest.approx(1 / 25)
    assert mass_within(even, 1) == pytest.approx(9 / 25)
    assert mass_within(even, 1, centre=(0, 0)) == pytest.approx(4 / 25)
    assert mass_within(even, 9) == pytest.approx(1.0)


def test_radius_holding_is_the_smallest_square_that_holds_the_share():
    even = np.ones((5, 5))
    assert radius_holding(even, 9 / 25) == 1
    assert radius_holding(even, 10 / 25) == 2
    assert radius_holding(even, 1.0) == 2
    spike = np.zeros((7, 7))
    spike[3, 3] = 1.0
    assert radius_holding(spike, 1.0) == 0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mass_within(np.ones(5), 1), "2-D"),
        (lambda: mass_within(-np.ones((3, 3)), 1), "non-negative"),
        (lambda: mass_within(np.zeros((3, 3)), 1), "positive sum"),
        (lambda: mass_within(np.ones((3, 3)), -1), "radius"),
        (lambda: radius_holding(np.ones((3, 3)), 0.0), "fraction"),
        (lambda: radius_holding(np.ones((3, 3)), 1.5), "fraction"),
    ],
)
def test_bad_maps_and_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
