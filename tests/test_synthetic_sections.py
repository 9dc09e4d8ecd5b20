"""Tests for helpers.synthetic_sections: the mix of sections like the real data, one section, streams and ids."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import fresh_rng
from helpers import NATIVE_SIZE
from helpers.synthetic_sections import (
    SyntheticSection,
    generate_sample,
    salt_probability,
    sample_coverage,
    sample_depth,
    sample_peak_frequency,
    sample_rng,
    synthetic_ids,
)


@pytest.fixture(scope="module")
def many_sections() -> list[SyntheticSection]:
    """300 sections, for the statistics of the mix."""
    return [generate_sample(sample_rng(0, "train", index)) for index in range(300)]


def test_sample_depth_is_spread_like_the_real_depths() -> None:
    depths = np.array([sample_depth(fresh_rng(seed)) for seed in range(400)])
    assert depths.min() >= 50 and depths.max() < 950
    assert 450 < depths.mean() < 560


def test_salt_probability_is_low_for_shallow_sections() -> None:
    assert 0 < salt_probability(60) < salt_probability(500) <= 1
    assert salt_probability(950) < salt_probability(500)


def test_sample_coverage_is_spread_and_sometimes_full() -> None:
    coverages = np.array([sample_coverage(fresh_rng(seed)) for seed in range(600)])
    assert coverages.min() > 0 and coverages.max() == 1.0
    assert 0.15 < np.mean(coverages < 0.1) < 0.55
    assert np.mean(coverages > 0.5) > 0.2


def test_sample_peak_frequency_is_lower_for_deeper_sections() -> None:
    shallow = np.mean([sample_peak_frequency(fresh_rng(seed), 100) for seed in range(200)])
    deep = np.mean([sample_peak_frequency(fresh_rng(seed), 900) for seed in range(200)])
    assert 0.022 <= deep < shallow <= 0.3


def test_generate_sample_returns_an_image_a_mask_and_a_depth() -> None:
    sample = generate_sample(fresh_rng())
    image, mask = sample.image, sample.mask
    assert image.shape == mask.shape == (NATIVE_SIZE, NATIVE_SIZE)
    assert image.dtype == mask.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert set(np.unique(mask)) <= {0.0, 1.0}
    # Exactly representable in 8 bits, so what is written is what was generated.
    np.testing.assert_array_equal(np.round(image * 255) / 255, image)
    assert isinstance(sample.depth, int) and 50 <= sample.depth < 950


def test_sections_are_deterministic_per_seed_split_and_index() -> None:
    first = generate_sample(sample_rng(3, "train", 7))
    again = generate_sample(sample_rng(3, "train", 7))
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.mask, again.mask)
    assert first.depth == again.depth
    for other in (sample_rng(4, "train", 7), sample_rng(3, "test", 7), sample_rng(3, "train", 8)):
        assert not np.array_equal(generate_sample(other).image, first.image)


def test_sample_rng_rejects_an_unknown_split() -> None:
    with pytest.raises(ValueError, match="split"):
        sample_rng(0, "validation", 0)


def test_coverage_mix_is_like_the_real_data(many_sections: list[SyntheticSection]) -> None:
    coverage = np.array([section.mask.mean() for section in many_sections])
    assert 0.30 < np.mean(coverage == 0) < 0.48  # real: 39 % empty
    assert np.sum(coverage == 1) >= 1
    assert len(np.unique(np.digitize(coverage[coverage > 0], np.linspace(0, 1, 11)))) >= 8


def test_grey_levels_are_like_the_real_data(many_sections: list[SyntheticSection]) -> None:
    images = np.stack([section.image for section in many_sections])
    assert 0.44 < images.mean() < 0.52  # real: 0.47 (0.48 without the blank images)
    assert 0.12 < images.std() < 0.18  # real: 0.16 (0.15 without the blank images)
    assert np.mean((images == 0) | (images == 1)) < 0.01


def test_salt_is_quieter_inside_than_the_sediments_outside(many_sections: list[SyntheticSection]) -> None:
    ratios = [
        section.image[section.mask > 0].std() / section.image[section.mask == 0].std()
        for section in many_sections
        if 0.2 < section.mask.mean() < 0.8
    ]
    assert 0.5 < np.median(ratios) < 0.95  # real: 0.79


def test_synthetic_ids_look_like_kaggle_ids_and_are_unique() -> None:
    ids = synthetic_ids(0, "train", 500)
    assert len(set(ids)) == 500
    assert all(len(i) == 10 and all(c in "0123456789abcdef" for c in i) for i in ids)
    assert synthetic_ids(0, "train", 5) == ids[:5]
    assert synthetic_ids(1, "train", 5) != ids[:5]
    assert not set(synthetic_ids(0, "test", 500, taken=ids)) & set(ids)
