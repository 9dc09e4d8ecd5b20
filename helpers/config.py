"""What defines a training run (TrainConfig) and the one home of every rule its values must follow.

Light on purpose (no TensorFlow): the course runner checks notebook parameters with these same rules.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from helpers import NATIVE_SIZE

SIZINGS = ("pad", "resize")
"""How a 101x101 section becomes a network input: reflect-padded, or resized."""
LOSS_NAMES = ("bce", "dice", "bce_dice", "lovasz")
"""The losses helpers.losses defines, by name."""
SETTINGS = ("auto", "on", "off")
"""Values of MIXED_PRECISION and JIT_COMPILE."""
STRATEGIES = ("none", "mirrored", "multiworker")
"""Values of DISTRIBUTE: one device, several on one machine, or several machines."""
SCHEDULES = ("plateau", "cosine")
"""How the learning rate moves: divided on a val_loss plateau (the original), or a warm-up then a cosine decay."""
UPSAMPLINGS = {"transpose3x3": "the tutorial's 3x3 transposed convolution, stride 2",
               "transpose2x2": "the U-Net paper's 2x2 transposed convolution, stride 2",
               "resize_conv": "nearest-neighbour 2x resize, then a 3x3 convolution"}
"""How a decoder stage doubles its feature map's side (notebook 01 compares them on a flat image)."""
MONITOR_MODES = {"val_score": "max", "val_loss": "min"}
"""What a run may select its best epoch by, and whether higher or lower is better."""
SCORE_THRESHOLD = 0.5
"""The probability above which a pixel counts as salt when a run scores its epochs (val_score)."""

FINE_TUNE_LOSS = "lovasz"
FINE_TUNE_LEARNING_RATE = 1e-4
FINE_TUNE_EPOCHS = 25
"""The second stage's recipe: the loss of the challenge's top solutions, at the first stage's lowered rate."""

SPLIT_FIELDS = ("n_images", "val_fraction", "seed", "split_seed")
"""Config fields that, with the data folder, decide which images a run trains and validates on."""
WEIGHT_FIELDS = ("base_filters", "depth", "batch_norm", "single_conv_blocks", "skip_connections", "upsampling")
"""Config fields that decide the network's weights, so a run can only start from a run that shares them."""


ORIGINAL_RECIPE = {"batch_size": 32, "batch_norm_momentum": 0.99, "lr_schedule": "plateau", "learning_rate": 1e-3}
"""The original tutorial's recipe where the course's differs (notebook 04, section 3)."""

REAL_DATA_RECIPE = {"epochs": 25, "lr_schedule": "plateau", "learning_rate": 1e-3, "dropout": 0.0}
"""Where the first stage on the real TGS data (2879 training sections) differs from TrainConfig's defaults, which
are planned for the built-in data of notebook 04's short run: 25 epochs at the original's constant rate (cut on a
plateau), so that the fine-tuning stage is the run's low-rate phase, and no dropout, which cost 27 % of a bfloat16
training step on a CPU and scored no better (notebook 04, section 3; benchmarks/README.md)."""

SHORT_RUN_AUGMENT = False
"""Whether notebook 04's short run augments: no, a regulariser pays only in long runs (TrainConfig's default)."""


