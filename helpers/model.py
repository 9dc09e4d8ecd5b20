"""The course's U-Net (after Harshall Lamba's Keras "TGS salt" tutorial) and tools to inspect it.

Layer names read like a map of the network, so ``model.summary()`` and the model notebook can
point at them: ``enc{k}_conv1``, ``enc{k}_bn1``, ``enc{k}_relu1``, ..., ``enc{k}_pool``,
``enc{k}_drop`` for encoder level k = 1..depth (level 1 works at full resolution);
``bottleneck_conv1``, ...; ``dec{k}_up``, ``dec{k}_concat``, ``dec{k}_drop``, ``dec{k}_conv1``, ...
for the decoder stage that joins encoder level k (so the decoder runs dec{depth} first and dec1
last); and ``output``. The resize-then-convolve up-sampling adds ``dec{k}_resize`` before ``dec{k}_up``; a U-Net
built without skip connections has no ``dec{k}_concat``.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from helpers.config import UPSAMPLINGS

KERNEL_SIZE = 3
POOL_SIZE = 2
UPSAMPLE_KERNEL_SIZE = 3
LANDMARK_LAYER_TYPES = (layers.InputLayer, layers.MaxPooling2D, layers.Conv2DTranspose, layers.Concatenate)


@keras.saving.register_keras_serializable(package="helpers")
class FusedBatchNormalization(layers.BatchNormalization):
    """BatchNormalization that trains through TensorFlow's fused kernel on 4-D channels-last inputs."""

    # Keras 3 computes the batch moments and the normalisation in separate ops; TensorFlow's fused kernel
    # does both in one pass (its measured speed-up is in benchmarks/README.md). Anything else (inference,
    # masks, other ranks or axes, other backends) takes Keras' own path.
    def call(self, inputs, training=None, mask=None):
        if not (training and mask is None and self.center and self.scale and len(inputs.shape) == 4
                and self.axis in (-1, 3) and keras.backend.backend() == "tensorflow" and not self.synchronized):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, "float32") if inputs.dtype in ("float16", "bfloat16") else inputs
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, self.gamma, self.beta, epsilon=self.epsilon, is_training=True, data_format="NHWC")
        # The kernel returns the unbiased variance; Keras' moving variance averages the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), variance.dtype)
        variance = variance * tf.maximum(count - 1.0, 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


def conv_block(
    x: keras.KerasTensor, filters: int, batch_norm: bool, name: str, convs: int = 2,
    fused_batch_norm: bool = False, batch_norm_momentum: float = 0.99,
) -> keras.KerasTensor:
    """Stack `convs` x (3x3 'same' Conv2D -> optional BatchNorm -> ReLU), layers named `{name}_conv1`, ..."""
    for index in range(1, convs + 1):
        # With batch norm right after, the convolution's bias would be cancelled anyway; the original
        # keeps it, and so do we, so the parameter counts match the tutorial's.
        x = layers.Conv2D(
            filters,
            KERNEL_SIZE,
            padding="same",
            kernel_initializer="he_normal",
            name=f"{name}_conv{index}",
        )(x)
        if batch_norm:
            norm = FusedBatchNormalization if fused_batch_norm else layers.BatchNormalization
            x = norm(momentum=batch_norm_momentum, name=f"{name}_bn{index}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{index}")(x)
    return x


def up_sample(x: keras.KerasTensor, filters: int, upsampling: str, name: str) -> keras.KerasTensor:
    """Double the feature map's side the `upsampling` way (UPSAMPLINGS); the learned layer is `{name}_up`."""
    if upsampling == "resize_conv":
        x = layers.UpSampling2D(POOL_SIZE, interpolation="nearest", name=f"{name}_resize")(x)
        return layers.Conv2D(filters, KERNEL_SIZE, padding="same", name=f"{name}_up")(x)
    kernel = UPSAMPLE_KERNEL_SIZE if upsampling == "transpose3x3" else POOL_SIZE
    return layers.Conv2DTranspose(filters, kernel, strides=POOL_SIZE, padding="same", name=f"{name}_up")(x)


def _validate_unet_arguments(input_size: int, base_filters: int, depth: int, dropout: float,
                             upsampling: str = "transpose3x3") -> None:
    """Raise ValueError naming the parameter when a U-Net argument cannot work."""
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"upsampling must be one of {', '.join(UPSAMPLINGS)}; got {upsampling!r}")
    if depth < 1:
        raise ValueError(f"depth must be at least 1 (one pooling level), got depth={depth}")
    if base_filters < 1:
        raise ValueError(f"base_filters must be at least 1, got base_filters={base_filters}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got dropout={dropout}")
    divisor = 2**depth
    if input_size < divisor or input_size % divisor:
        below = max(divisor, input_size // divisor * divisor)
        above = (input_size // divisor + 1) * divisor
        nearest = sorted({below, above})
        raise ValueError(
            f"input_size (IMG_SIZE) = {input_size} must be a positive multiple of 2**depth = {divisor} "
            f"so that {depth} poolings and up-samplings return to the same size; "
            f"nearest valid sizes: {' or '.join(str(size) for size in nearest)}"
        )


def build_unet(
    input_size: int = 128,
    base_filters: int = 16,
    depth: int = 4,
    dropout: float = 0.05,
    batch_norm: bool = True,
    single_conv_blocks: bool = False,
    name: str = "unet",
    fused_batch_norm: bool = False,
    batch_norm_momentum: float = 0.99,
    skip_connections: bool = True,
    upsampling: str = "transpose3x3",
) -> keras.Model:
    """Build the U-Net for (input_size, input_size, 1) images; the sigmoid output is float32.

    `single_conv_blocks=True` reproduces a slip of the original notebook: its conv block feeds the
    second convolution from the block's input, so the first convolution never reaches the output
    and every block is effectively one convolution (1,179,121 parameters at the defaults instead
    of 2,164,305). Use it only to reproduce the original's numbers. `fused_batch_norm=True` uses
    FusedBatchNormalization (same weights and arithmetic, faster training on CPUs), as training does
    by default (TrainConfig.fused_batch_norm); the default here is Keras' own layer, for teaching.
    `batch_norm_momentum` is how much of its moving statistics each training step keeps (Keras' default
    0.99 averages over about 100 steps; a short run needs them to settle sooner). `skip_connections=False`
    leaves out every concatenation (the decoder sees only the bottleneck: an encoder-decoder, for notebook 07's
    comparison); `upsampling` picks the decoder's up-sampling from UPSAMPLINGS.
    """
    _validate_unet_arguments(input_size, base_filters, depth, dropout, upsampling)
    convs = 1 if single_conv_blocks else 2
    inputs = keras.Input(shape=(input_size, input_size, 1), name="image")
    x = inputs
    skips = []
    for level in range(1, depth + 1):
        x = conv_block(x, base_filters * 2 ** (level - 1), batch_norm, f"enc{level}", convs, fused_batch_norm,
                       batch_norm_momentum)
        skips.append(x)
        x = layers.MaxPooling2D(POOL_SIZE, name=f"enc{level}_pool")(x)
        # The original drops half as much right after the first level: the finest features are few.
        level_dropout = dropout * 0.5 if level == 1 else dropout
        x = layers.Dropout(level_dropout, name=f"enc{level}_drop")(x)
    x = conv_block(x, base_filters * 2**depth, batch_norm, "bottleneck", convs, fused_batch_norm,
                   batch_norm_momentum)
    for level in range(depth, 0, -1):
        filters = base_filters * 2 ** (level - 1)
        x = up_sample(x, filters, upsampling, f"dec{level}")
        if skip_connections:
            x = layers.Concatenate(name=f"dec{level}_concat")([x, skips[level - 1]])
        x = layers.Dropout(dropout, name=f"dec{level}_drop")(x)
        x = conv_block(x, filters, batch_norm, f"dec{level}", convs, fused_batch_norm, batch_norm_momentum)
    # float32 output: under a mixed-precision policy the sigmoid and the loss stay in full precision.
    outputs = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def count_parameters(model: keras.Model) -> int:
    """All weights of the model, trainable and not (batch-norm statistics), like Keras' count_params."""
    return int(sum(math.prod(weight.shape) for weight in model.weights))


def level_shapes(model: keras.Model) -> list[tuple[str, tuple[int, ...]]]:
    """(layer name, output shape without the batch axis) at each landmark of the U-Net, in order.

    Landmarks: the input, the output of every conv block (its last ReLU), every pooling,
    up-sampling and concatenation, and the output layer.
    """
    last_activation_of_block: dict[str, str] = {}
    for layer in model.layers:
        block, _, suffix = layer.name.rpartition("_")
        if suffix.startswith("relu"):
            last_activation_of_block[block] = layer.name
    landmarks = set(last_activation_of_block.values())
    return [
        (layer.name, tuple(int(side) for side in layer.output.shape[1:]))
        for layer in model.layers
        if layer.name in landmarks or layer.name == "output" or layer.name.endswith("_up")
        or isinstance(layer, LANDMARK_LAYER_TYPES)
    ]


def receptive_field(depth: int, convs_per_block: int = 2) -> int:
    """Side, in input pixels, of the receptive field of one bottleneck unit (3x3 convs, 2x2 pools).

    Each 3x3 conv at a level whose pixels are `jump` input pixels apart widens the field by
    2 * jump; each 2x2 pool widens it by jump and doubles the jump. The decoder widens it further.
    """
    if depth < 0 or convs_per_block < 1:
        raise ValueError(
            f"need depth >= 0 and convs_per_block >= 1, got depth={depth}, convs_per_block={convs_per_block}"
        )
    field, jump = 1, 1
    for _ in range(depth):
        field += convs_per_block * (KERNEL_SIZE - 1) * jump
        field += (POOL_SIZE - 1) * jump
        jump *= POOL_SIZE
    return field + convs_per_block * (KERNEL_SIZE - 1) * jump


def conv_multiply_adds(layer: layers.Layer) -> int:
    """Multiply-adds of one Conv2D / Conv2DTranspose layer for one image (biases not counted)."""
    kernel_height, kernel_width = layer.kernel_size
    if isinstance(layer, layers.Conv2DTranspose):
        # Every input pixel and channel scatters a full kernel into the output.
        _, height, width, channels_in = layer.input.shape
        return height * width * channels_in * kernel_height * kernel_width * layer.filters
    _, height, width, channels_out = layer.output.shape
    channels_in = layer.input.shape[-1]
    return height * width * channels_out * kernel_height * kernel_width * channels_in


def conv_flops_per_image(model: keras.Model) -> int:
    """Forward-pass FLOPs (2 x multiply-adds) of all Conv2D/Conv2DTranspose layers for one image.

    Batch norm, activations, pooling and biases are left out (a few percent); training costs
    about 3x this (forward, plus two products of the same size in the backward pass).
    """
    conv_layers = [layer for layer in model.layers if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose))]
    return 2 * sum(int(conv_multiply_adds(layer)) for layer in conv_layers)
