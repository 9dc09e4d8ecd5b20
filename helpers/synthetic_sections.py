"""One synthetic section, drawn like the real data: the mix of depths, salt and zooms, and the recipe.

``generate_sample`` draws a depth, whether there is salt and how much, and a wavelet, then builds
the section from ``helpers.synthetic_physics``: sediments dragged against the salt, salt inserted,
reflectivity convolved with the wavelet, noise, and grey levels like the real images. Each section
has its own random stream (``sample_rng``) and a Kaggle-like id (``synthetic_ids``), both derived
from (seed, split, index) only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from helpers import NATIVE_SIZE
from helpers.synthetic_physics import (
    SALT_KINDS,
    convolve_vertical,
    fold_and_fault_times,
    layered_impedance,
    reflectivity,
    ricker_wavelet,
    roughen,
    salt_body_mask,
    salt_level_set,
    smooth_random_field,
)

GENERATOR_VERSION = 1
# Most rows of model added above and below the picture (the reach of the widest wavelet).
_MAX_PAD = 46
_SPLIT_CODES = {"train": 0, "test": 1}
# Summary statistics of the 3200 real training sections (measured, see docs/synthetic_data.md);
# they steer the mix of depths, salt presence and coverage, never any real picture.
_DEPTH_BIN_EDGES = np.arange(50.0, 1001.0, 100.0)
_DEPTH_BIN_COUNTS = np.array([170, 249, 370, 472, 530, 515, 458, 343, 85], dtype=float)
_SALT_PROBABILITY_DEPTHS = np.arange(100.0, 1000.0, 100.0)
_SALT_PROBABILITY = np.array([0.19, 0.39, 0.56, 0.72, 0.72, 0.70, 0.65, 0.59, 0.35])
_COVERAGE_BIN_EDGES = np.array(
    [0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0]
)
_COVERAGE_BIN_COUNTS = np.array(
    [39, 35, 65, 104, 218, 237, 179, 149, 180, 164, 139, 118, 127, 63, 83, 50], dtype=float
)
# No real mask here is salt in every pixel (though 4 % are at least 95 % salt); a few synthetic
# sections are entirely salt so that the course can show that case too.
_FULL_SALT_SHARE = 0.025
_SALT_KIND_WEIGHTS = np.array([0.16, 0.36, 0.10, 0.14, 0.10, 0.14])
# Contrast of sections with salt relative to those without (measured: real 0.105 / 0.132 median std).
_SHADOWED_GAIN = 0.8
# Amplitudes (in sediment RMS units) above which the display gain starts to compress.
_SOFT_LIMIT = 2.5


@dataclass(frozen=True)
class SyntheticSection:
    """One generated section: image in [0, 1], mask in {0, 1} (both float32, 101x101) and its depth."""

    image: np.ndarray
    mask: np.ndarray
    depth: int


def sample_depth(rng: np.random.Generator) -> int:
    """A section depth (same units as the real depths.csv), distributed like the real ones."""
    weights = _DEPTH_BIN_COUNTS / _DEPTH_BIN_COUNTS.sum()
    k = rng.choice(weights.size, p=weights)
    return int(rng.integers(int(_DEPTH_BIN_EDGES[k]), int(_DEPTH_BIN_EDGES[k + 1])))


def salt_probability(depth: float) -> float:
    """Chance that a section at this depth shows salt (shallow and very deep sections rarely do)."""
    return float(np.interp(depth, _SALT_PROBABILITY_DEPTHS, _SALT_PROBABILITY))


def sample_coverage(rng: np.random.Generator) -> float:
    """Salt fraction of a section that has salt, distributed like the real non-empty masks."""
    if rng.random() < _FULL_SALT_SHARE:
        return 1.0
    weights = _COVERAGE_BIN_COUNTS / _COVERAGE_BIN_COUNTS.sum()
    k = rng.choice(weights.size, p=weights)
    # Never round down to zero salt: at least one pixel.
    low = max(float(_COVERAGE_BIN_EDGES[k]), 1.0 / NATIVE_SIZE**2)
    return float(rng.uniform(low, _COVERAGE_BIN_EDGES[k + 1]))


def sample_peak_frequency(rng: np.random.Generator, depth: float) -> float:
    """Ricker peak frequency (cycles/px): varied zoom between sections, lower for deeper ones."""
    # Deeper rocks absorb high frequencies, so deep sections look coarser (as in the real data).
    # The real zooms are skewed: a tail of finely layered sections, so an exponential term is added.
    spread = rng.normal(0.0, 0.33) + rng.exponential(0.45) - 0.45
    log_f = np.log(0.05) - 0.5 * (depth - 500.0) / 450.0 + spread
    return float(np.clip(np.exp(log_f), 0.022, 0.3))


def generate_sample(rng: np.random.Generator) -> SyntheticSection:
    """Generate one synthetic section with its salt mask and depth."""
    depth = sample_depth(rng)
    coverage = sample_coverage(rng) if rng.random() < salt_probability(depth) else 0.0
    peak_frequency = sample_peak_frequency(rng, depth)
    # The model extends above and below the picture by the wavelet's reach, so reflections from
    # just outside the section still reach its edges.
    reach = min(_MAX_PAD, int(np.ceil(1.0 / peak_frequency)))
    x = np.arange(NATIVE_SIZE)
    z = np.arange(-reach, NATIVE_SIZE + reach)
    window = slice(reach, reach + NATIVE_SIZE)

    times = fold_and_fault_times(rng, x, z)
    salt_share, mask, distance = _salt_share(rng, x, z, coverage, window)
    times = times + _drag(rng, distance)
    sediments = layered_impedance(rng, times, 1.0 / peak_frequency)
    log_impedance = _insert_salt(rng, sediments, salt_share)

    wavelet = ricker_wavelet(peak_frequency, reach)
    seismic = _seismic(rng, (log_impedance, sediments), salt_share, wavelet, window)
    # Salt bends and scatters the waves, so sediments beside and under it are lit less well
    # (shadow zones): sections with salt show weaker, blurrier sediments than those without.
    image = _to_grey(rng, seismic, _SHADOWED_GAIN if coverage > 0 else 1.0)
    return SyntheticSection(image=image, mask=mask, depth=depth)


def _salt_share(
    rng: np.random.Generator, x: np.ndarray, z: np.ndarray, coverage: float, window: slice
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Sub-pixel salt fraction of the model, the visible mask with the wanted coverage, distance to salt."""
    if coverage == 0.0:
        return np.zeros((z.size, x.size)), np.zeros((NATIVE_SIZE, NATIVE_SIZE), dtype=np.float32), None
    kind = str(rng.choice(SALT_KINDS, p=_SALT_KIND_WEIGHTS / _SALT_KIND_WEIGHTS.sum()))
    level_set = salt_level_set(rng, kind, x, z)
    if rng.random() < 0.06:
        # A second body: two salt structures (or a diapir next to a sheet) in one section.
        second = str(rng.choice(SALT_KINDS, p=_SALT_KIND_WEIGHTS / _SALT_KIND_WEIGHTS.sum()))
        level_set = np.maximum(level_set, salt_level_set(rng, second, x, z) - rng.uniform(0.0, 30.0))
    level_set = roughen(rng, level_set)
    mask, threshold = salt_body_mask(level_set[window], coverage)
    # A clipped distance is a pixel's salt fraction, so the salt edge is placed to sub-pixel accuracy.
    share = np.clip(0.5 + (level_set - threshold), 0.0, 1.0)
    share[window] = np.where(mask > 0, np.maximum(share[window], 0.5), np.minimum(share[window], 0.49))
    # The level set is close to a signed distance, so below the threshold it measures how far salt is.
    return share, mask, np.clip(threshold - level_set, 0.0, None)


