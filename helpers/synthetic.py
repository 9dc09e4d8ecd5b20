"""A built-in, physically motivated stand-in for the TGS salt data, so the course runs with no download.

Each section is a small convolutional seismic model: layered sediments (a random impedance log,
folded, dipping and faulted), a salt body with a smooth irregular outline (dome, diapir, sheet,
flank, ...), sediments dragged up against the salt, a reflectivity series convolved vertically with
a Ricker wavelet, band-limited noise and grey levels like the real images. The physics is described
in docs/synthetic_data.md. ``write_synthetic_dataset`` writes Kaggle's folder layout, so every
reader of the real data reads this too; ``builtin_data_dir`` generates it once into a cache.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import errno
import hashlib
import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import fft as scipy_fft
from scipy.fft import next_fast_len
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter

from helpers import NATIVE_SIZE
from helpers.errors import DataError
from helpers.rle import rle_encode

try:
    import fcntl  # POSIX: a lock on a file in a staging folder tells whether its writer is still alive
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

GENERATOR_VERSION = 1
MARKER_NAME = "SYNTHETIC.json"
CACHE_ENV = "SALT_CACHE_DIR"
DEFAULT_N_TRAIN = 4000
DEFAULT_N_TEST = 500

# Most rows of model added above and below the picture (the reach of the widest wavelet).
_MAX_PAD = 46
_SPLIT_CODES = {"train": 0, "test": 1}
_STAGING_INFIX = ".partial-"
_LOCK_NAME = ".writing.lock"
# A staging folder without its lock file (its writer killed within a moment of creating it) is stale after this.
_STALE_UNLOCKED_S = 600
_PR_SET_PDEATHSIG = 1
# Fewer sections than this are written in-process: starting workers would cost more than it saves.
_MIN_PARALLEL = 200

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

_SALT_KINDS = ("top", "flank", "dome", "diapir", "sheet", "base")
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


# --------------------------------------------------------------------------------------------
# Physics: wavelet, random fields, sediments, salt
# --------------------------------------------------------------------------------------------


def ricker_wavelet(peak_frequency: float, half_length: int) -> np.ndarray:
    """Zero-phase Ricker wavelet sampled at 1 px, peak 1 at the centre, length 2 * half_length + 1."""
    if not 0.0 < peak_frequency <= 0.5:
        raise ValueError(f"peak_frequency must be in (0, 0.5] cycles per pixel, got {peak_frequency}")
    if half_length < 1:
        raise ValueError(f"half_length must be at least 1 pixel, got {half_length}")
    arg = (np.pi * peak_frequency * np.arange(-half_length, half_length + 1)) ** 2
    return ((1.0 - 2.0 * arg) * np.exp(-arg)).astype(np.float64)


def convolve_vertical(sections: np.ndarray, wavelet: np.ndarray) -> np.ndarray:
    """Convolve every column of (..., rows, cols) sections with an odd-length, centred wavelet; same shape."""
    if sections.ndim < 2 or wavelet.ndim != 1 or wavelet.size % 2 == 0:
        raise ValueError(
            "need sections of shape (..., rows, cols) and an odd-length 1-D wavelet, "
            f"got {sections.shape} and {wavelet.shape}"
        )
    rows, half = sections.shape[-2], wavelet.size // 2
    n = next_fast_len(rows + wavelet.size - 1, real=True)
    spectrum = scipy_fft.rfft(sections, n, axis=-2) * scipy_fft.rfft(wavelet, n)[:, None]
    return scipy_fft.irfft(spectrum, n, axis=-2)[..., half : half + rows, :]


def smooth_random_field(
    rng: np.random.Generator, shape: tuple[int, ...], sigma: float | tuple[float, ...]
) -> np.ndarray:
    """Gaussian-smoothed white noise (sigma in px per axis) with zero mean and unit standard deviation."""
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=float), (len(shape),))
    # Drawn directly in the Fourier domain, which costs the same for any sigma. The margin keeps
    # the FFT's periodic wrap-around from tying opposite edges together.
    padded = tuple(next_fast_len(int(n + min(np.ceil(3 * s), 2 * n)), real=True) for n, s in zip(shape, sigmas))
    spectrum, variance = _random_spectrum(rng, _gaussian_gains(padded, sigmas))
    field = scipy_fft.irfftn(spectrum, s=padded)[tuple(slice(0, n) for n in shape)]
    # Scaled by the expected, not the drawn, deviation: a field as wide as the picture may well
    # come out weaker or stronger than average, as it would in nature.
    field *= np.float32(np.prod(padded) / np.sqrt(variance))
    return field


def _gaussian_gains(padded: tuple[int, ...], sigmas: np.ndarray) -> list[np.ndarray]:
    """Fourier gain of a Gaussian blur along each axis (the last one halved, as rfftn stores it)."""
    last = len(padded) - 1
    return [
        np.exp(-2.0 * (np.pi * s * (np.fft.rfftfreq(n) if axis == last else np.fft.fftfreq(n))) ** 2)
        for axis, (n, s) in enumerate(zip(padded, sigmas))
    ]


def _random_spectrum(rng: np.random.Generator, gains: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Random coefficients shaped by separable gains (drawn only where they pass anything), and N^2 var."""
    passed = [np.flatnonzero(gain > 1e-3) for gain in gains]
    gain = gains[0][passed[0]]
    for axis in range(1, len(gains)):
        gain = np.multiply.outer(gain, gains[axis][passed[axis]])
    # Uniform rather than Gaussian coefficients: four times cheaper to draw, and every pixel sums
    # so many of them that the field is Gaussian all the same.
    coefficients = rng.random((*gain.shape, 2), dtype=np.float32)
    coefficients -= 0.5
    coefficients = coefficients.view(np.complex64)[..., 0]
    coefficients *= gain.astype(np.float32)
    # Parseval: a stored coefficient stands for itself and its mirror image (E|c|^2 = gain^2 / 6),
    # except in the zero- and Nyquist-frequency columns, where only its real part counts.
    last = gains[-1].size
    weight = np.where((passed[-1] == 0) | ((passed[-1] == last - 1) & (last % 2 == 1)), 1 / 12, 1 / 3)
    variance = float(np.sum(gain**2 * weight))
    full_shape = tuple(g.size for g in gains)
    if coefficients.shape == full_shape:
        return coefficients, variance
    spectrum = np.zeros(full_shape, dtype=np.complex64)
    spectrum[np.ix_(*passed)] = coefficients
    return spectrum, variance


