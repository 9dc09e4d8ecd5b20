"""Tests for helpers.synthetic_physics: wavelet, convolution, random fields, layers, folds, salt bodies."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import fresh_rng
from helpers import NATIVE_SIZE
from helpers.synthetic_physics import (
    SALT_KINDS,
    convolve_vertical,
    fold_and_fault_times,
    impedance_log,
    layered_impedance,
    reflectivity,
    ricker_wavelet,
    roughen,
    salt_body_mask,
    salt_level_set,
    smooth_random_field,
)


def test_ricker_wavelet_is_symmetric_zero_mean_and_peaks_at_its_frequency() -> None:
    wavelet = ricker_wavelet(0.05, 60)
    assert wavelet.shape == (121,)
    assert wavelet[60] == pytest.approx(1.0)
    np.testing.assert_allclose(wavelet, wavelet[::-1])
    assert abs(wavelet.sum()) < 1e-6
    spectrum = np.abs(np.fft.rfft(wavelet, 4096))
    assert np.fft.rfftfreq(4096)[np.argmax(spectrum)] == pytest.approx(0.05, abs=0.002)


@pytest.mark.parametrize(("frequency", "half_length"), [(0.0, 10), (0.7, 10), (0.05, 0)])
def test_ricker_wavelet_rejects_bad_parameters(frequency: float, half_length: int) -> None:
    with pytest.raises(ValueError, match="peak_frequency|half_length"):
        ricker_wavelet(frequency, half_length)


def test_convolve_vertical_puts_the_wavelet_at_each_spike() -> None:
    section = np.zeros((50, 3))
    section[20, :] = [1.0, -2.0, 0.5]
    wavelet = ricker_wavelet(0.1, 8)
    out = convolve_vertical(section, wavelet)
    assert out.shape == section.shape
    np.testing.assert_allclose(out[12:29, 1], -2.0 * wavelet, atol=1e-12)
    np.testing.assert_allclose(out[:10], 0.0, atol=1e-12)


def test_convolve_vertical_works_on_stacks_of_sections() -> None:
    sections = fresh_rng().standard_normal((2, 40, 5))
    wavelet = ricker_wavelet(0.1, 6)
    out = convolve_vertical(sections, wavelet)
    np.testing.assert_allclose(out[1], convolve_vertical(sections[1], wavelet))
    np.testing.assert_allclose(out[1][:, 2], np.convolve(sections[1][:, 2], wavelet, mode="same"), atol=1e-12)


@pytest.mark.parametrize(("shape", "length"), [((10,), 7), ((10, 3), 6)])
def test_convolve_vertical_rejects_wrong_shapes(shape: tuple[int, ...], length: int) -> None:
    with pytest.raises(ValueError, match="odd-length"):
        convolve_vertical(np.zeros(shape), np.ones(length))


def test_smooth_random_field_is_standardised_and_correlated_over_sigma() -> None:
    field = smooth_random_field(fresh_rng(), (400, 300), (2.0, 6.0))
    assert field.shape == (400, 300)
    assert abs(field.mean()) < 0.1 and field.std() == pytest.approx(1.0, abs=0.05)
    # A Gaussian-smoothed white noise has autocorrelation exp(-lag^2 / (4 sigma^2)).
    assert np.mean(field[2:] * field[:-2]) == pytest.approx(np.exp(-0.25), abs=0.05)
    assert np.mean(field[:, 6:] * field[:, :-6]) == pytest.approx(np.exp(-0.25), abs=0.08)
    np.testing.assert_array_equal(field, smooth_random_field(fresh_rng(), (400, 300), (2.0, 6.0)))


@pytest.mark.parametrize(("shape", "sigma"), [((180, 101), (0.5, 1.0)), ((101, 101), 12.0), ((101,), 8.0)])
def test_smooth_random_field_has_unit_variance_on_average(shape: tuple[int, ...], sigma: float) -> None:
    rng = fresh_rng()
    variances = [np.mean(smooth_random_field(rng, shape, sigma) ** 2) for _ in range(200)]
    assert np.mean(variances) == pytest.approx(1.0, abs=0.06)


def test_reflectivity_is_half_the_jump_in_log_impedance() -> None:
    log_impedance = np.zeros((10, 2))
    log_impedance[6:] = 0.4
    out = reflectivity(log_impedance)
    assert out.shape == (10, 2)
    np.testing.assert_allclose(out[5], 0.2)
    assert np.count_nonzero(out) == 2


def test_impedance_log_is_layered_in_geological_time() -> None:
    times = np.linspace(-20.0, 120.0, 2000)
    log = impedance_log(fresh_rng(), times, mean_thickness=6.0)
    assert log.shape == times.shape and np.isfinite(log).all()
    # Mostly flat inside beds, with jumps at bed boundaries.
    steps = np.abs(np.diff(log))
    assert np.mean(steps < 1e-9) > 0.5 and np.ptp(log) > 0.1
    with pytest.raises(ValueError, match="mean_thickness"):
        impedance_log(fresh_rng(), times, mean_thickness=0.0)


def test_fold_and_fault_times_increase_downwards() -> None:
    x, z = np.arange(NATIVE_SIZE), np.arange(-20, NATIVE_SIZE + 20)
    for seed in range(20):
        times = fold_and_fault_times(fresh_rng(seed), x, z)
        assert times.shape == (z.size, x.size)
        assert np.mean(np.diff(times, axis=0) > 0) > 0.9


def test_layered_impedance_follows_the_time_field() -> None:
    times = np.tile(np.arange(100.0)[:, None], (1, 7))
    log = layered_impedance(fresh_rng(), times, period=20.0)
    assert log.shape == times.shape
    np.testing.assert_allclose(log, np.repeat(log[:, :1], 7, axis=1))


@pytest.mark.parametrize("kind", SALT_KINDS)
def test_salt_level_set_is_a_body_with_inside_and_outside(kind: str) -> None:
    x, z = np.arange(NATIVE_SIZE), np.arange(-40, NATIVE_SIZE + 40)
    for seed in range(5):
        level = salt_level_set(fresh_rng(seed), kind, x, z)
        assert level.shape == (z.size, x.size) and np.isfinite(level).all()
        assert level.max() > 0 > level.min()
        # Close to a signed distance: neighbouring pixels differ by about a pixel at most.
        assert np.percentile(np.abs(np.diff(level, axis=0)), 95) < 1.6


def test_salt_level_set_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="salt kind"):
        salt_level_set(fresh_rng(), "pillow", np.arange(5), np.arange(5))


def test_roughen_moves_the_outline_by_a_few_pixels() -> None:
    level = np.zeros((150, 101))
    rough = roughen(fresh_rng(), level)
    assert rough.shape == level.shape
    assert 0.1 < np.abs(rough).max() < 15.0


@pytest.mark.parametrize("coverage", [0.0, 0.0004, 0.3, 0.97, 1.0])
def test_salt_body_mask_has_exactly_the_wanted_coverage(coverage: float) -> None:
    level = smooth_random_field(fresh_rng(), (NATIVE_SIZE, NATIVE_SIZE), 8.0)
    mask, threshold = salt_body_mask(level, coverage)
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    assert int(mask.sum()) == round(coverage * mask.size)
    np.testing.assert_array_equal(mask, (level > threshold).astype(np.float32))


def test_salt_body_mask_rejects_a_coverage_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="coverage"):
        salt_body_mask(np.zeros((3, 3)), 1.5)
