"""The recipe ablation: its steps add the course's changes to the original recipe one at a time."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import recipe_ablation as ablation
from helpers.config import ORIGINAL_RECIPE, TrainConfig


def test_steps_start_from_the_original_and_end_at_the_course_recipe():
    configs = ablation.step_configs(TrainConfig(n_images=64, epochs=3))
    steps = list(configs.values())
    assert {key: getattr(steps[0], key) for key in ORIGINAL_RECIPE} == ORIGINAL_RECIPE
    course = TrainConfig()
    assert {key: getattr(steps[-1], key) for key in ORIGINAL_RECIPE} == {key: getattr(course, key)
                                                                           for key in ORIGINAL_RECIPE}
    assert steps[0].augment and not steps[-1].augment  # the last step is notebook 04's short run
    assert all((config.n_images, config.epochs) == (64, 3) for config in steps)  # the budget is the base's
    for before, after in zip(steps, steps[1:]):  # each step changes only what it names
        changed = {key for key in (*ORIGINAL_RECIPE, "augment") if getattr(before, key) != getattr(after, key)}
        assert 1 <= len(changed) <= 2


def test_summary_compares_each_step_with_the_original_and_the_one_before():
    rng = np.random.default_rng(0)
    base = rng.random((2, 50))
    scores = {"original": base, "a": base + 0.1, "b": base + 0.1}
    rows = ablation.summarise(scores)
    assert [row["name"] for row in rows] == ["original", "a", "b"] and "vs_original" not in rows[0]
    assert rows[1]["vs_original"]["difference"] == pytest.approx(0.1) and rows[1]["vs_original"]["resolved"]
    assert rows[2]["vs_previous"]["difference"] == pytest.approx(0.0) and not rows[2]["vs_previous"]["resolved"]
    assert rows[2]["vs_previous"]["compared_with"] == "a"
    json.dumps(rows)
    table = ablation.format_table(rows)
    assert table.count("\n") == 4 and "+0.100 [+0.100, +0.100]" in table


@pytest.mark.parametrize(("argv", "message"), [(["--epochs", "1"], "--epochs must be at least 2"),
                                               (["--seeds", "0"], "--seeds must be at least 1")])
def test_refuses_a_budget_that_cannot_compare(argv, message, capsys):
    with pytest.raises(SystemExit):
        ablation.parse_args(argv)
    assert message in capsys.readouterr().err
