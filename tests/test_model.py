"""Tests for helpers.model: shapes, parameter counts, validation, precision, receptive field, FLOPs, saving."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from helpers.model import (
    build_unet,
    conv_block,
    conv_flops_per_image,
    count_parameters,
    level_shapes,
    receptive_field,
)

ORIGINAL_PARAMETERS = 1_179_121
CORRECT_PARAMETERS = 2_164_305


@pytest.mark.parametrize(("size", "depth"), [(32, 2), (16, 1), (48, 3), (64, 4)])
def test_output_shape_matches_input(size: int, depth: int) -> None:
    model = build_unet(input_size=size, base_filters=4, depth=depth)
    images = np.zeros((2, size, size, 1), dtype=np.float32)
    predictions = np.asarray(model(images, training=False))
    assert predictions.shape == (2, size, size, 1)
    assert np.all((predictions >= 0) & (predictions <= 1))


def test_parameter_counts_at_defaults() -> None:
    assert count_parameters(build_unet(single_conv_blocks=True)) == ORIGINAL_PARAMETERS
    correct = build_unet()
    assert count_parameters(correct) == CORRECT_PARAMETERS == correct.count_params()


def test_parameter_count_of_tiny_unet_by_hand() -> None:
    # depth 1, base 2: conv weights 3*3*c_in*c_out + c_out biases, batch norm 4 numbers per channel.
    encoder = (9 * 1 * 2 + 2) + 4 * 2 + (9 * 2 * 2 + 2) + 4 * 2  # 74
    bottleneck = (9 * 2 * 4 + 4) + 4 * 4 + (9 * 4 * 4 + 4) + 4 * 4  # 256
    upsample = 9 * 4 * 2 + 2  # 74
    decoder = (9 * 4 * 2 + 2) + 4 * 2 + (9 * 2 * 2 + 2) + 4 * 2  # concat has 2 + 2 channels: 128
    output = 2 * 1 + 1
    expected = encoder + bottleneck + upsample + decoder + output
    assert expected == 535
    assert count_parameters(build_unet(input_size=8, base_filters=2, depth=1)) == expected


def test_tiny_unet_without_batch_norm_and_with_single_convs() -> None:
    model = build_unet(input_size=8, base_filters=2, depth=1, batch_norm=False, single_conv_blocks=True)
    # enc 20 + bottleneck 76 + up 74 + dec 74 + output 3
    assert count_parameters(model) == 20 + 76 + 74 + 74 + 3
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


@pytest.mark.parametrize(("size", "depth", "nearest"), [(101, 4, "96 or 112"), (30, 2, "28 or 32"), (4, 3, "8")])
def test_refuses_sizes_not_divisible_by_two_to_the_depth(size: int, depth: int, nearest: str) -> None:
    with pytest.raises(ValueError, match="input_size") as error:
        build_unet(input_size=size, depth=depth)
    assert f"2**depth = {2**depth}" in str(error.value)
    assert nearest in str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [({"depth": 0}, "depth"), ({"base_filters": 0}, "base_filters"), ({"dropout": 1.0}, "dropout"),
     ({"dropout": -0.1}, "dropout")],
)
def test_refuses_bad_arguments(kwargs: dict, parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        build_unet(input_size=32, **kwargs)


def test_output_stays_float32_under_mixed_precision() -> None:
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_unet(input_size=16, base_filters=2, depth=2)
        assert model.get_layer("enc1_conv1").compute_dtype == "bfloat16"
        assert model.output.dtype == "float32"
        assert np.asarray(model(np.zeros((1, 16, 16, 1), np.float32))).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert keras.mixed_precision.global_policy().name == previous.name


def test_layers_are_named_by_level() -> None:
    model = build_unet(input_size=16, base_filters=2, depth=2)
    names = {layer.name for layer in model.layers}
    for expected in ["enc1_conv1", "enc1_bn2", "enc2_pool", "enc1_drop", "bottleneck_conv2", "dec2_up",
                     "dec1_concat", "dec1_relu2", "output"]:
        assert expected in names
    assert model.get_layer("enc1_drop").rate == pytest.approx(0.025)
    assert model.get_layer("enc2_drop").rate == pytest.approx(0.05)


def test_level_shapes_follow_the_u() -> None:
    shapes = dict(level_shapes(build_unet(input_size=32, base_filters=4, depth=2)))
    assert shapes["enc1_relu2"] == (32, 32, 4)
    assert shapes["enc2_pool"] == (8, 8, 8)
    assert shapes["bottleneck_relu2"] == (8, 8, 16)
    assert shapes["dec2_up"] == (16, 16, 8)
    assert shapes["dec2_concat"] == (16, 16, 16)
    assert shapes["dec1_relu2"] == (32, 32, 4)
    assert shapes["output"] == (32, 32, 1)
    assert "enc1_relu1" not in shapes


def test_conv_block_builds_named_layers() -> None:
    inputs = keras.Input((8, 8, 3))
    outputs = conv_block(inputs, 5, batch_norm=True, name="demo")
    model = keras.Model(inputs, outputs)
    assert [layer.name for layer in model.layers[1:]] == [
        "demo_conv1", "demo_bn1", "demo_relu1", "demo_conv2", "demo_bn2", "demo_relu2"
    ]
    assert outputs.shape[1:] == (8, 8, 5)


def test_receptive_field_by_hand() -> None:
    # depth 1: 1 -> conv 3 -> conv 5 -> pool 6 -> (jump 2) conv 10 -> conv 14
    assert receptive_field(1) == 14
    # depth 0 (bottleneck only): two 3x3 convs see 5 pixels
    assert receptive_field(0) == 5
    # closed form 1 + (2c + 1)(2^d - 1) + 2c 2^d
    assert receptive_field(4) == 1 + 5 * 15 + 4 * 16 == 140
    assert receptive_field(4, convs_per_block=1) == 1 + 3 * 15 + 2 * 16 == 78
    with pytest.raises(ValueError, match="convs_per_block"):
        receptive_field(2, convs_per_block=0)


@pytest.mark.parametrize(("depth", "size"), [(1, 32), (2, 64)])
def test_receptive_field_matches_a_measured_one(depth: int, size: int) -> None:
    # All-ones kernels on a zero image: raising one input pixel raises a bottleneck unit iff it lies in its field.
    model = build_unet(input_size=size, base_filters=1, depth=depth, batch_norm=False, dropout=0.0)
    for layer in model.layers:
        if layer.name.startswith(("enc", "bottleneck")) and layer.weights:
            layer.set_weights([np.ones_like(weight) if weight.ndim > 1 else np.zeros_like(weight)
                               for weight in layer.get_weights()])
    bottleneck = keras.Model(model.input, model.get_layer("bottleneck_relu2").output)
    centre = size // 2
    probes = np.zeros((size, size, size, 1), dtype=np.float32)
    probes[np.arange(size), centre, np.arange(size), 0] = 1.0  # probe k lights pixel (centre, k)
    unit = size // 2**depth // 2
    responses = np.asarray(bottleneck(probes))[:, unit, unit, 0]
    assert np.count_nonzero(responses > 0) == receptive_field(depth)


def test_conv_flops_of_tiny_unet_by_hand() -> None:
    model = build_unet(input_size=8, base_filters=2, depth=1)
    multiply_adds = (
        8 * 8 * 2 * 9 * 1  # enc1_conv1
        + 8 * 8 * 2 * 9 * 2  # enc1_conv2
        + 4 * 4 * 4 * 9 * 2  # bottleneck_conv1
        + 4 * 4 * 4 * 9 * 4  # bottleneck_conv2
        + 4 * 4 * 4 * 9 * 2  # dec1_up: each of 4x4x4 inputs scatters a 3x3x2 kernel
        + 8 * 8 * 2 * 9 * 4  # dec1_conv1 (4 concatenated channels in)
        + 8 * 8 * 2 * 9 * 2  # dec1_conv2
        + 8 * 8 * 1 * 1 * 2  # output
    )
    assert conv_flops_per_image(model) == 2 * multiply_adds == 30208


def test_save_and_reload_keras_format_gives_identical_predictions(tmp_path) -> None:
    model = build_unet(input_size=16, base_filters=2, depth=2)
    images = np.random.default_rng(0).random((3, 16, 16, 1), dtype=np.float32)
    before = np.asarray(model(images, training=False))
    path = tmp_path / "unet.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(reloaded(images, training=False)), before)
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in model.layers]


def test_fused_batch_norm_matches_keras_batch_norm_and_reloads(tmp_path):
    import tensorflow as tf

    from helpers.model import FusedBatchNormalization

    x = tf.random.stateless_uniform((8, 16, 16, 4), seed=(1, 2)) * 3 + 1
    weights = tf.random.stateless_normal((8, 16, 16, 4), seed=(3, 4))
    plain, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
    plain(x), fused(x)
    plain.set_weights([w + 0.1 * i for i, w in enumerate(plain.get_weights())])
    fused.set_weights(plain.get_weights())
    gradients = []
    for layer in (plain, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * weights)
        gradients.append(tape.gradient(loss, [x, *layer.trainable_variables]))
    for a, b in zip(*gradients):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    for a, b in zip(plain.get_weights(), fused.get_weights()):  # moving mean and variance updated alike
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plain(x, training=False), fused(x, training=False), rtol=1e-5, atol=1e-5)

    model = build_unet(32, base_filters=4, depth=2, fused_batch_norm=True)
    assert count_parameters(model) == count_parameters(build_unet(32, base_filters=4, depth=2))
    assert any(isinstance(layer, FusedBatchNormalization) for layer in model.layers)
    model.save(tmp_path / "fused.keras")
    reloaded = keras.models.load_model(tmp_path / "fused.keras")
    batch = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(model.predict(batch, verbose=0), reloaded.predict(batch, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_without_skip_connections_the_decoder_sees_only_the_bottleneck() -> None:
    plain = build_unet(input_size=32, base_filters=2, depth=2, skip_connections=False)
    with_skips = build_unet(input_size=32, base_filters=2, depth=2)
    assert not any(isinstance(layer, keras.layers.Concatenate) for layer in plain.layers)
    assert sum(isinstance(layer, keras.layers.Concatenate) for layer in with_skips.layers) == 2
    # Each decoder's first convolution loses the skip's channels: 9 weights per input channel and output channel.
    assert count_parameters(with_skips) - count_parameters(plain) == 9 * (4 * 4 + 2 * 2)
    assert plain.output.shape[1:] == (32, 32, 1)


@pytest.mark.parametrize(("upsampling", "kernel", "layer_type"), [
    ("transpose3x3", (3, 3), keras.layers.Conv2DTranspose),
    ("transpose2x2", (2, 2), keras.layers.Conv2DTranspose),
    ("resize_conv", (3, 3), keras.layers.Conv2D),
])
def test_each_upsampling_doubles_the_side_with_its_own_layer(upsampling: str, kernel: tuple, layer_type) -> None:
    model = build_unet(input_size=32, base_filters=2, depth=2, upsampling=upsampling)
    up = model.get_layer("dec2_up")
    assert type(up) is layer_type and up.kernel_size == kernel
    assert up.output.shape[1:3] == (16, 16) and model.output.shape[1:] == (32, 32, 1)
    resizes = [layer for layer in model.layers if isinstance(layer, keras.layers.UpSampling2D)]
    assert len(resizes) == (2 if upsampling == "resize_conv" else 0)
    assert "dec2_up" in dict(level_shapes(model))


def test_a_flat_input_stays_flat_through_resize_then_convolve_whatever_the_weights() -> None:
    # Notebook 01's point about checkerboards: every output pixel sees the same taps (away from the border).
    flat = np.ones((1, 8, 8, 3), dtype=np.float32)
    for upsampling, expect_flat in (("resize_conv", True), ("transpose3x3", False)):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 3))
        from helpers.model import up_sample

        model = keras.Model(inputs, up_sample(inputs, 4, upsampling, "probe"))
        interior = np.asarray(model(flat))[0, 4:-4, 4:-4]
        assert np.allclose(interior, interior[:1, :1], atol=1e-5) == expect_flat


def test_refuses_an_unknown_upsampling_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="upsampling.*transpose3x3.*'bilinear'"):
        build_unet(input_size=32, base_filters=2, depth=2, upsampling="bilinear")