def reflectivity(log_impedance: np.ndarray) -> np.ndarray:
    """Vertical reflection coefficients of a log-impedance section (row i: contrast between rows i and i+1)."""
    # For small contrasts (I2 - I1) / (I2 + I1) is half the jump in log-impedance.
    contrast = 0.5 * np.diff(log_impedance, axis=0)
    return np.concatenate([contrast, np.zeros_like(contrast[:1])], axis=0)


def impedance_log(rng: np.random.Generator, times: np.ndarray, mean_thickness: float) -> np.ndarray:
    """Log-impedance of a random stack of layers at the given relative geological times (px of depth)."""
    if mean_thickness <= 0:
        raise ValueError(f"mean_thickness must be positive, got {mean_thickness}")
    start, stop = float(times.min()) - 2.0, float(times.max()) + 2.0
    n_layers = int((stop - start) / mean_thickness * 3) + 8
    # Gamma thicknesses: mostly thin beds, a few thick ones, never zero.
    tops = start + np.cumsum(rng.gamma(1.5, mean_thickness / 1.5, n_layers))
    steps = rng.standard_normal(n_layers) * 0.08
    steps[rng.random(n_layers) < 0.08] *= 3.0  # a few bright beds (coal, carbonate, gas sand)
    # Mean-reverting walk, value[k] = 0.55 value[k-1] + step[k]: neighbouring beds are related and
    # the log does not drift away.
    values = np.concatenate([[0.0], lfilter([1.0], [1.0, -0.55], steps)])
    fine = np.arange(start, stop, 0.25)
    fine_log = values[np.searchsorted(tops, fine)]
    # Averaging over one pixel makes a bed boundary fall between pixels instead of on a staircase.
    fine_log = np.convolve(fine_log, np.full(4, 0.25), mode="same")
    return np.interp(times, fine, fine_log)


