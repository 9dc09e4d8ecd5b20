"""helpers.comparison: the paired two-level bootstrap of a variant's score difference to the baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.comparison import Difference, paired_bootstrap


def section_scores(seeds: int = 3, sections: int = 80, seed: int = 0) -> np.ndarray:
    """Scores that vary a lot between sections (0 to 1) and a little between training seeds."""
    rng = np.random.default_rng(seed)
    per_section = rng.uniform(0, 1, sections)
    return np.clip(per_section + rng.normal(0, 0.02, (seeds, sections)), 0, 1)


def test_identical_scores_give_no_difference() -> None:
    scores = section_scores()
    result = paired_bootstrap(scores, scores, n_resamples=500)
    assert result.difference == 0 and result.low <= 0 <= result.high
    assert not result.resolved
    assert result.variant_mean == result.baseline_mean == pytest.approx(scores.mean())
    assert (result.seeds, result.sections, result.confidence) == (3, 80, 0.95)


@pytest.mark.parametrize("shift", [0.05, -0.013])
def test_a_constant_shift_is_the_difference_with_a_zero_width_interval(shift: float) -> None:
    baseline = section_scores()
    result = paired_bootstrap(baseline + shift, baseline, n_resamples=500)
    assert result.difference == pytest.approx(shift, abs=1e-12)
    assert result.low == pytest.approx(shift, abs=1e-12) and result.high == pytest.approx(shift, abs=1e-12)
    assert result.resolved


def test_a_large_consistent_gain_is_resolved() -> None:
    rng = np.random.default_rng(1)
    baseline = section_scores()
    result = paired_bootstrap(baseline + 0.05 + rng.normal(0, 0.05, baseline.shape), baseline, n_resamples=1000)
    assert result.resolved and result.low > 0.02
    assert result.low <= result.difference <= result.high


def test_pure_noise_is_mostly_not_resolved() -> None:
    rng = np.random.default_rng(2)
    baseline = section_scores()
    resolved = [paired_bootstrap(baseline + rng.normal(0, 0.05, baseline.shape), baseline, n_resamples=500,
                                 seed=trial).resolved for trial in range(20)]
    # A 95 % interval misses 0 for about 1 in 20 noise-only variants; a few at most is still noise.
    assert sum(resolved) <= 3


def test_the_interval_contains_the_observed_difference() -> None:
    rng = np.random.default_rng(3)
    baseline = section_scores(seeds=4, sections=50)
    for trial in range(5):
        variant = baseline + rng.normal(0.01 * trial, 0.1, baseline.shape)
        result = paired_bootstrap(variant, baseline, n_resamples=500, seed=trial)
        assert result.low <= result.difference <= result.high
        assert result.difference == pytest.approx(variant.mean() - baseline.mean(), abs=1e-12)


def test_the_result_depends_only_on_the_seed() -> None:
    rng = np.random.default_rng(4)
    baseline = section_scores()
    variant = baseline + rng.normal(0.01, 0.1, baseline.shape)
    first = paired_bootstrap(variant, baseline, n_resamples=500, seed=7)
    assert paired_bootstrap(variant, baseline, n_resamples=500, seed=7) == first
    assert paired_bootstrap(variant, baseline, n_resamples=500, seed=8) != first


def test_a_wider_confidence_gives_a_wider_interval() -> None:
    rng = np.random.default_rng(5)
    baseline = section_scores()
    variant = baseline + rng.normal(0.01, 0.1, baseline.shape)
    narrow = paired_bootstrap(variant, baseline, n_resamples=1000, confidence=0.5)
    wide = paired_bootstrap(variant, baseline, n_resamples=1000, confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_pairing_cancels_how_much_sections_differ() -> None:
    rng = np.random.default_rng(6)
    baseline = section_scores(seeds=3, sections=100)
    variant = baseline + 0.01 + rng.normal(0, 0.002, baseline.shape)
    assert np.ptp(baseline) > 0.9  # section scores span almost 0..1
    result = paired_bootstrap(variant, baseline, n_resamples=1000)
    # Unpaired, each mean would be uncertain by its own spread over the cells: an interval of about this width.
    unpaired_width = 2 * 1.96 * np.sqrt(variant.var() / variant.size + baseline.var() / baseline.size)
    assert unpaired_width > 0.05
    assert result.high - result.low < 0.002 < unpaired_width / 25
    assert result.resolved and result.low > 0.009


def test_a_single_seed_and_section_is_accepted() -> None:
    result = paired_bootstrap(np.array([[0.7]]), np.array([[0.5]]), n_resamples=100)
    assert result.difference == pytest.approx(0.2) and result.low == pytest.approx(0.2)
    assert (result.seeds, result.sections) == (1, 1)


@pytest.mark.parametrize(("variant", "baseline", "kwargs", "message"), [
    (np.zeros(5), np.zeros((1, 5)), {}, r"variant_scores must be 2-D"),
    (np.zeros((1, 5)), np.zeros((1, 5, 1)), {}, r"baseline_scores must be 2-D"),
    (np.zeros((2, 5)), np.zeros((3, 5)), {}, r"variant_scores and baseline_scores must have the same"),
    (np.zeros((0, 5)), np.zeros((0, 5)), {}, r"variant_scores needs at least one seed and one section"),
    (np.zeros((2, 5)), np.zeros((2, 0)), {}, r"baseline_scores needs at least one seed and one section"),
    (np.full((2, 5), np.nan), np.zeros((2, 5)), {}, r"variant_scores has 10 non-finite"),
    (np.zeros((2, 5)), np.array([[0, 0, 0, 0, np.inf]] * 2), {}, r"baseline_scores has 2 non-finite"),
    (np.zeros((2, 5)), np.zeros((2, 5)), {"confidence": 1.0}, r"confidence must be between 0 and 1"),
    (np.zeros((2, 5)), np.zeros((2, 5)), {"confidence": 0}, r"confidence must be between 0 and 1"),
    (np.zeros((2, 5)), np.zeros((2, 5)), {"n_resamples": 99}, r"n_resamples must be at least 100"),
])
def test_bad_arguments_are_named(variant: np.ndarray, baseline: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(variant, baseline, **kwargs)


def test_to_json_has_plain_values_only() -> None:
    baseline = section_scores()
    result = paired_bootstrap(baseline + 0.02, baseline, n_resamples=200)
    record = result.to_json("flip augmentation", compared_with="no augmentation")
    assert set(record) == {"name", "mean", "difference", "low", "high", "seeds", "resolved", "compared_with"}
    assert json.loads(json.dumps(record)) == record
    assert record["name"] == "flip augmentation" and record["compared_with"] == "no augmentation"
    assert record["mean"] == pytest.approx(result.variant_mean) and record["seeds"] == 3 and record["resolved"] is True
    assert [type(record[key]) for key in ("mean", "difference", "low", "high", "seeds", "resolved")] == [
        float, float, float, float, int, bool]
    assert result.to_json("x")["compared_with"] == "baseline"


def test_numpy_values_become_plain_in_to_json() -> None:
    difference = Difference(variant_mean=np.float32(0.5), baseline_mean=0.4, difference=np.float64(0.1), low=0.05,
                            high=0.15, seeds=np.int64(3), sections=10, confidence=0.95)
    record = difference.to_json("v")
    assert type(record["mean"]) is float and type(record["seeds"]) is int and type(record["resolved"]) is bool
    json.dumps(record)