def is_int(value: Any) -> bool:
    """True for an int (NumPy's too) that is not a bool (True is an int to Python, never a count to a user)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """True for an int or a float (NumPy's too) that is not a bool (True is an int to Python, never a rate)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_count(value: Any, minimum: int = 0) -> bool:
    """True for an int (not a bool) of at least `minimum`: the one rule for sizes, counts and seeds."""
    return is_int(value) and value >= minimum


def img_size_problem(img_size: Any, sizing: str = "pad", depth: int = 4) -> str:
    """What is wrong with IMG_SIZE for this sizing and network depth ("" when nothing is).

    The U-Net halves its input `depth` times, so the size must be a multiple of 2**depth; padding needs room
    for the 101x101 section.
    """
    step = 2 ** depth if is_int(depth) and depth > 0 else 16
    if not is_int(img_size) or img_size <= 0 or img_size % step:
        near = max(step, (img_size // step) * step) if is_int(img_size) else 112
        halvings = int(math.log2(step))
        return (f"IMG_SIZE must be a positive multiple of 2**DEPTH = {step} (the U-Net halves it {halvings} times), "
                f"e.g. {near} or {near + step}; got {img_size!r}")
    if sizing == "pad" and img_size < NATIVE_SIZE:
        smallest = -(-NATIVE_SIZE // step) * step
        return (f"IMG_SIZE must be at least {NATIVE_SIZE} to pad the {NATIVE_SIZE}x{NATIVE_SIZE} sections "
                f"(use {smallest} or {smallest + step}), or set SIZING = \"resize\"; got {img_size}")
    return ""


def is_improvement(value: float, best: float, monitor: str) -> bool:
    """Whether value beats best for the monitored quantity (higher score, lower loss)."""
    if not math.isfinite(value):
        return False
    if not math.isfinite(best):
        return True
    return value > best if MONITOR_MODES[monitor] == "max" else value < best


@dataclass
class TrainConfig:
    """Everything that defines a training run; the defaults are the course's recipe (notebook 04, section 3)."""

    data_dir: str = ""  # a folder in Kaggle's layout; "" means SALT_DATA_DIR or the built-in synthetic set
    n_images: int = 0  # labelled images to use, 0 means all
    val_fraction: float = 0.1  # held out, stratified by salt coverage
    img_size: int = 112  # network input side, a multiple of 2**depth; 112 is the smallest that holds 101 (pad)
    sizing: str = "pad"  # "pad" (reflect) or "resize" between 101 and img_size
    base_filters: int = 16
    depth: int = 4
    dropout: float = 0.05
    batch_norm: bool = True
    single_conv_blocks: bool = False  # True rebuilds the original notebook's slip
    skip_connections: bool = True  # False: no concatenations, an encoder-decoder (notebook 07)
    upsampling: str = "transpose3x3"  # the decoder's up-sampling, one of UPSAMPLINGS
    # TensorFlow's fused batch-norm kernel for training: the same arithmetic as Keras' layer, faster on a CPU
    # (README, Performance); False builds Keras' own BatchNormalization.
    fused_batch_norm: bool = True
    batch_norm_momentum: float = 0.9  # Keras' default, the original's, is 0.99: too slow to settle in a short run
    loss: str = "bce"
    learning_rate: float = 3e-3  # the peak rate of a cosine schedule (the original: a constant 1e-3)
    batch_size: int = 16  # per replica; the global batch is batch_size x replicas (the original: 32)
    epochs: int = 10  # with the cosine schedule, the rate reaches 0 at the last epoch
    lr_schedule: str = "cosine"  # "cosine": warm-up, then cosine decay; "plateau": ReduceLROnPlateau on val_loss
    warmup_epochs: float = 1.0  # cosine only: epochs of linear warm-up to learning_rate (at most half the run)
    reduce_lr_patience: int = 5  # the plateau schedule's: epochs without a lower val_loss before a cut
    reduce_lr_factor: float = 0.1
    min_lr: float = 1e-5
    early_stopping_patience: int = 10
    # The epoch kept and early stopping follow the validation competition score, the number the course is
    # judged by; the original followed val_loss ("val_loss" rebuilds that). A plateau schedule follows val_loss.
    monitor: str = "val_score"
    augment: bool = True
    seed: int = 0  # the initial weights, the augmentation, the batches and (unless split_seed) the split
    split_seed: int = -1  # -1: the split follows seed; else it is fixed, so runs with other seeds share it
    # A finished run folder whose best model starts this run (a fine-tuning stage, e.g. LOSS="lovasz"
    # after BCE). Its split must be this run's, or its training images would leak into validation.
    init_from: str = ""
    mixed_precision: str = "auto"  # auto: float16 on GPUs, bfloat16 on CPUs with native bf16, else float32
    jit_compile: str = "auto"  # auto: XLA on GPUs only
    distribute: str = "none"  # none, mirrored or multiworker
    scale_learning_rate: bool = True  # multiply the learning rate by the number of replicas
    progress: bool = True  # one line per epoch

    def validate(self) -> None:
        """Raise ValueError naming the first parameter that is out of range."""
        checks = [
            (is_int(self.n_images) and self.n_images >= 0, "N_IMAGES", "must be 0 (all) or positive"),
            (is_number(self.val_fraction) and 0 < self.val_fraction < 1, "VAL_FRACTION",
             "must lie strictly between 0 and 1"),
            (self.sizing in SIZINGS, "SIZING", f"must be one of {SIZINGS}"),
            (is_int(self.depth) and 1 <= self.depth <= 6, "DEPTH", "must be an integer from 1 to 6"),
            (is_int(self.base_filters) and self.base_filters > 0, "BASE_FILTERS", "must be a positive integer"),
            (is_int(self.batch_size) and self.batch_size > 0, "BATCH_SIZE", "must be positive"),
            (is_int(self.epochs) and self.epochs > 0, "EPOCHS", "must be positive"),
            (is_number(self.learning_rate) and self.learning_rate > 0, "LEARNING_RATE", "must be positive"),
            (is_number(self.batch_norm_momentum) and 0 < self.batch_norm_momentum < 1, "BATCH_NORM_MOMENTUM",
             "must lie strictly between 0 and 1"),
            (is_number(self.dropout) and 0 <= self.dropout < 1, "DROPOUT",
             "must lie from 0 (no dropout) up to but not including 1"),
            (self.upsampling in UPSAMPLINGS, "UPSAMPLING", f"must be one of {tuple(UPSAMPLINGS)}"),
            (is_int(self.split_seed) and self.split_seed >= -1, "SPLIT_SEED",
             "must be -1 (the split follows SEED) or a seed >= 0"),
            (self.lr_schedule in SCHEDULES, "LR_SCHEDULE", f"must be one of {SCHEDULES}"),
            (is_number(self.warmup_epochs) and self.warmup_epochs >= 0, "WARMUP_EPOCHS",
             "must be a number of epochs >= 0"),
            (self.loss in LOSS_NAMES, "LOSS", f"must be one of {LOSS_NAMES}"),
            (self.mixed_precision in SETTINGS, "MIXED_PRECISION", f"must be one of {SETTINGS}"),
            (self.jit_compile in SETTINGS, "JIT_COMPILE", f"must be one of {SETTINGS}"),
            (self.distribute in STRATEGIES, "DISTRIBUTE", f"must be one of {STRATEGIES}"),
            (self.monitor in MONITOR_MODES, "MONITOR", f"must be one of {tuple(MONITOR_MODES)}"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ValueError(f"{name} {rule}; got {getattr(self, name.lower())!r}")
        problem = img_size_problem(self.img_size, self.sizing, self.depth)
        if problem:
            raise ValueError(problem)

    @property
    def split_seed_used(self) -> int:
        """The seed that draws the training/validation split: split_seed when set, else seed."""
        return self.split_seed if self.split_seed >= 0 else self.seed

    def to_json(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def with_absolute_paths(self) -> TrainConfig:
        """A copy whose data_dir and init_from are absolute, so a run folder read from elsewhere finds them."""
        def absolute(value: str) -> str:
            return str(Path(value).expanduser().resolve()) if value else value

        return dataclasses.replace(self, data_dir=absolute(self.data_dir), init_from=absolute(self.init_from))

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from a dict written by to_json; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training config keys: {unknown}")
        # Runs saved before these parameters existed kept their best epoch by val_loss, with Keras' batch norm
        # at its default momentum and the plateau schedule: the original recipe's fields, not today's defaults.
        return cls(**{"monitor": "val_loss", "fused_batch_norm": False, **ORIGINAL_RECIPE, **values})


def flag_of(field_name: str) -> str:
    """The command-line flag of a TrainConfig field (`python -m helpers.training`): batch_size -> --batch-size."""
    return "--" + field_name.replace("_", "-")


def flags_of(values: dict[str, Any]) -> list[str]:
    """The command-line arguments that set these TrainConfig fields: {"dropout": 0.0} -> ["--dropout", "0.0"]."""
    return [text for name, value in values.items() for text in (flag_of(name), str(value))]


def fine_tune_config(config: TrainConfig, init_from: str | Path, epochs: int, loss: str = FINE_TUNE_LOSS,
                     learning_rate: float = FINE_TUNE_LEARNING_RATE) -> TrainConfig:
    """A second stage's config: the same data, split and network, starting from init_from's best model."""
    return dataclasses.replace(config, init_from=str(init_from), epochs=epochs, loss=loss, learning_rate=learning_rate)
