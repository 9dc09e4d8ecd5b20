"""The training config and the rules its values follow (shared with the course runner's parameter checks)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from helpers.config import (
    LOSS_NAMES,
    REAL_DATA_RECIPE,
    SETTINGS,
    STRATEGIES,
    TrainConfig,
    flags_of,
    img_size_problem,
    is_improvement,
    is_int,
    is_number,
)


def test_config_rejects_bad_values_naming_the_parameter():
    with pytest.raises(ValueError, match="IMG_SIZE"):
        TrainConfig(img_size=100).validate()
    with pytest.raises(ValueError, match="IMG_SIZE.*101"):
        TrainConfig(img_size=96, sizing="pad").validate()
    with pytest.raises(ValueError, match="BATCH_SIZE"):
        TrainConfig(batch_size=0).validate()
    with pytest.raises(ValueError, match="VAL_FRACTION"):
        TrainConfig(val_fraction=1.0).validate()
    with pytest.raises(ValueError, match="DISTRIBUTE"):
        TrainConfig(distribute="tpu").validate()
    with pytest.raises(ValueError):
        TrainConfig(loss="hinge").validate()
    with pytest.raises(ValueError, match="MONITOR.*val_score.*'iou'"):
        TrainConfig(monitor="iou").validate()
    with pytest.raises(ValueError, match="DROPOUT.*got 1.0"):
        TrainConfig(dropout=1.0).validate()
    # A value of the wrong type (a hand-edited config.json, a dict of parameters) names its parameter too,
    # rather than failing inside a comparison with a TypeError.
    for name, value in [("learning_rate", "0.001"), ("dropout", None), ("val_fraction", "0.1"),
                        ("batch_norm_momentum", [0.9]), ("warmup_epochs", True)]:
        with pytest.raises(ValueError, match=f"{name.upper()}.*got {re.escape(repr(value))}"):
            TrainConfig(**{name: value}).validate()


def test_config_round_trips_through_json():
    config = TrainConfig(epochs=7, loss="bce_dice")
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_json({"epochs": 1, "colour": "red"})
    # Run folders written before MONITOR existed selected their best epoch by val_loss, and resume that way.
    assert TrainConfig.from_json({"epochs": 1}).monitor == "val_loss"
    assert TrainConfig.from_json({"epochs": 1}).fused_batch_norm is False  # older runs used Keras' batch norm
    assert TrainConfig().monitor == "val_score"
    # ... and with the original recipe's batch, batch-norm momentum and plateau schedule, whatever today's defaults.
    old_run = TrainConfig.from_json({"epochs": 1})
    assert (old_run.batch_size, old_run.batch_norm_momentum, old_run.lr_schedule) == (32, 0.99, "plateau")
    assert TrainConfig.from_json({"epochs": 1, "batch_size": 8}).batch_size == 8  # what a run recorded wins


def test_improvement_means_a_higher_score_or_a_lower_loss():
    assert is_improvement(0.7, 0.6, "val_score") and not is_improvement(0.6, 0.7, "val_score")
    assert is_improvement(0.2, 0.3, "val_loss") and not is_improvement(0.3, 0.2, "val_loss")
    assert not is_improvement(0.6, 0.6, "val_score")  # a tie keeps the earlier epoch
    assert is_improvement(0.1, math.nan, "val_score") and not is_improvement(math.nan, 0.1, "val_loss")


def test_img_size_follows_the_depth_and_the_sizing():
    assert img_size_problem(112) == "" and img_size_problem(128, "pad", 5) == ""
    assert "multiple of 2**DEPTH = 16" in img_size_problem(100)
    assert "multiple of 2**DEPTH = 32" in img_size_problem(112, "pad", 5)  # 112 = 3.5 x 32
    assert "at least 101" in img_size_problem(96, "pad") and img_size_problem(96, "resize") == ""
    assert img_size_problem(32, "resize", 2) == "" and "positive" in img_size_problem(0, "resize")
    assert "got True" in img_size_problem(True)


def test_each_choice_list_is_the_one_its_module_uses():
    from helpers import device, losses, sizing

    assert set(losses.LOSSES) == set(LOSS_NAMES)
    assert (device.SETTINGS, device.STRATEGIES) == (SETTINGS, STRATEGIES)
    assert set(sizing.MODES) == {"pad", "resize"}
    assert is_int(3) and not is_int(True) and not is_int(3.0)
    assert is_number(3) and is_number(0.5) and is_number(np.float32(0.5)) and is_number(np.int64(2))
    assert not is_number(True) and not is_number(np.bool_(True)) and not is_number("0.5")


def test_schedule_fields_are_checked_naming_the_parameter():
    TrainConfig(epochs=1, lr_schedule="cosine").validate()  # a warm-up longer than the run is cut to half of it
    with pytest.raises(ValueError, match="WARMUP_EPOCHS"):
        TrainConfig(warmup_epochs=-1).validate()
    with pytest.raises(ValueError, match="LR_SCHEDULE"):
        TrainConfig(lr_schedule="linear").validate()
    with pytest.raises(ValueError, match="BATCH_NORM_MOMENTUM"):
        TrainConfig(batch_norm_momentum=1.0).validate()


def test_upsampling_and_split_seed_are_checked_naming_the_parameter():
    with pytest.raises(ValueError, match="UPSAMPLING.*resize_conv.*'bilinear'"):
        TrainConfig(upsampling="bilinear").validate()
    with pytest.raises(ValueError, match="SPLIT_SEED"):
        TrainConfig(split_seed=-2).validate()
    assert TrainConfig(seed=3).split_seed_used == 3
    assert TrainConfig(seed=3, split_seed=0).split_seed_used == 0


def test_a_fixed_split_seed_gives_runs_with_other_seeds_the_same_split(synthetic_data_dir):
    from helpers.prepared_data import prepare_data

    splits = [prepare_data(TrainConfig(data_dir=str(synthetic_data_dir), seed=seed, split_seed=split_seed),
                           progress=False).split() for seed, split_seed in ((0, -1), (1, 0), (1, -1))]
    assert splits[0] == splits[1]  # seed 1 with the split of seed 0
    assert splits[0] != splits[2]  # seed 1 alone draws its own split


def test_flags_of_gives_the_command_line_that_sets_those_fields():
    import dataclasses

    from helpers.training import parse_args

    values = {**REAL_DATA_RECIPE, "batch_size": 8, "augment": False, "lr_schedule": "plateau"}
    assert flags_of({"batch_size": 8}) == ["--batch-size", "8"]
    config, _, _, _ = parse_args(flags_of(values))
    assert config == dataclasses.replace(TrainConfig(), **values)