def fold_and_fault_times(rng: np.random.Generator, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Relative geological time (undeformed depth, px) of each point: dipping, folded, faulted layers."""
    xx, zz = x[None, :].astype(float), z[:, None].astype(float)
    centre = (x[-1] + x[0]) / 2.0
    steep = rng.random() < 0.25
    dip = rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.6) if steep else rng.normal(0.0, 0.2)
    times = zz - dip * (xx - centre)
    lateral = smooth_random_field(rng, (x.size,), rng.uniform(8.0, 30.0)) * rng.uniform(0.0, 7.0)
    wavelength = rng.uniform(40.0, 220.0)
    lateral += rng.uniform(0.0, 8.0) * np.sin(2 * np.pi * xx[0] / wavelength + rng.uniform(0, 2 * np.pi))
    # Folds grow or fade with depth, as when layers were deposited while folding went on.
    growth = 1.0 + rng.uniform(-0.8, 0.8) * (zz - centre) / 100.0
    times -= lateral[None, :] * growth
    for _ in range(rng.choice([0, 1, 2], p=[0.7, 0.22, 0.08])):
        times += _fault_offset(rng, xx, zz)
    # Small-scale warping (differential compaction, slumps, imaging jitter) keeps beds from being too regular.
    jitter = smooth_random_field(rng, times.shape, (rng.uniform(2.0, 5.0), rng.uniform(1.5, 4.0)))
    return times + jitter * rng.uniform(0.0, 1.2)


def _fault_offset(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """Vertical throw of the layers on one side of a slanted fault line through the section."""
    x0 = rng.uniform(10.0, 90.0)
    slant = np.tan(np.radians(rng.uniform(-40.0, 40.0)))
    side = (xx - x0 - slant * (zz - 50.0)) / np.sqrt(1.0 + slant**2)
    throw = rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 14.0)
    return throw / (1.0 + np.exp(-np.clip(side / 0.6, -50, 50)))


def layered_impedance(rng: np.random.Generator, times: np.ndarray, period: float) -> np.ndarray:
    """Sediment log-impedance at each point, from its relative geological time and the wavelet period."""
    mean_thickness = period * rng.uniform(0.15, 0.6)
    return impedance_log(rng, times, mean_thickness)


def _surface_distance(offset: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Approximate signed distance to a curve from a vertical (or horizontal) offset and the curve's slope."""
    return offset / np.sqrt(1.0 + slope**2)


def salt_level_set(rng: np.random.Generator, kind: str, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Signed distance (px, positive inside) to a salt body of the given kind, before roughening."""
    if kind not in _SALT_KINDS:
        raise ValueError(f"salt kind must be one of {_SALT_KINDS}, got {kind!r}")
    xx, zz = np.meshgrid(x.astype(float), z.astype(float))
    return _SALT_SHAPES[kind](rng, xx, zz)


def _top_of_salt(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """Salt below an undulating top surface."""
    x = xx[0]
    top = 50.0 + rng.normal(0.0, 0.5) * (x - 50.0)
    top += rng.uniform(0.0, 30.0) * -np.exp(-(((x - rng.uniform(-20, 120)) / rng.uniform(15, 60)) ** 2))
    top += smooth_random_field(rng, x.shape, rng.uniform(6.0, 20.0)) * rng.uniform(0.0, 5.0)
    return _surface_distance(zz - top[None, :], np.gradient(top)[None, :])


def _base_of_salt(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """Salt above an undulating base surface (sediments underneath)."""
    return -_top_of_salt(rng, xx, zz)


def _salt_flank(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """Salt on one side of a steep, curved flank crossing the section from top to bottom."""
    z = zz[:, 0]
    lean = np.tan(np.radians(rng.uniform(-35.0, 35.0)))
    edge = 50.0 + lean * (z - 50.0) + rng.uniform(-0.5, 0.5) * (z - 50.0) ** 2 / 100.0
    edge += smooth_random_field(rng, z.shape, rng.uniform(6.0, 20.0)) * rng.uniform(0.0, 4.0)
    side = rng.choice([-1.0, 1.0])
    return side * _surface_distance(xx - edge[:, None], np.gradient(edge)[:, None])


def _salt_dome(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """A broad elliptical dome whose crest may lie inside or outside the section."""
    half_width, half_height = rng.uniform(30.0, 120.0), rng.uniform(40.0, 160.0)
    cx, cz = rng.uniform(-10.0, 110.0), 40.0 + half_height * rng.uniform(0.6, 1.2)
    radius = np.hypot((xx - cx) / half_width, (zz - cz) / half_height)
    return (1.0 - radius) * min(half_width, half_height)


def _salt_diapir(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """A diapir: a leaning stalk rising into a wider bulb with overhanging flanks."""
    bulb_x, bulb_z = rng.uniform(15.0, 85.0), rng.uniform(10.0, 60.0)
    bulb_w, bulb_h = rng.uniform(15.0, 45.0), rng.uniform(10.0, 30.0)
    lean = np.tan(np.radians(rng.uniform(-25.0, 25.0)))
    stalk_half = bulb_w * rng.uniform(0.3, 0.7) + np.clip(zz - bulb_z, 0, None) * rng.uniform(0.0, 0.3)
    stalk_centre = bulb_x + lean * (zz - bulb_z)
    stalk = np.minimum(stalk_half - np.abs(xx - stalk_centre), zz - bulb_z)
    radius = np.hypot((xx - bulb_x) / bulb_w, (zz - bulb_z) / bulb_h)
    bulb = (1.0 - radius) * min(bulb_w, bulb_h)
    return _smooth_max(stalk, bulb, 4.0)


def _salt_sheet(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """A sub-horizontal salt sheet or tongue that thins towards a rounded tip."""
    x = xx[0]
    middle = rng.uniform(20.0, 80.0) + rng.normal(0.0, 0.25) * (x - 50.0)
    middle += smooth_random_field(rng, x.shape, rng.uniform(10.0, 25.0)) * rng.uniform(0.0, 5.0)
    tip_x, side = rng.uniform(10.0, 110.0), rng.choice([-1.0, 1.0])
    along = side * (tip_x - x)
    thickness = rng.uniform(8.0, 30.0) * np.clip(along / rng.uniform(20.0, 80.0), 0.0, 1.0) ** 0.5
    slope = np.gradient(middle)[None, :]
    half = 0.5 * thickness[None, :]
    inside_layer = half - np.abs(_surface_distance(zz - middle[None, :], slope))
    return _smooth_min(inside_layer, np.broadcast_to(along[None, :], zz.shape), 6.0)


def _smooth_max(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    """Union of two signed-distance bodies with a rounded join of the given width (px)."""
    return -_smooth_min(-a, -b, width)


def _smooth_min(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    """Intersection of two signed-distance bodies with a rounded corner of the given width (px)."""
    mix = np.clip(0.5 + 0.5 * (b - a) / width, 0.0, 1.0)
    return b * (1.0 - mix) + a * mix - width * mix * (1.0 - mix)


_SALT_SHAPES: dict[str, Callable[[np.random.Generator, np.ndarray, np.ndarray], np.ndarray]] = {
    "top": _top_of_salt,
    "flank": _salt_flank,
    "dome": _salt_dome,
    "diapir": _salt_diapir,
    "sheet": _salt_sheet,
    "base": _base_of_salt,
}


def roughen(rng: np.random.Generator, level_set: np.ndarray) -> np.ndarray:
    """Add smooth irregularity (a few px, long and short wavelengths) to a salt body's outline."""
    broad = smooth_random_field(rng, level_set.shape, rng.uniform(7.0, 16.0)) * rng.uniform(0.5, 3.0)
    rugose = smooth_random_field(rng, level_set.shape, 1.5) * rng.uniform(0.0, 0.6)
    return level_set + broad + rugose


def salt_body_mask(level_set: np.ndarray, coverage: float) -> tuple[np.ndarray, float]:
    """Mask of the `coverage` fraction of pixels with the largest level set, and the threshold used."""
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"coverage must be in [0, 1], got {coverage}")
    n_salt = int(round(coverage * level_set.size))
    if n_salt == 0:
        return np.zeros(level_set.shape, dtype=np.float32), float("inf")
    if n_salt == level_set.size:
        return np.ones(level_set.shape, dtype=np.float32), float("-inf")
    ordered = np.sort(level_set, axis=None)[::-1]
    threshold = 0.5 * float(ordered[n_salt - 1] + ordered[n_salt])
    return (level_set > threshold).astype(np.float32), threshold


# --------------------------------------------------------------------------------------------
# Sampling the mix: depth, salt presence, coverage
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# One section
# --------------------------------------------------------------------------------------------


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


def generate_section(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Generate one (image, mask) pair: float32 101x101, image in [0, 1], mask in {0, 1}."""
    sample = generate_sample(rng)
    return sample.image, sample.mask


def _salt_share(
    rng: np.random.Generator, x: np.ndarray, z: np.ndarray, coverage: float, window: slice
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Sub-pixel salt fraction of the model, the visible mask with the wanted coverage, distance to salt."""
    if coverage == 0.0:
        return np.zeros((z.size, x.size)), np.zeros((NATIVE_SIZE, NATIVE_SIZE), dtype=np.float32), None
    kind = str(rng.choice(_SALT_KINDS, p=_SALT_KIND_WEIGHTS / _SALT_KIND_WEIGHTS.sum()))
    level_set = salt_level_set(rng, kind, x, z)
    if rng.random() < 0.06:
        # A second body: two salt structures (or a diapir next to a sheet) in one section.
        second = str(rng.choice(_SALT_KINDS, p=_SALT_KIND_WEIGHTS / _SALT_KIND_WEIGHTS.sum()))
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


# --------------------------------------------------------------------------------------------
# Reproducible ids and random streams
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Writing Kaggle's layout, the cache, the command line
# --------------------------------------------------------------------------------------------


def write_synthetic_dataset(
    out_dir: str | Path,
    n_train: int = DEFAULT_N_TRAIN,
    n_test: int = DEFAULT_N_TEST,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Write a synthetic set in Kaggle's layout to out_dir (atomically) and return the folder.

    It is written into a staging folder beside out_dir and renamed at the end, so nobody ever sees
    half a data set; a staging folder left by a killed run is removed by the next run. A folder that
    cannot be written (a file in the way, no permission, a full disk) is a DataError naming it.
    """
    out_dir = Path(out_dir).expanduser().absolute()
    _check_counts(n_train, n_test, seed)
    workers = _check_workers(workers)
    marker = _marker(seed, n_train, n_test)
    with _os_errors_named(out_dir):
        if _holds_set(out_dir, marker):
            return out_dir
        _refuse_if_occupied(out_dir, marker)
        _make_parent(out_dir)
        _remove_stale_staging(out_dir)
        staging = out_dir.parent / f".{out_dir.name}{_STAGING_INFIX}{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            with _writing_lock(staging):
                _write_layout(staging, marker, progress, workers)
            _publish(staging, out_dir, marker)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def builtin_data_dir(n_train: int = DEFAULT_N_TRAIN, n_test: int = DEFAULT_N_TEST, seed: int = 0) -> Path:
    """The built-in synthetic set in the cache folder, generated there on first use."""
    _check_counts(n_train, n_test, seed)
    folder = cache_root() / _cache_name(seed, n_train, n_test)
    marker = _marker(seed, n_train, n_test)
    with _os_errors_named(folder, _cache_advice()):
        if _holds_set(folder, marker):
            return folder
        _refuse_damaged_cache(folder, marker)
    print(
        f"Generating the built-in synthetic data set ({n_train} training + {n_test} test sections) "
        f"into {folder} (first use only; about a minute of CPU time, shared out over the cores)",
        flush=True,
    )
    try:
        return write_synthetic_dataset(folder, n_train=n_train, n_test=n_test, seed=seed, progress=True)
    except DataError as error:
        raise DataError(f"{error}; {_cache_advice()}") from error


def cache_root() -> Path:
    """The course's cache folder: $SALT_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache, plus unet-salt-course."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().absolute() / "unet-salt-course"


def _cache_advice() -> str:
    """How to point the built-in data set's cache elsewhere, naming where it is now taken from."""
    explicit = os.environ.get(CACHE_ENV)
    origin = f"${CACHE_ENV} ({explicit})" if explicit else f"{cache_root()} (${CACHE_ENV} is not set)"
    return (
        f"the built-in data set is cached under {origin}: set ${CACHE_ENV} to a folder you can write to, "
        "or point DATA_DIR (or $SALT_DATA_DIR) at a data set of your own"
    )


def _refuse_damaged_cache(folder: Path, marker: dict[str, object]) -> None:
    """Raise when the cache folder exists and holds something other than this (complete) set."""
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        raise DataError(
            f"the built-in data set's cache folder {folder} is a file (or a broken link), not a folder: "
            f"delete it and run again to have the data set generated there; {_cache_advice()}"
        )
    if any(folder.iterdir()):
        raise DataError(
            f"the built-in data set's cache folder {folder} is damaged: {_describe_marker(folder, marker)}; "
            "delete that folder and run again to have it generated afresh"
        )


def _cache_name(seed: int, n_train: int, n_test: int) -> str:
    """Folder name of a cached set, e.g. synthetic-v1-seed0-n4000."""
    name = f"synthetic-v{GENERATOR_VERSION}-seed{seed}-n{n_train}"
    return name if n_test == DEFAULT_N_TEST else f"{name}-test{n_test}"


def _check_counts(n_train: int, n_test: int, seed: int) -> None:
    """Reject negative or non-integer counts and seeds."""
    for name, value in (("n_train", n_train), ("n_test", n_test), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _check_workers(workers: int | None) -> int:
    """Number of worker processes: the given one, else one per CPU core this process may use (at most 4)."""
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(4, cores))
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    return int(workers)


def _marker(seed: int, n_train: int, n_test: int) -> dict[str, object]:
    """Contents of the marker file that identifies a complete synthetic set."""
    return {
        "generator": "helpers.synthetic",
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_train": int(n_train),
        "n_test": int(n_test),
    }


def _read_marker(folder: Path) -> dict[str, object] | None:
    """The marker of a folder, or None when it has none or it cannot be read as a JSON object."""
    try:
        found = json.loads((folder / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _describe_marker(folder: Path, marker: dict[str, object]) -> str:
    """What a folder's marker says, for an error message: missing, unreadable, or other settings."""
    path = folder / MARKER_NAME
    if not path.exists():
        return f"it holds files but no {MARKER_NAME}, so they are not a synthetic set written here"
    found = _read_marker(folder)
    if found is None:
        return f"its {MARKER_NAME} is not a readable JSON object"
    if found != marker:
        return f"its {MARKER_NAME} describes a synthetic set with other settings ({found}), not {marker}"
    return f"its {MARKER_NAME} matches but its files do not"


def _holds_set(folder: Path, marker: dict[str, object]) -> bool:
    """Whether folder is a complete synthetic set written with exactly these settings."""
    if _read_marker(folder) != marker:
        return False
    damage = []
    for name in ("train.csv", "depths.csv"):
        if not (folder / name).is_file():
            damage.append(f"{folder / name} is missing")
    counts = {"train/images": marker["n_train"], "train/masks": marker["n_train"], "test/images": marker["n_test"]}
    for sub, expected in counts.items():
        found, empty = _count_pngs(folder / sub)
        if found != expected:
            damage.append(f"{folder / sub} has {found} PNG files but the synthetic set's {MARKER_NAME} says {expected}")
        if empty:
            damage.append(f"{len(empty)} PNG file(s) in {folder / sub} are empty, e.g. {empty[0]}")
    if damage:
        raise DataError(
            f"{'; '.join(damage)}; the folder was changed after it was written: delete {folder} to generate it again"
        )
    return True


def _count_pngs(folder: Path) -> tuple[int, list[str]]:
    """Number of .png files in folder (0 when it does not exist), and the names of those that are empty."""
    if not folder.is_dir():
        return 0, []
    found, empty = 0, []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".png"):
                found += 1
                if entry.stat().st_size == 0:
                    empty.append(entry.name)
    return found, sorted(empty)


def _refuse_if_occupied(out_dir: Path, marker: dict[str, object]) -> None:
    """Raise if out_dir is a file, or a non-empty folder that is not this synthetic set."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"cannot write the synthetic data set to {out_dir}: it is a file, not a folder")
    if any(out_dir.iterdir()):
        raise FileExistsError(
            f"refusing to write the synthetic data set ({marker}) into {out_dir}: {_describe_marker(out_dir, marker)}; "
            "choose an empty or new folder (nothing is ever overwritten)"
        )


@contextmanager
def _os_errors_named(folder: Path, advice: str = "") -> Iterator[None]:
    """Turn an operating-system error (no permission, a file in the way, a full disk) into a DataError naming it."""
    try:
        yield
    except OSError as error:
        if error.errno is None:
            raise  # one of this module's own refusals (FileExistsError with a message), already clear
        culprit = f" ({error.filename})" if error.filename else ""
        raise DataError(
            f"cannot write the synthetic data set to {folder}: {error.strerror or error}{culprit}; "
            + (advice or "choose a folder you can write to, on a disk with room (the default set takes about 70 MB)")
        ) from error


def _make_parent(out_dir: Path) -> None:
    """Create out_dir's parent folders, naming the file that is in the way if there is one."""
    for ancestor in reversed(out_dir.parents):
        if ancestor.exists() and not ancestor.is_dir():
            raise DataError(
                f"cannot write the synthetic data set to {out_dir}: {ancestor} is a file, not a folder; "
                "move that file away or choose another folder"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)


def _writer_is_gone(staging: Path) -> bool:
    """Whether the process that wrote a staging folder has ended (it holds the lock on its lock file till then)."""
    if fcntl is None:
        return False  # no way to tell here: leave it
    try:
        handle = os.open(staging / _LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        # Killed between creating the folder and locking it, a moment's window: stale once it is old.
        return time.time() - staging.stat().st_mtime > _STALE_UNLOCKED_S
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(handle)  # releases the lock if it was taken
    return True


def _remove_stale_staging(out_dir: Path) -> None:
    """Delete the staging folders for out_dir that runs killed part-way left behind (never a live one)."""
    prefix = f".{out_dir.name}{_STAGING_INFIX}"
    for staging in out_dir.parent.iterdir():
        try:
            if (staging.name.startswith(prefix) and staging.is_dir() and not staging.is_symlink()
                    and _writer_is_gone(staging)):
                shutil.rmtree(staging, ignore_errors=True)
        except OSError:
            pass  # e.g. a read-only cache: the leftover is in nobody's way


@contextmanager
def _writing_lock(staging: Path) -> Iterator[None]:
    """Hold a lock on a file in the staging folder while writing it, so that others can tell it is alive."""
    if fcntl is None:
        yield  # no file locks here: staging folders are never judged stale
        return
    handle = os.open(staging / _LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
        os.unlink(staging / _LOCK_NAME)  # while still locked; the published set does not carry it
    finally:
        os.close(handle)


def _write_layout(root: Path, marker: dict[str, object], progress: bool, workers: int) -> None:
    """Write images, masks, train.csv, depths.csv and, last, the marker into root."""
    seed = int(marker["seed"])
    for sub in ("train/images", "train/masks", "test/images"):
        (root / sub).mkdir(parents=True)
    rows: dict[str, list[tuple[str, str, int]]] = {}
    train_ids = synthetic_ids(seed, "train", int(marker["n_train"]))
    ids = {"train": train_ids, "test": synthetic_ids(seed, "test", int(marker["n_test"]), taken=train_ids)}
    for split, split_ids in ids.items():
        rows[split] = _write_split(root, seed, split, split_ids, progress, workers)
    _write_csv(root / "train.csv", ["id", "rle_mask"], [(sample_id, rle) for sample_id, rle, _ in rows["train"]])
    depths = [(sample_id, depth) for split in ("train", "test") for sample_id, _, depth in rows[split]]
    _write_csv(root / "depths.csv", ["id", "z"], depths)
    (root / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")


def _write_split(
    root: Path, seed: int, split: str, ids: list[str], progress: bool, workers: int
) -> list[tuple[str, str, int]]:
    """Generate and save every section of one split; (id, run-length mask, depth) rows in order."""
    write_one = partial(_write_section, root, seed, split)
    if workers > 1 and len(ids) >= _MIN_PARALLEL:
        try:
            return _write_in_processes(write_one, ids, split if progress else None, workers)
        except BrokenProcessPool:
            # e.g. a script without `if __name__ == "__main__":` where processes are spawned, or a worker killed.
            warnings.warn(
                "could not start worker processes, or one died; generating the synthetic data in this one", stacklevel=2
            )
    return list(_progress(map(write_one, range(len(ids)), ids), len(ids), split, progress))


def _write_in_processes(
    write_one: Callable[[int, str], tuple[str, str, int]], ids: list[str], progress_label: str | None, workers: int
) -> list[tuple[str, str, int]]:
    """Run write_one over the ids in worker processes (each section has its own random stream)."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_setup, initargs=(os.getpid(),))
    try:
        done = pool.map(write_one, range(len(ids)), ids, chunksize=16)
        return list(_progress(done, len(ids), progress_label or "", progress_label is not None))
    finally:
        # On an error or Ctrl-C, drop the sections not started instead of waiting for them all.
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_setup(parent_pid: int) -> None:
    """In a worker: leave Ctrl-C to the parent, and end when the parent ends, even by kill -9."""
    # The parent reacts to Ctrl-C by cancelling the work and shutting the pool down cleanly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The process that started this one: the parent, or a fork server that itself ends with the parent.
    starter = os.getppid()
    if not _die_with_parent():
        threading.Thread(target=_exit_when_orphaned, args=(starter,), daemon=True).start()
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        os._exit(1)  # the parent died before the lines above could take effect


def _die_with_parent() -> bool:
    """Ask Linux to kill this process when its parent dies (prctl PR_SET_PDEATHSIG); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _exit_when_orphaned(starter: int) -> None:
    """Poll for the starting process's death (where no parent-death signal exists) and end this process then."""
    while os.getppid() == starter:
        time.sleep(0.5)
    os._exit(1)


def _write_section(root: Path, seed: int, split: str, index: int, sample_id: str) -> tuple[str, str, int]:
    """Generate section `index` of a split, save its PNGs and return (id, run-length mask, depth)."""
    sample = generate_sample(sample_rng(seed, split, index))
    _save_image(root / split / "images" / f"{sample_id}.png", sample.image)
    if split == "train":
        _save_mask(root / split / "masks" / f"{sample_id}.png", sample.mask)
    return sample_id, rle_encode(sample.mask), sample.depth


def _write_csv(path: Path, header: list[str], rows: list[tuple[str, object]]) -> None:
    """Write a CSV file with a header, in the csv module's (and Kaggle's) dialect."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _progress(items: Iterable, total: int, label: str, enabled: bool) -> Iterable:
    """Wrap items in a tqdm progress bar when enabled."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=f"synthetic {label}", unit="section")


def _save_image(path: Path, image: np.ndarray) -> None:
    """Save a [0, 1] image as 8-bit RGB with three equal channels, like the real PNGs."""
    grey = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    # Light compression: twice as fast as the default, files about as large as the real ones (10 KB).
    Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2)).save(path, format="PNG", compress_level=1)


def _save_mask(path: Path, mask: np.ndarray) -> None:
    """Save a mask like the real ones: 16-bit 0/65535, or 8-bit zeros when there is no salt."""
    if mask.any():
        Image.fromarray((mask > 0.5).astype(np.uint16) * 65535).save(path, format="PNG", compress_level=1)
    else:
        Image.fromarray(np.zeros(mask.shape, dtype=np.uint8)).save(path, format="PNG")


def _publish(staging: Path, out_dir: Path, marker: dict[str, object]) -> None:
    """Rename the finished staging folder to out_dir; if another process won the race, use its set."""
    try:
        os.rename(staging, out_dir)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not _holds_set(out_dir, marker):
            raise FileExistsError(
                f"could not move the synthetic data set into {out_dir}: {error.strerror}; "
                "another program wrote there meanwhile"
            ) from error


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m helpers.synthetic OUT_DIR [--n-train N] [--n-test N] [--seed S]."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.synthetic", description="Write a synthetic salt data set in Kaggle's TGS layout."
    )
    parser.add_argument("out_dir", type=Path, help="new or empty folder to write to")
    parser.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN, help="labelled sections (default 4000)")
    parser.add_argument("--n-test", type=int, default=DEFAULT_N_TEST, help="unlabelled test sections (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    # A plain SIGTERM ends Python without running its clean-ups; as an exception, they remove the staging folder.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) if in_main_thread else None
    try:
        out = write_synthetic_dataset(args.out_dir, args.n_train, args.n_test, args.seed, progress=not args.quiet)
    except (ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: nothing was written to {args.out_dir}", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    print(out)
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    """Signal handler: raise SystemExit (128 + signal number, as a shell reports it)."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
