"""The rules the notebooks' parameters follow: each notebook checks its parameters first, naming the bad one.

The course runner checks the values given on its command line with the same rules before running anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.config import (
    LOSS_NAMES,
    MONITOR_MODES,
    SCHEDULES,
    SETTINGS,
    SIZINGS,
    STRATEGIES,
    img_size_problem,
    is_count,
    is_int,
    is_number,
)


def _choice(*allowed: str) -> tuple[Any, str]:
    """A rule accepting one of the allowed strings."""
    return (lambda value: value in allowed), f"must be one of {', '.join(map(repr, allowed))}"


def _folder_rule(value: Any) -> bool:
    """"" (the default) or an existing folder."""
    return isinstance(value, (str, Path)) and (str(value) == "" or Path(value).expanduser().is_dir())


def _integer(least: int, rule: str) -> tuple[Any, str]:
    """A rule accepting an int (not a bool) of at least `least`."""
    return (lambda value: is_count(value, least)), rule


_POSITIVE_NUMBER = (lambda v: is_number(v) and v > 0,
                    "must be a positive number, e.g. 0.001")
_BOOLEAN = (lambda v: isinstance(v, bool), "must be True or False")

PARAMETER_RULES: dict[str, tuple[Any, str]] = {
    "EPOCHS": _integer(1, "must be a positive integer, e.g. 2 for a smoke run"),
    "BATCH_SIZE": _integer(1, "must be a positive integer, e.g. 32"),
    "N_IMAGES": _integer(0, "must be an integer >= 0 (0 means all images)"),
    "N_SHOW": _integer(1, "must be a positive integer"),
    "SEED": _integer(0, "must be an integer >= 0"),
    "SEEDS": _integer(1, "must be a positive integer: how many seeds each variant trains with (3 or more to "
                         "see the spread)"),
    "SPLIT_SEED": _integer(0, "must be an integer >= 0"),
    "VAL_FRACTION": (lambda v: is_number(v) and 0 < v < 1,
                     "must lie strictly between 0 and 1, e.g. 0.1"),
    "N_RANDOM_CHECKS": _integer(0, "must be an integer >= 0 (0 checks the grid alone)"),
    "LEARN_STEPS": _integer(0, "must be an integer >= 0 (0 compares the models untrained)"),
    "BASE_FILTERS": _integer(1, "must be a positive integer, e.g. 16"),
    "DEPTH": (lambda v: is_int(v) and 1 <= v <= 6, "must be an integer from 1 to 6"),
    "IMG_SIZE": (lambda v: not img_size_problem(v, sizing="resize"),
                 "must be a positive multiple of 16 (the U-Net halves it four times), e.g. 112 or 128"),
    "LEARNING_RATE": _POSITIVE_NUMBER,
    "LOSS": _choice(*LOSS_NAMES),
    "FINETUNE_EPOCHS": _integer(0, "must be an integer >= 0 (0 skips the second stage)"),
    "FINETUNE_LEARNING_RATE": _POSITIVE_NUMBER,
    "FINETUNE_LOSS": _choice(*LOSS_NAMES),
    "MONITOR": _choice(*MONITOR_MODES),
    "LR_SCHEDULE": _choice(*SCHEDULES),
    "BATCH_NORM_MOMENTUM": (lambda v: is_number(v) and 0 < v < 1,
                            "must lie strictly between 0 and 1, e.g. 0.9 (Keras' default: 0.99)"),
    "DROPOUT": (lambda v: is_number(v) and 0 <= v < 1,
                "must be a number from 0 (no dropout) up to but not including 1, e.g. 0.05"),
    "SIZING": _choice(*SIZINGS),
    "MIXED_PRECISION": _choice(*SETTINGS),
    "DISTRIBUTE": _choice(*STRATEGIES),
    "AUGMENT": _BOOLEAN,
    "TTA": _BOOLEAN,
    "DATA_DIR": (_folder_rule, "must be \"\" (SALT_DATA_DIR, else the built-in set) or an existing folder "
                 "in Kaggle's layout"),
    "TEST_DIR": (_folder_rule, "must be \"\" (DATA_DIR's test/images) or an existing folder of PNG images"),
}


IN_A_NOTEBOOK = "Change it in the parameters cell (or with -p {name} ...)"
"""How a notebook's reader changes a parameter; the course runner says how on its command line instead."""


def check_parameters(how_to_change: str = IN_A_NOTEBOOK, **values: Any) -> None:
    """Raise ValueError naming the first parameter whose value cannot work, and what to set instead."""
    for name, value in values.items():
        if name not in PARAMETER_RULES:
            raise ValueError(f"check_parameters has no rule for {name}; known: {', '.join(sorted(PARAMETER_RULES))}")
        accepts, rule = PARAMETER_RULES[name]
        if not accepts(value):
            raise ValueError(f"{name} {rule}; got {value!r}. {how_to_change.format(name=name)}")
    if "IMG_SIZE" in values and ("SIZING" in values or "DEPTH" in values):
        problem = img_size_problem(values["IMG_SIZE"], values.get("SIZING", "resize"), values.get("DEPTH", 4))
        if problem:
            raise ValueError(problem)
