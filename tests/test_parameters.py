"""The rules the notebooks' parameters follow (helpers.parameters), each naming the bad parameter."""

from __future__ import annotations

import pytest

from helpers.parameters import check_parameters


def test_check_parameters_accepts_good_values():
    check_parameters(EPOCHS=2, BATCH_SIZE=16, N_IMAGES=0, IMG_SIZE=128, SIZING="pad", LOSS="bce_dice",
                            LEARNING_RATE=1e-3, TTA=True, DATA_DIR="", DEPTH=4, BASE_FILTERS=16,
                            FINETUNE_EPOCHS=0, FINETUNE_LOSS="lovasz", FINETUNE_LEARNING_RATE=1e-4,
                            LR_SCHEDULE="plateau", BATCH_NORM_MOMENTUM=0.99, SEEDS=3, SPLIT_SEED=0, DROPOUT=0)


@pytest.mark.parametrize(
    ("values", "message"),
    [({"IMG_SIZE": 100}, "IMG_SIZE must be a positive multiple of 16"),
     ({"IMG_SIZE": 96, "SIZING": "pad"}, "at least 101"),
     ({"IMG_SIZE": 48, "DEPTH": 5}, "multiple of 2\\*\\*DEPTH = 32"),
     ({"EPOCHS": 0}, "EPOCHS must be a positive integer"),
     ({"EPOCHS": 2.5}, "EPOCHS"),
     ({"N_IMAGES": -1}, "N_IMAGES"),
     ({"FINETUNE_EPOCHS": -1}, "FINETUNE_EPOCHS must be an integer >= 0 \\(0 skips"),
     ({"FINETUNE_LOSS": "hinge"}, "FINETUNE_LOSS must be one of"),
     ({"FINETUNE_LEARNING_RATE": 0}, "FINETUNE_LEARNING_RATE must be a positive number"),
     ({"AUGMENT": "yes"}, "AUGMENT must be True or False"),
     ({"DROPOUT": 1.0}, "DROPOUT must be a number from 0 \\(no dropout\\)"),
     ({"DROPOUT": True}, "DROPOUT must be a number"),
     ({"LOSS": "hinge"}, "LOSS must be one of"),
     ({"DATA_DIR": "/no/such/folder"}, "DATA_DIR must be"),
     ({"LR_SCHEDULE": "linear"}, "LR_SCHEDULE must be one of"),
     ({"BATCH_NORM_MOMENTUM": 1}, "BATCH_NORM_MOMENTUM must lie strictly between 0 and 1"),
     ({"SEEDS": 0}, "SEEDS must be a positive integer"),
     ({"SPLIT_SEED": -1}, "SPLIT_SEED")],
)
def test_check_parameters_names_the_bad_parameter(values, message):
    with pytest.raises(ValueError, match=message):
        check_parameters(**values)


def test_check_parameters_refuses_names_it_has_no_rule_for():
    with pytest.raises(ValueError, match="no rule for COLOUR"):
        check_parameters(COLOUR="red")