def _drag(rng: np.random.Generator, distance: np.ndarray | None) -> np.ndarray | float:
    """Time shift that bends sediment layers up against the salt, strongest next to it."""
    if distance is None:
        return 0.0
    return rng.uniform(0.0, 12.0) * np.exp(-distance / rng.uniform(4.0, 15.0))


def _insert_salt(rng: np.random.Generator, sediments: np.ndarray, salt_share: np.ndarray) -> np.ndarray:
    """Replace sediments by salt: a strong, mostly positive contrast with weak chaotic internal layering."""
    if not salt_share.any():
        return sediments
    sign = 1.0 if rng.random() < 0.85 else -1.0
    salt_level = float(np.median(sediments)) + sign * rng.uniform(1.5, 3.5) * float(np.std(sediments))
    chaotic = smooth_random_field(rng, salt_share.shape, (rng.uniform(1.0, 3.0), rng.uniform(1.0, 3.0)))
    salt = salt_level + chaotic * rng.uniform(0.008, 0.025)
    return sediments * (1.0 - salt_share) + salt * salt_share


def _seismic(
    rng: np.random.Generator,
    models: tuple[np.ndarray, np.ndarray],
    salt_share: np.ndarray,
    wavelet: np.ndarray,
    window: slice,
) -> np.ndarray:
    """Noisy seismic of the visible window of models[0], in units of the RMS of models[1] (sediments only)."""
    noise_sigma = (rng.uniform(0.3, 1.5), rng.uniform(0.8, 3.0))
    # Noise goes through the wavelet too, so it has the same frequency band as the signal.
    noise = smooth_random_field(rng, salt_share.shape, noise_sigma)
    layers = np.stack([reflectivity(model) for model in models] + [noise]).astype(np.float32)
    # Beds thin, thicken and change rock type sideways, so reflection strength varies along a layer.
    lateral = smooth_random_field(rng, salt_share.shape, (rng.uniform(1.0, 4.0), rng.uniform(1.0, 3.0)))
    layers[:2] *= 1.0 + rng.uniform(0.1, 0.6) * lateral
    traces = convolve_vertical(layers, wavelet)
    with_salt, sediments_only, noise = gaussian_filter1d(traces[:, window], rng.uniform(0.0, 0.5), axis=2)
    signal_rms = float(np.std(sediments_only)) + 1e-12
    noise *= np.exp(rng.normal(np.log(0.3), 0.6)) * signal_rms / (float(np.std(noise)) + 1e-12)
    # Much real noise is generated by the reflections themselves (migration swings, multiples),
    # so it is weaker inside salt, where little reflects.
    salt = salt_share[window]
    noisy = with_salt + noise * (1.0 - rng.uniform(0.4, 0.8) * salt)
    # Salt interiors look blotchy rather than layered: smooth amplitude from imaging through salt.
    blotches = smooth_random_field(rng, salt.shape, rng.uniform(5.0, 12.0)) * rng.uniform(0.3, 0.8) * salt
    # A fine grain wider in band than the wavelet, as left by processing (and by the real images' 8 bits).
    grain = smooth_random_field(rng, salt.shape, rng.uniform(0.5, 1.0)) * rng.uniform(0.03, 0.15)
    return (noisy + (blotches + grain) * signal_rms) / np.sqrt(signal_rms**2 + float(np.mean(noise**2)))


def _to_grey(rng: np.random.Generator, seismic: np.ndarray, gain: float) -> np.ndarray:
    """Map normalised amplitudes to 8-bit-exact grey levels in [0, 1] centred near mid-grey."""
    polarity = rng.choice([-1.0, 1.0])
    shading = smooth_random_field(rng, seismic.shape, 20.0) * rng.uniform(0.0, 0.25)
    contrast = gain * float(np.exp(rng.normal(np.log(0.15), 0.22)))
    level = rng.normal(0.48, 0.085)
    # Display gain compresses the strongest reflections instead of clipping them, as in the real images.
    amplitude = _SOFT_LIMIT * np.tanh((polarity * seismic + shading) / _SOFT_LIMIT)
    grey = np.clip(level + contrast * amplitude, 0.0, 1.0)
    return (np.round(grey * 255.0) / 255.0).astype(np.float32)


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one section: depends on (seed, split, index) only, not on the set's size."""
    return np.random.default_rng(np.random.SeedSequence([seed, _split_code(split), index]))


def synthetic_ids(seed: int, split: str, count: int, taken: Iterable[str] = ()) -> list[str]:
    """Ten-hex-character ids like the real ones, derived from the seed, unique and not among `taken`."""
    ids: list[str] = []
    seen: set[str] = set(taken)
    for index in range(count):
        attempt = 0
        while (candidate := _hex_id(seed, split, index, attempt)) in seen:
            attempt += 1
        seen.add(candidate)
        ids.append(candidate)
    return ids


def _hex_id(seed: int, split: str, index: int, attempt: int) -> str:
    """Hash of the section's coordinates, 10 hex characters."""
    key = f"synthetic-v{GENERATOR_VERSION}:{seed}:{_split_code(split)}:{index}:{attempt}"
    return hashlib.blake2b(key.encode(), digest_size=5).hexdigest()


def _split_code(split: str) -> int:
    """Numeric code of 'train' or 'test'."""
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _SPLIT_CODES[split]
